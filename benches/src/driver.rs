//! The client side of every echo program: the same connections, the same callers, the same
//! clock and the same report, whatever the framework underneath.
//!
//! A program opens `--connections` connections with [`connect`], wraps each in its
//! framework's client, and hands them to [`drive`] as [`Caller`]s. `drive` runs `--in-flight`
//! caller tasks spread round robin over the connections, each sending the next call as soon
//! as the previous one returns: first for `--warmup` (thrown away), then for `--seconds`,
//! recording every call's latency in an hdrhistogram. It reads the CPU time of both
//! processes and the `TCP_INFO` counters of the client's sockets just before and just after
//! the measured run, and prints one line of `key=value` fields:
//!
//! ```text
//! in_flight=128 size=64 calls/s=181234 p50_us=690.1 p99_us=911.4 p999_us=1203.2
//! connections=1 runtime=current seconds=5.00 calls=906170 mib/s=11.1
//! client_us_per_call=2.71 server_us_per_call=2.95 client_cpu_util=0.49 server_cpu_util=0.53
//! wire_bytes_per_call=162.0 segments_per_call=0.05
//! ```
//!
//! (all on one line). The first six fields are the original `prpc_echo` line. `mib/s` is
//! body bytes echoed per second, one way; the `*_us_per_call` fields are CPU time (user +
//! system) per call; `*_cpu_util` is CPU time over wall time (1.0 is one core busy);
//! `wire_bytes_per_call` is TCP payload both ways and `segments_per_call` TCP segments both
//! ways, ACKs included (see [`counters`](crate::counters)).

use std::fmt;
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::net::TcpStream;

use crate::counters::{SocketCounters, process_cpu_time};
use crate::options::{Options, Payload};
use crate::record::Record;

/// One framework's client of the echo service, on one connection.
pub trait Caller: Clone + Send + Sync + 'static {
    /// Sends `body` to be echoed; returns the length of the body that came back. Panics if
    /// the call fails: a benchmark that loses calls has nothing to report.
    fn echo(&self, body: Bytes) -> impl Future<Output = usize> + Send;

    /// Sends `record` to be echoed (scenario (e)); returns `encoded.len()` if the record came
    /// back whole. Programs without typed values send `encoded`, its MessagePack encoding, as
    /// the body.
    fn echo_record(&self, record: &Record, encoded: &Bytes) -> impl Future<Output = usize> + Send {
        let _ = record;
        self.echo(encoded.clone())
    }

    /// The server process's CPU time so far (see
    /// [`process_cpu_time`](crate::counters::process_cpu_time)).
    fn server_cpu(&self) -> impl Future<Output = Duration> + Send;
}

