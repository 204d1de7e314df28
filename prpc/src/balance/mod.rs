//! Which endpoint takes a call: load balancing algorithms over a set of endpoints, pure and
//! free of I/O.
//!
//! A [`Balancer`] is given the current endpoints with [`update`](Balancer::update) whenever
//! discovery publishes a new [`Snapshot`](crate::discovery::Snapshot), and asked for one of
//! them with [`pick`](Balancer::pick) for each call. A pick is an index into the slice last
//! given to `update`, or `None` when no endpoint may take the call (the set is empty, or every
//! endpoint is skipped). Both take `&self`: a balancer is shared by every task of a client, and
//! picks take no exclusive lock except where the algorithm itself is sequential (smooth
//! weighted round robin).
//!
//! | algorithm | type | name | state kept across updates |
//! |---|---|---|---|
//! | uniform random | [`Random`] | `random` | none |
//! | random in proportion to weight | [`WeightedRandom`] | `weighted_random` | none |
//! | round robin | [`RoundRobin`] | `round_robin` | the position, by instance id |
//! | nginx's smooth weighted round robin | [`SmoothWeightedRoundRobin`] | `smooth_weighted_round_robin` | current weights, by instance id |
//! | consistent hashing, virtual nodes | [`ConsistentHash`] | `consistent_hash` | none (the ring is a function of the set) |
//! | fewest calls in flight | [`LeastActive`] | `least_active` | [`Load`]s, by instance id |
//! | power of two choices, peak EWMA | [`P2c`] | `p2c` | [`Load`]s, by instance id |
//!
//! Configuration names one by its [`Algorithm`] (`FromStr` and serde); code may use a type
//! directly, generic over [`Balancer`] (monomorphised), or boxed as a [`BoxBalancer`].
//!
//! # Weights
//!
//! An endpoint's [`weight`](crate::discovery::Endpoint::weight) is its share of the load
//! relative to the others: the weighted algorithms (weighted random, smooth weighted round
//! robin) split calls in that proportion, least active breaks ties in it and p2c divides a
//! cost by it. Every algorithm gives an endpoint of weight 0 no call, which is how an
//! instance is drained. When *every* endpoint of the set has weight 0, the set is balanced as
//! if each had weight 1: a registry misconfigured that way should not take a whole service
//! down. That rule looks at the whole set given to `update`, not at what a pick skips, so a
//! drained endpoint still takes nothing while its weighted peers are all skipped.
//!
//! # Skipping and load
//!
//! A [`Pick`] carries what the caller knows about one call: its hash key for
//! [`ConsistentHash`] ([`hash_key`] hashes a key's bytes) and which endpoints to pass over
//! (those whose circuit breaker is open, those a failover already tried). The load-aware
//! balancers ([`LeastActive`], [`P2c`]) keep a [`Load`] per endpoint, which the caller feeds:
//! [`Load::start`] when a call goes out, [`InFlight::finish`] with its latency and
//! [`Outcome`] when it ends.
//!
//! ```
//! # #[cfg(feature = "cluster")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use prpc::balance::{Algorithm, Balancer, Outcome, Pick};
//! use prpc::discovery::Endpoint;
//! use std::time::Duration;
//!
//! let endpoints = vec![
//!     Endpoint::new("10.0.0.7:7000")?,
//!     Endpoint::new("10.0.0.8:7000")?,
//! ];
//! let balancer = "p2c".parse::<Algorithm>()?.build();
//! balancer.update(&endpoints);
//!
//! let index = balancer.pick(&Pick::new()).expect("two endpoints");
//! let in_flight = balancer.load(index).map(|load| load.start());
//! // ... the call to endpoints[index] ...
//! if let Some(in_flight) = in_flight {
//!     in_flight.finish(Duration::from_micros(250), Outcome::Success);
//! }
//!
//! // Skip the endpoint just tried, as a failover would.
//! let tried = |candidate: usize| candidate == index;
//! assert_eq!(balancer.pick(&Pick::new().skip(&tried)), Some(1 - index));
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "cluster"))]
//! # fn main() {}
//! ```
//!
//! # Feature
//!
//! The algorithms need the `cluster` feature (as does [`cluster`](crate::cluster), which uses
//! them). [`HashKey`] and [`hash_key`] are always there: a generated client keys its calls
//! with `#[prpc(hash_key = "...")]` either way.

