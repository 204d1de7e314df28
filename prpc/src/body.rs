//! What a body is and what can go wrong with it: the [`Body`] a call or a reply sends, its
//! [`Format`], its [`Compression`], and the [`BodyError`] of encoding, compressing,
//! decompressing or decoding it.
//!
//! These are defined here, below both client and server; the [`format`](crate::format) and
//! [`compress`](crate::compress) modules implement encoding and compression on them.

use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::status::Status;

/// Parts at least this large are worth sending from their own buffer rather than copying: an
/// encoder leaves such a byte string out of the body it writes (see [`Body::from_parts`]), and
/// the connection's writer hands it to the kernel as its own slice of a vectored write. Below
/// it a copy costs less than an extra part.
pub(crate) const LARGE_PART: usize = 1024;

/// The encoded body a call or a reply sends: its bytes, in one piece, or in two laid end to
/// end.
///
/// Most bodies are one piece. An encoder makes two when the value ends in a large byte string
/// it was handed as `Bytes` or `Vec<u8>`: a short `head` it wrote (for a MessagePack `bin`,
/// its header) and the byte string's own bytes as the `tail`, shared, not copied (the two take
/// one small allocation, where a copy would take the byte string's size). On the wire the two
/// are one body; [`to_bytes`](Body::to_bytes) joins them (copying only when there are two) for
/// code that needs the bytes in one piece.
///
/// ```
/// use bytes::Bytes;
/// use prpc::Body;
///
/// let whole = Body::from(Bytes::from_static(b"\xc4\x03abc"));
/// let split = Body::from_parts(Bytes::from_static(b"\xc4\x03"), Bytes::from_static(b"abc"));
/// assert_eq!(whole, split); // the same bytes
/// assert_eq!(split.len(), 5);
/// assert_eq!(split.to_bytes(), Bytes::from_static(b"\xc4\x03abc"));
/// ```
#[derive(Clone)]
pub struct Body(Parts);

/// A body's bytes. Two parts sit behind one allocation, so a body is the size of one `Bytes`:
/// calls and replies, moved several times each, stay as small as they were.
#[derive(Clone)]
enum Parts {
    One(Bytes),
    /// A head and a tail, neither empty.
    Two(Box<[Bytes; 2]>),
}

/// The empty tail of a body in one piece, for code that borrows a body's two parts.
pub(crate) static NO_TAIL: Bytes = Bytes::new();

impl Body {
    /// The empty body.
    pub const fn new() -> Body {
        Body(Parts::One(Bytes::new()))
    }

    /// A body of `head`'s bytes followed by `tail`'s, sent without joining them.
    pub fn from_parts(head: Bytes, tail: Bytes) -> Body {
        if tail.is_empty() {
            return Body::from(head);
        }
        if head.is_empty() {
            return Body::from(tail);
        }
        Body(Parts::Two(Box::new([head, tail])))
    }

    /// The body's length in bytes.
    pub fn len(&self) -> usize {
        match &self.0 {
            Parts::One(bytes) => bytes.len(),
            Parts::Two(parts) => parts[0].len() + parts[1].len(),
        }
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The two parts, in order; the second is empty for a body in one piece.
    #[inline]
    pub fn parts(&self) -> (&Bytes, &Bytes) {
        match &self.0 {
            Parts::One(bytes) => (bytes, &NO_TAIL),
            Parts::Two(parts) => (&parts[0], &parts[1]),
        }
    }

    /// The body in one piece: shared when it is one, joined (copied) when it is two.
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Parts::One(bytes) => bytes.clone(),
            Parts::Two(parts) => join(parts),
        }
    }

    /// The body in one piece, as [`to_bytes`](Body::to_bytes) makes it.
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Parts::One(bytes) => bytes,
            Parts::Two(parts) => join(&parts),
        }
    }

    /// Whether the body's bytes are `bytes`.
    fn is(&self, bytes: &[u8]) -> bool {
        let (head, tail) = self.parts();
        bytes.len() == self.len()
            && bytes[..head.len()] == head[..]
            && bytes[head.len()..] == tail[..]
    }
}

fn join([head, tail]: &[Bytes; 2]) -> Bytes {
    let mut joined = BytesMut::with_capacity(head.len() + tail.len());
    joined.extend_from_slice(head);
    joined.extend_from_slice(tail);
    joined.freeze()
}

