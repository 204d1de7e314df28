//! Errors a caller sees.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::body::BodyError;
use crate::status::Code;
use crate::status::Status;
use crate::transport::AddressError;
use crate::wire::WireError;

/// Result of a call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a call failed.
///
/// Errors the server reported arrive as [`Error::Status`]; the other variants arose on the
/// caller's side of the connection. `Error` is `Clone` because one broken connection fails
/// every call pending on it with the same error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection could not be opened.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// The address dialed.
        addr: String,
        /// What the socket said.
        source: Arc<io::Error>,
    },
    /// The text given as an address is not one.
    #[error(transparent)]
    InvalidAddress(#[from] AddressError),
    /// The connection was not open within the connect timeout.
    #[error("connecting to {addr}: no connection within {timeout:?}")]
    ConnectTimeout {
        /// The address dialed.
        addr: String,
        /// The connect timeout.
        timeout: Duration,
    },
    /// The call's deadline passed before its reply arrived.
    #[error("call to {method} timed out after {timeout:?}")]
    Timeout {
        /// `service/method` of the call.
        method: String,
        /// The deadline the call had.
        timeout: Duration,
    },
    /// The call was cancelled before it completed.
    #[error("call cancelled")]
    Cancelled,
    /// The connection the call was on is gone.
    #[error("connection closed: {0}")]
    Closed(#[source] Closed),
    /// The peer broke the wire protocol.
    #[error("protocol error: {0}")]
    Protocol(#[source] Arc<WireError>),
    /// The server answered with a status other than ok.
    #[error("{0}")]
    Status(Status),
    /// A body could not be encoded, compressed, decompressed or decoded on this side.
    #[error(transparent)]
    Body(#[from] BodyError),
}

impl Error {
    /// The status code that best describes the error, for logs and metrics: the server's code
    /// for [`Error::Status`], and the nearest code for local failures.
    pub fn code(&self) -> Code {
        match self {
            Error::Status(status) => status.code(),
            Error::Timeout { .. } => Code::DeadlineExceeded,
            Error::Cancelled => Code::Cancelled,
            Error::Connect { .. } | Error::ConnectTimeout { .. } | Error::Closed(_) => {
                Code::Unavailable
            }
            Error::Protocol(_) => Code::Internal,
            Error::Body(_) | Error::InvalidAddress(_) => Code::InvalidArgument,
        }
    }

    /// The server's status, if the server answered.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Status(status) => Some(status),
            _ => None,
        }
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Error::Status(status)
    }
}

/// The status a handler answers for an error it met: the status itself for
/// [`Error::Status`], else the error's [`code`](Error::code) and text. So a handler that reads
/// a client's stream can use `?` on its items:
///
/// ```
/// async fn total(mut items: prpc::Streaming<u64>) -> Result<u64, prpc::Status> {
///     let mut total = 0;
///     while let Some(item) = items.message().await? {
///         total += item;
///     }
///     Ok(total)
/// }
/// # let sum = tokio::runtime::Builder::new_current_thread().build().unwrap()
/// #     .block_on(total(prpc::Streaming::from_iter([1, 2, 3])));
/// # assert_eq!(sum.unwrap(), 6);
/// ```
/// A failed call as the status a handler answers with when it passes the failure on (`?`):
/// the server's status as it was, or the nearest code for a local failure. The status
/// remembers that it was passed on, so that the dedupe layer never takes a downstream
/// `unavailable` for the handler's own "did not run" (docs/PROTOCOL.md section 7.2, rule 9).
impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let mut status = match error {
            Error::Status(status) => status,
            other => Status::new(other.code(), other.to_string()),
        };
        status.mark_passed_on();
        status
    }
}

/// Why a connection closed under pending calls.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Closed {
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Eof,
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[source] Arc<io::Error>),
    /// The peer answered no ping within the keepalive timeout.
    #[error("the peer answered no ping within {0:?}")]
    Unresponsive(Duration),
    /// The peer sent goaway: it takes no new calls on this connection.
    #[error("the server is going away ({code}: {message})")]
    GoAway {
        /// The goaway's status code.
        code: Code,
        /// The goaway's reason.
        message: String,
    },
    /// The client was shut down.
    #[error("the client was dropped")]
    ClientDropped,
}
