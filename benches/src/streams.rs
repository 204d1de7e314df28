//! Both sides of every stream program (`*_stream`, run by `benches/stream.sh`): the command
//! line, the server's counters, and the client's scenarios and report, whatever the
//! framework underneath.
//!
//! ```text
//! NAME server [ADDR] [--runtime current|multi]
//! NAME client ADDR --scenario server-stream|client-stream|mixed [--size BYTES]
//!                  [--streams N] [--in-flight N] [--seconds S] [--warmup S]
//!                  [--runtime current|multi]
//! ```
//!
//! Every program serves the same four methods: `echo` (bytes in, the same bytes out),
//! `stream` (a server stream of messages of the requested size, without end), `upload` (a
//! client stream whose messages the server counts) and `stats` (the server's counters, see
//! [`ServerStats`]). A client opens one connection and runs one [`Scenario`]:
//!
//! - `server-stream`: `--streams` server streams (default 1) of `--size`-byte messages, each
//!   read by its own task, which counts them as it takes them. The report is messages per
//!   second at the client, the receiver.
//! - `client-stream`: one endless upload of `--size`-byte messages; the server counts what
//!   it takes, and the client reads the server's counters (and clock) at both ends of the
//!   measured window. The report is bytes per second at the server, the receiver.
//! - `mixed`: the unary load of the echo programs ([`driver`](crate::driver): `--in-flight`
//!   callers of `echo` with `--size`-byte bodies) on the same connection as `--streams`
//!   server streams of 64-byte messages (default 0), each read by its own task as fast as
//!   the stream's credit allows. The report is the echo programs' line, then the streams'
//!   messages per second.
//!
//! Each run warms up for `--warmup` (thrown away) before the measured `--seconds`.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::counters::{SocketCounters, process_cpu_time};
use crate::driver::{self, Caller};
use crate::options::{Options, Role, USAGE};

/// Size of the messages of the streams that run beside the unary load of `mixed`.
pub const MIXED_STREAM_MESSAGE: usize = 64;

/// What a client measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Server streams, counted at the client.
    ServerStream,
    /// One client stream, counted at the server.
    ClientStream,
    /// Unary calls beside busy server streams on the same connection.
    Mixed,
}

impl Scenario {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::ServerStream => "server-stream",
            Scenario::ClientStream => "client-stream",
            Scenario::Mixed => "mixed",
        }
    }
}

/// A stream program's command line: the echo programs' and two more flags.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// The flags every program takes.
    pub common: Options,
    /// What the client measures.
    pub scenario: Scenario,
    /// Server streams the client opens.
    pub streams: usize,
}

impl StreamOptions {
    /// Parses the process's arguments; prints the usage and exits on a bad one.
    pub fn from_args() -> StreamOptions {
        match StreamOptions::parse(std::env::args().skip(1)) {
            Ok(options) => options,
            Err(error) => {
                eprintln!(
                    "{error}\n{USAGE}\n  stream programs' clients also take --scenario \
                     server-stream|client-stream|mixed and --streams N"
                );
                std::process::exit(2);
            }
        }
    }

    /// Parses arguments (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<StreamOptions, String> {
        let (mut scenario, mut streams, mut rest) = (None, None, Vec::new());
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--scenario" => {
                    scenario = Some(match args.next().as_deref() {
                        Some("server-stream") => Scenario::ServerStream,
                        Some("client-stream") => Scenario::ClientStream,
                        Some("mixed") => Scenario::Mixed,
                        other => {
                            return Err(format!(
                                "--scenario is server-stream, client-stream or mixed, not \
                                 {other:?}"
                            ));
                        }
                    })
                }
                "--streams" => {
                    let value = args.next().unwrap_or_default();
                    streams = Some(
                        value
                            .parse()
                            .map_err(|_| format!("--streams takes a number, not {value:?}"))?,
                    );
                }
                _ => rest.push(arg),
            }
        }
        let common = Options::parse(rest)?;
        let scenario = match (common.role, scenario) {
            (_, Some(scenario)) => scenario,
            (Role::Server, None) => Scenario::ServerStream,
            (Role::Client, None) => return Err("the client needs --scenario".to_owned()),
        };
        let streams = streams.unwrap_or(match scenario {
            Scenario::ServerStream => 1,
            Scenario::ClientStream | Scenario::Mixed => 0,
        });
        if scenario == Scenario::ServerStream && streams == 0 {
            return Err("--scenario server-stream needs --streams of at least 1".to_owned());
        }
        Ok(StreamOptions {
            common,
            scenario,
            streams,
        })
    }
}

/// The server's counters, as `stats` answers them: what its `upload` handlers took, its
/// CPU time and its clock. Encoded as four u64, big-endian, in that order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Message bytes (bodies) received on uploads so far.
    pub received_bytes: u64,
    /// Messages received on uploads so far.
    pub received_messages: u64,
    /// The server process's CPU time so far.
    pub cpu: Duration,
    /// The server's monotonic clock (from its first reading of these counters).
    pub clock: Duration,
}

