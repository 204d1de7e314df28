//! [`LeastActive`]: the endpoint with the fewest calls in flight.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::discovery::Endpoint;

use super::load::{Load, Loads};
use super::rng::Rng;
use super::{Balancer, Pick, read, write};

/// Picks the endpoint with the fewest calls in flight, as Dubbo's `leastactive` does; among
/// equals, one at random in proportion to their weights (uniformly when the weights are
/// equal).
///
/// The counts are the [`Load`]s the caller feeds ([`Balancer::load`], [`Load::start`]). A
/// pick reads every endpoint's count, twice when there is a tie: O(n) with no lock but a
/// read lock and no write to shared memory. Loads are kept by instance id across updates.
///
/// ```
/// use prpc::balance::{Balancer, LeastActive, Pick};
/// use prpc::discovery::Endpoint;
///
/// let balancer = LeastActive::with_seed(1);
/// balancer.update(&[Endpoint::new("10.0.0.7:7000")?, Endpoint::new("10.0.0.8:7000")?]);
/// let busy = balancer.load(0).unwrap().start();
/// assert_eq!(balancer.pick(&Pick::new()), Some(1));
/// drop(busy);
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug, Default)]
pub struct LeastActive {
    rng: Rng,
    set: RwLock<Loads>,
}

impl LeastActive {
    /// A balancer breaking ties with each thread's own generator.
    pub fn new() -> Self {
        LeastActive::default()
    }

    /// A balancer breaking ties with one sequence from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        LeastActive {
            rng: Rng::new(Some(seed)),
            set: RwLock::default(),
        }
    }
}

impl Balancer for LeastActive {
    fn update(&self, endpoints: &[Endpoint]) {
        // Only the count is read here; the latency estimate is kept for callers' stats.
        let latency = Duration::from_millis(1);
        let set = read(&self.set).update(endpoints, latency, Duration::from_secs(10));
        *write(&self.set) = set;
    }

    fn pick(&self, pick: &Pick<'_>) -> Option<usize> {
        let set = read(&self.set);
        let weight = |index: usize| u64::from(set.members.weights[index]);
        let mut fewest = u64::MAX;
        let mut first = None;
        let mut tied_weight = 0u64;
        for &index in &set.members.eligible {
            if pick.skips(index) {
                continue;
            }
            let in_flight = set.loads[index].in_flight();
            if in_flight < fewest {
                (fewest, first, tied_weight) = (in_flight, Some(index), weight(index));
            } else if in_flight == fewest {
                tied_weight += weight(index);
            }
        }
        let first = first?;
        if tied_weight == weight(first) {
            return Some(first);
        }
        let mut point = self.rng.below(tied_weight);
        for &index in &set.members.eligible {
            if pick.skips(index) || set.loads[index].in_flight() != fewest {
                continue;
            }
            if point < weight(index) {
                return Some(index);
            }
            point -= weight(index);
        }
        // The counts moved between the two passes.
        Some(first)
    }

    fn load(&self, index: usize) -> Option<Arc<Load>> {
        read(&self.set).loads.get(index).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::{endpoint, endpoints, picks};

    #[test]
    fn prefers_fewer_in_flight_and_spreads_ties() {
        let balancer = LeastActive::with_seed(9);
        assert_eq!(balancer.pick(&Pick::new()), None);
        balancer.update(&endpoints(&[1, 1, 1]));
        let load = |index| balancer.load(index).unwrap();
        let _busy = [load(0).start(), load(0).start(), load(1).start()];
        assert_eq!(picks(&balancer, &Pick::new(), 100)[2], 100);

        let _more = load(2).start(); // 2, 1, 1: a tie between 1 and 2
        let counts = picks(&balancer, &Pick::new(), 10_000);
        assert_eq!(counts[0], 0);
        assert!((4_500..5_500).contains(&counts[1]), "{counts:?}");

        let skip = |index: usize| index == 1;
        assert_eq!(picks(&balancer, &Pick::new().skip(&skip), 100)[2], 100);
        let all = |_: usize| true;
        assert_eq!(balancer.pick(&Pick::new().skip(&all)), None);
    }

    #[test]
    fn ties_follow_weights_and_zero_weights_take_nothing() {
        let balancer = LeastActive::with_seed(2);
        balancer.update(&endpoints(&[1, 3, 0]));
        let counts = picks(&balancer, &Pick::new(), 20_000);
        assert_eq!(counts[2], 0);
        let ratio = counts[1] as f64 / counts[0] as f64;
        assert!((2.7..3.3).contains(&ratio), "{counts:?}");
    }

    #[test]
    fn loads_are_kept_by_instance_across_updates() {
        let balancer = LeastActive::new();
        let (a, b) = (endpoint("10.0.0.1:7000", 1), endpoint("10.0.0.2:7000", 1));
        balancer.update(std::slice::from_ref(&b));
        let call = balancer.load(0).unwrap().start();
        balancer.update(&[a, b]);
        assert_eq!(balancer.load(1).unwrap().in_flight(), 1);
        assert_eq!(balancer.load(0).unwrap().in_flight(), 0);
        assert!(balancer.load(2).is_none());
        drop(call);
        assert_eq!(balancer.load(1).unwrap().in_flight(), 0);
    }
}
