//! The client: one TCP connection carrying many concurrent calls.
//!
//! A [`Client`] owns a writer task, which writes everything its callers have queued (each
//! caller encodes its own frame onto the connection's queue) with one `write` and no per-frame
//! flush, and a reader task, which completes pending calls as their responses arrive and keeps
//! the connection honest with pings. Calls wait in one slab of slots, found by request id and
//! attempt (see `waiters`). Dropping the last clone of a client (and every call started on it)
//! ends both tasks and closes the socket.

mod admission;
mod builder;
mod config;
mod connection;
mod dial;
mod pending;
mod waiters;

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, Waker, ready};

use tokio::time::Instant;

pub use builder::Builder;
pub use pending::PendingCall;

use crate::call::Call;
use crate::call::CallOptions;
use crate::call::Reply;
use crate::channel::Channel;
use crate::error::Error;
use crate::retry::RetryPolicy;
use crate::timer::Timer;
use crate::transport::{Address, IntoAddress};
use config::ClientConfig;
use connection::{Attempt, Connection};
use dial::Dial;

/// A client of one server: a connection shared by every clone, reopened on demand when it
/// is lost, and calls retried by policy (see [`retry`](crate::retry)).
///
/// ```no_run
/// # async fn demo() -> prpc::Result<()> {
/// use std::time::Duration;
/// let client = prpc::Client::builder()
///     .connect_timeout(Duration::from_secs(1))
///     .timeout(Duration::from_secs(5))
///     .format(prpc::Format::Json)
///     .connect("127.0.0.1:7000")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    /// Deadlines, backoff and keepalive of every connection this client opens.
    timer: Timer,
    /// How to reconnect; `None` for a client made from a stream.
    dial: Option<Arc<dyn Dial>>,
    current: RwLock<Arc<Connection>>,
    /// One reconnect at a time; callers that lose the race use the winner's connection.
    reconnecting: tokio::sync::Mutex<()>,
}

/// The future of [`Client::call`]: sends the call when first polled, then waits for its
/// reply. Dropping it before it completes cancels the call.
///
/// A named type rather than an `async fn`'s: it holds the call until the first poll and then
/// only the [`PendingCall`], so the future a caller keeps (and moves) per call stays small.
#[must_use = "futures do nothing unless polled"]
pub struct CallFuture<'a> {
    client: &'a Client,
    state: CallState<'a>,
}

enum CallState<'a> {
    /// Not polled yet.
    Start(Call),
    /// Sent at once: waiting for the reply.
    Sent(PendingCall),
    /// Had to wait before sending (a reconnect, room on the wire, or retries).
    Later(Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send + 'a>>),
    /// Completed.
    Done,
}

impl Future for CallFuture<'_> {
    type Output = Result<Reply, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            let done = match &mut this.state {
                CallState::Start(call) => {
                    // The common case (an open connection with room, no retries) sends the
                    // request right here, encoding it from the call where it lies.
                    match this.client.begin(call, cx.waker()) {
                        Ok(Begun::Sent(mut pending)) => {
                            // Its slot holds this task's waker already: only a timeout needs
                            // polling now.
                            if let Poll::Ready(timed_out) = pending.poll_deadline(cx) {
                                this.state = CallState::Done;
                                return Poll::Ready(timed_out);
                            }
                            this.state = CallState::Sent(pending);
                            return Poll::Pending;
                        }
                        Ok(Begun::Later(later)) => {
                            // Only now is the call moved out of its place, into the future
                            // that waits.
                            let CallState::Start(call) =
                                mem::replace(&mut this.state, CallState::Done)
                            else {
                                unreachable!("matched Start above");
                            };
                            this.state =
                                CallState::Later(Box::pin(this.client.call_later(call, later)));
                            continue;
                        }
                        Err(error) => {
                            this.state = CallState::Done;
                            return Poll::Ready(Err(error));
                        }
                    }
                }
                CallState::Sent(pending) => ready!(Pin::new(pending).poll(cx)),
                CallState::Later(later) => ready!(later.as_mut().poll(cx)),
                CallState::Done => Err(Error::Cancelled),
            };
            this.state = CallState::Done;
            return Poll::Ready(done);
        }
    }
}

