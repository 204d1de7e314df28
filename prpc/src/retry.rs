//! Retries: when a failed call is sent again, and how long to wait between attempts.
//!
//! A [`RetryPolicy`] is plain data a call carries in its options (attempts, a per-attempt
//! timeout, backoff); the [`Retry`](crate::client::Retry) layer, over any
//! [`Channel`](crate::Channel), reads it and sends the call again through the channel below
//! it. A [`Client`](crate::Client) is a retry layer over a [`Link`](crate::client::Link); a
//! balanced client puts the balancer between the two.
//!
//! A retried call keeps its request id and raises its attempt number. A call to a method not
//! marked idempotent also carries the dedupe flag, so the server (every prpc server dedupes
//! flagged calls, see [`idempotency`](crate::idempotency)) runs it once and answers every
//! attempt with the one reply; calls to idempotent methods go without it and may run once per
//! attempt.
//!
//! Which calls are retried:
//! - a call whose [`CallOptions`](crate::CallOptions) set a policy, with that policy;
//! - otherwise, every call of a client built with [`retry`](crate::client::Builder::retry);
//! - otherwise, calls to methods marked idempotent (`#[prpc(idempotent)]`), with
//!   [`RetryPolicy::default`], since running those twice is harmless;
//! - no other call. Exactly-once for other methods rests on the server's dedupe store, which a
//!   client cannot see: a user who knows the servers share one (Redis behind a balancer, or a
//!   single server) turns retries on.
//!
//! Only failures that may be transient are retried: an attempt that timed out, a connection
//! that was lost or could not be opened, and the statuses `unavailable` and
//! `resource_exhausted`. Application errors and every other status are final. The call's
//! total timeout bounds every attempt and every backoff.

use std::time::Duration;

use crate::error::{Closed, Error};
use crate::status::Code;

/// The status metadata key of a refusal's wait: how many milliseconds (ASCII decimal, rounded
/// up) until the server expects to take the call (a rate limit's bucket has a token again).
/// A `resource_exhausted` answer may carry it; the retry layer then waits at least that long
/// before the next attempt ([`RetryPolicy::wait_before`]).
///
/// ```
/// use prpc::{Code, Error, Status, Metadata};
/// use prpc::retry::{RETRY_AFTER_MS, RetryPolicy};
/// use std::time::Duration;
///
/// let mut metadata = Metadata::new();
/// metadata.insert(RETRY_AFTER_MS, "250");
/// let refusal = Error::Status(Status::new(Code::ResourceExhausted, "slow down").with_metadata(metadata));
/// let policy = RetryPolicy::new(3).backoff(Duration::from_millis(10), Duration::from_millis(10)).jitter(false);
/// assert_eq!(policy.wait_before(1, &refusal), Duration::from_millis(250));
/// ```
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// A channel-wide bound on retries, as Finagle's retry budget has it: retries are at most a
/// fraction of calls, plus a small reserve for bursts, so that retrying (and failing over)
/// does not multiply the load on a service that is already failing.
///
/// Each call that may be retried deposits `ratio` of a token (0.2 by default: retries up to
/// a fifth of calls); the budget also refills by `min_per_second` tokens a second (10), so a
/// client with little traffic may still retry; it holds at most `reserve` tokens (100, which
/// it starts with: enough for the calls in flight on an endpoint that dies under load). Each
/// retry takes one token; a call finds the budget empty and gets no retry.
///
/// ```
/// use prpc::retry::RetryBudget;
///
/// let budget = RetryBudget::new(0.2, 2, 0);
/// assert!(budget.try_retry());
/// assert!(budget.try_retry());
/// assert!(!budget.try_retry()); // the reserve is spent
/// for _ in 0..5 {
///     budget.deposit(); // five calls: one retry's worth
/// }
/// assert!(budget.try_retry());
/// assert!(!budget.try_retry());
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    state: std::sync::Mutex<(f64, tokio::time::Instant)>,
    ratio: f64,
    reserve: f64,
    min_per_second: f64,
}

impl Default for RetryBudget {
    /// Finagle's figures: retries up to 20 % of calls, 10 a second at least, a reserve of 100.
    fn default() -> Self {
        RetryBudget::new(0.2, 100, 10)
    }
}

impl RetryBudget {
    /// A budget that gives `ratio` (0 to 1) of a retry per call and `min_per_second` retries
    /// a second, holding at most `reserve` (which it starts with).
    pub fn new(ratio: f64, reserve: u32, min_per_second: u32) -> Self {
        RetryBudget {
            state: std::sync::Mutex::new((f64::from(reserve), tokio::time::Instant::now())),
            ratio: ratio.clamp(0.0, 1.0),
            reserve: f64::from(reserve),
            min_per_second: f64::from(min_per_second),
        }
    }

    /// A call that may be retried was made: it pays into the budget.
    pub fn deposit(&self) {
        self.update(|tokens| (tokens + self.ratio, ()));
    }

    /// Takes a token for a retry; `false` (and nothing taken) if the budget is spent.
    pub fn try_retry(&self) -> bool {
        self.update(|tokens| {
            if tokens >= 1.0 {
                (tokens - 1.0, true)
            } else {
                (tokens, false)
            }
        })
    }

    fn update<T>(&self, change: impl FnOnce(f64) -> (f64, T)) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = tokio::time::Instant::now();
        let refill = now.duration_since(state.1).as_secs_f64() * self.min_per_second;
        let (tokens, answer) = change((state.0 + refill).min(self.reserve));
        *state = (tokens.min(self.reserve), now);
        answer
    }
}

