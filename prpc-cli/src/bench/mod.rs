//! `prpc bench`: one method called over and over by CONCURRENCY callers spread over N
//! connections, then calls/s, a latency histogram, percentiles and errors by code.
//!
//! It is built to measure prpc, not itself: the arguments are encoded once, in MessagePack
//! when the server takes it (one probe call finds out), and every call sends the same body
//! `Bytes`; replies are not decoded; the callers share one histogram behind a mutex, never
//! contended on the single-threaded runtime the command runs on; the progress bar reads a
//! counter on a timer of its own, and only on a terminal.

mod report;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::ValueEnum;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use prpc::{ByteString, Call, CallOptions, Channel, Code, Error, Format};

use crate::exit::Failure;
use crate::input::{self, Arguments};
use crate::target::{Connect, Target};

pub(crate) use report::Report;

/// `prpc bench`'s arguments.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("amount").required(true).args(["calls", "duration"])))]
pub(crate) struct BenchArgs {
    /// Where the server is.
    addr: Target,
    /// The method, as SERVICE/METHOD.
    #[arg(value_name = "SERVICE/METHOD", value_parser = input::method)]
    method: (String, String),
    /// The arguments: a JSON object of the method's arguments by name, `-` for stdin or
    /// `@FILE`; `{}` when left out.
    #[arg(value_name = "JSON")]
    arguments: Option<String>,
    /// Calls in flight at once.
    #[arg(short = 'c', long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// Calls to make in all.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    calls: Option<u64>,
    /// How long to keep calling (`10s`, `1m`).
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = input::duration)]
    duration: Option<Duration>,
    /// Connections to open; the callers are spread over them. A `registry://` or `etcd://`
    /// ADDR has one per endpoint instead.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// The body format: MessagePack when the server takes it, else JSON (`auto`).
    #[arg(long, value_enum, default_value_t = BodyFormat::Auto)]
    format: BodyFormat,
    /// Metadata sent with every call, `key:value`; repeat for more.
    #[arg(short = 'H', long = "header", value_name = "KEY:VALUE", value_parser = input::header)]
    headers: Vec<(String, String)>,
    /// Print the report as one JSON object, for machines.
    #[arg(long)]
    json: bool,
}

/// The format the calls' bodies are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BodyFormat {
    /// MessagePack if the server decodes it, else JSON.
    Auto,
    /// MessagePack.
    Msgpack,
    /// JSON.
    Json,
}

/// When to stop calling.
#[derive(Debug, Clone, Copy)]
enum Amount {
    Calls(u64),
    Duration(Duration),
}

/// One method, one body: what every call of the run sends.
#[derive(Clone)]
struct Request {
    service: ByteString,
    method: ByteString,
    format: Format,
    body: Bytes,
    options: Option<CallOptions>,
}

impl Request {
    fn call(&self) -> Call {
        let call = Call::new(
            self.service.clone(),
            self.method.clone(),
            self.format,
            self.body.clone(),
        );
        match &self.options {
            Some(options) => call.with_options(options.clone()),
            None => call,
        }
    }
}

/// Runs the benchmark and prints its report.
pub(crate) async fn bench(connect: &Connect, args: BenchArgs) -> Result<ExitCode, Failure> {
    let (service, method) = args.method.clone();
    let arguments = Arguments::from_flags(args.arguments.clone(), None).read()?;
    let options = (!args.headers.is_empty() || connect.timeout.is_some()).then(|| {
        let options = args
            .headers
            .iter()
            .fold(CallOptions::new(), |options, (key, value)| {
                options.metadata(key.clone(), Bytes::from(value.clone()))
            });
        match connect.timeout {
            Some(timeout) => options.timeout(timeout),
            None => options,
        }
    });
    let amount = match (args.calls, args.duration) {
        (Some(calls), _) => Amount::Calls(calls),
        (None, Some(duration)) => Amount::Duration(duration),
        (None, None) => Amount::Calls(200),
    };
    let name = format!("{service}/{method}");
    let request = Request {
        service: service.into(),
        method: method.into(),
        format: Format::MsgPack,
        body: Bytes::new(),
        options,
    };
    let target = &args.addr;
    let report = match target {
        Target::Direct(address) => {
            let mut clients = Vec::new();
            for _ in 0..args.connections {
                clients.push(connect.connect(target, address, connect.timeout).await?);
            }
            run(&args, &name, request, &arguments, amount, clients).await?
        }
        Target::Discovered {
            source,
            authority,
            service,
        } => {
            let cluster = connect
                .cluster(target, *source, authority, service, connect.timeout)
                .await?;
            run(&args, &name, request, &arguments, amount, vec![cluster]).await?
        }
    };
    let text = if args.json {
        report.json() + "\n"
    } else {
        report.text()
    };
    crate::inspect::print(&text)
}

