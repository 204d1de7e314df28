//! One message of a stream and the trailer that ends one: plain data, below both the
//! per-connection stream set and the consumers' [`Messages`](super::Messages).

use bytes::Bytes;

use crate::wire::Metadata;

/// One message of a stream, encoded in the stream's format (the call's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The encoded item (or, with `application_error`, the encoded error value).
    pub body: Bytes,
    /// The body is an application error value for this item, not an item.
    pub application_error: bool,
}

impl Message {
    /// A message carrying an item.
    pub fn new(body: Bytes) -> Self {
        Message {
            body,
            application_error: false,
        }
    }

    /// A message carrying an application error value for one item.
    pub fn application_error(body: Bytes) -> Self {
        Message {
            body,
            application_error: true,
        }
    }
}

/// The trailer that ended a stream ok, as a client reads it: its body (the reply of a
/// client-streaming call, else empty) and metadata.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Trailer {
    /// The reply of a client-streaming call, encoded in the stream's format; else empty.
    pub body: Bytes,
    /// The server's metadata.
    pub metadata: Metadata,
}
