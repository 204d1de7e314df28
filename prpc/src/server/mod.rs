//! The server: accepts connections and dispatches their calls to registered services.
//!
//! Each connection has a reader (this module's connection loop), a writer task that sends
//! every queued response in one write, and one task per call that has to wait (on a runtime
//! with one worker thread, a handler that finishes when first polled runs on the reader and
//! needs no task; the reader then lets the writer send every 16 such replies, so that a
//! client that sent many calls at once gets the first answers while the rest run). Limits — connections, in-flight calls per
//! connection, frame size, idle time — are answered with a status or a goaway, never a crash.

mod budget;
mod builder;
mod connection;
mod deadline;
mod dedupe;
mod dispatch;
mod handler;
mod listen;
mod rate_limit;
mod registration;
mod shared;
mod stats;
mod tasks;
#[cfg(feature = "tower")]
pub mod tower;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use futures_core::Stream;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::codec::Encoder;

pub use builder::Builder;
pub use deadline::{Deadline, DeadlineFuture};
pub use dedupe::{Dedupe, DedupeFuture};
pub use handler::{Dispatch, Guarded, Handler};
use listen::Bound;
pub use rate_limit::{RETRY_AFTER_MS, Rate, RateLimit, RateLimitFuture, RateLimited};
pub use registration::RegistrationView;
use registration::Registrations;
use shared::{Shared, Shutdown};
pub use stats::{Stats, StatsFuture};
use tasks::Tasks;

use crate::health::HealthReporter;
use crate::layer::{Either, Identity};
use crate::reflection::{self, ServiceInfo};
use crate::service::{Request, Response};
use crate::stats::ServerSnapshot;
use crate::status::Code;
use crate::status::Status;
use crate::transport::{Address, AnyStream, Incoming, Io, Listener, WrapListener};
use crate::wire::{Frame, FrameCodec};

/// A bound server, ready to [`serve`](Server::serve): a [`Router`] and the socket it listens
/// on (TCP, a Unix socket or TLS, by the address it was bound to).
///
/// ```no_run
/// # async fn demo(service: impl prpc::Service) -> std::io::Result<()> {
/// let server = prpc::Server::builder().add_service(service).bind("127.0.0.1:0").await?;
/// println!("listening on {}", server.local_addr());
/// let shutdown = server.shutdown_handle();
/// tokio::spawn(server.serve());
/// // ... later: stop accepting, let in-flight calls finish, close.
/// shutdown.shutdown();
/// # Ok(()) }
/// ```
#[must_use = "a server does nothing until it is served"]
pub struct Server<H = DefaultHandler, W = Identity> {
    router: Router<H>,
    listener: Bound,
    wrap: W,
    local_addr: Address,
    registrations: Registrations,
}

/// A server's services, layers and limits, ready to serve connections from any transport:
/// one stream ([`serve_connection`](Router::serve_connection)), a [`Listener`], or any stream
/// of connections ([`serve_with_incoming`](Router::serve_with_incoming)). Made by
/// [`Builder::build`]; cheap to clone, and every clone serves as one server (one dedupe store,
/// one shutdown).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[prpc::service] pub trait Ping { async fn ping(&self) -> u8; }
/// # struct Pong;
/// # impl Ping for Pong { async fn ping(&self) -> u8 { 1 } }
/// // A client and a server joined by an in-memory pipe.
/// let router = prpc::Server::builder().add_service(PingServer::new(Pong)).build();
/// let (client_end, server_end) = tokio::io::duplex(64 * 1024);
/// tokio::spawn(router.serve_connection(server_end));
/// let client = PingClient::new(prpc::Client::builder().from_stream(client_end));
/// assert_eq!(client.ping().await?, 1);
/// # Ok(()) }
/// ```
#[must_use = "a router does nothing until it serves"]
pub struct Router<H = DefaultHandler> {
    shared: Arc<Shared<H>>,
}

impl<H> Router<H> {
    fn new(shared: Shared<H>) -> Self {
        Router {
            shared: Arc::new(shared),
        }
    }
}

impl<H> Server<H> {
    fn new(
        router: Router<H>,
        listener: Bound,
        local_addr: Address,
        registrations: Registrations,
    ) -> Self {
        Server {
            router,
            listener,
            wrap: Identity,
            registrations,
            local_addr,
        }
    }

    /// Serves the bound listener through `wrap`, a listener of listeners: prpc-http's serves
    /// HTTP beside prpc on the same port this way.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # use prpc::transport::{Listener, WrapListener};
    /// # struct Announce;
    /// # impl WrapListener for Announce {
    /// #     type Listener<L: Listener> = L;
    /// #     fn wrap<L: Listener>(self, inner: L) -> L { inner }
    /// # }
    /// let server = prpc::Server::builder()
    ///     .bind("127.0.0.1:0")
    ///     .await?
    ///     .wrap_listener(Announce);
    /// # drop(server);
    /// # Ok(()) }
    /// ```
    pub fn wrap_listener<W: WrapListener>(self, wrap: W) -> Server<H, W> {
        Server {
            router: self.router,
            listener: self.listener,
            wrap,
            local_addr: self.local_addr,
            registrations: self.registrations,
        }
    }
}

