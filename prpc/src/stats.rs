//! A server's numbers, kept as it runs and read as a [`ServerSnapshot`]: per service and
//! method the calls, the errors by code, the calls in flight and a latency histogram; per
//! connection the peer, age, calls and bytes; the idempotency store's size.
//!
//! Counting is on by default and costs a few relaxed atomic operations and one clock read per
//! call (the start is the time the connection read the request, taken once per read; see
//! benches/README.md for the figure); turn it off with
//! [`Builder::stats`](crate::server::Builder::stats). Read it with
//! [`Router::stats`](crate::server::Router::stats); prpc-http renders it as `/metrics` and
//! `/debug/prpc`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # #[prpc::service] pub trait Ping { async fn ping(&self) -> u8; }
//! # struct Pong;
//! # impl Ping for Pong { async fn ping(&self) -> u8 { 1 } }
//! let router = prpc::Server::builder().add_service(PingServer::new(Pong)).build();
//! let request = prpc::Request::new("ping", prpc::Format::Json, "{}".into());
//! router.call("Ping", request).await?;
//!
//! let stats = router.stats();
//! let ping = stats.method("Ping", "ping").unwrap();
//! assert_eq!(ping.calls(), 1);
//! assert_eq!(ping.count(prpc::Code::Ok), 1);
//! assert!(ping.latency.quantile(0.99).is_some());
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::status::Code;
use crate::transport::Address;

/// Every status code, in the order stats keep them.
pub const CODES: [Code; 19] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
    Code::Application,
    Code::OutcomeUnknown,
];

/// Where `code` is counted in [`CODES`].
fn code_index(code: Code) -> usize {
    match code.as_u32() {
        value @ 0..=16 => value as usize,
        101 => 18,
        _ => 17,
    }
}

/// The upper bounds of the latency buckets, in nanoseconds: 10 µs to 10 s, then everything
/// above.
const BOUNDS_NANOS: [u64; 19] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The bucket upper bounds in seconds (the last bucket, above them all, has none): what a
/// [`HistogramSnapshot`]'s counts are counted under.
pub const BUCKET_BOUNDS: [f64; 19] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram of fixed buckets, updated with relaxed atomics.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; 20],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub(crate) fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NANOS.partition_point(|&bound| bound < nanos);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        HistogramSnapshot {
            count: counts.iter().sum(),
            counts,
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// A latency histogram as read: counts per bucket of [`BUCKET_BOUNDS`] (the last count is
/// above them all), their total, and the sum of every latency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Calls per bucket, not cumulative: `counts[i]` took at most `BUCKET_BOUNDS[i]` seconds
    /// and more than the bound before it; the last took more than 10 s.
    pub counts: Vec<u64>,
    /// Every call counted.
    pub count: u64,
    /// The time of every call counted, together.
    pub sum: Duration,
}

impl HistogramSnapshot {
    /// The latency under which a fraction `q` (0 to 1) of the calls finished, estimated within
    /// its bucket (linearly, from the bucket's lower bound); `None` without calls. Above the
    /// last bound, the last bound.
    ///
    /// ```
    /// use prpc::stats::HistogramSnapshot;
    /// let mut counts = vec![0; 20];
    /// counts[3] = 100; // 100 calls between 50 and 100 µs
    /// let snapshot = HistogramSnapshot { counts, count: 100, sum: Default::default() };
    /// let p50 = snapshot.quantile(0.5).unwrap();
    /// assert_eq!(p50.as_micros(), 75);
    /// ```
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).max(1.0);
        let mut seen = 0u64;
        for (index, &count) in self.counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            if (seen + count) as f64 >= rank {
                let Some(&upper) = BUCKET_BOUNDS.get(index) else {
                    return Some(Duration::from_secs_f64(BUCKET_BOUNDS[18]));
                };
                let lower = if index == 0 {
                    0.0
                } else {
                    BUCKET_BOUNDS[index - 1]
                };
                let within = (rank - seen as f64) / count as f64;
                return Some(Duration::from_secs_f64(lower + (upper - lower) * within));
            }
            seen += count;
        }
        Some(Duration::from_secs_f64(BUCKET_BOUNDS[18]))
    }

    /// The mean latency; `None` without calls.
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| self.sum / u32::try_from(self.count).unwrap_or(u32::MAX))
    }
}

