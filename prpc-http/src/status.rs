//! prpc status codes as HTTP statuses, and the JSON error body the gateway answers with.

use bytes::Bytes;
use hyper::StatusCode;
use prpc::{Code, Status};
use serde::Serialize;

/// The HTTP status a prpc status code answers as, as grpc-gateway maps gRPC's codes (prpc's
/// codes 0–16 are gRPC's). [`Code::Application`], a method's own error, is
/// `422 Unprocessable Entity`: the call was understood and refused by the application.
///
/// ```
/// use prpc::Code;
/// use prpc_http::http_status;
/// assert_eq!(http_status(Code::NotFound).as_u16(), 404);
/// assert_eq!(http_status(Code::DeadlineExceeded).as_u16(), 504);
/// assert_eq!(http_status(Code::ResourceExhausted).as_u16(), 429);
/// ```
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        // nginx's "client closed request": the caller went away.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Application => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The body of every error the HTTP side answers: `{"code": "not_found", "message": "..."}`,
/// with the application's error value as `details` when a method returned its own error.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody<'a> {
    pub(crate) code: &'a str,
    pub(crate) message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) details: Option<&'a serde_json::value::RawValue>,
}

impl ErrorBody<'_> {
    pub(crate) fn to_bytes(&self) -> Bytes {
        // Serializing strings and a raw value cannot fail.
        serde_json::to_vec(self).unwrap_or_default().into()
    }
}

/// The JSON error body of `status` (its details included when they are JSON).
pub(crate) fn status_body(status: &Status) -> Bytes {
    let details = std::str::from_utf8(status.details())
        .ok()
        .filter(|details| !details.is_empty())
        .and_then(|details| serde_json::from_str::<&serde_json::value::RawValue>(details).ok());
    ErrorBody {
        code: status.code().as_str(),
        message: status.message(),
        details,
    }
    .to_bytes()
}
