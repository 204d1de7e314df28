//! [`Random`] and [`WeightedRandom`]: a fresh draw per call, no shared state to write.

use std::sync::RwLock;

use crate::discovery::Endpoint;

use super::members::{Members, uniform};
use super::rng::Rng;
use super::{Balancer, Pick, read, write};

/// Picks uniformly at random among the endpoints whose weight is not 0.
///
/// A pick costs one random draw and a read lock; with skipped endpoints it draws again, up to
/// 4 times, then counts the endpoints left and draws among them.
///
/// ```
/// use prpc::balance::{Balancer, Pick, Random};
/// use prpc::discovery::Endpoint;
///
/// let balancer = Random::with_seed(7); // the same picks every run
/// balancer.update(&[Endpoint::new("10.0.0.7:7000")?, Endpoint::new("10.0.0.8:7000")?]);
/// assert!(balancer.pick(&Pick::new()).is_some_and(|index| index < 2));
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug, Default)]
pub struct Random {
    rng: Rng,
    members: RwLock<Members>,
}

impl Random {
    /// A balancer drawing from each thread's own generator.
    pub fn new() -> Self {
        Random::default()
    }

    /// A balancer drawing one sequence from `seed`: the same picks in the same order every
    /// run, when one thread picks.
    pub fn with_seed(seed: u64) -> Self {
        Random {
            rng: Rng::new(Some(seed)),
            members: RwLock::default(),
        }
    }
}

impl Balancer for Random {
    fn update(&self, endpoints: &[Endpoint]) {
        *write(&self.members) = Members::new(endpoints);
    }

    fn pick(&self, pick: &Pick<'_>) -> Option<usize> {
        let members = read(&self.members);
        uniform(&self.rng, &members.eligible, |index| pick.skips(index))
    }
}

/// Picks at random, each endpoint with a chance in proportion to its weight.
///
/// Weights are summed in `u64`, so any set of `u32` weights is exact. A pick is one draw
/// and a binary search over the running sums (O(log n)); skipped endpoints are drawn again
/// up to 4 times, then the draw is made among the weights left.
///
/// ```
/// use prpc::balance::{Balancer, Pick, WeightedRandom};
/// use prpc::discovery::Endpoint;
///
/// let balancer = WeightedRandom::with_seed(7);
/// balancer.update(&[
///     Endpoint::new("10.0.0.7:7000")?.weight(3),
///     Endpoint::new("10.0.0.8:7000")?.weight(0), // drained: never picked
/// ]);
/// assert!((0..100).all(|_| balancer.pick(&Pick::new()) == Some(0)));
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug, Default)]
pub struct WeightedRandom {
    rng: Rng,
    wheel: RwLock<Wheel>,
}

/// The eligible endpoints with the running sums of their weights.
#[derive(Debug, Default)]
struct Wheel {
    members: Members,
    /// `sums[k]`: the weights of `members.eligible[..=k]` added up.
    sums: Vec<u64>,
}

impl WeightedRandom {
    /// A balancer drawing from each thread's own generator.
    pub fn new() -> Self {
        WeightedRandom::default()
    }

    /// A balancer drawing one sequence from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        WeightedRandom {
            rng: Rng::new(Some(seed)),
            wheel: RwLock::default(),
        }
    }
}

impl Balancer for WeightedRandom {
    fn update(&self, endpoints: &[Endpoint]) {
        let members = Members::new(endpoints);
        let sums = members
            .eligible
            .iter()
            .scan(0u64, |sum, &index| {
                *sum += u64::from(members.weights[index]);
                Some(*sum)
            })
            .collect();
        *write(&self.wheel) = Wheel { members, sums };
    }

    fn pick(&self, pick: &Pick<'_>) -> Option<usize> {
        let wheel = read(&self.wheel);
        let total = *wheel.sums.last()?;
        for _ in 0..4 {
            let point = self.rng.below(total);
            let at = wheel.sums.partition_point(|&sum| sum <= point);
            let index = *wheel.members.eligible.get(at)?;
            if !pick.skips(index) {
                return Some(index);
            }
        }
        // Most of the weight is skipped: draw among what is left.
        let weight = |index: usize| u64::from(wheel.members.weights[index]);
        let left: u64 = wheel
            .members
            .eligible
            .iter()
            .filter(|&&index| !pick.skips(index))
            .map(|&index| weight(index))
            .sum();
        if left == 0 {
            return None;
        }
        let mut point = self.rng.below(left);
        for &index in &wheel.members.eligible {
            if pick.skips(index) {
                continue;
            }
            if point < weight(index) {
                return Some(index);
            }
            point -= weight(index);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::{endpoints, picks};

    #[test]
    fn random_spreads_evenly_and_skips() {
        let balancer = Random::with_seed(1);
        assert_eq!(balancer.pick(&Pick::new()), None);
        balancer.update(&endpoints(&[1, 1, 1, 0]));
        let counts = picks(&balancer, &Pick::new(), 30_000);
        assert_eq!(counts[3], 0);
        for &count in &counts[..3] {
            assert!((9_000..11_000).contains(&count), "{counts:?}");
        }
        let skip = |index: usize| index == 1;
        let counts = picks(&balancer, &Pick::new().skip(&skip), 1_000);
        assert_eq!((counts[1], counts[0] + counts[2]), (0, 1_000));
        let all = |_: usize| true;
        assert_eq!(balancer.pick(&Pick::new().skip(&all)), None);
    }

    #[test]
    fn weighted_random_follows_weights() {
        let balancer = WeightedRandom::with_seed(42);
        assert_eq!(balancer.pick(&Pick::new()), None);
        balancer.update(&endpoints(&[1, 2, 0, 7]));
        let n = 100_000;
        let counts = picks(&balancer, &Pick::new(), n);
        assert_eq!(counts[2], 0);
        for (index, share) in [(0, 0.1), (1, 0.2), (3, 0.7)] {
            let seen = counts[index] as f64 / n as f64;
            assert!(
                (seen - share).abs() < 0.01,
                "{index}: {seen} against {share}"
            );
        }
        // Skipping the heaviest leaves the others in proportion 1:2.
        let skip = |index: usize| index == 3;
        let counts = picks(&balancer, &Pick::new().skip(&skip), 30_000);
        assert_eq!(counts[3], 0);
        let ratio = counts[1] as f64 / counts[0] as f64;
        assert!((1.8..2.2).contains(&ratio), "{counts:?}");
        let all = |_: usize| true;
        assert_eq!(balancer.pick(&Pick::new().skip(&all)), None);
    }

    #[test]
    fn huge_weights_do_not_overflow() {
        let balancer = WeightedRandom::with_seed(3);
        balancer.update(&endpoints(&[u32::MAX; 1000]));
        assert!(
            balancer
                .pick(&Pick::new())
                .is_some_and(|index| index < 1000)
        );
    }
}