/// The counters of one method.
#[derive(Debug, Default)]
pub(crate) struct MethodStats {
    in_flight: AtomicU64,
    codes: [AtomicU64; 19],
    latency: Histogram,
}

impl MethodStats {
    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn end(&self, code: Code, elapsed: Duration) {
        self.codes[code_index(code)].fetch_add(1, Ordering::Relaxed);
        self.latency.record(elapsed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One method's numbers, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodSnapshot {
    /// The service's name.
    pub service: String,
    /// The method's name; `""` counts calls to methods (or services) the server does not
    /// have.
    pub method: String,
    /// Calls answered, by code (codes never seen left out), in [`CODES`] order.
    pub codes: Vec<(Code, u64)>,
    /// Calls running now.
    pub in_flight: u64,
    /// How long answered calls took, from the read that brought the request (its arrival at
    /// the stack, for a request made by hand) to its answer (for a stream: to its first
    /// answer).
    pub latency: HistogramSnapshot,
}

impl MethodSnapshot {
    /// Calls answered, whatever their code.
    pub fn calls(&self) -> u64 {
        self.codes.iter().map(|(_, count)| count).sum()
    }

    /// Calls answered with `code`.
    pub fn count(&self, code: Code) -> u64 {
        self.codes
            .iter()
            .find(|(counted, _)| *counted == code)
            .map_or(0, |(_, count)| *count)
    }

    /// Calls answered with another code than `ok`.
    pub fn errors(&self) -> u64 {
        self.calls() - self.count(Code::Ok)
    }
}

/// The counters of one connection.
#[derive(Debug)]
pub(crate) struct ConnectionStats {
    peer: Option<Address>,
    opened: Instant,
    pub(crate) calls: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
}

/// One open connection's numbers, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSnapshot {
    /// The peer, where the transport knows it.
    pub peer: Option<Address>,
    /// How long it has been open.
    pub age: Duration,
    /// Calls and streams it opened.
    pub calls: u64,
    /// Bytes read from it.
    pub bytes_in: u64,
    /// Bytes written to it.
    pub bytes_out: u64,
}

/// The numbers of one server.
#[derive(Debug)]
pub(crate) struct ServerStats {
    started: Instant,
    /// (service, method) and its counters; the services' order.
    pub(crate) methods: Vec<(String, String, Arc<MethodStats>)>,
    connections: Mutex<Slab<Arc<ConnectionStats>>>,
    /// Connections ever opened.
    opened: AtomicU64,
    /// Bytes of connections closed already (the open ones count their own).
    closed_bytes_in: AtomicU64,
    closed_bytes_out: AtomicU64,
}

impl ServerStats {
    pub(crate) fn new(methods: impl IntoIterator<Item = (String, String)>) -> Self {
        ServerStats {
            started: Instant::now(),
            methods: methods
                .into_iter()
                .map(|(service, method)| (service, method, Arc::default()))
                .collect(),
            connections: Mutex::default(),
            opened: AtomicU64::new(0),
            closed_bytes_in: AtomicU64::new(0),
            closed_bytes_out: AtomicU64::new(0),
        }
    }

    /// Counts a connection until the guard drops.
    pub(crate) fn open(self: &Arc<Self>, peer: Option<Address>) -> ConnectionGuard {
        let counters = Arc::new(ConnectionStats {
            peer,
            opened: Instant::now(),
            calls: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        });
        self.opened.fetch_add(1, Ordering::Relaxed);
        let key = self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(counters.clone());
        ConnectionGuard {
            stats: self.clone(),
            key,
            counters,
        }
    }

