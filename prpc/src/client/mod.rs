//! The client: one connection carrying many concurrent calls, and the layers around it.
//!
//! A [`Client`] is a [`Retry`] layer over a [`Link`]: the link sends each call once on its
//! connection (reopened through its connector when lost), the retry layer sends it again by
//! policy. A link owns a writer task, which writes everything its callers have queued (each
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
mod retry;
mod waiters;

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, Waker, ready};

pub use builder::Builder;
pub use pending::PendingCall;
pub use retry::Retry;

use crate::call::Call;
use crate::call::CallOptions;
use crate::call::Reply;
use crate::channel::Channel;
use crate::error::Error;
use crate::timer::Timer;
use crate::transport::{Address, IntoAddress};
use config::ClientConfig;
use connection::{Attempt, Connection};
use dial::Dial;

/// A client of one server: calls retried by policy (see [`retry`](crate::retry)) over a
/// [`Link`], one connection shared by every clone and reopened on demand when it is lost.
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
    stack: Retry<Link>,
}

/// One server over one multiplexed connection, reopened through its connector when lost:
/// each call is sent once (a [`Client`] is a [`Retry`] layer over a link). The bottom of a
/// client's stack of [`Channel`]s.
#[derive(Clone)]
pub struct Link {
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

/// The future of [`Link::call`] and [`Client::call`]: sends the call when first polled (or,
/// for a client's call that may take several attempts, starts its retry loop), then waits for
/// its reply. Dropping it before it completes cancels the call.
///
/// A named type rather than an `async fn`'s: it holds the call until the first poll and then
/// only the [`PendingCall`], so the future a caller keeps (and moves) per call stays small.
#[must_use = "futures do nothing unless polled"]
pub struct CallFuture<'a> {
    link: &'a Link,
    /// The retry layer over the link, for a [`Client`]'s call: its plan is made at the first
    /// poll, where the call lies, so that a call sent once is never moved for it.
    retry: Option<&'a Retry<Link>>,
    state: CallState<'a>,
}

// The call lies in the future until its first poll, where it is sent from: boxing it to
// even out the variants would cost an allocation per call.
#[allow(clippy::large_enum_variant)]
enum CallState<'a> {
    /// Not polled yet.
    Start(Call),
    /// Sent at once: waiting for the reply.
    Sent(PendingCall),
    /// Had to wait before sending (a reconnect, or room on the wire).
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
                    if call.is_stream() {
                        let CallState::Start(call) = mem::replace(&mut this.state, CallState::Done)
                        else {
                            unreachable!("matched Start above");
                        };
                        this.state = CallState::Later(Box::pin(this.link.open_stream(call)));
                        continue;
                    }
                    if let Some(retry) = this.retry
                        && let Some(policy) = retry.plan(call)
                    {
                        // Several attempts: only now is the call moved, into the retry loop.
                        let CallState::Start(call) = mem::replace(&mut this.state, CallState::Done)
                        else {
                            unreachable!("matched Start above");
                        };
                        this.state = CallState::Later(Box::pin(retry.retrying(call, policy)));
                        continue;
                    }
                    // The common case (an open connection with room) sends the request right
                    // here, encoding it from the call where it lies.
                    match this.link.begin(call, cx.waker()) {
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
                        Ok(Begun::Later(attempt)) => {
                            // Only now is the call moved out of its place, into the future
                            // that waits.
                            let CallState::Start(call) =
                                mem::replace(&mut this.state, CallState::Done)
                            else {
                                unreachable!("matched Start above");
                            };
                            this.state =
                                CallState::Later(Box::pin(this.link.call_later(call, attempt)));
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

/// How [`Link::call`] goes on after its first, synchronous step.
enum Begun {
    /// The request is queued; the reply is awaited.
    Sent(PendingCall),
    /// The connection must be reopened, or have room, first.
    Later(Attempt),
}

impl Client {
    /// Connects with default settings to `addr` (`host:port`, `tcp://`, `unix://`, `tls://`;
    /// see [`Address`]).
    pub fn connect(
        addr: impl IntoAddress,
    ) -> impl Future<Output = Result<Client, Error>> + Send + 'static {
        Builder::new().connect(addr)
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
            stack: Retry::new(Link::new(connection, config, timer.clone(), dial), timer),
        }
    }

    /// Sends a call and waits for its reply, retrying by policy.
    ///
    /// Dropping the returned future before it completes cancels the call: the pending entry
    /// is removed and the server is told to stop the handler.
    pub fn call(&self, call: Call) -> CallFuture<'_> {
        // The retry layer over the link, fused into the link's future: the retry layer's plan
        // is made at the first poll, and a call sent once goes straight to the link (where
        // `Retry`'s own `call` would wrap the link's future in one of its own, moving the call
        // once more).
        CallFuture {
            link: self.link(),
            retry: Some(&self.stack),
            state: CallState::Start(call),
        }
    }

    /// Sends a call now and returns a handle to await its reply later (the `Go` style of the
    /// original). The request is queued for the socket before this returns. Dropping the
    /// handle cancels the call. A started call is one attempt on the current connection: it
    /// neither reconnects nor retries, nor waits for room when `max_in_flight` calls are on
    /// the wire (it fails with `resource_exhausted` instead).
    pub fn start(&self, call: Call) -> Result<PendingCall, Error> {
        self.link().start(call)
    }

    /// Sends a call whose reply nobody wants (the request's oneway flag): the server runs it
    /// and answers nothing, not even an error. Returns once the request is queued for the
    /// socket; reconnects first if the connection was lost, and never retries.
    pub async fn send_oneway(&self, call: Call) -> Result<(), Error> {
        self.link().send_oneway(call).await
    }

    /// The address the client dials (`None` for a client over a stream it was given).
    pub fn address(&self) -> Option<&Address> {
        self.link().address()
    }

    /// Whether the current connection can take new calls (it has not closed nor received
    /// goaway). A closed connection is reopened by the next [`call`](Client::call).
    pub fn is_open(&self) -> bool {
        self.link().is_open()
    }

    /// The link under the retry layer: the same connection, each call sent once.
    pub fn link(&self) -> &Link {
        self.stack.inner()
    }
}