mod key;

pub use key::{HashKey, hash_key};

crate::cfg_cluster! {
mod algorithm;
mod hash;
mod least_active;
mod load;
mod members;
mod p2c;
mod random;
mod rng;
mod round_robin;
mod smooth;

use std::fmt;
use std::sync::Arc;

use crate::discovery::Endpoint;

pub use algorithm::{Algorithm, ParseAlgorithmError};
pub use hash::ConsistentHash;
pub use least_active::LeastActive;
pub use load::{InFlight, Load, Outcome};
pub use p2c::P2c;
pub use random::{Random, WeightedRandom};
pub use round_robin::RoundRobin;
pub use smooth::SmoothWeightedRoundRobin;

/// A load balancing algorithm: picks one endpoint of a set for each call.
///
/// Implementations are shared by many tasks at once (`&self` everywhere), never panic, and
/// keep what state they have across [`update`](Balancer::update)s by instance id.
///
/// The index a pick returns refers to the slice most recently given to `update`. A caller
/// that updates while other tasks pick keeps its own view of the set in step with the
/// balancer's: it swaps its endpoint list and calls `update` under one lock of its own, or
/// checks the index against the list it holds.
///
/// ```
/// use prpc::balance::{Balancer, Pick, RoundRobin};
/// use prpc::discovery::Endpoint;
///
/// let balancer = RoundRobin::new();
/// assert_eq!(balancer.pick(&Pick::new()), None); // nothing to pick from yet
/// balancer.update(&[Endpoint::new("10.0.0.7:7000")?, Endpoint::new("10.0.0.8:7000")?]);
/// let picks: Vec<_> = (0..4).filter_map(|_| balancer.pick(&Pick::new())).collect();
/// assert_eq!(picks, [0, 1, 0, 1]);
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
pub trait Balancer: Send + Sync + 'static {
    /// Replaces the set of endpoints picks choose from.
    fn update(&self, endpoints: &[Endpoint]);

    /// The index of the endpoint to take a call, in the slice last given to
    /// [`update`](Balancer::update); `None` if that set is empty or every endpoint that may
    /// take load is skipped.
    fn pick(&self, pick: &Pick<'_>) -> Option<usize>;

    /// The load this balancer tracks for the endpoint at `index`, for the load-aware
    /// algorithms ([`LeastActive`], [`P2c`]); `None` for the others and out of range.
    ///
    /// A load belongs to an instance: it is the same `Arc` across updates for as long as the
    /// instance stays in the set, so a caller may fetch each endpoint's load once per update
    /// and keep it beside that endpoint's connection.
    fn load(&self, index: usize) -> Option<Arc<Load>> {
        let _ = index;
        None
    }
}

/// A balancer behind a box, chosen at run time (see [`Algorithm::build`]).
pub type BoxBalancer = Box<dyn Balancer>;

impl<B: Balancer + ?Sized> Balancer for Box<B> {
    fn update(&self, endpoints: &[Endpoint]) {
        (**self).update(endpoints)
    }

    fn pick(&self, pick: &Pick<'_>) -> Option<usize> {
        (**self).pick(pick)
    }

    fn load(&self, index: usize) -> Option<Arc<Load>> {
        (**self).load(index)
    }
}

impl<B: Balancer + ?Sized> Balancer for Arc<B> {
    fn update(&self, endpoints: &[Endpoint]) {
        (**self).update(endpoints)
    }

    fn pick(&self, pick: &Pick<'_>) -> Option<usize> {
        (**self).pick(pick)
    }

    fn load(&self, index: usize) -> Option<Arc<Load>> {
        (**self).load(index)
    }
}

/// What a caller knows about one call when it asks for an endpoint: the call's hash key and
/// which endpoints to pass over.
///
/// The key matters only to [`ConsistentHash`] (calls with one key go to one endpoint); the
/// others ignore it. `skip` is asked about candidate indices, and an endpoint it answers
/// `true` for is not picked; balancers that scan the whole set (smooth weighted round robin,
/// least active) ask about every endpoint, the others only about the candidates they draw,
/// so a cheap predicate (a bit set, a short list) keeps picks cheap.
///
/// ```
/// use prpc::balance::{Balancer, ConsistentHash, Pick};
/// use prpc::discovery::Endpoint;
///
/// let ring = ConsistentHash::new();
/// ring.update(&[Endpoint::new("10.0.0.7:7000")?, Endpoint::new("10.0.0.8:7000")?]);
/// let first = ring.pick(&Pick::new().key_bytes(b"user-42"));
/// assert_eq!(ring.pick(&Pick::new().key_bytes(b"user-42")), first);
///
/// let open_breakers = [first.unwrap()];
/// let skip = |index: usize| open_breakers.contains(&index);
/// let other = ring.pick(&Pick::new().key_bytes(b"user-42").skip(&skip));
/// assert!(other.is_some() && other != first);
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Clone, Copy, Default)]
pub struct Pick<'a> {
    key: Option<u64>,
    skip: Option<&'a dyn Fn(usize) -> bool>,
}