    pub(crate) fn snapshot(
        &self,
        idempotency_entries: Option<usize>,
        memory_budget: usize,
        memory_budget_held: usize,
    ) -> ServerSnapshot {
        let methods = self
            .methods
            .iter()
            .map(|(service, method, counters)| MethodSnapshot {
                service: service.clone(),
                method: method.clone(),
                codes: CODES
                    .iter()
                    .zip(&counters.codes)
                    .map(|(code, count)| (*code, count.load(Ordering::Relaxed)))
                    .filter(|(_, count)| *count > 0)
                    .collect(),
                in_flight: counters.in_flight.load(Ordering::Relaxed),
                latency: counters.latency.snapshot(),
            })
            .collect();
        let now = Instant::now();
        let open = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        // Read under the lock, so that no connection is counted both open and closed.
        let (mut bytes_in, mut bytes_out) = (
            self.closed_bytes_in.load(Ordering::Relaxed),
            self.closed_bytes_out.load(Ordering::Relaxed),
        );
        let connections = open
            .iter()
            .map(|(_, connection)| ConnectionSnapshot {
                peer: connection.peer.clone(),
                age: now.duration_since(connection.opened),
                calls: connection.calls.load(Ordering::Relaxed),
                bytes_in: connection.bytes_in.load(Ordering::Relaxed),
                bytes_out: connection.bytes_out.load(Ordering::Relaxed),
            })
            .inspect(|connection| {
                bytes_in += connection.bytes_in;
                bytes_out += connection.bytes_out;
            })
            .collect();
        drop(open);
        ServerSnapshot {
            uptime: now.duration_since(self.started),
            methods,
            connections,
            connections_opened: self.opened.load(Ordering::Relaxed),
            bytes_in,
            bytes_out,
            idempotency_entries,
            memory_budget,
            memory_budget_held,
        }
    }
}

/// Keeps a connection in its server's stats while it is open.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    stats: Arc<ServerStats>,
    key: usize,
    pub(crate) counters: Arc<ConnectionStats>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self
            .stats
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.try_remove(self.key);
        let counters = &self.counters;
        self.stats
            .closed_bytes_in
            .fetch_add(counters.bytes_in.load(Ordering::Relaxed), Ordering::Relaxed);
        self.stats.closed_bytes_out.fetch_add(
            counters.bytes_out.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }
}

/// A server's numbers at one moment: from [`Router::stats`](crate::server::Router::stats).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerSnapshot {
    /// Since the server was built.
    pub uptime: Duration,
    /// Every method of every service (reflection's and health's too), then the calls to
    /// names the server does not have, under an empty method name. Empty when stats are off.
    pub methods: Vec<MethodSnapshot>,
    /// The connections open now, in no particular order.
    pub connections: Vec<ConnectionSnapshot>,
    /// Connections opened since the server was built.
    pub connections_opened: u64,
    /// Bytes read from every connection, open or closed, since the server was built.
    pub bytes_in: u64,
    /// Bytes written to every connection, open or closed, since the server was built.
    pub bytes_out: u64,
    /// Replies the idempotency store holds, when the store can tell (the in-memory one can;
    /// a shared store such as Redis is not counted).
    pub idempotency_entries: Option<usize>,
    /// The server's memory budget in bytes
    /// ([`Builder::memory_budget`](crate::server::Builder::memory_budget), as raised to hold
    /// one frame of `max_frame_size`).
    pub memory_budget: usize,
    /// Bytes of the server's memory budget
    /// ([`Builder::memory_budget`](crate::server::Builder::memory_budget)) held now: charged to
    /// large frames being read and to requests read and not answered yet (it may pass the
    /// budget by what connections read while it had room). Counted whether stats are on or
    /// off.
    pub memory_budget_held: usize,
}

impl ServerSnapshot {
    /// The numbers of one method.
    pub fn method(&self, service: &str, method: &str) -> Option<&MethodSnapshot> {
        self.methods
            .iter()
            .find(|snapshot| snapshot.service == service && snapshot.method == method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_their_buckets() {
        let histogram = Histogram::default();
        histogram.record(Duration::from_micros(5));
        histogram.record(Duration::from_micros(10));
        histogram.record(Duration::from_micros(11));
        histogram.record(Duration::from_secs(60));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 4);
        assert_eq!(snapshot.counts[0], 2, "up to and including 10 µs");
        assert_eq!(snapshot.counts[1], 1);
        assert_eq!(snapshot.counts[19], 1, "above 10 s");
        assert_eq!(snapshot.quantile(1.0), Some(Duration::from_secs(10)));
        assert!(snapshot.quantile(0.25).unwrap() <= Duration::from_micros(10));
    }

    #[test]
    fn every_code_has_its_own_counter() {
        let mut seen = [false; 19];
        for code in CODES {
            let index = code_index(code);
            assert!(!seen[index], "{code} shares a counter");
            seen[index] = true;
        }
    }
}
