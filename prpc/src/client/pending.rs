use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use crate::timer::Sleep;
use bytestring::ByteString;

use super::connection::{Attempt, Connection};
use super::waiters::Ticket;
use crate::call::Reply;
use crate::error::Error;

/// A call that has been sent and whose reply has not been taken yet.
///
/// Await it for the reply. Dropping it first cancels the call (the server is told to stop the
/// handler). It keeps the connection open while it lives, even if every [`Client`] clone is
/// dropped.
///
/// [`Client`]: super::Client
#[must_use = "dropping a PendingCall cancels the call"]
pub struct PendingCall {
    connection: Arc<Connection>,
    attempt: Attempt,
    /// Only for a call with a timeout (boxed: most calls have none, and this future is moved
    /// with every call).
    deadline: Option<Box<Deadline>>,
    /// The call's place among the connection's waiting calls, until it is given back: `None`
    /// once the call has completed (with its reply, or by its timeout).
    ticket: Option<Ticket>,
}

/// When a call times out, and the names its timeout error gives.
struct Deadline {
    sleep: Sleep,
    service: ByteString,
    method: ByteString,
}

impl PendingCall {
    pub(super) fn new(
        connection: Arc<Connection>,
        attempt: Attempt,
        names: Option<(ByteString, ByteString)>,
        ticket: Ticket,
    ) -> Self {
        PendingCall {
            deadline: attempt
                .timeout
                .zip(names)
                .map(|(timeout, (service, method))| {
                    Box::new(Deadline {
                        sleep: connection.timer.sleep(timeout),
                        service,
                        method,
                    })
                }),
            connection,
            attempt,
            ticket: Some(ticket),
        }
    }

    /// The call's request id.
    pub fn request_id(&self) -> u64 {
        self.attempt.request_id
    }
}

impl Future for PendingCall {
    type Output = Result<Reply, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.ticket.is_none() {
            return Poll::Ready(Err(Error::Cancelled));
        }
        if let Poll::Ready(outcome) = this.connection.poll_outcome(&mut this.ticket, cx) {
            let sent = this.attempt.sent_as();
            return Poll::Ready(outcome.map_err(|error| error.sent_as(sent)));
        }
        self.poll_deadline(cx)
    }
}

impl PendingCall {
    /// Polls the call's timeout alone (right after a start that gave its slot the caller's
    /// waker, the reply needs no poll to wake the caller).
    pub(super) fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Result<Reply, Error>> {
        if let Some(deadline) = self.deadline.as_mut() {
            ready!(Pin::new(&mut deadline.sleep).poll(cx));
            let attempt = self.attempt;
            if let Some(ticket) = self.ticket.take() {
                self.connection
                    .abandon(ticket, &attempt, attempt.cancel_on_timeout);
            }
            let method = self
                .deadline
                .as_ref()
                .map(|deadline| format!("{}/{}", deadline.service, deadline.method))
                .unwrap_or_default();
            return Poll::Ready(Err(Error::Timeout {
                method,
                timeout: attempt.timeout.unwrap_or_default(),
                sent: Some(attempt.sent_as()),
            }));
        }
        Poll::Pending
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        // The call's place on the wire (taken before it was sent) goes back with the handle.
        self.connection.release_place();
        // A call dropped before its reply came is cancelled on the server (a call that took
        // its reply has no ticket left).
        if let Some(ticket) = self.ticket.take() {
            self.connection.abandon(ticket, &self.attempt, true);
        }
    }
}

impl fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingCall")
            .field("request_id", &self.attempt.request_id)
            .field("attempt", &self.attempt.number)
            .finish_non_exhaustive()
    }
}