impl Default for Body {
    fn default() -> Body {
        Body::new()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body(Parts::One(bytes))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::from(Bytes::from(bytes))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Body {
        Body::from(Bytes::from_static(bytes))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Body {
        Body::from(Bytes::from_static(text.as_bytes()))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body::from(Bytes::from(text))
    }
}

impl From<Body> for Bytes {
    fn from(body: Body) -> Bytes {
        body.into_bytes()
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        match (&self.0, &other.0) {
            (Parts::One(bytes), _) => other.is(bytes),
            (_, Parts::One(bytes)) => self.is(bytes),
            _ => self.is(&other.to_bytes()),
        }
    }
}

impl Eq for Body {}

impl PartialEq<[u8]> for Body {
    fn eq(&self, other: &[u8]) -> bool {
        self.is(other)
    }
}

impl PartialEq<&[u8]> for Body {
    fn eq(&self, other: &&[u8]) -> bool {
        self.is(other)
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Body {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.is(&other[..])
    }
}

impl PartialEq<Bytes> for Body {
    fn eq(&self, other: &Bytes) -> bool {
        self.is(other)
    }
}

impl PartialEq<&str> for Body {
    fn eq(&self, other: &&str) -> bool {
        self.is(other.as_bytes())
    }
}

impl fmt::Debug for Body {
    /// As `Bytes` shows its bytes: a body reads the same in one piece or two.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_bytes(), f)
    }
}

/// A body that could not be encoded, compressed, decompressed or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    /// The format id in the encoding byte names no format.
    UnknownFormat(u8),
    /// The compression id in the encoding byte names no codec.
    UnknownCompression(u8),
    /// The format or codec exists but this build left it out.
    Disabled {
        /// What is missing, e.g. `compression zstd`.
        what: &'static str,
        /// The cargo feature that enables it.
        feature: &'static str,
    },
    /// The format cannot carry this kind of value.
    Unsupported {
        /// The format asked for.
        format: Format,
        /// The kind of value.
        what: &'static str,
    },
    /// The value could not be encoded.
    Encode {
        /// The format.
        format: Format,
        /// The encoder's message.
        reason: String,
    },
    /// The bytes do not decode to the expected type.
    Decode {
        /// The format.
        format: Format,
        /// The decoder's message.
        reason: String,
    },
    /// The compressed bytes are corrupt.
    Corrupt {
        /// The codec.
        compression: Compression,
        /// The codec's message.
        reason: String,
    },
    /// The body would decompress past the receiver's limit.
    TooLarge {
        /// The codec.
        compression: Compression,
        /// The limit in force.
        limit: usize,
    },
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::UnknownFormat(id) => write!(f, "unknown body format id {id}"),
            BodyError::UnknownCompression(id) => write!(f, "unknown compression id {id}"),
            BodyError::Disabled { what, feature } => write!(
                f,
                "{what} is not enabled in this build (cargo feature \"{feature}\" of prpc)"
            ),
            BodyError::Unsupported { format, what } => {
                write!(f, "format {format} cannot carry {what}")
            }
            BodyError::Encode { format, reason } => write!(f, "encoding a {format} body: {reason}"),
            BodyError::Decode { format, reason } => write!(f, "decoding a {format} body: {reason}"),
            BodyError::Corrupt {
                compression,
                reason,
            } => write!(f, "corrupt {compression} body: {reason}"),
            BodyError::TooLarge { compression, limit } => write!(
                f,
                "{compression} body decompresses past the limit of {limit} bytes"
            ),
        }
    }
}

impl std::error::Error for BodyError {}

impl From<BodyError> for Status {
    fn from(error: BodyError) -> Self {
        Status::invalid_argument(error.to_string())
    }
}

/// A body format.
///
/// ```
/// use prpc::Format;
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Point { x: i32, y: i32 }
///
/// let body = Format::Json.encode(&Point { x: 1, y: 2 })?;
/// assert_eq!(&body[..], br#"{"x":1,"y":2}"#);
/// assert_eq!(Format::Json.decode::<Point>(&body)?, Point { x: 1, y: 2 });
/// # Ok::<(), prpc::BodyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Format {
    /// Bytes as they are: no encoding.
    Raw,
    /// JSON (serde_json; the `json` feature).
    Json,
    /// Protocol Buffers (prost); for prost messages only.
    Protobuf,
    /// MessagePack (rmp-serde), structs as maps with named fields.
    #[default]
    MsgPack,
}

