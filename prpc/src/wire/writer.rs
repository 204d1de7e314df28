use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::codec::Encoder;

use super::{Frame, FrameCodec, WireError};

/// A write buffer that grew past this (a large body went through) is given back afterwards.
const KEEP_BUFFER: usize = 1 << 20;

/// Writes batches of frames: every frame of a batch is encoded into one buffer that goes out
/// in one `write_all`, so many small calls cost one syscall, not one each.
pub(crate) struct BatchWriter<W> {
    write: W,
    codec: FrameCodec,
    buffer: BytesMut,
}

impl<W: AsyncWrite + Unpin> BatchWriter<W> {
    pub(crate) fn new(write: W, max_frame_size: u32) -> Self {
        BatchWriter {
            write,
            codec: FrameCodec::with_max_frame_size(max_frame_size),
            buffer: BytesMut::with_capacity(8 * 1024),
        }
    }

    /// Encodes and writes `frames`. A frame that cannot be encoded (over the size limit) is
    /// handed to `rejected` and skipped; the rest still go.
    pub(crate) async fn write(
        &mut self,
        frames: impl Iterator<Item = Frame>,
        mut rejected: impl FnMut(u64, WireError),
    ) -> std::io::Result<()> {
        for frame in frames {
            let request_id = frame.request_id;
            if let Err(error) = self.codec.encode(frame, &mut self.buffer) {
                rejected(request_id, error);
            }
        }
        let written = self.write.write_all(&self.buffer).await;
        self.buffer.clear();
        if self.buffer.capacity() > KEEP_BUFFER {
            self.buffer = BytesMut::with_capacity(8 * 1024);
        }
        written
    }

    /// Sends FIN after the last write.
    pub(crate) async fn shutdown(&mut self) {
        let _ = self.write.shutdown().await;
    }
}
