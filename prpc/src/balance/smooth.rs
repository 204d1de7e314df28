//! [`SmoothWeightedRoundRobin`]: nginx's weighted round robin, which spreads a heavy
//! endpoint's turns out instead of giving them in a row.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::discovery::Endpoint;

use super::members::Members;
use super::{Balancer, Pick, lock};

/// nginx's smooth weighted round robin: weights 5, 1, 1 for a, b, c give a a b a c a a,
/// repeating.
///
/// Each endpoint has a current weight. A pick adds every endpoint's weight to its current
/// weight, takes the endpoint whose current weight is highest (the first of equals), and
/// takes the sum of the weights from it. Over a cycle of as many picks as the weights add up
/// to, each endpoint is picked as many times as its weight, never in longer runs than the
/// weights force.
///
/// The algorithm is sequential, so a pick holds a mutex while it walks the set: O(n), about
/// a nanosecond per endpoint (see `benches/README.md`). Skipped endpoints sit the pick out
/// (their current weights stand still), as nginx's tried peers do. Current weights are kept
/// by instance id across updates; a new instance starts at 0.
///
/// ```
/// use prpc::balance::{Balancer, Pick, SmoothWeightedRoundRobin};
/// use prpc::discovery::Endpoint;
///
/// let balancer = SmoothWeightedRoundRobin::new();
/// balancer.update(&[
///     Endpoint::new("10.0.0.1:7000")?.weight(5),
///     Endpoint::new("10.0.0.2:7000")?.weight(1),
///     Endpoint::new("10.0.0.3:7000")?.weight(1),
/// ]);
/// let picks: Vec<_> = (0..7).filter_map(|_| balancer.pick(&Pick::new())).collect();
/// assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug, Default)]
pub struct SmoothWeightedRoundRobin {
    peers: Mutex<Peers>,
}

#[derive(Debug, Default)]
struct Peers {
    peers: Vec<Peer>,
    instances: Vec<Box<str>>,
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    /// The endpoint's weight; 0 takes no load.
    weight: i64,
    current: i64,
}

impl SmoothWeightedRoundRobin {
    /// A balancer whose current weights all start at 0.
    pub fn new() -> Self {
        SmoothWeightedRoundRobin::default()
    }
}

impl Balancer for SmoothWeightedRoundRobin {
    fn update(&self, endpoints: &[Endpoint]) {
        let members = Members::new(endpoints);
        let mut state = lock(&self.peers);
        let carried: HashMap<&str, i64> = state
            .instances
            .iter()
            .zip(&state.peers)
            .map(|(instance, peer)| (&**instance, peer.current))
            .collect();
        let mut peers: Vec<Peer> = endpoints
            .iter()
            .zip(&members.weights)
            .map(|(endpoint, &weight)| Peer {
                weight: i64::from(weight),
                current: match weight {
                    0 => 0,
                    _ => carried
                        .get(endpoint.instance.as_str())
                        .copied()
                        .unwrap_or(0),
                },
            })
            .collect();
        // Picks keep the current weights' sum where it is, at 0 from a fresh start. An
        // instance that leaves takes its share with it; shifting every current weight by the
        // same amount brings the sum back near 0 (so the values stay bounded through any
        // churn) and changes no comparison between them.
        let weighted = peers.iter().filter(|peer| peer.weight > 0).count() as i64;
        if weighted > 0 {
            let sum = peers
                .iter()
                .fold(0i64, |sum, peer| sum.saturating_add(peer.current));
            let shift = sum / weighted;
            for peer in peers.iter_mut().filter(|peer| peer.weight > 0) {
                peer.current = peer.current.saturating_sub(shift);
            }
        }
        state.peers = peers;
        state.instances = endpoints
            .iter()
            .map(|endpoint| endpoint.instance.as_str().into())
            .collect();
    }

