//! What a body is and what can go wrong with it: its [`Format`], its [`Compression`], and the
//! [`BodyError`] of encoding, compressing, decompressing or decoding it.
//!
//! The two enums and the error are defined here, below both client and server; the
//! [`format`](crate::format) and [`compress`](crate::compress) modules implement encoding and
//! compression on them.

use std::fmt;

use crate::status::Status;

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
