//! [`ConsistentHash`]: calls with one key go to one endpoint, and a change to the set moves
//! few keys.

use std::sync::RwLock;

use xxhash_rust::xxh64::xxh64;

use crate::discovery::Endpoint;

use super::members::Members;
use super::rng::Rng;
use super::{Balancer, Pick, read, write};

/// Consistent hashing on a ring of virtual nodes: a call goes to the endpoint owning the
/// first point at or after its key's hash, wrapping around.
///
/// A pick is a binary search over the ring; a skipped endpoint's keys go to the next point
/// owned by one not skipped, so they spread over the others as they would if it had left.
/// A call without a key gets a random point. Endpoints of weight 0 have no points; the other
/// weights do not change the number of points (a key's endpoint should not move when an
/// unrelated weight is tuned).
///
/// # The hash
///
/// Keys and points are hashed with XXH64 (seed 0; [`hash_key`](super::hash_key)), a frozen, documented
/// algorithm implemented in every language prpc's peers are written in (Go's
/// `github.com/cespare/xxhash/v2`, Java's `net.openhft:zero-allocation-hashing`, Python's
/// `xxhash`): a key maps to the same endpoint in every client process, whatever its Rust
/// version or language, given the same set and number of points. Virtual node `i` (from 0)
/// of an endpoint sits at `xxh64("{instance}#{i}")`: the instance id's bytes, `#`, and `i` in
/// decimal. Equal points (about one chance in 10^9 for a ring of 10^5) go to the endpoint
/// earlier in the set.
///
/// # Virtual nodes
///
/// [`DEFAULT_REPLICAS`](Self::DEFAULT_REPLICAS) is 160 per endpoint, Dubbo's figure, kept
/// because it measures well. Means over 20 sets of 10 endpoints and 100,000 keys
/// (`ring_figures` in this file's tests):
///
/// | points per endpoint | busiest endpoint's keys / fair share | spread (std dev / mean) | moved when one leaves | moved when one joins |
/// |---|---|---|---|---|
/// | 10 | 1.59 | 0.31 | 0.091 | 0.096 |
/// | 40 | 1.25 | 0.14 | 0.103 | 0.092 |
/// | 100 | 1.18 | 0.092 | 0.102 | 0.090 |
/// | **160** | **1.13** | **0.074** | **0.101** | **0.092** |
/// | 320 | 1.09 | 0.056 | 0.100 | 0.092 |
///
/// The ideal moves are 1/10 and 1/11 (0.091); on removal only the removed endpoint's keys
/// move. The spread falls as one over the square root of the points: doubling to 320 buys
/// 4 points of balance for twice the memory (12 bytes a point: 1.9 MB at 1,000 endpoints)
/// and update time. An update rebuilds the ring outside the lock (picks wait only for the
/// swap): 0.7 ms at 100 endpoints, 8 ms at 1,000 (`benches/README.md`).
///
/// ```
/// use prpc::balance::{Balancer, ConsistentHash, Pick};
/// use prpc::discovery::Endpoint;
///
/// let ring = ConsistentHash::new();
/// let endpoints: Vec<Endpoint> = (1..=5)
///     .map(|i| Endpoint::new(format!("10.0.0.{i}:7000")))
///     .collect::<Result<_, _>>()?;
/// ring.update(&endpoints);
/// let home = ring.pick(&Pick::new().key_bytes(b"order-1001")).unwrap();
///
/// // Another endpoint leaves: a key whose endpoint stayed does not move.
/// let others: Vec<Endpoint> = endpoints.iter().enumerate()
///     .filter(|&(i, _)| i != (home + 1) % 5)
///     .map(|(_, endpoint)| endpoint.clone())
///     .collect();
/// ring.update(&others);
/// let moved = ring.pick(&Pick::new().key_bytes(b"order-1001")).unwrap();
/// assert_eq!(others[moved].instance, endpoints[home].instance);
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug)]
pub struct ConsistentHash {
    replicas: u32,
    rng: Rng,
    ring: RwLock<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    /// The ring's points, ascending.
    points: Vec<u64>,
    /// `owners[k]`: the index of the endpoint whose point `points[k]` is.
    owners: Vec<u32>,
}

impl Default for ConsistentHash {
    fn default() -> Self {
        ConsistentHash::new()
    }
}

impl ConsistentHash {
    /// Virtual nodes per endpoint unless [`replicas`](ConsistentHash::replicas) says
    /// otherwise.
    pub const DEFAULT_REPLICAS: u32 = 160;

