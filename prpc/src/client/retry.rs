//! The retry layer: sends a call again, by its [`RetryPolicy`], through the [`Channel`] it
//! wraps (see [`retry`](crate::retry) for which calls are retried and which failures count).

use std::future::Future;
use std::sync::Arc;

use crate::call::{Call, CallOptions, Reply};
use crate::channel::Channel;
use crate::error::Error;
use crate::retry::{RetryBudget, RetryPolicy};
use crate::timer::Timer;

/// Retries the calls of the [`Channel`] it wraps by each call's [`RetryPolicy`] (see the
/// module docs for which calls have one). Backoff runs on prpc's timing wheel.
///
/// ```no_run
/// # async fn demo() -> prpc::Result<()> {
/// use prpc::Channel;
/// use prpc::client::Retry;
/// use prpc::retry::RetryPolicy;
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
    /// Bounds the retries of every call through this layer together, when set.
    budget: Option<Arc<RetryBudget>>,
}

impl<C> Retry<C> {
    /// Retries calls of `inner`, waiting out backoff on `timer`.
    pub fn new(inner: C, timer: Timer) -> Self {
        Retry {
            inner,
            timer,
            budget: None,
        }
    }

    /// With a [`RetryBudget`] shared by every call through the layer: no retry while the
    /// budget is spent.
    pub fn with_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The channel under the layer.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// The budget its retries share, if it has one.
    #[cfg(feature = "cluster")]
    pub(crate) fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_deref()
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
        if call.is_stream() {
            // A stream's messages go out once: it is never sent again.
            return None;
        }
        let policy = call.options.retry;
        // A call that may be sent again must run once on the server, unless running it twice
        // is harmless.
        if policy.is_some() && !call.idempotent {
            call.mark_dedupe();
        }
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
        // This layer owns the call's retries: a retry layer below it sends each attempt once
        // (else attempts would multiply and reuse their numbers).
        call.options.retry = None;
        // Shared by every attempt's copy: a balanced channel below records where each went.
        call.route
            .get_or_insert_with(|| Arc::new(crate::call::Route::default()));
        let first = call.attempt;
        call.attempt_timeout = policy.get_attempt_timeout();
        if let Some(budget) = &self.budget {
            budget.deposit();
        }
        // The highest attempt that went out: a later attempt that failed before it was sent
        // (it could not connect) must not hide that an earlier one may have run.
        let mut highest_sent = None;
        loop {
            let left = call.time_left();
            let last = call.attempt + 1 - first >= policy.max_attempts();
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
                Err(error) => {
                    if let Some(sent) = error.sent() {
                        highest_sent = Some(sent);
                    }
                    let error = match highest_sent {
                        Some(sent) => error.sent_at_least(request_id, sent.attempt, sent.dedupe),
                        None => error,
                    };
                    if last || !RetryPolicy::is_retryable(&error) {
                        return Err(error);
                    }
                    error
                }
            };
            if self
                .budget
                .as_ref()
                .is_some_and(|budget| !budget.try_retry())
            {
                tracing::debug!(request_id, attempt = number, %error, "not retried: the retry budget is spent");
                return Err(error);
            }
            let backoff = policy.wait_before(number + 1 - first, &error);
            if let Some(deadline) = call.deadline()
                && crate::timer::deadline_after(backoff) >= deadline
            {
                let sent = error.sent();
                let timeout = match error {
                    timeout @ Error::Timeout { .. } => timeout,
                    _ => Error::Timeout {
                        method: format!("{}/{}", call.service, call.method),
                        timeout: call.options.timeout.unwrap_or_default(),
                        sent: None,
                    },
                };
                return Err(match sent {
                    Some(sent) => timeout.sent_as(sent),
                    None => timeout,
                });
            }
            tracing::debug!(request_id, attempt = number, %error, ?backoff, "retrying");
            self.timer.sleep(backoff).await;
            call.attempt += 1;
        }
    }
}
