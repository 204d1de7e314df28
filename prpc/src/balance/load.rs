//! [`Load`]: what the load-aware balancers know of an endpoint, fed by the caller through
//! an [`InFlight`] guard per call.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::discovery::Endpoint;

use super::members::Members;

/// The largest latency estimate, in nanoseconds (about 17 minutes): failures double the
/// estimate, and a bound keeps it finite.
const MAX_LATENCY_NS: f64 = 1e12;

/// How a call ended, as far as a balancer cares.
///
/// ```
/// use prpc::balance::Outcome;
///
/// let outcome = if "ok".is_empty() { Outcome::Failure } else { Outcome::Success };
/// assert_eq!(outcome, Outcome::Success);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The endpoint answered: the latency is its own.
    Success,
    /// The call failed at or on the way to the endpoint (transport error, `unavailable`,
    /// `resource_exhausted`, an expired deadline). Errors the handler meant to return are
    /// successes here: the endpoint did its work.
    Failure,
}

/// The load of one endpoint: calls in flight and a latency estimate, which the load-aware
/// balancers ([`LeastActive`](super::LeastActive), [`P2c`](super::P2c)) read and the caller
/// feeds (see [`Balancer::load`](super::Balancer::load)).
///
/// The latency estimate is Finagle's peak EWMA, as linkerd and tower use it: a sample above
/// the estimate replaces it at once (the peak); one below pulls it down by an exponentially
/// weighted moving average whose weight grows with the time since the last sample; and
/// between samples the estimate decays toward 0 as it is read, so an endpoint that took no
/// calls for a while is tried again. A failed call counts as a sample of twice the larger of
/// its latency and the estimate, so an endpoint that fails fast is not taken for a fast one
/// (the estimate is bounded at about 17 minutes).
///
/// Everything is an atomic: starting and finishing a call take no lock, and a pick reads
/// without writing. The clock read at a pick is the kernel's coarse monotonic clock on Linux
/// (a few nanoseconds, ticking every 1 to 4 ms: plenty for a decay measured in seconds).
///
/// ```
/// use prpc::balance::{Balancer, LeastActive, Outcome};
/// use prpc::discovery::Endpoint;
/// use std::time::Duration;
///
/// let balancer = LeastActive::new();
/// balancer.update(&[Endpoint::new("10.0.0.7:7000")?]);
/// let load = balancer.load(0).unwrap();
///
/// let call = load.start();
/// assert_eq!(load.in_flight(), 1);
/// call.finish(Duration::from_millis(40), Outcome::Success);
/// assert_eq!(load.in_flight(), 0);
/// assert!(load.latency() > Duration::from_millis(39)); // a peak counts at once
///
/// drop(load.start()); // a call dropped unfinished (cancelled): no sample
/// assert_eq!(load.in_flight(), 0);
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug)]
pub struct Load {
    in_flight: AtomicU64,
    /// The estimate in nanoseconds, an `f64`'s bits.
    latency: AtomicU64,
    /// When the estimate was last set, by [`now`].
    updated: AtomicU64,
    /// The decay's time constant in nanoseconds.
    decay: f64,
}

impl Load {
    pub(crate) fn new(latency: Duration, decay: Duration) -> Self {
        Load {
            in_flight: AtomicU64::new(0),
            latency: AtomicU64::new(nanos(latency).to_bits()),
            updated: AtomicU64::new(now()),
            decay: nanos(decay).max(1.0),
        }
    }

    /// Counts a call going out; finish the guard when it ends.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            load: Some(Arc::clone(self)),
        }
    }

    /// How many calls are in flight.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The latency estimate now.
    pub fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_at(now()) as u64)
    }

    /// The estimated time to drain the work queued at the endpoint with one more call, in
    /// nanoseconds: the latency estimate times the calls in flight plus one.
    pub(crate) fn cost(&self, now: u64) -> f64 {
        self.latency_at(now) * (self.in_flight() + 1) as f64
    }

    fn latency_at(&self, now: u64) -> f64 {
        let latency = f64::from_bits(self.latency.load(Ordering::Relaxed));
        let elapsed = now.saturating_sub(self.updated.load(Ordering::Relaxed));
        if elapsed == 0 {
            latency
        } else {
            latency * (-(elapsed as f64) / self.decay).exp()
        }
    }

    fn observe(&self, latency: Duration, outcome: Outcome) {
        let now = now();
        let elapsed = now.saturating_sub(self.updated.load(Ordering::Relaxed)) as f64;
        let weight_of_old = (-elapsed / self.decay).exp();
        let latency = nanos(latency);
        let _ = self
            .latency
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let estimate = f64::from_bits(bits);
                let sample = match outcome {
                    Outcome::Success => latency,
                    Outcome::Failure => latency.max(estimate) * 2.0,
                };
                let next = if sample > estimate {
                    sample
                } else {
                    estimate * weight_of_old + sample * (1.0 - weight_of_old)
                };
                Some(next.min(MAX_LATENCY_NS).to_bits())
            });
        self.updated.fetch_max(now, Ordering::Relaxed);
    }
}