impl<'a> Pick<'a> {
    /// A pick with no key that skips nothing.
    pub fn new() -> Self {
        Pick::default()
    }

    /// With this hash of the call's key (see [`hash_key`]).
    pub fn key(mut self, hash: u64) -> Self {
        self.key = Some(hash);
        self
    }

    /// With the key whose bytes are `key`, hashed by [`hash_key`].
    pub fn key_bytes(self, key: &[u8]) -> Self {
        self.key(hash_key(key))
    }

    /// Passing over every endpoint index for which `skip` answers `true`.
    pub fn skip(mut self, skip: &'a dyn Fn(usize) -> bool) -> Self {
        self.skip = Some(skip);
        self
    }

    /// The call's key hash, if it has one.
    pub fn hashed_key(&self) -> Option<u64> {
        self.key
    }

    /// Whether the endpoint at `index` is to be passed over.
    #[inline]
    pub fn skips(&self, index: usize) -> bool {
        match self.skip {
            Some(skip) => skip(index),
            None => false,
        }
    }
}

impl fmt::Debug for Pick<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pick")
            .field("key", &self.key)
            .field("skip", &self.skip.is_some())
            .finish()
    }
}

/// A lock's contents even if a panic elsewhere poisoned it: balancer state is valid between
/// any two statements, and a pick must not panic because a caller's `skip` did.
fn read<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock<T>(lock: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Endpoints `10.0.0.{i}:7000` with these weights, sorted by instance id as a snapshot's
    /// are when there are at most 10.
    pub(crate) fn endpoints(weights: &[u32]) -> Vec<Endpoint> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| endpoint(&format!("10.0.0.{i}:7000"), weight))
            .collect()
    }

    pub(crate) fn endpoint(address: &str, weight: u32) -> Endpoint {
        Endpoint::new(address).unwrap().weight(weight)
    }

    /// How often each index was picked in `n` picks (at least 16 counters).
    pub(crate) fn picks(balancer: &impl Balancer, pick: &Pick<'_>, n: usize) -> Vec<usize> {
        let mut counts = vec![0; 16];
        for _ in 0..n {
            if let Some(index) = balancer.pick(pick) {
                if index >= counts.len() {
                    counts.resize(index + 1, 0);
                }
                counts[index] += 1;
            }
        }
        counts
    }
}
}
