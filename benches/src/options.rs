//! The command line every echo program takes, and the runtime it runs on.
//!
//! ```text
//! NAME server [ADDR] [--runtime current|multi]
//! NAME client ADDR [--connections N] [--in-flight N] [--size BYTES] [--seconds S]
//!                  [--warmup S] [--runtime current|multi]
//! ```
//!
//! A server binds ADDR (default `127.0.0.1:0`) and prints `listening ADDR` on stdout once it
//! accepts connections. A client spreads `--in-flight` concurrent callers over
//! `--connections` connections and prints one report line (see [`driver`](crate::driver)).

use std::future::Future;
use std::time::Duration;

/// What the process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Serve the echo service.
    Server,
    /// Load a server and report.
    Client,
}

/// The tokio runtime a process runs on; servers and clients of every framework use the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// `new_current_thread`: everything on the main thread.
    CurrentThread,
    /// `new_multi_thread` with one worker; the program's main future is spawned onto it, so
    /// all work happens on that worker.
    MultiThread,
}

impl RuntimeKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::CurrentThread => "current",
            RuntimeKind::MultiThread => "multi",
        }
    }

    /// Runs `future` to completion on a fresh runtime of this kind.
    pub fn run<F>(self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = match self {
            RuntimeKind::CurrentThread => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            RuntimeKind::MultiThread => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build(),
        }
        .expect("tokio runtime");
        // Spawned rather than run by `block_on`: on the multi-thread runtime the main future
        // would otherwise run on the main thread beside the worker.
        runtime.block_on(async move { tokio::spawn(future).await.expect("main task panicked") })
    }
}

/// What each call of the echo carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// `--size` bytes.
    Bytes,
    /// A [`Record`](crate::record::Record) (scenario (e)); byte-body programs send its
    /// MessagePack encoding.
    Record,
}

/// A parsed command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Server or client.
    pub role: Role,
    /// Where the server listens, or where the client connects.
    pub addr: String,
    /// Connections the client opens (callers are spread over them round robin).
    pub connections: usize,
    /// Calls the client keeps in flight in all.
    pub in_flight: usize,
    /// Body size in bytes (with `--payload record`, the record's encoded size).
    pub size: usize,
    /// What each call carries.
    pub payload: Payload,
    /// Length of the measured run.
    pub duration: Duration,
    /// Load run and thrown away before the measured run.
    pub warmup: Duration,
    /// The runtime both sides use.
    pub runtime: RuntimeKind,
}

/// Printed on a bad command line.
pub const USAGE: &str = "usage: NAME server [ADDR] [--runtime current|multi]
       NAME client ADDR [--connections N] [--in-flight N] [--size BYTES] [--seconds S] \
[--warmup S] [--runtime current|multi] [--payload bytes|record]";

impl Options {
    /// Parses the process's arguments; prints the usage and exits on a bad one.
    pub fn from_args() -> Options {
        match Options::parse(std::env::args().skip(1)) {
            Ok(options) => options,
            Err(error) => {
                eprintln!("{error}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }

    /// Parses arguments (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut args = args.into_iter().peekable();
        let role = match args.next().as_deref() {
            Some("server") => Role::Server,
            Some("client") => Role::Client,
            other => return Err(format!("expected server or client, found {other:?}")),
        };
        let addr = match args.peek() {
            Some(addr) if !addr.starts_with("--") => args.next().unwrap_or_default(),
            _ if role == Role::Server => "127.0.0.1:0".to_owned(),
            _ => return Err("the client needs the server's address".to_owned()),
        };
        let mut options = Options {
            role,
            addr,
            connections: 1,
            in_flight: 1,
            size: 64,
            payload: Payload::Bytes,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            runtime: RuntimeKind::CurrentThread,
        };
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--connections" => options.connections = count(&flag, &value)?,
                "--in-flight" => options.in_flight = count(&flag, &value)?,
                "--size" => options.size = number(&flag, &value)?,
                "--seconds" => options.duration = seconds(&flag, &value)?,
                "--warmup" => options.warmup = seconds(&flag, &value)?,
                "--payload" => {
                    options.payload = match value.as_str() {
                        "bytes" => Payload::Bytes,
                        "record" => Payload::Record,
                        other => return Err(format!("--payload is bytes or record, not {other}")),
                    }
                }
                "--runtime" => {
                    options.runtime = match value.as_str() {
                        "current" => RuntimeKind::CurrentThread,
                        "multi" => RuntimeKind::MultiThread,
                        other => return Err(format!("--runtime is current or multi, not {other}")),
                    }
                }
                other => return Err(format!("unknown flag {other}")),
            }
        }
        if options.connections > options.in_flight {
            return Err(format!(
                "--connections {} leaves connections idle with --in-flight {}",
                options.connections, options.in_flight
            ));
        }
        Ok(options)
    }
}

/// Tells whoever started the server where it listens: one `listening ADDR` line on stdout,
/// printed once the listener is bound.
pub fn announce(addr: std::net::SocketAddr) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening {addr}");
    let _ = stdout.flush();
}

fn number(flag: &str, value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} takes a whole number, not {value}"))
}

fn count(flag: &str, value: &str) -> Result<usize, String> {
    match number(flag, value)? {
        0 => Err(format!("{flag} must be at least 1")),
        count => Ok(count),
    }
}

fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(|| format!("{flag} takes seconds, not {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Options, String> {
        Options::parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn client_flags() {
        let options = parse(
            "client 127.0.0.1:7 --connections 4 --in-flight 256 --size 4096 --seconds 1.5 \
             --warmup 0 --runtime multi",
        )
        .unwrap();
        assert_eq!(options.role, Role::Client);
        assert_eq!(options.addr, "127.0.0.1:7");
        assert_eq!(options.connections, 4);
        assert_eq!(options.in_flight, 256);
        assert_eq!(options.size, 4096);
        assert_eq!(options.duration, Duration::from_millis(1500));
        assert_eq!(options.warmup, Duration::ZERO);
        assert_eq!(options.runtime, RuntimeKind::MultiThread);
    }

    #[test]
    fn server_address_is_optional() {
        let options = parse("server --runtime current").unwrap();
        assert_eq!(options.role, Role::Server);
        assert_eq!(options.addr, "127.0.0.1:0");
    }

    #[test]
    fn bad_lines_are_refused() {
        assert!(parse("client").is_err());
        assert!(parse("client 127.0.0.1:7 --in-flight 0").is_err());
        assert!(parse("client 127.0.0.1:7 --connections 2").is_err());
        assert!(parse("client 127.0.0.1:7 --runtime fast").is_err());
        assert!(parse("client 127.0.0.1:7 --seconds").is_err());
        assert!(parse("serve").is_err());
    }
}