/// Picks the body's format, then loads the server through `channels` and reports.
async fn run<C: Channel + Clone>(
    args: &BenchArgs,
    name: &str,
    mut request: Request,
    arguments: &serde_json::Value,
    amount: Amount,
    channels: Vec<C>,
) -> Result<Report, Failure> {
    let probe = &channels[0];
    request.format = match args.format {
        BodyFormat::Msgpack => Format::MsgPack,
        BodyFormat::Json => Format::Json,
        BodyFormat::Auto => {
            request.body = input::encode(arguments, Format::MsgPack)?;
            match probe.call(request.call()).await {
                Ok(_) => Format::MsgPack,
                Err(error) if error.code() == Code::InvalidArgument => Format::Json,
                Err(error) => return Err(Failure::call(&args.addr, Some(name), &error)),
            }
        }
    };
    // Encoded once: every call sends these same bytes.
    request.body = input::encode(arguments, request.format)?;
    if let Err(error) = probe.call(request.call()).await {
        return Err(Failure::call(&args.addr, Some(name), &error));
    }
    let load = Load::new(amount);
    let bar = progress(&load, amount);
    let started = Instant::now();
    let callers: Vec<_> = (0..args.concurrency as usize)
        .map(|index| {
            let channel = channels[index % channels.len()].clone();
            let request = request.clone();
            let load = load.clone();
            tokio::spawn(async move { load.caller(channel, request).await })
        })
        .collect();
    if let Amount::Duration(duration) = amount {
        tokio::time::sleep(duration).await;
        load.stop.store(true, Ordering::Relaxed);
    }
    for caller in callers {
        // A caller task only ends by returning: it never panics on a failed call.
        let _ = caller.await;
    }
    let elapsed = started.elapsed();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let tally = std::mem::take(&mut *load.tally.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(Report {
        target: args.addr.to_string(),
        method: name.to_owned(),
        format: request.format,
        concurrency: args.concurrency,
        connections: channels.len(),
        elapsed,
        latencies: tally.latencies,
        errors: tally.errors,
    })
}

/// What the callers share.
#[derive(Clone)]
struct Load {
    /// Calls that may still be started, for `-n`.
    budget: Option<Arc<AtomicU64>>,
    /// Set when `-d` has passed.
    stop: Arc<AtomicBool>,
    /// Calls finished, for the progress bar.
    done: Arc<AtomicU64>,
    tally: Arc<Mutex<Tally>>,
}

/// Every finished call's latency, and the failed ones by code.
struct Tally {
    /// Nanoseconds, 1 ns to 60 s at three significant digits (allocated once, about 200 KB).
    latencies: Histogram<u64>,
    /// Per code: how many, and the first message seen.
    errors: Vec<(Code, u64, String)>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            latencies: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .expect("constant histogram bounds are valid"),
            errors: Vec::new(),
        }
    }
}

impl Load {
    fn new(amount: Amount) -> Self {
        Load {
            budget: match amount {
                Amount::Calls(calls) => Some(Arc::new(AtomicU64::new(calls))),
                Amount::Duration(_) => None,
            },
            stop: Arc::new(AtomicBool::new(false)),
            done: Arc::new(AtomicU64::new(0)),
            tally: Arc::new(Mutex::new(Tally::default())),
        }
    }

    /// Whether another call may start.
    fn claim(&self) -> bool {
        match &self.budget {
            Some(budget) => budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_ok(),
            None => !self.stop.load(Ordering::Relaxed),
        }
    }

    /// One caller: the next call as soon as the previous one returns, until the run ends.
    async fn caller<C: Channel>(self, channel: C, request: Request) {
        while self.claim() {
            let sent = Instant::now();
            let result = channel.call(request.call()).await;
            let latency = sent.elapsed().as_nanos() as u64;
            self.record(latency, result.err());
        }
    }

    fn record(&self, latency: u64, error: Option<Error>) {
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.latencies.saturating_record(latency.max(1));
        if let Some(error) = error {
            let code = error.code();
            match tally.errors.iter_mut().find(|(seen, ..)| *seen == code) {
                Some((_, count, _)) => *count += 1,
                None => tally.errors.push((code, 1, error.to_string())),
            }
        }
        drop(tally);
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// A progress bar on stderr, when stderr is a terminal, moved by a task of its own.
fn progress(load: &Load, amount: Amount) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let (length, template) = match amount {
        Amount::Calls(calls) => (calls, "{bar:40} {pos}/{len} calls, {elapsed}"),
        Amount::Duration(duration) => (
            duration.as_millis() as u64,
            "{bar:40} {elapsed}/{msg}, {prefix} calls",
        ),
    };
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    if let Amount::Duration(duration) = amount {
        bar.set_message(format!("{}s", duration.as_secs()));
    }
    let ticking = bar.clone();
    let done = load.done.clone();
    let started = Instant::now();
    tokio::spawn(async move {
        while !ticking.is_finished() {
            let calls = done.load(Ordering::Relaxed);
            match amount {
                Amount::Calls(_) => ticking.set_position(calls),
                Amount::Duration(_) => {
                    ticking.set_position(started.elapsed().as_millis() as u64);
                    ticking.set_prefix(calls.to_string());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Some(bar)
}