    fn pick(&self, pick: &Pick<'_>) -> Option<usize> {
        let mut state = lock(&self.peers);
        let mut best: Option<(usize, i64)> = None;
        let mut total = 0i64;
        for (index, peer) in state.peers.iter_mut().enumerate() {
            if peer.weight == 0 || pick.skips(index) {
                continue;
            }
            peer.current = peer.current.saturating_add(peer.weight);
            total = total.saturating_add(peer.weight);
            if best.is_none_or(|(_, current)| peer.current > current) {
                best = Some((index, peer.current));
            }
        }
        let (index, _) = best?;
        let peer = &mut state.peers[index];
        peer.current = peer.current.saturating_sub(total);
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::{endpoint, endpoints, picks};

    fn sequence(balancer: &impl Balancer, n: usize) -> Vec<usize> {
        (0..n).filter_map(|_| balancer.pick(&Pick::new())).collect()
    }

    /// nginx's algorithm as plainly as it can be written, on current weights by name.
    struct Reference(Vec<(String, i64, i64)>);

    impl Reference {
        fn update(&mut self, endpoints: &[Endpoint]) {
            let old = std::mem::take(&mut self.0);
            for endpoint in endpoints {
                let current = old
                    .iter()
                    .find(|(name, ..)| *name == endpoint.instance)
                    .map_or(0, |&(_, _, current)| current);
                let weight = i64::from(endpoint.weight);
                self.0.push((endpoint.instance.clone(), weight, current));
            }
        }

        fn pick(&mut self) -> usize {
            let total: i64 = self.0.iter().map(|peer| peer.1).sum();
            for peer in &mut self.0 {
                peer.2 += peer.1;
            }
            let mut best = 0;
            for (index, peer) in self.0.iter().enumerate() {
                if peer.2 > self.0[best].2 {
                    best = index;
                }
            }
            self.0[best].2 -= total;
            best
        }
    }

    #[test]
    fn nginx_sequence_repeats() {
        let balancer = SmoothWeightedRoundRobin::new();
        assert_eq!(balancer.pick(&Pick::new()), None);
        balancer.update(&endpoints(&[5, 1, 1]));
        let cycle = [0, 0, 1, 0, 2, 0, 0];
        assert_eq!(sequence(&balancer, 21), cycle.repeat(3));
    }

    #[test]
    fn state_is_kept_when_an_unrelated_endpoint_joins() {
        let (a, b, c) = (
            endpoint("10.0.0.1:7000", 5),
            endpoint("10.0.0.3:7000", 1),
            endpoint("10.0.0.4:7000", 1),
        );
        let balancer = SmoothWeightedRoundRobin::new();
        balancer.update(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(sequence(&balancer, 3), [0, 0, 1]); // a a b

        // A drained endpoint joins, sorted between a and b: the cycle goes on where it was.
        let drained = endpoint("10.0.0.2:7000", 0);
        balancer.update(&[a.clone(), drained, b.clone(), c.clone()]);
        assert_eq!(sequence(&balancer, 4), [0, 3, 0, 0]); // a c a a

        // A weighted one joins mid-cycle: the picks are nginx's with the current weights
        // carried over, not those of a fresh start.
        let mut reference = Reference(Vec::new());
        let fresh = SmoothWeightedRoundRobin::new();
        let three = [a.clone(), b.clone(), c.clone()];
        reference.update(&three);
        balancer.update(&three);
        fresh.update(&three);
        for _ in 0..2 {
            assert_eq!(balancer.pick(&Pick::new()), Some(reference.pick()));
        }
        let joined = [a, endpoint("10.0.0.2:7000", 2), b, c];
        reference.update(&joined);
        balancer.update(&joined);
        fresh.update(&joined);
        let expected: Vec<usize> = (0..18).map(|_| reference.pick()).collect();
        assert_eq!(sequence(&balancer, 18), expected);
        assert_ne!(sequence(&fresh, 18), expected);
    }

    #[test]
    fn shares_follow_weights_with_skips_and_zero_weights() {
        let balancer = SmoothWeightedRoundRobin::new();
        balancer.update(&endpoints(&[3, 0, 1, 2]));
        let counts = picks(&balancer, &Pick::new(), 600);
        assert_eq!(&counts[..4], [300, 0, 100, 200]);
        let skip = |index: usize| index == 0;
        let counts = picks(&balancer, &Pick::new().skip(&skip), 300);
        assert_eq!(&counts[..4], [0, 0, 100, 200]);
        let all = |_: usize| true;
        assert_eq!(balancer.pick(&Pick::new().skip(&all)), None);
        // Every weight 0: each counts as 1.
        balancer.update(&endpoints(&[0, 0]));
        assert_eq!(sequence(&balancer, 4), [0, 1, 0, 1]);
    }

    #[test]
    fn huge_weights_and_churn_stay_exact() {
        let balancer = SmoothWeightedRoundRobin::new();
        let mut set = endpoints(&[u32::MAX, u32::MAX - 1, 1, 0]);
        balancer.update(&set);
        for round in 0..50 {
            sequence(&balancer, 7);
            set.rotate_left(1);
            set[3].weight = round;
            balancer.update(&set[..3 + round as usize % 2]);
        }
        let counts = picks(&balancer, &Pick::new(), 1000);
        assert_eq!(counts.iter().sum::<usize>(), 1000);
    }
}
