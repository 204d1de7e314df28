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
mod metadata;
mod outbox;
pub(crate) mod varint;

pub use codec::FrameCodec;
pub use error::WireError;
pub use frame::{Encoding, Frame, GoAwayHead, Head, RequestHead, ResponseHead};
pub use metadata::Metadata;
pub(crate) use outbox::{Refused, Sender, Writer, outbox};

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

/// Capacity of a connection's read buffer. Decoded frames are slices of it, so while any of
/// them is alive the next read cannot reuse the space and the buffer is reallocated, copying
/// the partial frame at its end. tokio-util's default 8 KiB holds under two 4 KiB frames: a
/// read syscall, an allocation and a copy every other frame. 64 KiB (the most `BytesMut`
/// remembers as the size to reallocate to) takes a whole batch of them in one read.
const READ_BUFFER: usize = 64 * 1024;

/// A framed reader of `read` with a read buffer sized for batches of frames.
pub(crate) fn framed_read<R: tokio::io::AsyncRead>(
    read: R,
    max_frame_size: u32,
) -> tokio_util::codec::FramedRead<R, FrameCodec> {
    tokio_util::codec::FramedRead::with_capacity(
        read,
        FrameCodec::with_max_frame_size(max_frame_size),
        READ_BUFFER,
    )
}

/// The next frame of a framed reader (what `StreamExt::next` does, without the dependency).
pub(crate) async fn next_frame<R>(
    frames: &mut tokio_util::codec::FramedRead<R, FrameCodec>,
) -> Option<Result<Frame, WireError>>
where
    R: tokio::io::AsyncRead + Unpin,
{
    use futures_core::Stream;
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *frames).poll_next(cx)).await
}
