//! The server's deadline layer: a call still running when its caller's deadline passes is
//! stopped and answered `deadline_exceeded`, and so is one whose handler finishes after it
//! without having yielded in time to be stopped (a CPU-bound handler cannot be preempted).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::handler::Handler;
use crate::service::{Request, Response, Service};
use crate::status::{Code, Status};
use crate::timer::{Sleep, Timer};

/// Stops a call at its deadline (the request's [`deadline`](Request::deadline)), on the
/// server's timing wheel. Every server has it, below [`Dedupe`](super::Dedupe) (so that a
/// deduplicated call stores its `deadline_exceeded`) and above the layers added with
/// [`Builder::layer`](super::Builder::layer).
pub struct Deadline<H> {
    inner: H,
    timer: Timer,
}

impl<H> Deadline<H> {
    pub(super) fn new(inner: H, timer: Timer) -> Self {
        Deadline { inner, timer }
    }
}

impl<H: Handler> Handler for Deadline<H> {
    type Future = DeadlineFuture<H::Future>;

    fn call(&self, service: &Arc<dyn Service>, request: Request) -> Self::Future {
        // A sleep costs nothing until it is first polled, which happens only once the call
        // has waited: a call that finishes at once never touches the wheel.
        let limit = request.deadline.zip(request.timeout).map(|(at, budget)| {
            let sleep = self.timer.sleep_until(tokio::time::Instant::from_std(at));
            (sleep, budget)
        });
        DeadlineFuture {
            inner: self.inner.call(service, request),
            limit,
        }
    }
}

/// The future of [`Deadline`]: the call, or `deadline_exceeded` at its deadline.
pub struct DeadlineFuture<F> {
    inner: F,
    /// The sleep until the deadline, and the budget the caller gave.
    limit: Option<(Sleep, Duration)>,
}

impl<F> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response, Status>> + Unpin,
{
    type Output = Result<Response, Status>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(result) = Pin::new(&mut self.inner).poll(cx) {
            // A handler that never yields cannot be stopped at its deadline; one that finishes
            // after it is answered as if it had been: its caller has stopped waiting, and an
            // ok would tell a retrying caller that a late result is still worth having.
            return Poll::Ready(match &self.limit {
                Some((sleep, budget)) if tokio::time::Instant::now() >= sleep.deadline() => {
                    Err(deadline_exceeded(*budget))
                }
                _ => result,
            });
        }
        match &mut self.limit {
            Some((sleep, budget)) => {
                let budget = *budget;
                Pin::new(sleep)
                    .poll(cx)
                    .map(|()| Err(deadline_exceeded(budget)))
            }
            None => Poll::Pending,
        }
    }
}

/// The status of a call stopped at its deadline.
pub(super) fn deadline_exceeded(budget: Duration) -> Status {
    Status::new(
        Code::DeadlineExceeded,
        format!("deadline of {budget:?} exceeded; the handler was stopped"),
    )
}
