//! The random numbers the balancers draw: each thread's own generator by default, or one
//! seeded sequence shared by the balancer's callers, so tests see the same picks every run.
//!
//! The thread's generator (fastrand's wyrand in a thread local) costs a few nanoseconds and
//! no shared write. The seeded one is the same wyrand step on an atomic state, advanced with
//! one `fetch_add`: lock-free, and deterministic when one thread picks, which is what seeds are
//! for.

use std::sync::atomic::{AtomicU64, Ordering};

/// wyrand's increment and mixing constant.
const INCREMENT: u64 = 0xa076_1d64_78bd_642f;
const MIX: u64 = 0xe703_7ed1_a0b4_28db;

#[derive(Default)]
pub(crate) enum Rng {
    #[default]
    Thread,
    Seeded(AtomicU64),
}

impl Rng {
    pub(crate) fn new(seed: Option<u64>) -> Self {
        match seed {
            Some(seed) => Rng::Seeded(AtomicU64::new(seed)),
            None => Rng::Thread,
        }
    }

    #[inline]
    pub(crate) fn next_u64(&self) -> u64 {
        match self {
            Rng::Thread => fastrand::u64(..),
            Rng::Seeded(state) => {
                let state = state
                    .fetch_add(INCREMENT, Ordering::Relaxed)
                    .wrapping_add(INCREMENT);
                let product = u128::from(state) * u128::from(state ^ MIX);
                ((product >> 64) as u64) ^ (product as u64)
            }
        }
    }

    /// A number in `0..bound` (0 when `bound` is 0), by the multiply-shift method: its bias,
    /// at most `bound / 2^64`, is far below anything a balancer could notice.
    #[inline]
    pub(crate) fn below(&self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// An index in `0..len`.
    #[inline]
    pub(crate) fn index(&self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rng::Thread => f.write_str("thread"),
            Rng::Seeded(_) => f.write_str("seeded"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sequences_repeat_and_stay_below_the_bound() {
        let (a, b) = (Rng::new(Some(7)), Rng::new(Some(7)));
        for _ in 0..1000 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        assert_eq!(a.below(0), 0);
        assert!(Rng::new(None).index(3) < 3);
    }
}
