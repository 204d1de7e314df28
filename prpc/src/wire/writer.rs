use std::io::{self, IoSlice};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::codec::Encoder;

use super::{Frame, FrameCodec, WireError};

/// A write buffer that grew past this (a large body went through) is given back afterwards.
const KEEP_BUFFER: usize = 1 << 20;

/// Bodies at least this large are not copied into the write buffer: they go out from their own
/// `Bytes` as separate slices of one vectored write. Below it a copy costs less than an extra
/// slice for the kernel to walk.
const SEPARATE_BODY: usize = 1024;

/// Writes batches of frames: every frame of a batch goes out in one write (vectored when some
/// bodies are large), so many small calls cost one syscall, not one each.
pub(crate) struct BatchWriter<W> {
    write: W,
    codec: FrameCodec,
    /// Encoded frames; for a large body, only its frame's prefix and header fields.
    buffer: BytesMut,
    /// Large bodies left out of `buffer`, each with the offset in `buffer` it follows.
    bodies: Vec<(usize, Bytes)>,
}

impl<W: AsyncWrite + Unpin> BatchWriter<W> {
    pub(crate) fn new(write: W, max_frame_size: u32) -> Self {
        BatchWriter {
            write,
            codec: FrameCodec::with_max_frame_size(max_frame_size),
            buffer: BytesMut::with_capacity(8 * 1024),
            bodies: Vec::new(),
        }
    }

    /// Encodes and writes `frames`. A frame that cannot be encoded (over the size limit) is
    /// handed to `rejected` and skipped; the rest still go.
    pub(crate) async fn write(
        &mut self,
        frames: impl Iterator<Item = Frame>,
        mut rejected: impl FnMut(u64, WireError),
    ) -> io::Result<()> {
        for frame in frames {
            let request_id = frame.request_id;
            let encoded = if frame.body.len() >= SEPARATE_BODY {
                self.codec
                    .encode_head(&frame, &mut self.buffer)
                    .map(|()| self.bodies.push((self.buffer.len(), frame.body)))
            } else {
                self.codec.encode(frame, &mut self.buffer)
            };
            if let Err(error) = encoded {
                rejected(request_id, error);
            }
        }
        let written = if self.bodies.is_empty() {
            self.write.write_all(&self.buffer).await
        } else {
            self.write_with_bodies().await
        };
        self.buffer.clear();
        self.bodies.clear();
        if self.buffer.capacity() > KEEP_BUFFER {
            self.buffer = BytesMut::with_capacity(8 * 1024);
        }
        written
    }

    /// Writes `buffer` with `bodies` spliced in at their offsets, in as few vectored writes as
    /// the socket takes.
    async fn write_with_bodies(&mut self) -> io::Result<()> {
        let mut slices = Vec::with_capacity(2 * self.bodies.len() + 1);
        let mut start = 0;
        for (end, body) in &self.bodies {
            slices.push(IoSlice::new(&self.buffer[start..*end]));
            slices.push(IoSlice::new(body));
            start = *end;
        }
        slices.push(IoSlice::new(&self.buffer[start..]));
        slices.retain(|slice| !slice.is_empty());
        let mut remaining = &mut slices[..];
        while !remaining.is_empty() {
            let written = self.write.write_vectored(remaining).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut remaining, written);
        }
        Ok(())
    }

    /// Sends FIN after the last write.
    pub(crate) async fn shutdown(&mut self) {
        let _ = self.write.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio_util::codec::Decoder;

    use super::*;
    use crate::wire::Head;

    /// A sink that takes at most a few bytes per write, so every slice boundary gets split.
    struct Trickle(Vec<u8>);

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(7);
            self.0.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(700 - n);
                self.0.extend_from_slice(&buf[..take]);
                n += take;
                if n == 700 {
                    break;
                }
            }
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn large_bodies_go_out_in_order_around_small_frames() {
        let frame = |id: u64, size: usize| {
            let mut frame = Frame::control(id, Head::Pong);
            frame.body = Bytes::from(vec![id as u8; size]);
            frame
        };
        let frames = vec![
            frame(1, 5000),
            frame(2, 10),
            frame(3, SEPARATE_BODY),
            frame(4, 3000),
            frame(5, 2000),
            frame(6, 0),
        ];
        let mut writer = BatchWriter::new(Trickle(Vec::new()), 4096);
        let mut refused = Vec::new();
        writer
            .write(frames.clone().into_iter(), |id, _| refused.push(id))
            .await
            .unwrap();
        // Frame 1 is over the limit: refused, and nothing of it is sent.
        assert_eq!(refused, [1]);
        let mut wire = BytesMut::from(&writer.write.0[..]);
        let mut decoded = Vec::new();
        while let Some(frame) = FrameCodec::new().decode(&mut wire).unwrap() {
            decoded.push(frame);
        }
        assert_eq!(decoded, frames[1..]);
        assert!(wire.is_empty());
    }
}
