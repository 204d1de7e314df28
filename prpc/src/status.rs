//! Call outcomes as they travel on the wire: a [`Code`] and a [`Status`].

use std::fmt;

use bytes::Bytes;

use crate::wire::Metadata;

/// Why a call did not succeed, as sent in a response or goaway frame.
///
/// Codes 0 to 16 mean what they mean in gRPC, so operators and tools read them the same way;
/// [`Code::Application`] is prpc's own: the handler returned its typed error, which travels
/// encoded in the [`Status::details`]; so is [`Code::OutcomeUnknown`], for a deduplicated
/// call whose outcome was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// Not an error.
    Ok,
    /// The caller cancelled the call.
    Cancelled,
    /// An error the peer could not classify, or a code this build does not know.
    Unknown,
    /// The request was malformed: undecodable body, unknown format or compression.
    InvalidArgument,
    /// The call's deadline passed before it finished.
    DeadlineExceeded,
    /// A requested entity was not found.
    NotFound,
    /// The entity a call tried to create exists.
    AlreadyExists,
    /// The caller may not do this.
    PermissionDenied,
    /// A limit was hit: in-flight calls, connections, memory.
    ResourceExhausted,
    /// The system is not in a state the call needs.
    FailedPrecondition,
    /// The call was aborted, typically by a concurrency conflict.
    Aborted,
    /// An argument was outside its valid range.
    OutOfRange,
    /// No such service or method on this server.
    Unimplemented,
    /// The server failed: a handler panicked, or an invariant broke.
    Internal,
    /// The server cannot take the call now (shutting down, dependency down); retrying may help.
    Unavailable,
    /// Data was lost or corrupted.
    DataLoss,
    /// The caller is not authenticated.
    Unauthenticated,
    /// The handler returned its application error; the error value is in the details.
    Application,
    /// prpc's own: a call marked for dedupe may have run, but its outcome was not recorded
    /// (the idempotency store failed, lost its state, or the server stopped the handler at
    /// shutdown), so this attempt did not run it again. Not retryable: the caller must find
    /// out by other means whether the call took effect.
    OutcomeUnknown,
}

impl Code {
    /// The code's number on the wire.
    pub const fn as_u32(self) -> u32 {
        match self {
            Code::Ok => 0,
            Code::Cancelled => 1,
            Code::Unknown => 2,
            Code::InvalidArgument => 3,
            Code::DeadlineExceeded => 4,
            Code::NotFound => 5,
            Code::AlreadyExists => 6,
            Code::PermissionDenied => 7,
            Code::ResourceExhausted => 8,
            Code::FailedPrecondition => 9,
            Code::Aborted => 10,
            Code::OutOfRange => 11,
            Code::Unimplemented => 12,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::DataLoss => 15,
            Code::Unauthenticated => 16,
            Code::Application => 100,
            Code::OutcomeUnknown => 101,
        }
    }

    /// The code with this number; numbers this build does not know read as [`Code::Unknown`].
    pub const fn from_u32(value: u32) -> Code {
        match value {
            0 => Code::Ok,
            1 => Code::Cancelled,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            100 => Code::Application,
            101 => Code::OutcomeUnknown,
            _ => Code::Unknown,
        }
    }

    /// The code's name as PROTOCOL.md spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "ok",
            Code::Cancelled => "cancelled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out_of_range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data_loss",
            Code::Unauthenticated => "unauthenticated",
            Code::Application => "application",
            Code::OutcomeUnknown => "outcome_unknown",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call's failure as the server reported it: code, message, and for
/// [`Code::Application`] the encoded application error.
///
/// ```
/// use prpc::{Code, Status};
/// let status = Status::new(Code::NotFound, "no user 42");
/// assert_eq!(status.to_string(), "not_found: no user 42");
/// ```
#[derive(Debug, Clone)]
pub struct Status {
    code: Code,
    message: String,
    details: Bytes,
    metadata: Metadata,
    /// Made from a [`crate::Error`]: a failed call of the handler's own, passed on (usually
    /// with `?`). Not sent; the dedupe layer reads it (docs/PROTOCOL.md section 7.2, rule 9).
    passed_on: bool,
    /// On the client: the request id and attempt the failed call was sent under (not sent,
    /// not compared; [`crate::Error::sent`] reads it).
    sent: Option<crate::error::SentAs>,
}

/// Statuses are equal by what travels: code, message, details and metadata.
impl PartialEq for Status {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.message == other.message
            && self.details == other.details
            && self.metadata == other.metadata
    }
}

impl Eq for Status {}

impl Status {
    /// A status with a code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
            details: Bytes::new(),
            metadata: Metadata::new(),
            passed_on: false,
            sent: None,
        }
    }

    /// Whether this status was made from a failed call's [`crate::Error`] (a downstream
    /// failure a handler passed on), rather than written by the handler.
    pub(crate) fn passed_on(&self) -> bool {
        self.passed_on
    }

    pub(crate) fn mark_passed_on(&mut self) {
        self.passed_on = true;
    }

    /// The request id and attempt of the failed call this status answered, on the client.
    pub(crate) fn sent(&self) -> Option<crate::error::SentAs> {
        self.sent
    }

    pub(crate) fn set_sent(&mut self, sent: crate::error::SentAs) {
        self.sent = Some(sent);
    }

    pub(crate) fn clear_sent(&mut self) {
        self.sent = None;
    }

    /// An application error: `details` is the error value encoded in the call's format.
    pub fn application(message: impl Into<String>, details: Bytes) -> Self {
        Status::new(Code::Application, message).with_details(details)
    }

    /// Shorthand for [`Code::InvalidArgument`].
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Status::new(Code::InvalidArgument, message)
    }

    /// Shorthand for [`Code::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Status::new(Code::Internal, message)
    }

    /// Shorthand for [`Code::Unimplemented`].
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Status::new(Code::Unimplemented, message)
    }

    /// Attaches encoded details (the body of the error response).
    pub fn with_details(mut self, details: Bytes) -> Self {
        self.details = details;
        self
    }

    /// Attaches metadata sent with the error response.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The encoded details: for [`Code::Application`], the application error value.
    pub fn details(&self) -> &Bytes {
        &self.details
    }

    /// Metadata sent with the error response.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Status {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_numbers() {
        for number in 0..=120 {
            let code = Code::from_u32(number);
            if code != Code::Unknown {
                assert_eq!(code.as_u32(), number);
            }
        }
        assert_eq!(
            Code::from_u32(Code::Application.as_u32()),
            Code::Application
        );
        assert_eq!(Code::from_u32(77), Code::Unknown);
    }
}
