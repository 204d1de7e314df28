//! The server: accepts connections and dispatches their calls to registered services.
//!
//! Each connection has a reader (this module's connection loop), a writer task that sends
//! every queued response in one write, and one task per call that has to wait (on a runtime
//! with one worker thread, a handler that finishes when first polled runs on the reader and
//! needs no task; the reader then lets the writer send every 16 such replies, so that a
//! client that sent many calls at once gets the first answers while the rest run). Limits — connections, in-flight calls per
//! connection, frame size, idle time — are answered with a status or a goaway, never a crash.

mod builder;
mod connection;
mod dedupe;
mod dispatch;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Encoder;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use builder::Builder;
use builder::ServerConfig;
use dispatch::Services;

use crate::status::Code;
use crate::wire::{Frame, FrameCodec};

/// A bound server, ready to [`serve`](Server::serve).
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
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

/// What every connection of a server reads.
struct Shared {
    services: Services,
    config: ServerConfig,
    dedupe: dedupe::Dedupe,
    /// Call deadlines and idle checks of every connection.
    timer: crate::timer::Timer,
    /// Cancelled to begin graceful shutdown.
    shutdown: CancellationToken,
}

/// Starts a server's graceful shutdown from anywhere; cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    /// Stops accepting connections, sends goaway on every connection, lets in-flight calls
    /// finish within the grace period, then closes. [`Server::serve`] returns when done.
    pub fn shutdown(&self) {
        self.0.cancel();
    }
}

impl Server {
    /// A builder to add services and set limits.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The address the server is bound to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that triggers graceful shutdown.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shared.shutdown.clone())
    }

    /// Serves until shut down through a [`ShutdownHandle`]. Returns once every connection has
    /// closed (at most the grace period after shutdown began).
    pub async fn serve(self) -> io::Result<()> {
        let shutdown = self.shared.shutdown.clone();
        self.serve_with_shutdown(async move { shutdown.cancelled().await })
            .await
    }

    /// Serves until `signal` completes (or a [`ShutdownHandle`] fires), then shuts down
    /// gracefully.
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()>) -> io::Result<()> {
        let Server {
            listener, shared, ..
        } = self;
        let connections = TaskTracker::new();
        tokio::pin!(signal);
        loop {
            let accepted = tokio::select! {
                biased;
                _ = shared.shutdown.cancelled() => break,
                _ = &mut signal => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if connections.len() >= shared.config.max_connections {
                let max = shared.config.max_connections;
                tokio::spawn(refuse(stream, max, shared.config.max_frame_size));
                continue;
            }
            connections.spawn(connection::run(stream, peer, shared.clone()));
        }
        drop(listener);
        shared.shutdown.cancel();
        connections.close();
        // Each connection bounds its own drain by the grace period; this is a backstop.
        let backstop = shared.config.shutdown_grace + Duration::from_secs(1);
        let _ = tokio::time::timeout(backstop, connections.wait()).await;
        Ok(())
    }
}

/// Tells a connection over the limit why it is being closed.
async fn refuse(mut stream: TcpStream, max_connections: usize, max_frame_size: u32) {
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