impl<H> Clone for Router<H> {
    fn clone(&self) -> Self {
        Router {
            shared: self.shared.clone(),
        }
    }
}

/// The handler stack of a server without layers of its own: dedupe, stats, deadline, the
/// services.
pub type DefaultHandler = Dedupe<Stats<Deadline<Dispatch>>>;

/// Starts a server's graceful shutdown from anywhere; cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<Shutdown>);

impl ShutdownHandle {
    /// Stops accepting connections, sends goaway on every connection, lets in-flight calls
    /// finish within the grace period, then closes. [`Server::serve`] returns when done.
    pub fn shutdown(&self) {
        self.0.request();
    }
}

impl Server {
    /// A builder to add services, layers and limits.
    pub fn builder() -> Builder {
        Builder::new()
    }
}

impl<H: Handler, W: WrapListener> Server<H, W> {
    /// The address the server is bound to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> Address {
        self.local_addr.clone()
    }

    /// The server's services, layers and limits, to serve more streams with or to call in
    /// process (see [`Router`]).
    pub fn router(&self) -> Router<H> {
        self.router.clone()
    }

    /// A handle that triggers graceful shutdown.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.router.shutdown_handle()
    }

    /// Serves one more connection, over any stream, beside those the listener accepts (see
    /// [`Router::serve_connection`]).
    pub fn serve_connection(&self, stream: impl Io) -> impl Future<Output = ()> + Send + 'static {
        self.router.serve_connection(stream)
    }

    /// Serves until shut down through a [`ShutdownHandle`]. Returns once every connection has
    /// closed (at most the grace period after shutdown began).
    pub async fn serve(self) -> io::Result<()> {
        self.serve_with_shutdown(std::future::pending()).await
    }

    /// Serves until `signal` completes (or a [`ShutdownHandle`] fires), then shuts down
    /// gracefully.
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()>) -> io::Result<()> {
        let Server {
            router,
            listener,
            wrap,
            local_addr,
            registrations,
        } = self;
        if registrations.any() {
            // Shutdown withdraws the registrations before it drains (see accept_loop): set
            // before they start, so a shutdown asked for meanwhile waits for them too.
            router
                .shared
                .shutdown
                .deferred
                .store(true, Ordering::Release);
        }
        let registered = registrations.start(
            &local_addr,
            &router.shared.health,
            &router.shared.registrations,
        );
        router
            .accept_loop(wrap.wrap(listener), signal, registered)
            .await
    }
}

