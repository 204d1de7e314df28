//! The history behind the page's charts: calls per second and p99 latency, per method and
//! for the whole server, over the last minutes.
//!
//! The server's stats only count up, so a rate needs two readings. A sampler task reads the
//! stats every [`INTERVAL`] and keeps the difference between consecutive readings: the calls
//! answered in between (divided by the time, calls/s) and a histogram of just those calls,
//! whose 99th percentile is the interval's p99 (the per-bucket counts subtract; a p99 since
//! the server started would hide a slow minute behind hours of fast ones). [`KEPT`] points
//! are kept, so memory is bounded by the number of methods, which a server fixes when it is
//! built.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prpc::server::{Handler, Router};
use prpc::stats::{HistogramSnapshot, ServerSnapshot};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// How often the sampler reads the stats.
pub(super) const INTERVAL: Duration = Duration::from_secs(2);
/// Points kept: five minutes at [`INTERVAL`].
pub(super) const KEPT: usize = 150;
/// The span of time the charts show.
pub(super) const WINDOW: Duration = Duration::from_secs(INTERVAL.as_secs() * KEPT as u64);

/// Calls over one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Rate {
    pub(super) calls_per_second: f64,
    /// `None` when no call was answered in the interval.
    pub(super) p99: Option<Duration>,
}

/// The rates of one interval, ending at `at`.
#[derive(Debug, Clone)]
struct Point {
    at: Instant,
    total: Rate,
    /// In the order of the snapshot's methods.
    methods: Vec<Rate>,
}

/// The cumulative latency histograms of every method at one moment (their counts are the
/// calls answered).
#[derive(Debug)]
struct Reading {
    at: Instant,
    methods: Vec<(String, String, HistogramSnapshot)>,
}

impl Reading {
    fn of(at: Instant, snapshot: &ServerSnapshot) -> Self {
        let methods = snapshot
            .methods
            .iter()
            .map(|method| {
                (
                    method.service.clone(),
                    method.method.clone(),
                    method.latency.clone(),
                )
            })
            .collect();
        Reading { at, methods }
    }

    /// Whether `snapshot` counts the same methods, in the same order.
    fn matches(&self, snapshot: &ServerSnapshot) -> bool {
        self.methods.len() == snapshot.methods.len()
            && self
                .methods
                .iter()
                .zip(&snapshot.methods)
                .all(|((service, method, _), now)| *service == now.service && *method == now.method)
    }

    /// The rates from this reading to `snapshot`, taken at `at`; `None` if it counts other
    /// methods or no time passed.
    fn rates_to(&self, at: Instant, snapshot: &ServerSnapshot) -> Option<Point> {
        let seconds = at.checked_duration_since(self.at)?.as_secs_f64();
        if seconds <= 0.0 || !self.matches(snapshot) {
            return None;
        }
        let mut all = HistogramSnapshot::default();
        let methods = self
            .methods
            .iter()
            .zip(&snapshot.methods)
            .map(|((_, _, before), now)| {
                let interval = difference(&now.latency, before);
                add(&mut all, &interval);
                rate(&interval, seconds)
            })
            .collect();
        Some(Point {
            at,
            total: rate(&all, seconds),
            methods,
        })
    }
}

/// The calls of `now` that `before` had not counted yet.
fn difference(now: &HistogramSnapshot, before: &HistogramSnapshot) -> HistogramSnapshot {
    let counts: Vec<u64> = now
        .counts
        .iter()
        .enumerate()
        .map(|(bucket, count)| {
            count.saturating_sub(before.counts.get(bucket).copied().unwrap_or(0))
        })
        .collect();
    HistogramSnapshot {
        count: counts.iter().sum(),
        counts,
        sum: now.sum.saturating_sub(before.sum),
    }
}

/// Adds `other`'s calls to `into`.
fn add(into: &mut HistogramSnapshot, other: &HistogramSnapshot) {
    if into.counts.len() < other.counts.len() {
        into.counts.resize(other.counts.len(), 0);
    }
    for (total, count) in into.counts.iter_mut().zip(&other.counts) {
        *total += count;
    }
    into.count += other.count;
    into.sum += other.sum;
}

fn rate(interval: &HistogramSnapshot, seconds: f64) -> Rate {
    Rate {
        calls_per_second: interval.count as f64 / seconds,
        p99: interval.quantile(0.99),
    }
}

/// The last [`KEPT`] intervals of one server.
#[derive(Debug, Default)]
pub(super) struct History {
    last: Option<Reading>,
    points: VecDeque<Point>,
}

/// What the charts draw: for each interval its age at the moment of reading (oldest first),
/// the server's rates and each method's.
#[derive(Debug, Clone, Default)]
pub(super) struct Charts {
    /// The time the points cover, from the start of the oldest interval to now: the
    /// [`WINDOW`] once the history is full, less while the server is young.
    pub(super) span: Duration,
    pub(super) ages: Vec<Duration>,
    pub(super) total: Vec<Rate>,
    /// Per method, in the order of the snapshot's methods; empty when the history counts
    /// other methods than the snapshot.
    pub(super) methods: Vec<Vec<Rate>>,
}

impl History {
    /// Takes a reading of the stats; a point when there was one before.
    pub(super) fn record(&mut self, at: Instant, snapshot: &ServerSnapshot) {
        if let Some(last) = &self.last {
            match last.rates_to(at, snapshot) {
                Some(point) => {
                    if self.points.len() == KEPT {
                        self.points.pop_front();
                    }
                    self.points.push_back(point);
                }
                // Other methods than before (a server does not change them, but a history
                // must not mix two): start over.
                None if !last.matches(snapshot) => self.points.clear(),
                None => return,
            }
        }
        self.last = Some(Reading::of(at, snapshot));
    }

