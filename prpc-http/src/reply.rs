//! The answers prpc-http writes itself: a whole body in memory, JSON or a JSON error.

use bytes::Bytes;
use http_body_util::Full;
use hyper::StatusCode;
use hyper::header::{self, HeaderValue};
use prpc::Code;

use crate::status::ErrorBody;

/// The body of every answer: the whole of it, already in memory.
pub(crate) type Body = Full<Bytes>;

/// An answer of prpc-http's.
pub(crate) type Response = hyper::Response<Body>;

/// `body`, a JSON document, answered with `status`.
pub(crate) fn json(status: StatusCode, body: Bytes) -> Response {
    let mut response = hyper::Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An error answered with the JSON error body.
pub(crate) fn error(status: StatusCode, code: Code, message: &str) -> Response {
    let body = ErrorBody {
        code: code.as_str(),
        message,
        details: None,
    };
    json(status, body.to_bytes())
}