impl<H: Handler> Router<H> {
    /// A handle that triggers graceful shutdown of every connection this router serves.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shared.shutdown.clone())
    }

    /// The server's numbers now: calls by method and code, latency, connections (see
    /// [`crate::stats`]).
    pub fn stats(&self) -> ServerSnapshot {
        self.shared.stats.snapshot(
            self.shared.store.entries(),
            self.shared.config.memory_budget,
            self.shared.budget.held(),
        )
    }

    /// The server's registrations with registries ([`Builder::register`]) and where each
    /// stands; empty until the server serves (and for a router not bound by the builder).
    pub fn registrations(&self) -> Vec<RegistrationView> {
        self.shared.registrations.read()
    }

    /// Sets and reads what the server's [health service](crate::health) answers.
    pub fn health(&self) -> HealthReporter {
        self.shared.health.clone()
    }

    /// The services the server has and their methods, sorted by name (what the reflection
    /// service answers).
    pub fn services(&self) -> Vec<ServiceInfo> {
        reflection::list(
            self.shared
                .services
                .iter()
                .filter(|service| service.name() != reflection::SERVICE),
            true,
        )
    }

    /// Runs `request` for `service` in process, through the server's whole stack (your
    /// layers, dedupe, deadline) as if it had come over a connection: what a gateway that
    /// speaks another protocol calls. The request's `deadline` bounds it; its `format` must be
    /// one the service decodes. An unknown service is an `unimplemented` status.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # #[prpc::service] pub trait Ping { async fn ping(&self) -> u8; }
    /// # struct Pong;
    /// # impl Ping for Pong { async fn ping(&self) -> u8 { 1 } }
    /// use prpc::{Format, Request};
    /// let router = prpc::Server::builder().add_service(PingServer::new(Pong)).build();
    /// let request = Request::new("ping", Format::Json, "{}".into());
    /// let response = router.call("Ping", request).await?;
    /// assert_eq!(response.body, b"1");
    /// # Ok(()) }
    /// ```
    pub fn call(
        &self,
        service: &str,
        request: Request,
    ) -> impl Future<Output = Result<Response, Status>> + Send + 'static + use<H> {
        match self.shared.services.get(service) {
            Some(found) => Either::Right(self.shared.handler.call(found, request)),
            None => Either::Left(std::future::ready(Err(Status::unimplemented(format!(
                "no service named \"{service}\" on this server"
            ))))),
        }
    }

    /// Serves one connection over `stream` (any transport) until it closes; graceful
    /// shutdown ends it too. The server's `max_connections` does not count it: the caller
    /// decides which streams to serve. (`max_connections` counts the connections of each
    /// listener served.)
    pub fn serve_connection(&self, stream: impl Io) -> impl Future<Output = ()> + Send + 'static {
        connection::run(AnyStream::new(stream), None, self.shared.clone())
    }

    /// Serves the connections `listener` accepts until shut down through a
    /// [`ShutdownHandle`] (or until the listener has no more, and every connection has ended).
    pub async fn serve_with_listener(self, listener: impl Listener) -> io::Result<()> {
        self.accept_loop(listener, std::future::pending(), Vec::new())
            .await
    }

    /// Serves every connection `incoming` yields, as tonic's and axum's `serve_with_incoming`
    /// do (TLS streams from an acceptor of your own, streams from a test, ...).
    pub async fn serve_with_incoming<S, T>(self, incoming: S) -> io::Result<()>
    where
        S: Stream<Item = io::Result<T>> + Send + Unpin + 'static,
        T: Io,
    {
        self.serve_with_listener(Incoming(incoming)).await
    }

    /// Accepts until shutdown (the handle, or `signal`) or the listener's end, withdraws the
    /// server's registrations, then drains every connection within the grace period.
    async fn accept_loop<L: Listener>(
        self,
        mut listener: L,
        signal: impl Future<Output = ()>,
        registered: Vec<registration::Kept>,
    ) -> io::Result<()> {
        let shared = self.shared;
        let connections = Tasks::new();
        tokio::pin!(signal);
        // Withdrawing the server's registrations starts with shutdown, while connections are
        // still accepted: clients that have not heard yet are still served.
        let withdrawing = registration::withdraw(registered);
        tokio::pin!(withdrawing);
        let (mut stopping, mut withdrawn) = (false, false);
        // Whether the listener ended (no more connections will come), rather than shutdown.
        let listener_ended = loop {
            let accepted = tokio::select! {
                biased;
                _ = shared.shutdown.requested.cancelled(), if !stopping => {
                    stopping = true;
                    continue;
                }
                _ = &mut signal, if !stopping => {
                    stopping = true;
                    continue;
                }
                () = &mut withdrawing, if stopping => {
                    withdrawn = true;
                    break false;
                }
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(Some(accepted)) => accepted,
                Ok(None) => break true,
                Err(error) if one_connection_failed(&error) => {
                    tracing::debug!(%error, "a connection failed as it was accepted");
                    continue;
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if connections.len() >= shared.config.max_connections {
                let max = shared.config.max_connections;
                crate::task::spawn(refuse(stream, max, shared.config.max_frame_size));
                continue;
            }
            connections.spawn(connection::run(
                AnyStream::new(stream),
                peer,
                shared.clone(),
            ));
        };
        // Stops listening; what the listener serves itself (HTTP, with prpc-http) drains
        // beside the connections.
        let listener_done = listener.shut_down();
        tokio::pin!(listener_done);
        connections.close();
        if !withdrawn {
            withdrawing.await;
        }
        if listener_ended && !stopping {
            // Serve the open connections to their end, unless shutdown begins first.
            tokio::select! {
                () = connections.wait() => {
                    listener_done.await;
                    return Ok(());
                }
                _ = shared.shutdown.requested.cancelled() => {}
                _ = &mut signal => {}
            }
        }
        shared.shutdown.drain.cancel();
        // Each connection bounds its own drain by the grace period; this is a backstop.
        let backstop = shared
            .config
            .shutdown_grace
            .saturating_add(Duration::from_secs(1));
        let drained = async {
            tokio::join!(connections.wait(), &mut listener_done);
        };
        let _ = tokio::time::timeout(backstop, drained).await;
        // Deduplicated calls whose connection broke before: each got the grace from when the
        // drain began or its connection ended, whichever came later.
        shared.lingering.close();
        let _ = tokio::time::timeout(backstop, shared.lingering.wait()).await;
        // Handlers stopped past the grace period mark their outcomes unknown in the store,
        // retried while the store fails: those writes go out before serving returns (the
        // process may exit right after), for as long as the dedupe layer retries them.
        shared.settling.close();
        let settle_within = dedupe::background_bound(shared.store_timeout);
        let _ = tokio::time::timeout(settle_within, shared.settling.wait()).await;
        Ok(())
    }
}

/// Whether an accept error is one connection's (it went away, or its handshake failed), not
/// the listener's: the next accept may succeed at once.
fn one_connection_failed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::InvalidData
            | io::ErrorKind::Interrupted
            | io::ErrorKind::TimedOut
            | io::ErrorKind::UnexpectedEof
    )
}

/// Tells a connection over the limit why it is being closed.
async fn refuse(mut stream: impl AsyncWrite + Unpin, max_connections: usize, max_frame_size: u32) {
    let frame = Frame::goaway(
        Code::ResourceExhausted.as_u32(),
        format!("server is at max_connections {max_connections}"),
    );
    let mut buffer = BytesMut::new();
    if FrameCodec::with_max_frame_size(max_frame_size)
        .encode(frame, &mut buffer)
        .is_ok()
    {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = stream.write_all(&buffer).await;
            let _ = stream.shutdown().await;
        })
        .await;
    }
}