/// Length of an encoded [`ServerStats`].
pub const STATS_LENGTH: usize = 32;

static RECEIVED_BYTES: AtomicU64 = AtomicU64::new(0);
static RECEIVED_MESSAGES: AtomicU64 = AtomicU64::new(0);
static CLOCK_ZERO: OnceLock<Instant> = OnceLock::new();

/// Counts one message an upload handler took (its body's length), server side.
pub fn record_received(length: usize) {
    RECEIVED_BYTES.fetch_add(length as u64, Ordering::Relaxed);
    RECEIVED_MESSAGES.fetch_add(1, Ordering::Relaxed);
}

impl ServerStats {
    /// This process's counters now, server side.
    pub fn now() -> ServerStats {
        ServerStats {
            received_bytes: RECEIVED_BYTES.load(Ordering::Relaxed),
            received_messages: RECEIVED_MESSAGES.load(Ordering::Relaxed),
            cpu: process_cpu_time(),
            clock: CLOCK_ZERO.get_or_init(Instant::now).elapsed(),
        }
    }

    /// The wire form: four u64, big-endian.
    pub fn encode(&self) -> [u8; STATS_LENGTH] {
        let mut out = [0; STATS_LENGTH];
        let fields = [
            self.received_bytes,
            self.received_messages,
            self.cpu.as_nanos() as u64,
            self.clock.as_nanos() as u64,
        ];
        for (slot, field) in out.chunks_exact_mut(8).zip(fields) {
            slot.copy_from_slice(&field.to_be_bytes());
        }
        out
    }

    /// Reads the wire form; panics on anything else (the benchmark's own server sent it).
    pub fn decode(bytes: &[u8]) -> ServerStats {
        assert_eq!(bytes.len(), STATS_LENGTH, "stats of {} bytes", bytes.len());
        let field = |index: usize| {
            u64::from_be_bytes(bytes[index * 8..][..8].try_into().expect("eight bytes"))
        };
        ServerStats {
            received_bytes: field(0),
            received_messages: field(1),
            cpu: Duration::from_nanos(field(2)),
            clock: Duration::from_nanos(field(3)),
        }
    }
}

/// One framework's client of the stream service, on one connection.
pub trait StreamCaller: Clone + Send + Sync + 'static {
    /// A server stream being read.
    type Receiver: Receiver;

    /// Opens a server stream of `size`-byte messages.
    fn server_stream(&self, size: usize) -> impl Future<Output = Self::Receiver> + Send;

    /// Starts an upload that sends `chunk` again and again, as fast as the framework's flow
    /// control lets it, until the process ends. Returns once it is under way.
    fn start_upload(&self, chunk: Bytes) -> impl Future<Output = ()> + Send;

    /// The server's counters.
    fn stats(&self) -> impl Future<Output = ServerStats> + Send;
}

/// A server stream as its client reads it.
pub trait Receiver: Send + 'static {
    /// Takes the next message and returns its body's length. Panics if the stream fails or
    /// ends: the server's streams have no end.
    fn next(&mut self) -> impl Future<Output = usize> + Send;
}

/// Runs the client's scenario (`server-stream` or `client-stream`) on `caller`'s connection,
/// whose socket is `socket`, and prints the report line. `mixed` needs unary calls too: see
/// [`mixed`].
pub async fn drive<C: StreamCaller>(options: &StreamOptions, caller: C, socket: OwnedFd) {
    let line = match options.scenario {
        Scenario::ServerStream => server_streams(options, &caller, &socket).await,
        Scenario::ClientStream => client_stream(options, &caller, &socket).await,
        Scenario::Mixed => panic!("scenario mixed needs unary calls: streams::mixed runs it"),
    };
    println!("{line}");
}