/// Opens a TCP connection with `TCP_NODELAY`, retrying for up to ten seconds while the
/// server starts. Also returns a duplicate of the socket's descriptor, for reading its
/// counters after the framework has taken the stream.
pub async fn connect(addr: &str) -> (TcpStream, OwnedFd) {
    let started = Instant::now();
    let stream = loop {
        match TcpStream::connect(addr).await {
            Ok(stream) => break stream,
            Err(error) if started.elapsed() > Duration::from_secs(10) => {
                panic!("cannot connect to {addr}: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let socket = stream
        .as_fd()
        .try_clone_to_owned()
        .expect("duplicate the socket");
    (stream, socket)
}

/// Loads the server through `callers` (one per connection) and prints the report line.
pub async fn drive<C: Caller>(options: &Options, callers: Vec<C>, sockets: Vec<OwnedFd>) {
    println!("{}", measure(options, callers, sockets).await);
}

/// Loads the server through `callers` (one per connection): the warm-up, then the measured
/// run. Returns the report, which prints as the line [`drive`] prints.
pub async fn measure<C: Caller>(
    options: &Options,
    callers: Vec<C>,
    sockets: Vec<OwnedFd>,
) -> Report {
    assert!(!callers.is_empty(), "no connections");
    let mut options = options.clone();
    let (body, record) = match options.payload {
        Payload::Bytes => (Bytes::from(vec![0x5a; options.size]), None),
        Payload::Record => {
            let record = Record::sample();
            let encoded = record.encoded();
            options.size = encoded.len();
            (encoded, Some(Arc::new(record)))
        }
    };
    let options = &options;
    if !options.warmup.is_zero() {
        load(&callers, options.in_flight, &body, &record, options.warmup).await;
    }

    let server_before = callers[0].server_cpu().await;
    let client_before = process_cpu_time();
    let wire_before = SocketCounters::read_all(&sockets);
    let (latencies, elapsed) = load(
        &callers,
        options.in_flight,
        &body,
        &record,
        options.duration,
    )
    .await;
    let wire = SocketCounters::read_all(&sockets) - wire_before;
    let client_cpu = process_cpu_time() - client_before;
    let server_cpu = callers[0].server_cpu().await - server_before;
    Report {
        options: options.clone(),
        latencies,
        elapsed,
        client_cpu,
        server_cpu,
        wire,
    }
}

/// What a measured run saw; `Display` writes the report line.
pub struct Report {
    options: Options,
    latencies: Histogram<u64>,
    elapsed: Duration,
    client_cpu: Duration,
    server_cpu: Duration,
    wire: SocketCounters,
}

impl fmt::Display for Report {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Report {
            options,
            latencies,
            elapsed,
            client_cpu,
            server_cpu,
            wire,
        } = self;
        let calls = latencies.len().max(1) as f64;
        let seconds = elapsed.as_secs_f64();
        let micros = |quantile: f64| latencies.value_at_quantile(quantile) as f64 / 1000.0;
        write!(
            out,
            "in_flight={} size={} calls/s={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} \
             connections={} runtime={} seconds={:.2} calls={} mib/s={:.1} \
             client_us_per_call={:.3} server_us_per_call={:.3} \
             client_cpu_util={:.3} server_cpu_util={:.3} \
             wire_bytes_per_call={:.1} segments_per_call={:.3}",
            options.in_flight,
            options.size,
            latencies.len() as f64 / seconds,
            micros(0.5),
            micros(0.99),
            micros(0.999),
            options.connections,
            options.runtime.name(),
            seconds,
            latencies.len(),
            latencies.len() as f64 * options.size as f64 / seconds / (1024.0 * 1024.0),
            client_cpu.as_secs_f64() * 1e6 / calls,
            server_cpu.as_secs_f64() * 1e6 / calls,
            client_cpu.as_secs_f64() / seconds,
            server_cpu.as_secs_f64() / seconds,
            wire.bytes() as f64 / calls,
            wire.segments() as f64 / calls,
        )
    }
}

/// Runs `in_flight` callers for `duration`; returns every call's latency (nanoseconds) and
/// the time from the first call to the last reply. Every call started is waited for, so
/// nothing is in flight when this returns.
///
/// The callers share one histogram behind a mutex (never contended: the runtime has one
/// thread running tasks). One histogram per caller would cost more than some frameworks' whole
/// call: 128 of them are 30 MB of counters, and every record missed the cache.
async fn load<C: Caller>(
    callers: &[C],
    in_flight: usize,
    body: &Bytes,
    record: &Option<Arc<Record>>,
    duration: Duration,
) -> (Histogram<u64>, Duration) {
    // 1 ns to 60 s at three significant digits, allocated once (about 200 KB).
    let histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let latencies = Arc::new(Mutex::new(histogram));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|index| {
            let caller = callers[index % callers.len()].clone();
            let body = body.clone();
            let record = record.clone();
            let stop = stop.clone();
            let latencies = latencies.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let echoed = match &record {
                        Some(record) => caller.echo_record(record, &body).await,
                        None => caller.echo(body.clone()).await,
                    };
                    let latency = sent.elapsed().as_nanos() as u64;
                    latencies
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .saturating_record(latency);
                    assert_eq!(echoed, body.len(), "the echo changed the body's length");
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("caller task panicked");
    }
    let elapsed = started.elapsed();
    let latencies = std::mem::replace(
        &mut *latencies.lock().unwrap_or_else(PoisonError::into_inner),
        Histogram::new(3).expect("histogram"),
    );
    (latencies, elapsed)
}
