//! What a handler can know about the call it is serving: request id, attempt, deadline,
//! metadata, the address of the client.
//!
//! The server runs every handler inside its call's [`Context`], so a handler (generated from
//! a trait, or a hand-written [`Service`](crate::Service)) reads it without changing its
//! signature:
//!
//! ```
//! #[prpc::service]
//! pub trait Whoami {
//!     async fn tenant(&self) -> String;
//! }
//!
//! struct Tenants;
//!
//! impl Whoami for Tenants {
//!     async fn tenant(&self) -> String {
//!         prpc::context::current()
//!             .and_then(|call| call.metadata.get("tenant"))
//!             .map(|value| String::from_utf8_lossy(&value).into_owned())
//!             .unwrap_or_default()
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = prpc::Server::builder().add_service(WhoamiServer::new(Tenants)).bind("127.0.0.1:0").await?;
//! let addr = server.local_addr();
//! tokio::spawn(server.serve());
//! let client = WhoamiClient::connect(addr).await?
//!     .with_options(prpc::CallOptions::new().metadata("tenant", "acme"));
//! assert_eq!(client.tenant().await?, "acme");
//! # Ok(()) }
//! ```

use std::cell::RefCell;
use std::mem;
use std::net::SocketAddr;
use std::thread::LocalKey;
use std::time::Instant;

use crate::wire::Metadata;

thread_local! {
    /// The context of the handler being polled on this thread, if any.
    static CURRENT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// The call a handler is serving.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Context {
    /// The call's request id (the same on every attempt of a retried call).
    pub request_id: u64,
    /// Which attempt this is (0 for the first).
    pub attempt: u32,
    /// When the caller stops waiting, if it set a deadline.
    pub deadline: Option<Instant>,
    /// The caller's metadata.
    pub metadata: Metadata,
    /// The IP address and port the call's connection came from, as the server's socket saw
    /// it: set for TCP and TLS connections the server accepted, `None` on a Unix socket, an
    /// in-memory stream, or a stream given to `serve_connection` (whose peer the server does
    /// not know). A proxy in between is the peer here; the client behind it is not.
    ///
    /// ```
    /// #[prpc::service]
    /// pub trait Whoami {
    ///     async fn peer(&self) -> String;
    /// }
    ///
    /// struct Peers;
    ///
    /// impl Whoami for Peers {
    ///     async fn peer(&self) -> String {
    ///         prpc::context::current()
    ///             .and_then(|call| call.peer)
    ///             .map(|peer| peer.to_string())
    ///             .unwrap_or_default()
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = prpc::Server::builder().add_service(WhoamiServer::new(Peers)).bind("127.0.0.1:0").await?;
    /// let addr = server.local_addr().socket_addr().unwrap();
    /// tokio::spawn(server.serve());
    /// // Dialed here, so that the client's own address is known.
    /// let stream = tokio::net::TcpStream::connect(addr).await?;
    /// let local = stream.local_addr()?;
    /// let client = WhoamiClient::new(prpc::Client::builder().from_stream(stream));
    /// assert_eq!(client.peer().await?, local.to_string());
    /// # Ok(()) }
    /// ```
    pub peer: Option<SocketAddr>,
}

/// The context of the call the current task is serving, or `None` outside a handler.
pub fn current() -> Option<Context> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

/// Runs `poll` (one poll of a handler) with `slot`'s context as the [`current`] one, and puts
/// it back in `slot` afterwards, panic or not. Moving the context in and out costs no clone,
/// so a handler's future can keep its context across polls and tasks.
pub(crate) fn enter<R>(slot: &mut Option<Context>, poll: impl FnOnce() -> R) -> R {
    enter_local(&CURRENT, slot, poll)
}

/// Runs `poll` with `slot`'s value in the thread local `cell`, and puts it back in `slot`
/// afterwards, panic or not: what [`enter`] does for the call's context, for any value a
/// handler's future carries across polls (its trace, in [`trace`](crate::trace)).
pub(crate) fn enter_local<T: 'static, R>(
    cell: &'static LocalKey<RefCell<Option<T>>>,
    slot: &mut Option<T>,
    poll: impl FnOnce() -> R,
) -> R {
    /// Swaps the value back out of the thread when the poll ends, even by unwinding.
    struct Restore<'a, T: 'static>(&'static LocalKey<RefCell<Option<T>>>, &'a mut Option<T>);

    impl<T> Drop for Restore<'_, T> {
        fn drop(&mut self) {
            swap(self.0, self.1);
        }
    }

    fn swap<T>(cell: &'static LocalKey<RefCell<Option<T>>>, slot: &mut Option<T>) {
        // Only `enter_local` borrows the cell mutably, and never across the poll, so the
        // borrow cannot fail; a thread being torn down has no handler to run.
        let _ = cell.try_with(|current| mem::swap(&mut *current.borrow_mut(), slot));
    }

    swap(cell, slot);
    let _restore = Restore(cell, slot);
    poll()
}