/// How a call is retried.
///
/// ```
/// use std::time::Duration;
/// use prpc::retry::RetryPolicy;
/// let policy = RetryPolicy::new(5)
///     .attempt_timeout(Duration::from_millis(200))
///     .backoff(Duration::from_millis(10), Duration::from_millis(500));
/// assert_eq!(policy.max_attempts(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[must_use]
pub struct RetryPolicy {
    max_attempts: u32,
    attempt_timeout: Option<Duration>,
    initial_backoff: Duration,
    max_backoff: Duration,
    multiplier: f64,
    jitter: bool,
}

impl Default for RetryPolicy {
    /// Three attempts; backoff from 20 ms doubling to 1 s, with full jitter; no per-attempt
    /// timeout (an attempt may use all the time the call has left).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            attempt_timeout: None,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The default policy with `max_attempts` attempts in all (1 means no retry).
    pub fn new(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            ..RetryPolicy::default()
        }
    }

    /// No retries.
    pub fn never() -> Self {
        RetryPolicy::new(1)
    }

    /// Gives up on one attempt after `timeout` and sends the next (the call's total timeout
    /// still bounds the whole). The server keeps running the abandoned attempt, so with dedupe
    /// the next attempt receives its result.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Backoff before the second attempt, and the most any backoff grows to.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Growth of the backoff per attempt (default 2).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier.max(1.0);
        self
    }

    /// Whether each backoff is drawn uniformly from zero to its nominal value ("full jitter",
    /// default on), so clients that failed together do not retry together.
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Attempts in all.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The per-attempt timeout.
    pub fn get_attempt_timeout(&self) -> Option<Duration> {
        self.attempt_timeout
    }

    /// The wait before attempt number `attempt` (1 for the first retry).
    pub fn backoff_before(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        // A large multiplier or attempt number overflows `Duration`: that is `max_backoff` too.
        let nominal = Duration::try_from_secs_f64(
            self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent),
        )
        .map_or(self.max_backoff, |backoff| backoff.min(self.max_backoff));
        if self.jitter {
            nominal.mul_f64(fastrand::f64())
        } else {
            nominal
        }
    }

    /// How long to wait before `attempt` after an attempt failed with `error`: the backoff,
    /// or the wait a `resource_exhausted` answer asked for under [`RETRY_AFTER_MS`] when that
    /// is longer (capped at a minute).
    pub fn wait_before(&self, attempt: u32, error: &Error) -> Duration {
        let backoff = self.backoff_before(attempt);
        let asked = match error {
            Error::Status(status) if status.code() == Code::ResourceExhausted => status
                .metadata()
                .get(RETRY_AFTER_MS)
                .and_then(|value| std::str::from_utf8(&value).ok()?.trim().parse::<u64>().ok())
                .map(|millis| Duration::from_millis(millis.min(60_000))),
            _ => None,
        };
        asked.map_or(backoff, |asked| asked.max(backoff))
    }

    /// Whether `error` may be transient, so that another attempt could succeed.
    pub fn is_retryable(error: &Error) -> bool {
        match error {
            Error::Timeout { .. } | Error::Connect { .. } | Error::ConnectTimeout { .. } => true,
            Error::Closed { reason: closed, .. } => !matches!(closed, Closed::ClientDropped),
            Error::Status(status) => {
                matches!(status.code(), Code::Unavailable | Code::ResourceExhausted)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Status;

    #[test]
    fn a_backoff_too_large_for_a_duration_is_the_cap() {
        for multiplier in [1e300, f64::INFINITY] {
            let policy = RetryPolicy::new(100)
                .backoff(Duration::from_secs(1), Duration::from_secs(2))
                .multiplier(multiplier)
                .jitter(false);
            assert_eq!(policy.backoff_before(60), Duration::from_secs(2));
        }
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        let policy = RetryPolicy::new(10)
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .jitter(false);
        let waits: Vec<u128> = (1..6)
            .map(|a| policy.backoff_before(a).as_millis())
            .collect();
        assert_eq!(waits, [10, 20, 40, 50, 50]);
        let jittered =
            RetryPolicy::new(10).backoff(Duration::from_millis(10), Duration::from_secs(1));
        for attempt in 1..20 {
            assert!(jittered.backoff_before(attempt) <= Duration::from_secs(1));
        }
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        let timeout = Error::Timeout {
            method: "a/b".into(),
            timeout: Duration::from_secs(1),
            sent: None,
        };
        assert!(RetryPolicy::is_retryable(&timeout));
        assert!(RetryPolicy::is_retryable(&Error::closed(Closed::Eof)));
        assert!(RetryPolicy::is_retryable(&Error::Status(Status::new(
            Code::Unavailable,
            "x"
        ))));
        assert!(!RetryPolicy::is_retryable(&Error::Status(
            Status::application("e", Default::default())
        )));
        assert!(!RetryPolicy::is_retryable(&Error::Status(
            Status::invalid_argument("x")
        )));
        assert!(!RetryPolicy::is_retryable(&Error::Status(Status::new(
            Code::OutcomeUnknown,
            "x"
        ))));
        assert!(!RetryPolicy::is_retryable(&Error::closed(
            Closed::ClientDropped
        )));
        assert!(!RetryPolicy::is_retryable(&Error::Cancelled));
    }
}
