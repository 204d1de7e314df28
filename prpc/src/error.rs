//! Errors a caller sees.

use std::fmt;
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
///
/// A call that failed after it was sent says under which request id and attempt it went
/// ([`request_id`](Error::request_id), [`attempt`](Error::attempt)). When its outcome is
/// unknown (a timeout, a lost connection, `unavailable`, `outcome_unknown`) and it was sent
/// for dedupe (it has a retry policy, or was sent under an id its caller chose),
/// [`resend_as`](Error::resend_as) gives the id and the next attempt to send it again
/// under: the server runs it at most once across its sends, and a resend of a call that ran
/// gets that run's reply (docs/PROTOCOL.md section 7.2).
///
/// ```no_run
/// # #[prpc::service] pub trait Bank { async fn deposit(&self, cents: u64) -> u64; }
/// # async fn demo(addr: std::net::SocketAddr) -> Result<u64, prpc::Error> {
/// use std::time::Duration;
/// use prpc::retry::RetryPolicy;
///
/// // A retry policy (even of one attempt) sends a call for dedupe.
/// let channel = prpc::Client::builder()
///     .retry(RetryPolicy::new(1))
///     .timeout(Duration::from_secs(2))
///     .connect(addr)
///     .await?;
/// let bank = BankClient::new(channel);
/// match bank.clone().deposit(500).await {
///     Ok(balance) => Ok(balance),
///     Err(error) => match error.resend_as() {
///         // Later (from this process or, with the id, from another), under the same id:
///         // the deposit is made at most once.
///         Some((request_id, attempt)) => {
///             bank.with_request_id(request_id, attempt).deposit(500).await
///         }
///         None => Err(error),
///     },
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The connection could not be opened.
    Connect {
        /// The address dialed.
        addr: String,
        /// What the socket said.
        source: Arc<io::Error>,
        /// Where an earlier attempt of the call went, when this was a retry's connection.
        sent: Option<SentAs>,
    },
    /// The text given as an address is not one.
    InvalidAddress(AddressError),
    /// The connection was not open within the connect timeout.
    ConnectTimeout {
        /// The address dialed.
        addr: String,
        /// The connect timeout.
        timeout: Duration,
        /// Where an earlier attempt of the call went, when this was a retry's connection.
        sent: Option<SentAs>,
    },
    /// The call's deadline passed before its reply arrived.
    Timeout {
        /// `service/method` of the call.
        method: String,
        /// The deadline the call had.
        timeout: Duration,
        /// The request id and attempt the call was last sent under.
        sent: Option<SentAs>,
    },
    /// The call was cancelled before it completed.
    Cancelled,
    /// The connection the call was on is gone.
    Closed {
        /// Why it closed.
        reason: Closed,
        /// The request id and attempt the call was sent under, if it was sent.
        sent: Option<SentAs>,
    },
    /// The peer broke the wire protocol.
    Protocol {
        /// What the peer sent wrong.
        error: Arc<WireError>,
        /// The request id and attempt the call was sent under, if it was sent.
        sent: Option<SentAs>,
    },
    /// The server answered with a status other than ok (the request id and attempt it
    /// answered are kept beside the status: see [`Error::request_id`]).
    Status(Status),
    /// A body could not be encoded, compressed, decompressed or decoded on this side.
    Body(BodyError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect { addr, source, .. } => write!(f, "connecting to {addr}: {source}"),
            Error::InvalidAddress(error) => fmt::Display::fmt(error, f),
            Error::ConnectTimeout { addr, timeout, .. } => {
                write!(f, "connecting to {addr}: no connection within {timeout:?}")
            }
            Error::Timeout {
                method, timeout, ..
            } => write!(f, "call to {method} timed out after {timeout:?}"),
            Error::Cancelled => f.write_str("call cancelled"),
            Error::Closed { reason, .. } => write!(f, "connection closed: {reason}"),
            Error::Protocol { error, .. } => write!(f, "protocol error: {error}"),
            Error::Status(status) => fmt::Display::fmt(status, f),
            Error::Body(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect { source, .. } => Some(&**source),
            // The two wrapped errors stand for this one (their text is its text), so their
            // source is its source.
            Error::InvalidAddress(error) => error.source(),
            Error::Body(error) => error.source(),
            Error::Closed { reason, .. } => Some(reason),
            Error::Protocol { error, .. } => Some(&**error),
            Error::ConnectTimeout { .. }
            | Error::Timeout { .. }
            | Error::Cancelled
            | Error::Status(_) => None,
        }
    }
}

impl From<AddressError> for Error {
    fn from(error: AddressError) -> Self {
        Error::InvalidAddress(error)
    }
}

impl From<BodyError> for Error {
    fn from(error: BodyError) -> Self {
        Error::Body(error)
    }
}

/// The request id and attempt a failed call was last sent under (see
/// [`Error::request_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SentAs {
    /// The call's request id: every attempt of a call carries the same one.
    pub request_id: u64,
    /// The highest attempt number sent.
    pub attempt: u32,
    /// Sent with the dedupe flag: the server runs the call at most once across sends under
    /// this id, so it may be resent under it.
    pub dedupe: bool,
}

impl SentAs {
    /// A call sent as `attempt` under `request_id`, with the dedupe flag or not.
    pub fn new(request_id: u64, attempt: u32, dedupe: bool) -> Self {
        SentAs {
            request_id,
            attempt,
            dedupe,
        }
    }
}