    /// A ring with [`DEFAULT_REPLICAS`](Self::DEFAULT_REPLICAS) points per endpoint; calls
    /// without a key take each thread's random generator.
    pub fn new() -> Self {
        ConsistentHash {
            replicas: Self::DEFAULT_REPLICAS,
            rng: Rng::default(),
            ring: RwLock::default(),
        }
    }

    /// A ring whose calls without a key draw their points from one sequence from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        ConsistentHash {
            rng: Rng::new(Some(seed)),
            ..ConsistentHash::new()
        }
    }

    /// With `replicas` points per endpoint (at least 1). Every client of a service must use
    /// the same number, or they will not agree on where keys go. Takes effect at the next
    /// [`update`](Balancer::update).
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas.max(1);
        self
    }
}

impl Balancer for ConsistentHash {
    fn update(&self, endpoints: &[Endpoint]) {
        let members = Members::new(endpoints);
        let replicas = self.replicas as usize;
        let mut nodes: Vec<(u64, u32)> =
            Vec::with_capacity(members.eligible.len().saturating_mul(replicas));
        let mut name = Vec::new();
        for &index in &members.eligible {
            // Endpoints past the 4 billionth have no points.
            let Ok(owner) = u32::try_from(index) else {
                break;
            };
            let instance = endpoints[index].instance.as_bytes();
            for replica in 0..self.replicas {
                name.clear();
                name.extend_from_slice(instance);
                name.push(b'#');
                push_decimal(&mut name, replica);
                nodes.push((xxh64(&name, 0), owner));
            }
        }
        nodes.sort_unstable();
        let ring = Ring {
            points: nodes.iter().map(|&(point, _)| point).collect(),
            owners: nodes.iter().map(|&(_, owner)| owner).collect(),
        };
        *write(&self.ring) = ring;
    }

    fn pick(&self, pick: &Pick<'_>) -> Option<usize> {
        let ring = read(&self.ring);
        let len = ring.points.len();
        if len == 0 {
            return None;
        }
        let key = pick.hashed_key().unwrap_or_else(|| self.rng.next_u64());
        let mut at = ring.points.partition_point(|&point| point < key);
        for _ in 0..len {
            if at == len {
                at = 0;
            }
            let owner = ring.owners[at] as usize;
            if !pick.skips(owner) {
                return Some(owner);
            }
            at += 1;
        }
        None
    }
}

