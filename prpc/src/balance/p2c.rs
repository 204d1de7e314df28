//! [`P2c`]: the power of two random choices on a peak-EWMA cost, as Finagle, linkerd and
//! tower balance.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::discovery::Endpoint;

use super::load::{Load, Loads, now};
use super::members::uniform;
use super::rng::Rng;
use super::{Balancer, Pick, read, write};

/// Draws two endpoints at random and picks the one with the lower cost: its peak-EWMA
/// latency estimate times its calls in flight plus one, divided by its weight.
///
/// Two choices avoid both the herd a full scan causes (every caller rushing to the one
/// least loaded endpoint) and its O(n) cost, and take a slow or overloaded endpoint out of
/// rotation nearly as well (Mitzenmacher's "power of two choices"). The estimate is fed by
/// the caller through each endpoint's [`Load`] (whose docs say how it moves); an endpoint
/// never measured starts at the default latency, and every estimate decays toward 0 while
/// no call ends, with the decay's time constant. A pick is two random draws, two cost reads
/// and a read lock; loads are kept by instance id across updates.
///
/// ```
/// use prpc::balance::{Balancer, Outcome, P2c, Pick};
/// use prpc::discovery::Endpoint;
/// use std::time::Duration;
///
/// let balancer = P2c::with_seed(1)
///     .default_latency(Duration::from_millis(5))
///     .decay(Duration::from_secs(10));
/// balancer.update(&[Endpoint::new("10.0.0.7:7000")?, Endpoint::new("10.0.0.8:7000")?]);
/// let slow = balancer.load(0).unwrap();
/// slow.start().finish(Duration::from_secs(2), Outcome::Success);
/// assert_eq!(balancer.pick(&Pick::new()), Some(1));
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug)]
pub struct P2c {
    rng: Rng,
    default_latency: Duration,
    decay: Duration,
    set: RwLock<Loads>,
}

impl Default for P2c {
    fn default() -> Self {
        P2c::new()
    }
}

impl P2c {
    /// The latency an endpoint is assumed to have before its first call ends, unless
    /// [`default_latency`](P2c::default_latency) says otherwise.
    pub const DEFAULT_LATENCY: Duration = Duration::from_millis(1);
    /// The decay's time constant unless [`decay`](P2c::decay) says otherwise: Finagle's and
    /// linkerd's 10 s.
    pub const DEFAULT_DECAY: Duration = Duration::from_secs(10);

    /// A balancer drawing from each thread's own generator.
    pub fn new() -> Self {
        P2c {
            rng: Rng::default(),
            default_latency: Self::DEFAULT_LATENCY,
            decay: Self::DEFAULT_DECAY,
            set: RwLock::default(),
        }
    }

    /// A balancer drawing one sequence from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        P2c {
            rng: Rng::new(Some(seed)),
            ..P2c::new()
        }
    }

    /// With this latency for endpoints before their first call ends. Lower sends new
    /// endpoints more calls at once; higher ramps them up as the estimate decays.
    pub fn default_latency(mut self, latency: Duration) -> Self {
        self.default_latency = latency;
        self
    }

    /// With this time constant for the estimates' decay: after it, an estimate keeps
    /// 1/e (37 %) of its weight.
    pub fn decay(mut self, decay: Duration) -> Self {
        self.decay = decay;
        self
    }
}

impl Balancer for P2c {
    fn update(&self, endpoints: &[Endpoint]) {
        let set = read(&self.set).update(endpoints, self.default_latency, self.decay);
        *write(&self.set) = set;
    }

    fn pick(&self, pick: &Pick<'_>) -> Option<usize> {
        let set = read(&self.set);
        let eligible = &set.members.eligible;
        let first = uniform(&self.rng, eligible, |index| pick.skips(index))?;
        let Some(second) = uniform(&self.rng, eligible, |index| {
            index == first || pick.skips(index)
        }) else {
            return Some(first);
        };
        let now = now();
        let cost =
            |index: usize| set.loads[index].cost(now) / f64::from(set.members.weights[index]);
        if cost(second) < cost(first) {
            Some(second)
        } else {
            Some(first)
        }
    }

    fn load(&self, index: usize) -> Option<Arc<Load>> {
        read(&self.set).loads.get(index).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::Outcome;
    use crate::balance::tests::{endpoints, picks};

    const MS: Duration = Duration::from_millis(1);

    fn measured(latencies: &[Duration]) -> P2c {
        let balancer = P2c::with_seed(11);
        balancer.update(&endpoints(&vec![1; latencies.len()]));
        for (index, &latency) in latencies.iter().enumerate() {
            let load = balancer.load(index).unwrap();
            load.start().finish(latency, Outcome::Success);
        }
        balancer
    }

    #[test]
    fn avoids_a_slow_endpoint() {
        let mut latencies = vec![MS; 10];
        latencies[3] = 100 * MS;
        let balancer = measured(&latencies);
        let counts = picks(&balancer, &Pick::new(), 10_000);
        assert_eq!(counts[3], 0, "{counts:?}");
        // The others share the load: each is drawn in about a fifth of the picks.
        for (index, &count) in counts[..10].iter().enumerate() {
            assert!(index == 3 || count > 700, "{counts:?}");
        }
    }

    #[test]
    fn avoids_an_endpoint_with_calls_queued() {
        let balancer = measured(&[MS, MS, MS]);
        let queued: Vec<_> = (0..5).map(|_| balancer.load(0).unwrap().start()).collect();
        assert_eq!(picks(&balancer, &Pick::new(), 1_000)[0], 0);
        drop(queued);
    }

    #[test]
    fn avoids_an_endpoint_that_fails_fast() {
        let balancer = measured(&[MS, MS, MS]);
        let failing = balancer.load(1).unwrap();
        for _ in 0..3 {
            failing
                .start()
                .finish(Duration::from_micros(10), Outcome::Failure);
        }
        assert_eq!(picks(&balancer, &Pick::new(), 1_000)[1], 0);
    }

    #[test]
    fn weights_divide_the_cost_and_skips_are_respected() {
        let balancer = P2c::with_seed(4);
        assert_eq!(balancer.pick(&Pick::new()), None);
        balancer.update(&endpoints(&[1, 4, 0]));
        // Equal estimates: the weight 4 endpoint wins every comparison.
        let counts = picks(&balancer, &Pick::new(), 1_000);
        assert_eq!(&counts[..3], [0, 1_000, 0]);
        let skip = |index: usize| index == 1;
        assert_eq!(picks(&balancer, &Pick::new().skip(&skip), 100)[0], 100);
        let all = |_: usize| true;
        assert_eq!(balancer.pick(&Pick::new().skip(&all)), None);
    }
}