impl Error {
    /// A lost connection's error, before any call is named in it.
    pub(crate) fn closed(reason: Closed) -> Self {
        Error::Closed { reason, sent: None }
    }

    /// A protocol error, before any call is named in it.
    pub(crate) fn protocol(error: WireError) -> Self {
        Error::Protocol {
            error: Arc::new(error),
            sent: None,
        }
    }

    /// The status code that best describes the error, for logs and metrics: the server's code
    /// for [`Error::Status`], and the nearest code for local failures.
    pub fn code(&self) -> Code {
        match self {
            Error::Status(status) => status.code(),
            Error::Timeout { .. } => Code::DeadlineExceeded,
            Error::Cancelled => Code::Cancelled,
            Error::Connect { .. } | Error::ConnectTimeout { .. } | Error::Closed { .. } => {
                Code::Unavailable
            }
            Error::Protocol { .. } => Code::Internal,
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

    /// Where the call was last sent, if it was sent before it failed: filled in by prpc's
    /// client for every failure after a request went out (a status, a timeout, a lost
    /// connection, a protocol error, and a retry's failure to connect after an earlier
    /// attempt went out). `None` for a call that failed before any attempt was sent, and for
    /// [`Error::Cancelled`], [`Error::Body`] and [`Error::InvalidAddress`].
    ///
    /// Through a retry layer or a balanced [`Cluster`](crate::cluster::Cluster), every
    /// attempt (retries and backup requests alike) goes under the call's one request id, and
    /// the attempt given is the highest one sent.
    pub fn sent(&self) -> Option<SentAs> {
        match self {
            Error::Connect { sent, .. }
            | Error::ConnectTimeout { sent, .. }
            | Error::Timeout { sent, .. }
            | Error::Closed { sent, .. }
            | Error::Protocol { sent, .. } => *sent,
            Error::Status(status) => status.sent(),
            Error::Cancelled | Error::InvalidAddress(_) | Error::Body(_) => None,
        }
    }

    /// The request id the call was sent under, if it was sent (see [`sent`](Error::sent)).
    pub fn request_id(&self) -> Option<u64> {
        self.sent().map(|sent| sent.request_id)
    }

    /// The highest attempt number the call was sent as, if it was sent (see
    /// [`sent`](Error::sent)).
    pub fn attempt(&self) -> Option<u32> {
        self.sent().map(|sent| sent.attempt)
    }

    /// `(request id, next attempt)` to send the call again under, for a call sent with the
    /// dedupe flag: pass them to a generated client's `with_request_id`,
    /// [`CallOptions::request_id`](crate::CallOptions::request_id) or
    /// [`Call::resend_as`](crate::Call::resend_as). The server then runs the call at most
    /// once across all its sends. `None` for a call sent without the flag (an idempotent
    /// method, or one with no retry policy nor chosen id: a resend would run it again) or
    /// never sent.
    pub fn resend_as(&self) -> Option<(u64, u32)> {
        self.sent()
            .filter(|sent| sent.dedupe)
            .map(|sent| (sent.request_id, sent.attempt.saturating_add(1)))
    }

    /// This error, saying the call was sent as `sent` (replacing what it said before).
    /// Errors that cannot have arisen after a send are left as they are.
    pub(crate) fn sent_as(mut self, sent: SentAs) -> Self {
        match &mut self {
            Error::Connect { sent: slot, .. }
            | Error::ConnectTimeout { sent: slot, .. }
            | Error::Timeout { sent: slot, .. }
            | Error::Closed { sent: slot, .. }
            | Error::Protocol { sent: slot, .. } => *slot = Some(sent),
            Error::Status(status) => status.set_sent(sent),
            Error::Cancelled | Error::InvalidAddress(_) | Error::Body(_) => {}
        }
        self
    }

    /// This error, saying the call went out as attempt `attempt` or higher (an earlier
    /// attempt's error reported by a retry or a backup request that sent a later one).
    pub(crate) fn sent_at_least(self, request_id: u64, attempt: u32, dedupe: bool) -> Self {
        match self.sent() {
            Some(sent) if sent.attempt >= attempt => self,
            _ => self.sent_as(SentAs::new(request_id, attempt, dedupe)),
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
        // What a downstream call was sent under says nothing of the handler's own call.
        status.clear_sent();
        status.mark_passed_on();
        status
    }
}

/// Why a connection closed under pending calls.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Closed {
    /// The peer closed the connection.
    Eof,
    /// The socket failed.
    Io(Arc<io::Error>),
    /// The peer answered no ping within the keepalive timeout.
    Unresponsive(Duration),
    /// The peer sent goaway: it takes no new calls on this connection.
    GoAway {
        /// The goaway's status code.
        code: Code,
        /// The goaway's reason.
        message: String,
    },
    /// The client was shut down.
    ClientDropped,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Closed::Eof => f.write_str("the peer closed the connection"),
            Closed::Io(error) => write!(f, "i/o error: {error}"),
            Closed::Unresponsive(timeout) => {
                write!(f, "the peer answered no ping within {timeout:?}")
            }
            Closed::GoAway { code, message } => {
                write!(f, "the server is going away ({code}: {message})")
            }
            Closed::ClientDropped => f.write_str("the client was dropped"),
        }
    }
}

impl std::error::Error for Closed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Closed::Io(error) => Some(&**error),
            _ => None,
        }
    }
}
