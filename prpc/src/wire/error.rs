use std::io;

/// A frame that could not be read or written.
///
/// Every variant but [`WireError::Io`] means the peer broke the protocol; the byte stream can
/// no longer be trusted, so the connection that produced it is closed (after a goaway frame
/// carrying this error's message, where the connection can still carry one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The first byte of a frame was not [`MAGIC`](super::MAGIC).
    #[error(
        "bad magic byte {found:#04x} (expected {expected:#04x}): the peer is not speaking prpc"
    )]
    BadMagic {
        /// The byte received.
        found: u8,
        /// The byte the protocol requires.
        expected: u8,
    },
    /// The frame's protocol version is not one this build speaks.
    #[error("unsupported protocol version {found} (this peer speaks version {supported})")]
    UnsupportedVersion {
        /// The version received.
        found: u8,
        /// The version this build speaks.
        supported: u8,
    },
    /// The low nibble of the kind byte named no frame kind.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The length field declared more bytes than the receiver accepts.
    #[error("frame of {length} bytes exceeds max_frame_size {max}")]
    FrameTooLarge {
        /// Declared length of the frame (bytes after the fixed prefix).
        length: u64,
        /// The limit in force.
        max: u32,
    },
    /// A frame's metadata has more pairs than [`MAX_METADATA_PAIRS`](super::MAX_METADATA_PAIRS).
    #[error("metadata of {count} pairs exceeds the limit of {max} pairs")]
    TooManyMetadataPairs {
        /// Pairs the frame declared.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// A frame's metadata pairs take more than [`MAX_METADATA_BYTES`](super::MAX_METADATA_BYTES).
    #[error("metadata exceeds the limit of {max} bytes")]
    MetadataTooLarge {
        /// The limit.
        max: usize,
    },
    /// A header field ran past the end of its frame.
    #[error("{field} runs past the end of the frame")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A varint held more than 64 bits, or more than its field allows.
    #[error("{field} overflows its varint")]
    VarintOverflow {
        /// The field being read.
        field: &'static str,
    },
    /// A text field was not valid UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame ({received} of {expected} bytes received)")]
    TruncatedFrame {
        /// Bytes of the frame that arrived.
        received: usize,
        /// Bytes the frame needed (at least the fixed prefix).
        expected: usize,
    },
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
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
