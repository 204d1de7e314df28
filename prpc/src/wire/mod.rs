//! The wire format: frames, their headers, and the codec that reads and writes them.
//!
//! Every frame starts with an 8-byte fixed prefix, then varint and length-prefixed header
//! fields, then the body. `docs/PROTOCOL.md` in the repository is the normative description;
//! this module is its implementation.
//!
//! ```text
//! 0      1        2          3         4..8
//! magic  version  kind|flags encoding  length (u32, big-endian: bytes after the prefix)
//! request id (varint) | attempt (varint) | kind-specific fields | body
//! ```
//!
//! The codec knows nothing of body formats or compression: the encoding byte travels as two
//! raw ids that the [`format`](crate::format) and [`compress`](crate::compress) modules read.

mod codec;
mod error;
mod frame;
mod head;
mod metadata;
mod outbox;
mod reader;
pub(crate) mod varint;

pub(crate) use codec::Decoded;
pub use codec::FrameCodec;
pub use error::WireError;
pub use frame::{Encoding, Frame, GoAwayHead, Head, RequestHead, ResponseHead};
pub(crate) use frame::{FrameRef, HeadRef, RequestFields, View};
pub use metadata::{MAX_METADATA_BYTES, MAX_METADATA_PAIRS, Metadata};
pub(crate) use outbox::{Refused, Sender, Writer, outbox};
pub(crate) use reader::FrameReader;
#[cfg(feature = "fuzzing")]
pub use reader::fuzz_read;

/// First byte of every frame.
pub const MAGIC: u8 = 0xB7;
/// The protocol version this build speaks.
pub const VERSION: u8 = 1;
/// Size of the fixed prefix every frame starts with.
pub const PREFIX_LEN: usize = 8;
/// Default cap on the bytes that follow the prefix: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16 * 1024 * 1024;
/// The smallest `max_frame_size` a client or server accepts (a smaller setting is raised to
/// it): room for any control frame and any error reply the runtime makes.
pub const MIN_MAX_FRAME_SIZE: u32 = 1024;
