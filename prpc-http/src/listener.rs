//! The listener that serves HTTP and prpc on one port: each connection's first byte tells
//! them apart (prpc frames begin with the magic byte, HTTP requests with a method's letters);
//! prpc connections, and HTTP connections that `CONNECT /_prpc`, go to the prpc server, the
//! rest to the HTTP side.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prpc::Code;
use prpc::server::Handler;
use prpc::transport::{Address, Io, Listener, Prefixed, WrapListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{App, Side};
use crate::head::{self, Refusal};
use crate::reply;
use crate::{CONNECT_PATH, Limits};

/// A connection for the prpc server, and its peer.
type Accepted<T> = (Prefixed<T>, Option<Address>);

/// What a server's listener is wrapped in by [`Http::attach`](crate::Http::attach): a
/// [`WrapListener`] that makes an [`HttpListener`] of it.
pub struct HttpLayer<H> {
    pub(crate) app: Arc<App<H>>,
    pub(crate) admin: Option<TcpListener>,
    pub(crate) main_port: bool,
    pub(crate) limits: Limits,
}

impl<H: Handler> WrapListener for HttpLayer<H> {
    type Listener<L: Listener> = HttpListener<L, H>;

    fn wrap<L: Listener>(self, inner: L) -> HttpListener<L, H> {
        let (ready_tx, ready) = mpsc::channel(64);
        let shared = Arc::new(Shared {
            app: self.app,
            limits: self.limits,
            main_connections: Arc::new(Semaphore::new(self.limits.max_connections)),
            admin_connections: Arc::new(Semaphore::new(self.limits.max_connections)),
            closing: CancellationToken::new(),
        });
        HttpListener {
            inner,
            inner_done: false,
            admin: self.admin,
            main_port: self.main_port,
            sniffing: Arc::new(Semaphore::new(self.limits.max_pending)),
            ready_tx: Some(ready_tx),
            ready,
            tasks: TaskTracker::new(),
            shared,
        }
    }
}

/// What every task of one listener reads.
struct Shared<H> {
    app: Arc<App<H>>,
    limits: Limits,
    /// HTTP connections being served on the server's port, and on the admin listener: apart,
    /// so that the public port cannot crowd out the admin listener's health checks.
    main_connections: Arc<Semaphore>,
    admin_connections: Arc<Semaphore>,
    /// Cancelled when the listener goes (the server is shutting down): HTTP connections
    /// finish the request they are on and close.
    closing: CancellationToken,
}

/// A [`Listener`] serving prpc and HTTP on the same port (and HTTP alone on an admin
/// listener): made by [`HttpLayer`]. It hands the server the prpc connections, whether they
/// spoke prpc from their first byte or after `CONNECT /_prpc`, and serves HTTP itself.
/// Telling them apart takes place off the accept path, at most
/// [`Http::max_pending`](crate::Http::max_pending) at a time; a connection accepted while
/// that many are pending, or silent for [`Http::first_byte_timeout`](crate::Http::first_byte_timeout),
/// is taken for prpc (whose clients may well wait before their first call), so that silent
/// sockets never stop the port from accepting.
pub struct HttpListener<L: Listener, H> {
    inner: L,
    inner_done: bool,
    admin: Option<TcpListener>,
    main_port: bool,
    /// Connections whose protocol is not known yet.
    sniffing: Arc<Semaphore>,
    /// Dropped when the inner listener ends, so that `ready` ends once the connections still
    /// being told apart are done.
    ready_tx: Option<mpsc::Sender<Accepted<L::Io>>>,
    ready: mpsc::Receiver<Accepted<L::Io>>,
    /// The tasks telling connections apart and serving HTTP: the server's shutdown waits for
    /// them ([`Listener::shut_down`]).
    tasks: TaskTracker,
    shared: Arc<Shared<H>>,
}

impl<L: Listener, H> Drop for HttpListener<L, H> {
    fn drop(&mut self) {
        self.shared.closing.cancel();
    }
}

impl<L: Listener, H: Handler> Listener for HttpListener<L, H> {
    type Io = Prefixed<L::Io>;

    // Cancel-safe, as the server's accept loop needs: every future raced here is.
    async fn accept(&mut self) -> io::Result<Option<Accepted<L::Io>>> {
        loop {
            tokio::select! {
                biased;
                ready = self.ready.recv() => return Ok(ready),
                accepted = self.inner.accept(), if !self.inner_done => {
                    let Some((stream, peer)) = accepted? else {
                        self.inner_done = true;
                        self.ready_tx = None;
                        continue;
                    };
                    let sniffing = self.main_port.then(|| self.sniffing.clone().try_acquire_owned().ok()).flatten();
                    let (Some(permit), Some(ready)) = (sniffing, &self.ready_tx) else {
                        // HTTP is off on this port, or too many connections are pending:
                        // prpc, as a plain server would take it.
                        return Ok(Some((Prefixed::new(Bytes::new(), stream), peer)));
                    };
                    self.tasks.spawn(sniff(stream, peer, permit, ready.clone(), self.shared.clone()));
                }
                accepted = accept_admin(&self.admin), if self.admin.is_some() => {
                    match accepted {
                        Ok((stream, peer)) => {
                            let stream = Prefixed::new(Bytes::new(), stream);
                            let peer = Some(Address::from(peer));
                            let no_connect: Option<mpsc::Sender<Accepted<tokio::net::TcpStream>>> = None;
                            self.tasks.spawn(serve_http(stream, peer, Side::Admin, no_connect, self.shared.clone()));
                        }
                        Err(error) => {
                            // Out of file descriptors and the like: back off, as the
                            // server's own accept loop does, rather than spin.
                            tracing::warn!(%error, "the admin listener's accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }
    }

    fn shut_down(self) -> impl std::future::Future<Output = ()> + Send {
        // Stop listening at once; the HTTP connections finish the request they are on.
        self.shared.closing.cancel();
        let tasks = self.tasks.clone();
        drop(self);
        tasks.close();
        async move { tasks.wait().await }
    }
}

async fn accept_admin(
    admin: &Option<TcpListener>,
) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match admin {
        Some(admin) => admin.accept().await,
        None => std::future::pending().await,
    }
}

/// Reads a connection's first bytes and sends it where it belongs.
async fn sniff<T: Io, H: Handler>(
    mut stream: T,
    peer: Option<Address>,
    permit: OwnedSemaphorePermit,
    ready: mpsc::Sender<Accepted<T>>,
    shared: Arc<Shared<H>>,
) {
    let limits = shared.limits;
    let mut first = BytesMut::with_capacity(1024);
    match tokio::time::timeout(limits.first_byte_timeout, stream.read_buf(&mut first)).await {
        Ok(Ok(read)) if read > 0 => {}
        // Silent: an HTTP client speaks first, a prpc client may wait for its first call.
        Err(_) => {
            drop(permit);
            let _ = ready
                .send((Prefixed::new(Bytes::new(), stream), peer))
                .await;
            return;
        }
        // Closed or failed: nothing to serve.
        Ok(_) => return,
    }
    if !first[0].is_ascii_uppercase() {
        drop(permit);
        // prpc (or garbage, which the prpc connection refuses with its own error).
        let _ = ready
            .send((Prefixed::new(first.freeze(), stream), peer))
            .await;
        return;
    }
    let head_limits = head::HeadLimits {
        max_bytes: limits.max_header_bytes,
        max_headers: limits.max_headers,
        timeout: limits.header_timeout,
    };
    match head::read(&mut stream, first.freeze(), &head_limits).await {
        Ok(read) => {
            drop(permit);
            serve_http(
                Prefixed::new(read, stream),
                peer,
                Side::Main,
                Some(ready),
                shared,
            )
            .await;
        }
        Err(refusal) => refuse(&mut stream, &refusal).await,
    }
}

/// Writes a refusal and closes, within a second.
async fn refuse<T: Io>(stream: &mut T, refusal: &Refusal) {
    let response = refusal.response();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let _ = stream.write_all(&response).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Serves HTTP on one connection; `CONNECT /_prpc` hands it to `ready`.
async fn serve_http<T: Io, H: Handler>(
    mut stream: Prefixed<T>,
    peer: Option<Address>,
    side: Side,
    ready: Option<mpsc::Sender<Accepted<T>>>,
    shared: Arc<Shared<H>>,
) {
    let connections = match side {
        Side::Main => &shared.main_connections,
        Side::Admin => &shared.admin_connections,
    };
    let Ok(_permit) = connections.clone().try_acquire_owned() else {
        let refusal = Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: format!(
                "the server has {} HTTP connections open already",
                shared.limits.max_connections
            ),
        };
        refuse(&mut stream, &refusal).await;
        return;
    };
    let socket = peer.as_ref().and_then(socket_addr);
    let app = shared.app.clone();
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let app = app.clone();
        let ready = ready.clone();
        let peer = peer.clone();
        async move {
            if request.method() == Method::CONNECT {
                return Ok::<_, Infallible>(connect(request, ready, peer));
            }
            Ok(app.handle(side, request, socket).await)
        }
    });
    let limits = shared.limits;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => {
            if let Err(error) = served {
                tracing::debug!(%error, "an HTTP connection failed");
            }
        }
        () = shared.closing.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(limits.header_timeout, connection).await;
        }
    }
}

/// `CONNECT /_prpc`: answers 200 and hands the connection to the prpc server once hyper lets
/// go of it.
fn connect<T: Io>(
    mut request: hyper::Request<Incoming>,
    ready: Option<mpsc::Sender<Accepted<T>>>,
    peer: Option<Address>,
) -> reply::Response {
    let Some(ready) = ready else {
        return reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::Unimplemented,
            "CONNECT is served on the server's port, not here",
        );
    };
    let uri = request.uri();
    if uri.authority().is_some() || uri.path() != CONNECT_PATH {
        return reply::error(
            StatusCode::NOT_FOUND,
            Code::NotFound,
            &format!(
                "this server is not a proxy: CONNECT {CONNECT_PATH} speaks prpc, nothing else"
            ),
        );
    }
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "a CONNECT upgrade failed");
                return;
            }
        };
        match upgraded.downcast::<TokioIo<Prefixed<T>>>() {
            Ok(parts) => {
                let mut stream = parts.io.into_inner();
                stream.unread(parts.read_buf);
                let _ = ready.send((stream, peer)).await;
            }
            Err(_) => tracing::error!("a CONNECT upgrade gave another stream type"),
        }
    });
    hyper::Response::new(reply::Body::default())
}

/// The socket address of a TCP or TLS peer.
fn socket_addr(address: &Address) -> Option<SocketAddr> {
    match address {
        Address::Tcp { host, port } | Address::Tls { host, port } => {
            let ip = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()?;
            Some(SocketAddr::new(ip, *port))
        }
        _ => None,
    }
}