    /// The kept points, and one more from the last reading to `snapshot`, taken `now` (so a
    /// page shows the current interval too, and a new server has a chart at once).
    pub(super) fn charts(&self, now: Instant, snapshot: &ServerSnapshot) -> Charts {
        let live = self
            .last
            .as_ref()
            .filter(|last| now.saturating_duration_since(last.at) >= Duration::from_millis(200))
            .and_then(|last| last.rates_to(now, snapshot));
        let points: Vec<&Point> = self.points.iter().chain(live.as_ref()).collect();
        let aligned = self
            .last
            .as_ref()
            .is_some_and(|last| last.matches(snapshot));
        let methods = if aligned {
            (0..snapshot.methods.len())
                .map(|index| points.iter().map(|point| point.methods[index]).collect())
                .collect()
        } else {
            Vec::new()
        };
        let ages: Vec<Duration> = points
            .iter()
            .map(|point| now.saturating_duration_since(point.at))
            .collect();
        Charts {
            span: ages
                .first()
                .map_or(INTERVAL, |oldest| *oldest + INTERVAL)
                .min(WINDOW),
            ages,
            total: points.iter().map(|point| point.total).collect(),
            methods,
        }
    }
}

/// Starts the task that feeds `history` from `router`'s stats until `stop` is cancelled (the
/// page cancels it when dropped, and the task lets go of the router). Outside a tokio
/// runtime there is no task and the charts stay empty.
pub(super) fn spawn_sampler<H: Handler>(
    router: Router<H>,
    history: Arc<Mutex<History>>,
    stop: CancellationToken,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticks.tick() => {
                    let snapshot = router.stats();
                    history
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .record(Instant::now(), &snapshot);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use prpc::stats::MethodSnapshot;

    /// A snapshot of one method that answered `calls`, each `latency` long.
    fn snapshot(calls: u64, bucket: usize) -> ServerSnapshot {
        let mut counts = vec![0; 20];
        counts[bucket] = calls;
        let method = MethodSnapshot {
            service: "math.Arith".to_owned(),
            method: "add".to_owned(),
            codes: vec![(prpc::Code::Ok, calls)],
            in_flight: 0,
            latency: HistogramSnapshot {
                counts,
                count: calls,
                sum: Duration::ZERO,
            },
        };
        let mut snapshot = server_snapshot();
        snapshot.methods = vec![method];
        snapshot
    }

    fn server_snapshot() -> ServerSnapshot {
        // ServerSnapshot is non-exhaustive: take a real one and fill it in. A server is
        // built inside a runtime (its timer runs on one).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _inside = runtime.enter();
        prpc::Server::builder().build().stats()
    }

    #[test]
    fn rates_come_from_the_difference_of_two_readings() {
        let start = Instant::now();
        let mut history = History::default();
        history.record(start, &snapshot(100, 3));
        assert!(history.points.is_empty(), "one reading is no rate yet");
        history.record(start + Duration::from_secs(2), &snapshot(300, 3));
        let charts = history.charts(start + Duration::from_secs(2), &snapshot(300, 3));
        assert_eq!(charts.total.len(), 1);
        assert_eq!(charts.total[0].calls_per_second, 100.0);
        assert_eq!(charts.methods[0][0].calls_per_second, 100.0);
        let p99 = charts.total[0].p99.unwrap();
        assert!(p99 > Duration::from_micros(50) && p99 <= Duration::from_micros(100));
    }

    #[test]
    fn the_p99_is_the_intervals_own() {
        let start = Instant::now();
        let mut history = History::default();
        // A thousand fast calls, then ten slow ones (bucket 15: up to a second).
        history.record(start, &snapshot(1000, 3));
        let mut slow = snapshot(1000, 3);
        slow.methods[0].latency.counts[15] = 10;
        slow.methods[0].latency.count = 1010;
        history.record(start + Duration::from_secs(2), &slow);
        let rate = history.points[0].total;
        assert_eq!(rate.calls_per_second, 5.0);
        assert!(rate.p99.unwrap() > Duration::from_millis(500), "{rate:?}");
    }

    #[test]
    fn the_page_sees_the_current_interval_too() {
        let start = Instant::now();
        let mut history = History::default();
        history.record(start, &snapshot(0, 3));
        let charts = history.charts(start + Duration::from_secs(1), &snapshot(50, 3));
        assert_eq!(charts.total.len(), 1);
        assert_eq!(charts.total[0].calls_per_second, 50.0);
        assert_eq!(charts.ages, [Duration::ZERO]);
        assert_eq!(charts.span, INTERVAL);
    }

    #[test]
    fn memory_is_bounded() {
        let start = Instant::now();
        let mut history = History::default();
        for step in 0..(KEPT as u64 + 50) {
            history.record(start + INTERVAL * step as u32, &snapshot(step * 10, 3));
        }
        assert_eq!(history.points.len(), KEPT);
        let now = start + INTERVAL * (KEPT as u32 + 49);
        let charts = history.charts(now, &snapshot((KEPT as u64 + 49) * 10, 3));
        assert_eq!(charts.ages.len(), KEPT);
        assert!(charts.ages[0] < WINDOW);
        assert_eq!(charts.span, WINDOW);
    }

    #[test]
    fn other_methods_start_the_history_over() {
        let start = Instant::now();
        let mut history = History::default();
        history.record(start, &snapshot(0, 3));
        history.record(start + INTERVAL, &snapshot(10, 3));
        assert_eq!(history.points.len(), 1);
        history.record(start + INTERVAL * 2, &server_snapshot());
        assert!(history.points.is_empty());
    }
}
