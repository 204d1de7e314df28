//! The client: one TCP connection carrying many concurrent calls.
//!
//! A [`Client`] owns a writer task, which drains queued frames and writes each batch with one
//! `write` and no per-frame flush, and a reader task, which completes pending calls as their
//! responses arrive and keeps the connection honest with pings. Calls wait in a map keyed by
//! request id. Dropping the last clone of a client (and every call started on it) ends both
//! tasks and closes the socket.

mod builder;
mod connection;
mod pending;

use std::fmt;
use std::sync::Arc;

pub use builder::Builder;
pub use pending::PendingCall;

use crate::{Call, CallOptions, Channel, Error, Reply};
use connection::Connection;

/// A connection to one server, shared by every clone.
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
    connection: Arc<Connection>,
}

impl Client {
    /// Connects with default settings.
    pub async fn connect<A>(addr: A) -> Result<Client, Error>
    where
        A: tokio::net::ToSocketAddrs + fmt::Display,
    {
        Builder::new().connect(addr).await
    }

    /// A builder for a client with non-default settings.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Sends a call and waits for its reply.
    ///
    /// Dropping the returned future before it completes cancels the call: the pending entry
    /// is removed and the server is told to stop the handler.
    pub async fn call(&self, call: Call) -> Result<Reply, Error> {
        self.start(call)?.await
    }

    /// Sends a call now and returns a handle to await its reply later (the `Go` style of the
    /// original). The request is queued for the socket before this returns. Dropping the
    /// handle cancels the call.
    pub fn start(&self, call: Call) -> Result<PendingCall, Error> {
        Connection::start(&self.connection, call)
    }

    /// The server's address.
    pub fn peer_addr(&self) -> std::net::SocketAddr {
        self.connection.peer_addr
    }

    /// Whether the connection can take new calls (it has not closed nor received goaway).
    pub fn is_open(&self) -> bool {
        self.connection.close_reason().is_none()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("peer_addr", &self.connection.peer_addr)
            .field("open", &self.is_open())
            .finish()
    }
}

impl Channel for Client {
    fn default_options(&self) -> &CallOptions {
        &self.connection.config.defaults
    }

    fn call(&self, call: Call) -> impl Future<Output = Result<Reply, Error>> + Send {
        Client::call(self, call)
    }
}