/// One call counted in flight on a [`Load`]: [`finish`](InFlight::finish) it with the
/// call's latency and outcome. Dropped unfinished (a cancelled call), it only stops counting.
///
/// ```
/// use prpc::balance::{Balancer, Outcome, P2c};
/// use prpc::discovery::Endpoint;
/// use std::time::{Duration, Instant};
///
/// let balancer = P2c::new();
/// balancer.update(&[Endpoint::new("10.0.0.7:7000")?]);
/// let started = Instant::now();
/// let call = balancer.load(0).unwrap().start();
/// // ... the call ...
/// call.finish(started.elapsed(), Outcome::Success);
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug)]
#[must_use = "a call counts as in flight until its guard is finished or dropped"]
pub struct InFlight {
    load: Option<Arc<Load>>,
}

impl InFlight {
    /// The call ended after `latency` with `outcome`.
    pub fn finish(mut self, latency: Duration, outcome: Outcome) {
        if let Some(load) = self.load.take() {
            load.observe(latency, outcome);
            load.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(load) = self.load.take() {
            load.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The set of a load-aware balancer: members and a load per endpoint, kept by instance id.
#[derive(Debug, Default)]
pub(crate) struct Loads {
    pub(crate) members: Members,
    pub(crate) loads: Vec<Arc<Load>>,
    instances: Vec<Box<str>>,
}

impl Loads {
    /// The set `endpoints`, with the loads of the instances in this one and a fresh
    /// `Load::new(latency, decay)` for the others. Built under a read lock and swapped in
    /// under the write lock, so picks wait only for the swap.
    pub(crate) fn update(
        &self,
        endpoints: &[Endpoint],
        latency: Duration,
        decay: Duration,
    ) -> Self {
        let known: HashMap<&str, &Arc<Load>> = self
            .instances
            .iter()
            .map(|instance| &**instance)
            .zip(&self.loads)
            .collect();
        let loads = endpoints
            .iter()
            .map(|endpoint| match known.get(endpoint.instance.as_str()) {
                Some(&load) => Arc::clone(load),
                None => Arc::new(Load::new(latency, decay)),
            })
            .collect();
        let instances = endpoints
            .iter()
            .map(|endpoint| endpoint.instance.as_str().into())
            .collect();
        Loads {
            members: Members::new(endpoints),
            loads,
            instances,
        }
    }
}

fn nanos(duration: Duration) -> f64 {
    duration.as_nanos() as f64
}

/// Nanoseconds on a monotonic clock, cheap to read: the kernel's coarse clock on Linux.
pub(crate) fn now() -> u64 {
    u64::try_from(crate::clock::monotonic_coarse().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn load() -> Arc<Load> {
        Arc::new(Load::new(MS, Duration::from_secs(10)))
    }

    #[test]
    fn peaks_count_at_once_and_lower_samples_pull_slowly() {
        let load = load();
        load.start().finish(100 * MS, Outcome::Success);
        let peak = load.latency();
        assert!(peak > 99 * MS && peak <= 100 * MS, "{peak:?}");
        // Right after the peak, a fast sample barely moves the estimate.
        load.start().finish(MS, Outcome::Success);
        assert!(load.latency() > 90 * MS);
    }

    #[test]
    fn failures_double_the_estimate_up_to_a_bound() {
        let load = load();
        load.start()
            .finish(Duration::from_micros(10), Outcome::Failure);
        assert!(load.latency() > 19 * MS / 10, "{:?}", load.latency());
        for _ in 0..100 {
            load.start().finish(Duration::ZERO, Outcome::Failure);
        }
        assert!(load.latency() <= Duration::from_nanos(MAX_LATENCY_NS as u64));
        assert!(load.cost(now()).is_finite());
    }

    #[test]
    fn the_estimate_decays_with_time() {
        let load = load();
        let later = now() + 10_000_000_000; // one time constant
        let decayed = load.latency_at(later);
        assert!(
            (decayed - 1e6 / std::f64::consts::E).abs() < 1e4,
            "{decayed}"
        );
        assert_eq!(load.cost(u64::MAX), 0.0);
    }

    #[test]
    fn in_flight_counts_started_calls_until_finished_or_dropped() {
        let load = load();
        let (a, b) = (load.start(), load.start());
        assert_eq!(load.in_flight(), 2);
        assert!(load.cost(0) >= 3.0 * 1e6 - 1.0);
        a.finish(MS, Outcome::Success);
        drop(b);
        assert_eq!(load.in_flight(), 0);
    }
}