/// Appends `value` in decimal, as `format!` would, without its cost.
fn push_decimal(out: &mut Vec<u8>, mut value: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::hash_key;
    use crate::balance::tests::endpoint;

    fn set(n: usize) -> Vec<Endpoint> {
        (0..n)
            .map(|i| endpoint(&format!("10.0.{}.{}:7000", i / 250, i % 250 + 1), 1))
            .collect()
    }

    /// Where each of `keys` keys goes, as instance ids.
    fn placement<'a>(ring: &ConsistentHash, set: &'a [Endpoint], keys: usize) -> Vec<&'a str> {
        ring.update(set);
        (0..keys)
            .map(|key| {
                let index = ring.pick(&Pick::new().key_bytes(format!("key-{key}").as_bytes()));
                set[index.unwrap()].instance.as_str()
            })
            .collect()
    }

    #[test]
    fn hash_is_xxh64_and_names_are_decimal() {
        // XXH64 reference values (xxhsum -H1).
        assert_eq!(hash_key(b"a"), 0xd24e_c4f1_a98c_6e5b);
        assert_eq!(hash_key(b"abc"), 0x44bc_2cf5_ad77_0999);
        for value in [0, 7, 10, 160, 4_294_967_295] {
            let mut out = b"x#".to_vec();
            push_decimal(&mut out, value);
            assert_eq!(out, format!("x#{value}").as_bytes());
        }
    }

    #[test]
    fn a_key_keeps_its_endpoint() {
        let ring = ConsistentHash::new();
        assert_eq!(ring.pick(&Pick::new().key(1)), None);
        let endpoints = set(10);
        let first = placement(&ring, &endpoints, 1000);
        // Again, from another ring built the same way (another process).
        assert_eq!(placement(&ConsistentHash::new(), &endpoints, 1000), first);
        // The input's order does not matter, only the instance ids.
        let mut reversed = endpoints.clone();
        reversed.reverse();
        assert_eq!(placement(&ring, &reversed, 1000), first);
    }

    #[test]
    fn adding_or_removing_one_of_ten_moves_about_a_tenth_of_keys() {
        let (n, keys) = (10, 10_000);
        let ring = ConsistentHash::new();
        let endpoints = set(n + 1);
        let before = placement(&ring, &endpoints[..n], keys);

        // Removal: only the removed endpoint's keys move.
        let removed = &endpoints[3].instance;
        let fewer: Vec<Endpoint> = endpoints[..n]
            .iter()
            .filter(|endpoint| endpoint.instance != *removed)
            .cloned()
            .collect();
        let after = placement(&ring, &fewer, keys);
        let mut moved = 0;
        for (old, new) in before.iter().zip(&after) {
            if old != new {
                assert_eq!(old, removed, "a key of another endpoint moved");
                moved += 1;
            } else {
                assert_ne!(old, removed);
            }
        }
        let fraction = moved as f64 / keys as f64;
        let ideal = 1.0 / n as f64;
        assert!(
            (0.5 * ideal..=1.5 * ideal).contains(&fraction),
            "{fraction}"
        );

        // Addition: only keys that go to the new endpoint move.
        let after = placement(&ring, &endpoints, keys);
        let added = &endpoints[n].instance;
        let moved = before.iter().zip(&after).filter(|(old, new)| old != new);
        let moved: Vec<_> = moved.map(|(_, new)| *new).collect();
        assert!(moved.iter().all(|new| new == added));
        let fraction = moved.len() as f64 / keys as f64;
        let ideal = 1.0 / (n + 1) as f64;
        assert!(
            (0.5 * ideal..=1.5 * ideal).contains(&fraction),
            "{fraction}"
        );
    }

    #[test]
    fn skipped_endpoints_hand_their_keys_to_the_others() {
        let ring = ConsistentHash::with_seed(5);
        ring.update(&set(4));
        let key = Pick::new().key_bytes(b"k");
        let home = ring.pick(&key).unwrap();
        let skip = |index: usize| index == home;
        let next = ring.pick(&key.skip(&skip)).unwrap();
        assert_ne!(next, home);
        assert_eq!(ring.pick(&key.skip(&skip)), Some(next));
        let all = |_: usize| true;
        assert_eq!(ring.pick(&key.skip(&all)), None);
        // Without a key: any endpoint.
        assert!(ring.pick(&Pick::new()).is_some_and(|index| index < 4));
        // Weight 0 has no points.
        let mut drained = set(2);
        drained[0].weight = 0;
        ring.update(&drained);
        assert!((0..100).all(|key| ring.pick(&Pick::new().key(key)) == Some(1)));
    }

    /// The figures in `ConsistentHash`'s docs: `cargo test -p prpc --release --lib ring_figures --
    /// --ignored --nocapture`. Means over 20 sets of 10 endpoints, 100,000 keys each.
    #[test]
    #[ignore = "prints the figures behind DEFAULT_REPLICAS"]
    fn ring_figures() {
        let (n, keys, sets) = (10, 100_000, 20);
        for replicas in [10, 40, 100, 160, 200, 320] {
            let ring = ConsistentHash::new().replicas(replicas);
            let (mut busiest, mut spread, mut removal, mut addition) = (0.0, 0.0, 0.0, 0.0);
            for set in 0..sets {
                let endpoints: Vec<Endpoint> = (0..=n)
                    .map(|i| endpoint(&format!("10.{set}.0.{}:7000", i + 1), 1))
                    .collect();
                let before = placement(&ring, &endpoints[..n], keys);
                let mut counts = std::collections::HashMap::<&str, f64>::new();
                for instance in &before {
                    *counts.entry(instance).or_default() += 1.0;
                }
                let fair = (keys / n) as f64;
                let max = counts.values().fold(0.0f64, |max, &count| max.max(count));
                let variance = counts.values().map(|c| (c - fair).powi(2)).sum::<f64>() / n as f64;
                busiest += max / fair;
                spread += variance.sqrt() / fair;
                let moved = |after: &[&str]| {
                    before.iter().zip(after).filter(|(a, b)| a != b).count() as f64 / keys as f64
                };
                removal += moved(&placement(&ring, &endpoints[1..n], keys));
                addition += moved(&placement(&ring, &endpoints, keys));
            }
            let sets = sets as f64;
            println!(
                "replicas {replicas}: busiest {:.2}x fair, spread {:.3}, removal moves {:.3}, addition moves {:.3}",
                busiest / sets,
                spread / sets,
                removal / sets,
                addition / sets,
            );
        }
    }
}