impl Link {
    fn new(
        connection: Arc<Connection>,
        config: ClientConfig,
        timer: Timer,
        dial: Option<Arc<dyn Dial>>,
    ) -> Link {
        Link {
            inner: Arc::new(Inner {
                dial,
                timer,
                config,
                current: RwLock::new(connection),
                reconnecting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Sends a call once and waits for its reply.
    ///
    /// Dropping the returned future before it completes cancels the call: the pending entry
    /// is removed and the server is told to stop the handler.
    pub fn call(&self, call: Call) -> CallFuture<'_> {
        // Resolved where it lies, at the first poll.
        CallFuture {
            link: self,
            retry: None,
            state: CallState::Start(call),
        }
    }

    /// Sends the call now if nothing has to be waited for; else says what the call needs.
    fn begin(&self, call: &mut Call, waker: &Waker) -> Result<Begun, Error> {
        call.resolve(&self.inner.config.defaults);
        let attempt = Attempt::of(call);
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
        Ok(Begun::Later(attempt))
    }

    /// A call that has to wait before it can be sent: for a connection, or for room.
    async fn call_later(&self, call: Call, attempt: Attempt) -> Result<Reply, Error> {
        let connection = self.connection().await?;
        let place = connection.admit(&call, attempt.timeout).await?;
        Connection::start(&connection, &call, attempt, place, None)?.await
    }

    /// Opens a call as a stream (see [`Call::stream`]): the reply holds the server's messages.
    async fn open_stream(&self, call: Call) -> Result<Reply, Error> {
        let mut call = call;
        call.resolve(&self.inner.config.defaults);
        call.final_attempt = true;
        let attempt = Attempt::of(&call);
        let connection = self.connection().await?;
        let messages = Connection::open_stream(&connection, &call, attempt)?;
        Ok(Reply {
            body: bytes::Bytes::new(),
            format: call.format,
            metadata: crate::wire::Metadata::new(),
            messages: Some(messages),
        })
    }

    /// Sends a call now and returns a handle to await its reply later; see [`Client::start`].
    pub fn start(&self, call: Call) -> Result<PendingCall, Error> {
        let mut call = call;
        call.resolve(&self.inner.config.defaults);
        call.final_attempt = true;
        let attempt = Attempt::of(&call);
        let connection = self.current();
        let place = connection.try_admit()?;
        Connection::start(&connection, &call, attempt, place, None)
    }

    /// Sends a call whose reply nobody wants; see [`Client::send_oneway`].
    pub async fn send_oneway(&self, call: Call) -> Result<(), Error> {
        let mut call = call;
        call.resolve(&self.inner.config.defaults);
        let attempt = Attempt::of(&call);
        self.connection().await?.send_oneway(&call, attempt)
    }

    /// The address the link dials (`None` for a link over a stream it was given).
    pub fn address(&self) -> Option<&Address> {
        self.inner.dial.as_ref().map(|dial| dial.address())
    }

    /// Whether the current connection can take new calls (it has not closed nor received
    /// goaway). A closed connection is reopened by the next call.
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

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("address", &self.address())
            .field("open", &self.is_open())
            .finish()
    }
}

impl Channel for Client {
    fn default_options(&self) -> &CallOptions {
        self.stack.default_options()
    }

    fn call(&self, call: Call) -> impl Future<Output = Result<Reply, Error>> + Send {
        Client::call(self, call)
    }
}

impl Channel for Link {
    fn default_options(&self) -> &CallOptions {
        &self.inner.config.defaults
    }

    fn call(&self, call: Call) -> impl Future<Output = Result<Reply, Error>> + Send {
        Link::call(self, call)
    }
}