impl Format {
    /// Every format, in id order.
    pub const ALL: [Format; 4] = [Format::Raw, Format::Json, Format::Protobuf, Format::MsgPack];

    /// The format's id in the encoding byte.
    pub const fn id(self) -> u8 {
        match self {
            Format::Raw => 0,
            Format::Json => 1,
            Format::Protobuf => 2,
            Format::MsgPack => 3,
        }
    }

    /// The format with this id.
    pub fn from_id(id: u8) -> Result<Format, BodyError> {
        Format::ALL
            .into_iter()
            .find(|format| format.id() == id)
            .ok_or(BodyError::UnknownFormat(id))
    }

    /// The format's name as PROTOCOL.md spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Json => "json",
            Format::Protobuf => "protobuf",
            Format::MsgPack => "msgpack",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compression codec.
///
/// ```
/// # #[cfg(feature = "gzip")] {
/// use prpc::Compression;
/// let body = vec![b'a'; 4096];
/// let packed = Compression::Gzip.compress(&body)?;
/// assert!(packed.len() < 100);
/// assert_eq!(Compression::Gzip.decompress(&packed, 1 << 20)?, body);
/// # }
/// # Ok::<(), prpc::BodyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Body as encoded.
    #[default]
    None,
    /// gzip (RFC 1952), flate2.
    Gzip,
    /// Snappy raw block format (no framing), snap.
    Snappy,
    /// Zstandard frame, level 1 (zstd).
    Zstd,
    /// LZ4 block, preceded by its uncompressed size as a little-endian `u32` (lz4_flex).
    Lz4,
}

impl Compression {
    /// Every codec, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Zstd,
        Compression::Lz4,
    ];

    /// The codec's id in the encoding byte.
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Zstd => 3,
            Compression::Lz4 => 4,
        }
    }

    /// The codec with this id.
    pub fn from_id(id: u8) -> Result<Compression, BodyError> {
        Compression::ALL
            .into_iter()
            .find(|compression| compression.id() == id)
            .ok_or(BodyError::UnknownCompression(id))
    }

    /// The codec's name as PROTOCOL.md spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }

    /// The cargo feature that compiles this codec in.
    pub(crate) const fn feature(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }

    /// Whether this build can compress and decompress with the codec.
    pub const fn is_enabled(self) -> bool {
        match self {
            Compression::None => true,
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Snappy => cfg!(feature = "snappy"),
            Compression::Zstd => cfg!(feature = "zstd"),
            Compression::Lz4 => cfg!(feature = "lz4"),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod body_tests {
    use super::*;

    #[test]
    fn a_body_is_its_bytes_however_it_is_cut() {
        let whole = Body::from(Bytes::from_static(b"headtail"));
        let split = Body::from_parts(Bytes::from_static(b"head"), Bytes::from_static(b"tail"));
        let other = Body::from_parts(Bytes::from_static(b"he"), Bytes::from_static(b"adtail"));
        for body in [&whole, &split, &other] {
            assert_eq!(body.len(), 8);
            assert!(!body.is_empty());
            assert_eq!(body.to_bytes(), Bytes::from_static(b"headtail"));
            assert_eq!(*body, b"headtail"[..]);
            assert_eq!(
                format!("{body:?}"),
                format!("{:?}", Bytes::from_static(b"headtail"))
            );
        }
        assert_eq!(whole, split);
        assert_eq!(split, other);
        assert_ne!(
            split,
            Body::from_parts(Bytes::from_static(b"head"), Bytes::new())
        );
        assert_ne!(split, b"headtaiL"[..]);
        // One piece stays shared; two are joined. Either way a body is one `Bytes` in size.
        assert_eq!(std::mem::size_of::<Body>(), std::mem::size_of::<Bytes>());
        assert_eq!(whole.to_bytes().as_ptr(), whole.parts().0.as_ptr());
        assert_eq!(Bytes::from(split.clone()), Bytes::from_static(b"headtail"));
    }

    #[test]
    fn an_empty_head_leaves_a_body_in_one_piece() {
        let body = Body::from_parts(Bytes::new(), Bytes::from_static(b"tail"));
        assert_eq!(body.parts(), (&Bytes::from_static(b"tail"), &Bytes::new()));
        assert!(Body::new().is_empty());
        assert_eq!(Body::new(), Body::default());
    }
}