impl fmt::Debug for CallFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            CallState::Start(_) => "not sent",
            CallState::Sent(_) | CallState::Later(_) => "in flight",
            CallState::Done => "done",
        };
        f.debug_struct("CallFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// How [`Client::call`] goes on after its first, synchronous step.
enum Begun {
    /// The request is queued; the reply is awaited.
    Sent(PendingCall),
    /// Something must be waited for first.
    Later(Later),
}

/// Why a call cannot be sent at once, and what it needs.
enum Later {
    /// It may take several attempts.
    Retries {
        policy: RetryPolicy,
        request_id: u64,
        dedupe: bool,
    },
    /// One attempt, once the connection is open and has room.
    Once(Attempt),
}

impl Client {
    /// Connects with default settings to `addr` (`host:port`, `tcp://`, `unix://`, `tls://`;
    /// see [`Address`]).
    pub async fn connect(addr: impl IntoAddress) -> Result<Client, Error> {
        Builder::new().connect(addr).await
    }

    /// A builder for a client with non-default settings.
    pub fn builder() -> Builder {
        Builder::new()
    }

    fn from_connection(
        connection: Arc<Connection>,
        config: ClientConfig,
        timer: Timer,
        dial: Option<Arc<dyn Dial>>,
    ) -> Client {
        Client {
            inner: Arc::new(Inner {
                dial,
                timer,
                config,
                current: RwLock::new(connection),
                reconnecting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Sends a call and waits for its reply, retrying by policy.
    ///
    /// Dropping the returned future before it completes cancels the call: the pending entry
    /// is removed and the server is told to stop the handler.
    pub fn call(&self, call: Call) -> CallFuture<'_> {
        CallFuture {
            client: self,
            state: CallState::Start(call),
        }
    }

    /// Sends the call now if nothing has to be waited for; else says what the call needs.
    fn begin(&self, call: &Call, waker: &Waker) -> Result<Begun, Error> {
        let defaults = &self.inner.config.defaults;
        let timeout = call.options.timeout.or(defaults.timeout);
        let policy = call
            .options
            .retry
            .or(defaults.retry)
            .or_else(|| call.idempotent.then(RetryPolicy::default));
        let request_id = call.request_id.unwrap_or_else(crate::id::next_id);
        let dedupe = call.request_id.is_some() || (policy.is_some() && !call.idempotent);
        if let Some(policy) = policy.filter(|policy| policy.max_attempts() > 1) {
            return Ok(Begun::Later(Later::Retries {
                policy,
                request_id,
                dedupe,
            }));
        }
        let attempt = Attempt {
            request_id,
            number: call.attempt,
            deadline: timeout,
            timeout,
            dedupe,
            // A call that may be resent is left to finish on the server, so that the resend
            // collects its result instead of running it again.
            cancel_on_timeout: !dedupe,
        };
        {
            // Sent under the read lock, from the connection it guards: the pending call takes
            // the one reference it keeps (no clone to hand over and drop again).
            let current = self
                .inner
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if current.close_reason().is_none()
                && let Ok(place) = current.try_admit()
            {
                return Connection::start(&current, call, attempt, place, Some(waker))
                    .map(Begun::Sent);
            }
        }
        // Closed (reopen it first), or at max_in_flight (wait for room).
        Ok(Begun::Later(Later::Once(attempt)))
    }

    /// A call that has to wait before it can be sent: for a connection, for room, or between
    /// retries.
    async fn call_later(&self, call: Call, later: Later) -> Result<Reply, Error> {
        match later {
            Later::Retries {
                policy,
                request_id,
                dedupe,
            } => {
                self.call_with_retries(call, policy, request_id, dedupe)
                    .await
            }
            Later::Once(attempt) => {
                let connection = self.connection().await?;
                let place = connection.admit(&call, attempt.timeout).await?;
                Connection::start(&connection, &call, attempt, place, None)?.await
            }
        }
    }

    async fn call_with_retries(
        &self,
        call: Call,
        policy: RetryPolicy,
        request_id: u64,
        dedupe: bool,
    ) -> Result<Reply, Error> {
        let timeout = call.options.timeout.or(self.inner.config.defaults.timeout);
        let first = call.attempt;
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut number = first;
        loop {
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let attempt_timeout = match (policy.get_attempt_timeout(), left) {
                (Some(attempt), Some(left)) => Some(attempt.min(left)),
                (attempt, left) => attempt.or(left),
            };
            let last = number + 1 - first >= policy.max_attempts();
            let attempt = Attempt {
                request_id,
                number,
                deadline: left,
                timeout: attempt_timeout,
                dedupe,
                // Once the attempt's timeout is the call's, there is no time for another.
                cancel_on_timeout: last || attempt_timeout == left,
            };
            let result = async {
                let connection = self.connection().await?;
                let place = connection.admit(&call, attempt_timeout).await?;
                Connection::start(&connection, &call, attempt, place, None)?.await
            }
            .await;
            let error = match result {
                Ok(reply) => return Ok(reply),
                Err(error) if !last && RetryPolicy::is_retryable(&error) => error,
                Err(error) => return Err(error),
            };
            let backoff = policy.backoff_before(number + 1 - first);
            if let Some(deadline) = deadline
                && Instant::now() + backoff >= deadline
            {
                return Err(match error {
                    timeout @ Error::Timeout { .. } => timeout,
                    _ => Error::Timeout {
                        method: format!("{}/{}", call.service, call.method),
                        timeout: timeout.unwrap_or_default(),
                    },
                });
            }
            tracing::debug!(request_id, attempt = number, %error, ?backoff, "retrying");
            self.inner.timer.sleep(backoff).await;
            number += 1;
        }
    }

    /// Sends a call now and returns a handle to await its reply later (the `Go` style of the
    /// original). The request is queued for the socket before this returns. Dropping the
    /// handle cancels the call. A started call is one attempt on the current connection: it
    /// neither reconnects nor retries, nor waits for room when `max_in_flight` calls are on
    /// the wire (it fails with `resource_exhausted` instead).
    pub fn start(&self, call: Call) -> Result<PendingCall, Error> {
        let timeout = call.options.timeout.or(self.inner.config.defaults.timeout);
        let attempt = Attempt {
            request_id: call.request_id.unwrap_or_else(crate::id::next_id),
            number: call.attempt,
            deadline: timeout,
            timeout,
            dedupe: call.request_id.is_some(),
            cancel_on_timeout: true,
        };
        let connection = self.current();
        let place = connection.try_admit()?;
        Connection::start(&connection, &call, attempt, place, None)
    }

    /// Sends a call whose reply nobody wants (the request's oneway flag): the server runs it
    /// and answers nothing, not even an error. Returns once the request is queued for the
    /// socket; reconnects first if the connection was lost, and never retries.
    pub async fn send_oneway(&self, call: Call) -> Result<(), Error> {
        let timeout = call.options.timeout.or(self.inner.config.defaults.timeout);
        let attempt = Attempt {
            request_id: call.request_id.unwrap_or_else(crate::id::next_id),
            number: call.attempt,
            deadline: timeout,
            timeout,
            dedupe: call.request_id.is_some(),
            cancel_on_timeout: false,
        };
        self.connection().await?.send_oneway(&call, attempt)
    }

    /// The address the client dials (`None` for a client over a stream it was given).
    pub fn address(&self) -> Option<&Address> {
        self.inner.dial.as_ref().map(|dial| dial.address())
    }

    /// Whether the current connection can take new calls (it has not closed nor received
    /// goaway). A closed connection is reopened by the next [`call`](Client::call).
    pub fn is_open(&self) -> bool {
        self.current().close_reason().is_none()
    }

    fn current(&self) -> Arc<Connection> {
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The current connection, reopened first if it has closed.
    async fn connection(&self) -> Result<Arc<Connection>, Error> {
        let current = self.current();
        let Some(reason) = current.close_reason() else {
            return Ok(current);
        };
        let Some(dial) = &self.inner.dial else {
            return Err(reason.clone());
        };
        let _turn = self.inner.reconnecting.lock().await;
        let current = self.current();
        if current.close_reason().is_none() {
            return Ok(current);
        }
        let fresh = dial.dial(&self.inner.config, &self.inner.timer).await?;
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fresh.clone();
        Ok(fresh)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.address())
            .field("open", &self.is_open())
            .finish()
    }
}

impl Channel for Client {
    fn default_options(&self) -> &CallOptions {
        &self.inner.config.defaults
    }

    fn call(&self, call: Call) -> impl Future<Output = Result<Reply, Error>> + Send {
        Client::call(self, call)
    }
}
