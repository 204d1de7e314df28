use std::fmt;
use std::io;

/// A frame that could not be read or written.
///
/// Every variant but [`WireError::Io`] means the peer broke the protocol; the byte stream can
/// no longer be trusted, so the connection that produced it is closed (after a goaway frame
/// carrying this error's message, where the connection can still carry one).
#[derive(Debug)]
#[non_exhaustive]
pub enum WireError {
    /// The first byte of a frame was not [`MAGIC`](super::MAGIC).
    BadMagic {
        /// The byte received.
        found: u8,
        /// The byte the protocol requires.
        expected: u8,
    },
    /// The frame's protocol version is not one this build speaks.
    UnsupportedVersion {
        /// The version received.
        found: u8,
        /// The version this build speaks.
        supported: u8,
    },
    /// The low nibble of the kind byte named no frame kind.
    UnknownKind(u8),
    /// The length field declared more bytes than the receiver accepts.
    FrameTooLarge {
        /// Declared length of the frame (bytes after the fixed prefix).
        length: u64,
        /// The limit in force.
        max: u32,
    },
    /// A frame's metadata has more pairs than [`MAX_METADATA_PAIRS`](super::MAX_METADATA_PAIRS).
    TooManyMetadataPairs {
        /// Pairs the frame declared.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// A frame's metadata pairs take more than [`MAX_METADATA_BYTES`](super::MAX_METADATA_BYTES).
    MetadataTooLarge {
        /// The limit.
        max: usize,
    },
    /// A header field ran past the end of its frame.
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A varint held more than 64 bits, or more than its field allows.
    VarintOverflow {
        /// The field being read.
        field: &'static str,
    },
    /// A text field was not valid UTF-8.
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// The stream ended in the middle of a frame.
    TruncatedFrame {
        /// Bytes of the frame that arrived.
        received: usize,
        /// Bytes the frame needed (at least the fixed prefix).
        expected: usize,
    },
    /// The socket failed.
    Io(io::Error),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::BadMagic { found, expected } => write!(
                f,
                "bad magic byte {found:#04x} (expected {expected:#04x}): the peer is not \
                 speaking prpc"
            ),
            WireError::UnsupportedVersion { found, supported } => write!(
                f,
                "unsupported protocol version {found} (this peer speaks version {supported})"
            ),
            WireError::UnknownKind(kind) => write!(f, "unknown frame kind {kind}"),
            WireError::FrameTooLarge { length, max } => {
                write!(f, "frame of {length} bytes exceeds max_frame_size {max}")
            }
            WireError::TooManyMetadataPairs { count, max } => write!(
                f,
                "metadata of {count} pairs exceeds the limit of {max} pairs"
            ),
            WireError::MetadataTooLarge { max } => {
                write!(f, "metadata exceeds the limit of {max} bytes")
            }
            WireError::Truncated { field } => write!(f, "{field} runs past the end of the frame"),
            WireError::VarintOverflow { field } => write!(f, "{field} overflows its varint"),
            WireError::InvalidUtf8 { field } => write!(f, "{field} is not valid UTF-8"),
            WireError::TruncatedFrame { received, expected } => write!(
                f,
                "connection closed in the middle of a frame ({received} of {expected} bytes \
                 received)"
            ),
            WireError::Io(error) => write!(f, "i/o error: {error}"),
        }
    }
}

impl std::error::Error for WireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WireError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for WireError {
    fn from(error: io::Error) -> Self {
        WireError::Io(error)
    }
}

impl WireError {
    /// Whether the error is a frame over one of the receiver's size limits (the frame's length,
    /// or its metadata), rather than a malformed one: a server's goaway says
    /// `resource_exhausted` for it.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            WireError::FrameTooLarge { .. }
                | WireError::TooManyMetadataPairs { .. }
                | WireError::MetadataTooLarge { .. }
        )
    }

    /// Whether the error is a protocol violation by the peer (as opposed to a socket error).
    pub fn is_protocol(&self) -> bool {
        !matches!(self, WireError::Io(_))
    }
}
