//! In-process connections: a client and a server in one process, with no socket between them
//! (tests, and services that call each other in-process with the whole wire path).
//!
//! [`channel`] makes a [`MemoryConnector`] and the [`MemoryListener`] it dials: every
//! `connect` makes a new in-memory duplex stream and hands its other end to the listener, so a
//! client over it reconnects as it would over TCP.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # #[prpc::service] pub trait Ping { async fn ping(&self) -> u8; }
//! # struct Pong;
//! # impl Ping for Pong { async fn ping(&self) -> u8 { 1 } }
//! use prpc::transport::memory;
//!
//! let (connector, listener) = memory::channel();
//! let router = prpc::Server::builder().add_service(PingServer::new(Pong)).build();
//! tokio::spawn(router.serve_with_listener(listener));
//! let client = PingClient::new(
//!     prpc::Client::builder().connect_with(connector, "memory://ping").await?,
//! );
//! assert_eq!(client.ping().await?, 1);
//! # Ok(()) }
//! ```

use std::io;

use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use super::{Address, Connector, Listener};

/// Bytes each direction of an in-memory stream buffers before its writer waits.
pub const DEFAULT_BUFFER: usize = 256 * 1024;

/// Dials the [`MemoryListener`] it was made with; any `memory://` address reaches it.
#[derive(Debug, Clone)]
pub struct MemoryConnector {
    to_listener: mpsc::UnboundedSender<DuplexStream>,
    buffer: usize,
}

/// Accepts the connections its [`MemoryConnector`] dials.
#[derive(Debug)]
pub struct MemoryListener {
    from_connectors: mpsc::UnboundedReceiver<DuplexStream>,
}

/// A connector and the listener it dials, with [`DEFAULT_BUFFER`] bytes each way.
pub fn channel() -> (MemoryConnector, MemoryListener) {
    with_buffer(DEFAULT_BUFFER)
}

/// A connector and the listener it dials, buffering `buffer` bytes each way.
pub fn with_buffer(buffer: usize) -> (MemoryConnector, MemoryListener) {
    let (to_listener, from_connectors) = mpsc::unbounded_channel();
    (
        MemoryConnector {
            to_listener,
            buffer: buffer.max(1),
        },
        MemoryListener { from_connectors },
    )
}

impl Connector for MemoryConnector {
    type Io = DuplexStream;

    async fn connect(&self, address: &Address) -> io::Result<DuplexStream> {
        if !matches!(address, Address::Memory(_)) {
            return Err(super::wrong_transport(address, "memory"));
        }
        let (ours, theirs) = tokio::io::duplex(self.buffer);
        self.to_listener.send(theirs).map_err(|_| {
            io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("nothing listens on {address} any more"),
            )
        })?;
        Ok(ours)
    }
}

impl Listener for MemoryListener {
    type Io = DuplexStream;

    async fn accept(&mut self) -> io::Result<Option<(DuplexStream, Option<Address>)>> {
        Ok(self
            .from_connectors
            .recv()
            .await
            .map(|stream| (stream, None)))
    }
}
