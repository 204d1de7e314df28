//! Retries: when a failed call is sent again, and how long to wait between attempts.
//!
//! [`Retry`] is a layer over any [`Channel`]: it reads the call's [`RetryPolicy`] (plain data:
//! attempts, a per-attempt timeout, backoff) from its resolved options and sends the call
//! again through the channel below it. A [`Client`](crate::Client) is a retry layer over a
//! [`Link`](crate::client::Link); a balanced client puts the balancer between the two.
//!
//! A retried call keeps its request id and raises its attempt number. A call to a method not
//! marked idempotent also carries the dedupe flag, so the server (every prpc server dedupes
//! flagged calls, see [`idempotency`](crate::idempotency)) runs it once and answers every
//! attempt with the one reply; calls to idempotent methods go without it and may run once per
//! attempt.
//!
//! Which calls are retried:
//! - a call whose [`CallOptions`] set a policy, with that policy;
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

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::call::{Call, CallOptions, Reply};
use crate::channel::Channel;
use crate::error::{Closed, Error};
use crate::layer::Layer;
use crate::status::Code;
use crate::timer::Timer;

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

    /// Whether `error` may be transient, so that another attempt could succeed.
    pub fn is_retryable(error: &Error) -> bool {
        match error {
            Error::Timeout { .. } | Error::Connect { .. } | Error::ConnectTimeout { .. } => true,
            Error::Closed(closed) => !matches!(closed, Closed::ClientDropped),
            Error::Status(status) => {
                matches!(status.code(), Code::Unavailable | Code::ResourceExhausted)
            }
            _ => false,
        }
    }
}

/// Retries the calls of the [`Channel`] it wraps by each call's [`RetryPolicy`] (see the
/// module docs for which calls have one). Backoff runs on prpc's timing wheel.
///
/// ```no_run
/// # async fn demo() -> prpc::Result<()> {
/// use prpc::Channel;
/// use prpc::retry::{Retry, RetryPolicy};
///
/// // A retry layer over a link of one's own: what a Client is.
/// let client = prpc::Client::connect("127.0.0.1:7000").await?;
/// let retrying = Retry::new(client.link().clone(), prpc::timer::Timer::default());
/// let call = prpc::Call::new("S", "m", prpc::Format::Json, bytes::Bytes::from_static(b"{}"))
///     .with_options(prpc::CallOptions::new().retry(RetryPolicy::new(3)));
/// let reply = retrying.call(call).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Retry<C> {
    inner: C,
    timer: Timer,
}

impl<C> Retry<C> {
    /// Retries calls of `inner`, waiting out backoff on `timer`.
    pub fn new(inner: C, timer: Timer) -> Self {
        Retry { inner, timer }
    }

    /// The channel under the layer.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

/// Makes [`Retry`] layers.
#[derive(Debug, Clone)]
pub struct RetryLayer {
    timer: Timer,
}

impl RetryLayer {
    /// Retry layers that wait out backoff on `timer`.
    pub fn new(timer: Timer) -> Self {
        RetryLayer { timer }
    }
}

impl<C> Layer<C> for RetryLayer {
    type Service = Retry<C>;

    fn layer(&self, inner: C) -> Retry<C> {
        Retry::new(inner, self.timer.clone())
    }
}

impl<C: Channel> Channel for Retry<C> {
    fn default_options(&self) -> &CallOptions {
        self.inner.default_options()
    }

    fn call(&self, call: Call) -> impl Future<Output = Result<Reply, Error>> + Send {
        let mut call = call;
        let policy = self.plan(&mut call);
        async move {
            match policy {
                None => self.inner.call(call).await,
                // Boxed: most calls are sent once, and the retry loop would make every call's
                // future as large as its own.
                Some(policy) => Box::pin(self.retrying(call, policy)).await,
            }
        }
    }
}

impl<C: Channel> Retry<C> {
    /// Resolves the call's options and says how it is sent: with the policy when it may take
    /// more than one attempt, else once.
    #[inline]
    pub(crate) fn plan(&self, call: &mut Call) -> Option<RetryPolicy> {
        call.resolve(self.inner.default_options());
        let policy = call.options.retry;
        // A call that may be sent again must run once on the server, unless running it twice
        // is harmless.
        call.dedupe |= policy.is_some() && !call.idempotent;
        policy.filter(|policy| policy.max_attempts() > 1)
    }

    /// Sends the call until an attempt succeeds, fails for good, or the policy or the call's
    /// deadline leaves no room for another.
    pub(crate) async fn retrying(
        &self,
        mut call: Call,
        policy: RetryPolicy,
    ) -> Result<Reply, Error> {
        // Every attempt goes under the call's one request id, so the server can dedupe them.
        let request_id = *call.request_id.get_or_insert_with(crate::id::next_id);
        let first = call.attempt;
        loop {
            let left = call.time_left();
            let last = call.attempt + 1 - first >= policy.max_attempts();
            call.attempt_timeout = policy.get_attempt_timeout();
            // Once an attempt may use all the time the call has left, none can follow it.
            let no_time_after = match (call.attempt_timeout, left) {
                (Some(attempt), Some(left)) => attempt >= left,
                (None, _) => true,
                (Some(_), None) => false,
            };
            call.final_attempt = last || no_time_after;
            let number = call.attempt;
            let error = match self.inner.call(call.clone()).await {
                Ok(reply) => return Ok(reply),
                Err(error) if !last && RetryPolicy::is_retryable(&error) => error,
                Err(error) => return Err(error),
            };
            let backoff = policy.backoff_before(number + 1 - first);
            if let Some(deadline) = call.deadline()
                && Instant::now() + backoff >= deadline
            {
                return Err(match error {
                    timeout @ Error::Timeout { .. } => timeout,
                    _ => Error::Timeout {
                        method: format!("{}/{}", call.service, call.method),
                        timeout: call.options.timeout.unwrap_or_default(),
                    },
                });
            }
            tracing::debug!(request_id, attempt = number, %error, ?backoff, "retrying");
            self.timer.sleep(backoff).await;
            call.attempt += 1;
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
        };
        assert!(RetryPolicy::is_retryable(&timeout));
        assert!(RetryPolicy::is_retryable(&Error::Closed(Closed::Eof)));
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
        assert!(!RetryPolicy::is_retryable(&Error::Closed(
            Closed::ClientDropped
        )));
        assert!(!RetryPolicy::is_retryable(&Error::Cancelled));
    }
}
