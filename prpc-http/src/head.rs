//! The first request head of an HTTP connection, read and checked before hyper serves it, so
//! that a malformed, oversized or slow head gets a 4xx with a reason (hyper answers such
//! heads with an empty body, or not at all).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a request head was refused: the status and a line of text saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) reason: String,
}

impl Refusal {
    fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
        }
    }

    /// The whole response: a status line, `connection: close`, the reason as text.
    pub(crate) fn response(&self) -> Vec<u8> {
        let body = format!("{}\n", self.reason);
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            body.len(),
        )
        .into_bytes()
    }
}

/// The limits of a request head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    /// Bytes, request line and headers together.
    pub(crate) max_bytes: usize,
    /// Header lines.
    pub(crate) max_headers: usize,
    /// From the connection's first byte to the head's end.
    pub(crate) timeout: Duration,
}

/// Whether `buf` holds a whole request head: `Ok(Some(length))` when it does, `Ok(None)` when
/// more bytes are needed, a refusal when it is malformed or over the limits.
pub(crate) fn check(buf: &[u8], limits: &HeadLimits) -> Result<Option<usize>, Refusal> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut request = httparse::Request::new(&mut headers);
    // Only the bytes within the limit are looked at, so that more bytes never change the
    // answer.
    let within = &buf[..buf.len().min(limits.max_bytes)];
    match request.parse(within) {
        Ok(httparse::Status::Complete(length)) => Ok(Some(length)),
        Ok(httparse::Status::Partial) if buf.len() > limits.max_bytes => Err(too_large(limits)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(Refusal::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("more than {} header lines", limits.max_headers),
        )),
        Err(error) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("malformed request head: {error}"),
        )),
    }
}

fn too_large(limits: &HeadLimits) -> Refusal {
    Refusal::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        format!("the request head is over {} bytes", limits.max_bytes),
    )
}

/// Reads the first request head of a connection whose first bytes are `read`: every byte read
/// (the head, and whatever came after it) when the head is whole and well formed.
pub(crate) async fn read<S: AsyncRead + Unpin>(
    stream: &mut S,
    read: Bytes,
    limits: &HeadLimits,
) -> Result<Bytes, Refusal> {
    let mut buf = BytesMut::from(&read[..]);
    let deadline = tokio::time::Instant::now() + limits.timeout;
    loop {
        if check(&buf, limits)?.is_some() {
            return Ok(buf.freeze());
        }
        buf.reserve(4096);
        let more = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await;
        match more {
            Err(_) => {
                return Err(Refusal::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request head did not arrive within {} ms",
                        limits.timeout.as_millis()
                    ),
                ));
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "the connection ended inside the request head",
                ));
            }
            Ok(Ok(_)) => {}
        }
    }
}

/// The head check on arbitrary bytes (the fuzz target's entry point), with limits of 16 KiB
/// and 64 header lines: the head's length, `None` for more bytes, or the refusal's status.
#[cfg(feature = "fuzzing")]
pub fn check_request_head(data: &[u8]) -> Result<Option<usize>, u16> {
    let limits = HeadLimits {
        max_bytes: 16 * 1024,
        max_headers: 64,
        timeout: Duration::from_secs(1),
    };
    check(data, &limits).map_err(|refusal| refusal.status.as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HeadLimits {
        HeadLimits {
            max_bytes: 256,
            max_headers: 4,
            timeout: Duration::from_millis(100),
        }
    }

    #[test]
    fn a_whole_head_is_its_length() {
        let head = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\nrest";
        assert_eq!(check(head, &limits()), Ok(Some(head.len() - 4)));
        assert_eq!(check(b"GET /healthz HTTP/1.1\r\nho", &limits()), Ok(None));
    }

    #[test]
    fn bad_heads_are_refused_with_a_reason() {
        let bad = check(b"GET /x\x01y HTTP/1.1\r\n\r\n", &limits()).unwrap_err();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.reason.contains("malformed"), "{}", bad.reason);
        let many = b"GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n\r\n";
        let refused = check(many, &limits()).unwrap_err();
        assert_eq!(refused.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let long = [b"GET / HTTP/1.1\r\nx: ".as_slice(), &[b'a'; 300]].concat();
        let refused = check(&long, &limits()).unwrap_err();
        assert_eq!(refused.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_slow_head_times_out_with_408() {
        let (_far, mut near) = tokio::io::duplex(64);
        let refused = read(&mut near, Bytes::from_static(b"GET / HT"), &limits())
            .await
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::REQUEST_TIMEOUT);
        let response = String::from_utf8(refused.response()).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{response}"
        );
    }
}
