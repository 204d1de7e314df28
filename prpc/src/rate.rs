//! Rates for token buckets: [`Rate`], which a server's rate limit layer
//! ([`RateLimit`](crate::server::RateLimit)) and a balanced client
//! ([`cluster::Builder::rate_limit`](crate::cluster::Builder::rate_limit)) are given.
//!
//! A bucket is one atomic word, updated by compare-and-swap: the time at which it would be
//! full again (the "theoretical arrival time" of the generic cell rate algorithm, which admits
//! exactly the calls a token bucket of the same rate and burst admits).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How fast a bucket refills and how many tokens it holds: a sustained rate and a burst.
///
/// ```
/// use std::time::Duration;
/// use prpc::rate::Rate;
///
/// // 100 calls a second, up to 20 at once after a quiet spell.
/// let rate = Rate::per_second(100).burst(20);
/// assert_eq!(rate.interval(), Duration::from_millis(10));
/// assert_eq!(rate.get_burst(), 20);
///
/// // One call a minute, none saved up.
/// let slow = Rate::every(Duration::from_secs(60)).burst(1);
/// assert_eq!(slow.get_burst(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Rate {
    /// Nanoseconds per token.
    interval: u64,
    burst: u32,
}

impl Rate {
    /// `tokens` a second, with a burst of one second's worth.
    ///
    /// # Panics
    ///
    /// If `tokens` is 0 (a bucket that never refills; for rates below one a second use
    /// [`Rate::every`]).
    pub fn per_second(tokens: u32) -> Rate {
        assert!(tokens > 0, "a rate of 0 tokens per second never refills");
        Rate {
            interval: (1_000_000_000 / u64::from(tokens)).max(1),
            burst: tokens,
        }
    }

    /// One token every `period`, with a burst of 1.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    pub fn every(period: Duration) -> Rate {
        assert!(!period.is_zero(), "a token every 0 s is no limit");
        Rate {
            interval: u64::try_from(period.as_nanos()).unwrap_or(u64::MAX),
            burst: 1,
        }
    }

    /// Tokens the bucket holds when full: how many calls pass at once after a quiet spell
    /// (at least 1).
    pub fn burst(mut self, burst: u32) -> Rate {
        self.burst = burst.max(1);
        self
    }

    /// The time one token takes to come back.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// Tokens the bucket holds when full.
    pub fn get_burst(&self) -> u32 {
        self.burst
    }

    /// How long a full bucket takes to fill, in nanoseconds.
    pub(crate) fn window(&self) -> u64 {
        self.interval.saturating_mul(u64::from(self.burst))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_second = 1e9 / self.interval as f64;
        write!(f, "{per_second:.3}/s with a burst of {}", self.burst)
    }
}

/// One token bucket, kept as the time (nanoseconds since the buckets' origin) at which it
/// would be full again were no more tokens taken.
pub(crate) struct Bucket {
    pub(crate) rate: Rate,
    full_at: AtomicU64,
}

impl Bucket {
    pub(crate) fn new(rate: Rate) -> Bucket {
        Bucket {
            rate,
            full_at: AtomicU64::new(0),
        }
    }

    /// Takes a token at `now`, or returns the nanoseconds until one is free.
    pub(crate) fn take(&self, now: u64) -> Result<(), u64> {
        let interval = self.rate.interval;
        // The bucket may fall at most one full bucket behind now.
        let limit = now.saturating_add(self.rate.window());
        let mut full_at = self.full_at.load(Ordering::Relaxed);
        loop {
            // A bucket full since before `now` holds no more than full.
            let taken = full_at.max(now).saturating_add(interval);
            if taken > limit {
                return Err(taken - limit);
            }
            // Relaxed: the word is the whole state, and publishes nothing else.
            match self.full_at.compare_exchange_weak(
                full_at,
                taken,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(current) => full_at = current,
            }
        }
    }

    /// Returns a token taken a moment ago (the word has only grown since, so it cannot fall
    /// below zero).
    pub(crate) fn give_back(&self) {
        self.full_at
            .fetch_sub(self.rate.interval, Ordering::Relaxed);
    }
}
