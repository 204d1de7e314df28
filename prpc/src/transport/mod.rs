//! Transports: the byte streams prpc's frames travel over.
//!
//! Client and server connections run over any [`Io`] (an `AsyncRead + AsyncWrite` stream). A
//! [`Connector`] dials one: [`TcpConnector`], [`UnixConnector`], TLS with the `tls` feature,
//! [`memory`] in-process. A [`Listener`] accepts them: tokio's `TcpListener` and
//! `UnixListener`, TLS, an in-process [`memory::MemoryListener`], or any stream of
//! connections through [`Incoming`]. Addresses are written as text ([`Address`]):
//! `tcp://host:port`, `unix:///path`, `tls://host:port`, or a bare `host:port` (TCP).
//! TLS, with the `tls` feature, is the `tls` module: rustls on the ring provider, and a
//! listener that runs handshakes off its accept path.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # #[prpc::service] pub trait Ping { async fn ping(&self) -> u8; }
//! # struct Pong;
//! # impl Ping for Pong { async fn ping(&self) -> u8 { 1 } }
//! // A server on a Unix socket, and a client that dials it.
//! let dir = std::env::temp_dir().join(format!("prpc-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let address = format!("unix://{}", dir.join("ping.sock").display());
//! let server = prpc::Server::builder()
//!     .add_service(PingServer::new(Pong))
//!     .bind(&address)
//!     .await?;
//! tokio::spawn(server.serve());
//! let client = PingClient::connect(&address).await?;
//! assert_eq!(client.ping().await?, 1);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```

mod address;
pub mod memory;
mod prefixed;
pub(crate) mod stream;
#[cfg(feature = "tls")]
pub mod tls;

use std::future::Future;
use std::io;
use std::pin::Pin;

use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use address::{Address, AddressError, IntoAddress};
pub use prefixed::Prefixed;
pub(crate) use stream::AnyStream;

/// A byte stream a connection runs over: anything `AsyncRead + AsyncWrite + Send + Unpin`.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Dials a connection to an [`Address`]: what a client uses to open (and reopen) its
/// connection.
///
/// ```
/// use prpc::transport::{Address, Connector, TcpConnector};
/// # async fn demo() -> std::io::Result<()> {
/// let stream = TcpConnector.connect(&Address::tcp("127.0.0.1", 7000)).await?;
/// # Ok(()) }
/// ```
pub trait Connector: Send + Sync + 'static {
    /// The stream a connection runs over.
    type Io: Io;

    /// Opens a stream to `address`. An address of a transport this connector does not speak
    /// is an [`io::ErrorKind::InvalidInput`] error.
    fn connect(&self, address: &Address) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

/// Accepts connections: what a server serves.
pub trait Listener: Send + 'static {
    /// The stream a connection runs over.
    type Io: Io;

    /// The next connection, and the peer's address when the transport knows it; `Ok(None)`
    /// means no connection will come any more. The server logs an error and accepts again:
    /// at once after one connection's failure (reset, aborted, invalid data, timed out), a
    /// moment later after any other (out of file descriptors, say).
    fn accept(
        &mut self,
    ) -> impl Future<Output = io::Result<Option<(Self::Io, Option<Address>)>>> + Send;

    /// Stops listening, when the server's graceful shutdown drains: the returned future ends
    /// once whatever the listener serves itself (prpc-http's HTTP connections, say) has
    /// finished; the server waits for it beside its own connections, within the grace
    /// period. By default it closes the listener at once and has nothing to wait for.
    fn shut_down(self) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        drop(self);
        std::future::ready(())
    }
}

/// Wraps the listener a [`Server`](crate::Server) binds in another listener: a listener that
/// tells HTTP from prpc on the same port, say (prpc-http's). Given to
/// [`Server::wrap_listener`](crate::Server::wrap_listener); the server calls
/// [`wrap`](WrapListener::wrap) once, when it starts serving, with the listener of the
/// address's transport (TCP, Unix or TLS: one listener type for the three, whose stream is
/// whichever the address names).
///
/// ```
/// use prpc::transport::{Listener, WrapListener};
///
/// /// Serves the listener as it is, logging that it starts.
/// struct Announce;
///
/// impl WrapListener for Announce {
///     type Listener<L: Listener> = L;
///     fn wrap<L: Listener>(self, inner: L) -> L {
///         println!("serving");
///         inner
///     }
/// }
/// ```
pub trait WrapListener: Send + 'static {
    /// The wrapping listener.
    type Listener<L: Listener>: Listener;

    /// Wraps `inner`.
    fn wrap<L: Listener>(self, inner: L) -> Self::Listener<L>;
}

/// The listener as it is.
impl WrapListener for crate::layer::Identity {
    type Listener<L: Listener> = L;

    fn wrap<L: Listener>(self, inner: L) -> L {
        inner
    }
}

/// Dials TCP (`tcp://` and bare `host:port` addresses), with Nagle's algorithm off: calls are
/// small and latency-bound, and prpc's writers already batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    type Io = TcpStream;

    async fn connect(&self, address: &Address) -> io::Result<TcpStream> {
        let Address::Tcp { host, port } = address else {
            return Err(wrong_transport(address, "tcp"));
        };
        let stream = TcpStream::connect((host.as_str(), *port)).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// Dials Unix domain sockets (`unix://` addresses).
#[cfg(unix)]
#[derive(Debug, Clone, Copy, Default)]
pub struct UnixConnector;

#[cfg(unix)]
impl Connector for UnixConnector {
    type Io = tokio::net::UnixStream;

    async fn connect(&self, address: &Address) -> io::Result<tokio::net::UnixStream> {
        let Address::Unix(path) = address else {
            return Err(wrong_transport(address, "unix"));
        };
        tokio::net::UnixStream::connect(path).await
    }
}

/// The error of a connector given an address of another transport.
pub(crate) fn wrong_transport(address: &Address, expected: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("a {expected} connector cannot dial {address}"),
    )
}

impl Listener for tokio::net::TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<Option<(TcpStream, Option<Address>)>> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        // A socket that refuses the option (reset already, say) still gets served, or fails
        // on its own.
        let _ = stream.set_nodelay(true);
        Ok(Some((stream, Some(peer.into()))))
    }
}

#[cfg(unix)]
impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;

    async fn accept(&mut self) -> io::Result<Option<(tokio::net::UnixStream, Option<Address>)>> {
        let (stream, peer) = tokio::net::UnixListener::accept(self).await?;
        let peer = peer.as_pathname().map(|path| Address::Unix(path.into()));
        Ok(Some((stream, peer)))
    }
}

/// Any stream of connections as a [`Listener`] (what `serve_with_incoming` serves): each item
/// is a connection or an accept error; the end of the stream ends accepting. (Pin a stream
/// that is not `Unpin` with `Box::pin`.)
#[derive(Debug)]
pub struct Incoming<S>(pub S);

impl<S, T> Listener for Incoming<S>
where
    S: Stream<Item = io::Result<T>> + Send + Unpin + 'static,
    T: Io,
{
    type Io = T;

    async fn accept(&mut self) -> io::Result<Option<(T, Option<Address>)>> {
        match std::future::poll_fn(|cx| Pin::new(&mut self.0).poll_next(cx)).await {
            Some(Ok(io)) => Ok(Some((io, None))),
            Some(Err(error)) => Err(error),
            None => Ok(None),
        }
    }
}