/// Messages taken by the readers of server streams.
#[derive(Clone, Default)]
struct Taken {
    messages: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl Taken {
    fn read(&self) -> (u64, u64) {
        (
            self.messages.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// Opens `streams` server streams and spawns a task per stream that reads it without end,
/// counting what it takes.
async fn spawn_readers<C: StreamCaller>(caller: &C, streams: usize, size: usize) -> Taken {
    let taken = Taken::default();
    for _ in 0..streams {
        let mut receiver = caller.server_stream(size).await;
        let taken = taken.clone();
        tokio::spawn(async move {
            loop {
                let length = receiver.next().await;
                taken.messages.fetch_add(1, Ordering::Relaxed);
                taken.bytes.fetch_add(length as u64, Ordering::Relaxed);
            }
        });
    }
    taken
}

/// The cost of a measured window, read at both ends.
struct Window {
    started: Instant,
    client_cpu: Duration,
    server: ServerStats,
    wire: SocketCounters,
}

impl Window {
    async fn open<C: StreamCaller>(caller: &C, socket: &OwnedFd) -> Window {
        let server = caller.stats().await;
        Window {
            started: Instant::now(),
            client_cpu: process_cpu_time(),
            server,
            wire: SocketCounters::read_all(std::slice::from_ref(socket)),
        }
    }

    /// The report's fields for `messages` and `bytes` received in the window, `elapsed` long
    /// as the receiver measured it, with the server's counters at its end.
    fn close(
        &self,
        socket: &OwnedFd,
        elapsed: Duration,
        server: ServerStats,
        messages: u64,
        bytes: u64,
    ) -> String {
        let wire = SocketCounters::read_all(std::slice::from_ref(socket)) - self.wire;
        let client_cpu = process_cpu_time() - self.client_cpu;
        let server_cpu = server.cpu - self.server.cpu;
        let seconds = elapsed.as_secs_f64();
        let per_message = messages.max(1) as f64;
        format!(
            "msgs/s={:.0} mib/s={:.1} seconds={:.2} messages={} \
             client_us_per_msg={:.3} server_us_per_msg={:.3} \
             client_cpu_util={:.3} server_cpu_util={:.3} \
             wire_bytes_per_msg={:.1} segments_per_msg={:.4}",
            messages as f64 / seconds,
            bytes as f64 / seconds / (1024.0 * 1024.0),
            seconds,
            messages,
            client_cpu.as_secs_f64() * 1e6 / per_message,
            server_cpu.as_secs_f64() * 1e6 / per_message,
            client_cpu.as_secs_f64() / seconds,
            server_cpu.as_secs_f64() / seconds,
            wire.bytes() as f64 / per_message,
            wire.segments() as f64 / per_message,
        )
    }
}

async fn server_streams<C: StreamCaller>(
    options: &StreamOptions,
    caller: &C,
    socket: &OwnedFd,
) -> String {
    let common = &options.common;
    let taken = spawn_readers(caller, options.streams, common.size).await;
    tokio::time::sleep(common.warmup).await;
    let window = Window::open(caller, socket).await;
    let (messages_before, bytes_before) = taken.read();
    tokio::time::sleep(common.duration).await;
    let (messages_after, bytes_after) = taken.read();
    let elapsed = window.started.elapsed();
    let server = caller.stats().await;
    let fields = window.close(
        socket,
        elapsed,
        server,
        messages_after - messages_before,
        bytes_after - bytes_before,
    );
    header(options) + &fields
}

async fn client_stream<C: StreamCaller>(
    options: &StreamOptions,
    caller: &C,
    socket: &OwnedFd,
) -> String {
    let common = &options.common;
    caller
        .start_upload(Bytes::from(vec![0x5a; common.size]))
        .await;
    tokio::time::sleep(common.warmup).await;
    let window = Window::open(caller, socket).await;
    tokio::time::sleep(common.duration).await;
    let server = caller.stats().await;
    // The server's clock: the window as the receiver saw it.
    let elapsed = server.clock - window.server.clock;
    let fields = window.close(
        socket,
        elapsed,
        server,
        server.received_messages - window.server.received_messages,
        server.received_bytes - window.server.received_bytes,
    );
    header(options) + &fields
}

fn header(options: &StreamOptions) -> String {
    format!(
        "scenario={} size={} streams={} runtime={} ",
        options.scenario.name(),
        options.common.size,
        options.streams,
        options.common.runtime.name()
    )
}

/// Runs scenario `mixed`: `--streams` busy server streams on `caller`'s connection, and the
/// echo programs' unary load beside them ([`driver::measure`]). Prints the echo programs'
/// line, then `streams=N stream_msgs/s=R` (R over the whole run, warm-up included).
pub async fn mixed<C: StreamCaller + Caller>(options: &StreamOptions, caller: C, socket: OwnedFd) {
    let taken = spawn_readers(&caller, options.streams, MIXED_STREAM_MESSAGE).await;
    let started = Instant::now();
    let report = driver::measure(&options.common, vec![caller], vec![socket]).await;
    let (messages, _) = taken.read();
    println!(
        "scenario=mixed {report} streams={} stream_msgs/s={:.0}",
        options.streams,
        messages as f64 / started.elapsed().as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<StreamOptions, String> {
        StreamOptions::parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn stream_flags_beside_the_common_ones() {
        let options =
            parse("client 127.0.0.1:7 --scenario mixed --streams 100 --in-flight 128").unwrap();
        assert_eq!(options.scenario, Scenario::Mixed);
        assert_eq!(options.streams, 100);
        assert_eq!(options.common.in_flight, 128);
        let options = parse("client 127.0.0.1:7 --scenario server-stream").unwrap();
        assert_eq!(options.streams, 1);
        assert!(parse("client 127.0.0.1:7").is_err());
        assert!(parse("client 127.0.0.1:7 --scenario both").is_err());
        assert_eq!(parse("server").unwrap().common.role, Role::Server);
    }

    #[test]
    fn stats_round_trip() {
        let stats = ServerStats {
            received_bytes: 1 << 40,
            received_messages: 7,
            cpu: Duration::from_nanos(123_456_789),
            clock: Duration::from_secs(3),
        };
        assert_eq!(ServerStats::decode(&stats.encode()), stats);
    }
}
