//! [`RoundRobin`]: each endpoint in turn, one shared counter.

use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::discovery::Endpoint;

use super::members::Members;
use super::{Balancer, Pick, read, write};

/// Picks the endpoints whose weight is not 0 in turn, in the order of the set.
///
/// A pick is one `fetch_add` on a shared counter under a read lock. A skipped endpoint's
/// turn goes to the next one not skipped. Across updates the turn follows the instance last
/// picked: the next pick goes to whatever follows it in the new set (if it left, the
/// position is kept). Picks start at the first endpoint.
///
/// ```
/// use prpc::balance::{Balancer, Pick, RoundRobin};
/// use prpc::discovery::Endpoint;
///
/// let balancer = RoundRobin::new();
/// balancer.update(&[
///     Endpoint::new("10.0.0.7:7000")?,
///     Endpoint::new("10.0.0.8:7000")?,
///     Endpoint::new("10.0.0.9:7000")?,
/// ]);
/// let skip = |index: usize| index == 1;
/// let picks: Vec<_> = (0..4).filter_map(|_| balancer.pick(&Pick::new().skip(&skip))).collect();
/// assert_eq!(picks, [0, 2, 2, 0]);
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
    turns: RwLock<Turns>,
}

#[derive(Debug, Default)]
struct Turns {
    members: Members,
    instances: Vec<Box<str>>,
}

impl RoundRobin {
    /// A balancer whose first pick is the first endpoint.
    pub fn new() -> Self {
        RoundRobin::default()
    }
}

impl Balancer for RoundRobin {
    fn update(&self, endpoints: &[Endpoint]) {
        let members = Members::new(endpoints);
        let mut turns = write(&self.turns);
        let old = &turns.members.eligible;
        if !old.is_empty() {
            let last = self.next.load(Ordering::Relaxed).wrapping_sub(1) % old.len();
            let instance = &turns.instances[old[last]];
            let follows = endpoints
                .iter()
                .position(|endpoint| *endpoint.instance == **instance)
                .and_then(|index| members.eligible.binary_search(&index).ok());
            if let Some(position) = follows {
                self.next.store(position + 1, Ordering::Relaxed);
            }
        }
        let instances = endpoints
            .iter()
            .map(|endpoint| endpoint.instance.as_str().into())
            .collect();
        *turns = Turns { members, instances };
    }

    fn pick(&self, pick: &Pick<'_>) -> Option<usize> {
        let turns = read(&self.turns);
        let eligible = &turns.members.eligible;
        if eligible.is_empty() {
            return None;
        }
        let mut at = self.next.fetch_add(1, Ordering::Relaxed) % eligible.len();
        for _ in 0..eligible.len() {
            let index = eligible[at];
            if !pick.skips(index) {
                return Some(index);
            }
            at += 1;
            if at == eligible.len() {
                at = 0;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::{endpoint, endpoints};

    fn sequence(balancer: &RoundRobin, n: usize) -> Vec<usize> {
        (0..n).filter_map(|_| balancer.pick(&Pick::new())).collect()
    }

    #[test]
    fn takes_turns_and_passes_over_zero_weights_and_skips() {
        let balancer = RoundRobin::new();
        assert_eq!(balancer.pick(&Pick::new()), None);
        balancer.update(&endpoints(&[1, 0, 5, 1]));
        assert_eq!(sequence(&balancer, 6), [0, 2, 3, 0, 2, 3]);
        let all = |_: usize| true;
        assert_eq!(balancer.pick(&Pick::new().skip(&all)), None);
    }

    #[test]
    fn the_turn_follows_the_instance_across_updates() {
        let balancer = RoundRobin::new();
        let (a, b, c, d) = (
            endpoint("10.0.0.1:7000", 1),
            endpoint("10.0.0.2:7000", 1),
            endpoint("10.0.0.3:7000", 1),
            endpoint("10.0.0.4:7000", 1),
        );
        balancer.update(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(sequence(&balancer, 2), [0, 1]); // a, b
        // d joins ahead of b in the new order; the next turn is still the one after b.
        balancer.update(&[a.clone(), d.clone(), b.clone(), c.clone()]);
        assert_eq!(sequence(&balancer, 4), [3, 0, 1, 2]); // c, a, d, b
        // b was picked last and leaves: the position is kept.
        balancer.update(&[a, c, d]);
        assert_eq!(sequence(&balancer, 3), [1, 2, 0]);
        balancer.update(&[]);
        assert_eq!(balancer.pick(&Pick::new()), None);
    }
}
