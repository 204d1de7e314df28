//! A connection's incoming frames: one read takes in as many frames as have arrived, and the
//! caller decodes them one after another with no await in between.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::Decoder;

use super::codec::Decoded;
use super::frame::View;
use super::{FrameCodec, PREFIX_LEN, WireError};

/// Capacity of a connection's read buffer. Decoded frames are slices of it, so while any of
/// them is alive the next read cannot reuse the space and the buffer is reallocated, copying
/// the partial frame at its end. An 8 KiB buffer holds under two 4 KiB frames: a read syscall,
/// an allocation and a copy every other frame. 64 KiB (the most `BytesMut` remembers as the
/// size to reallocate to) takes a whole batch of them in one read.
const READ_BUFFER: usize = 64 * 1024;

/// Below this much free room, the buffer is grown (or reclaimed) before the next read.
const MIN_READ: usize = 4 * 1024;

/// Reads frames from a byte stream.
pub(crate) struct FrameReader<R> {
    read: R,
    codec: FrameCodec,
    buffer: BytesMut,
    eof: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(read: R, max_frame_size: u32) -> Self {
        FrameReader {
            read,
            codec: FrameCodec::with_max_frame_size(max_frame_size),
            buffer: BytesMut::with_capacity(READ_BUFFER),
            eof: false,
        }
    }

    /// The next frame already read, if a whole one is here. `Ok(None)` means read more, or,
    /// once [`at_eof`](FrameReader::at_eof), that the stream ended cleanly; a frame cut short
    /// by the end of the stream is an error.
    ///
    /// Each frame's [`View`], when it has one, is offered to `take` first: a frame it takes
    /// comes out as what `take` made of it, and its body alone.
    pub(crate) fn next_with<T>(
        &mut self,
        take: impl FnOnce(View<'_>) -> Option<T>,
    ) -> Result<Option<Decoded<T>>, WireError> {
        match self.codec.decode_with(&mut self.buffer, take)? {
            Some(decoded) => Ok(Some(decoded)),
            // A frame cut short by the end of the stream is reported here.
            None if self.eof => Ok(self.codec.decode_eof(&mut self.buffer)?.map(Decoded::Frame)),
            None => Ok(None),
        }
    }

    /// Bytes still to come of the frame at the front of the buffer, once its prefix is in and
    /// its length within the limit (the codec refuses a longer one); 0 otherwise.
    fn rest_of_frame(&self) -> usize {
        let Some(prefix) = self.buffer.get(..PREFIX_LEN) else {
            return 0;
        };
        let length = u32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
        if length > self.codec.max_frame_size() {
            return 0;
        }
        (PREFIX_LEN + length as usize).saturating_sub(self.buffer.len())
    }

    /// The whole size (prefix included) of the frame at the front of the buffer while only part
    /// of it is here and its prefix is (and within the limit).
    pub(crate) fn partial_frame(&self) -> Option<usize> {
        let rest = self.rest_of_frame();
        (rest > 0).then(|| self.buffer.len() + rest)
    }

    /// Whether the buffer holds part of a frame (read when every whole frame has been taken).
    pub(crate) fn holds_partial_frame(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// Whether the peer has closed its side (every frame it sent is in the buffer).
    pub(crate) fn at_eof(&self) -> bool {
        self.eof
    }

    /// Reads what the socket has (waiting for something). Returns how many bytes came; 0 at
    /// the end of the stream.
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        // A frame larger than the buffer is read into room reserved for all of it at once:
        // growing the buffer a read at a time would copy the partial frame at every step.
        let rest = self.rest_of_frame();
        let wanted = if rest > READ_BUFFER { rest } else { MIN_READ };
        if self.buffer.capacity() - self.buffer.len() < wanted {
            self.buffer.reserve(wanted.max(READ_BUFFER));
        }
        let read = self.read.read_buf(&mut self.buffer).await?;
        self.eof |= read == 0;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::Encoder;

    use super::*;
    use crate::wire::{Frame, Head};

    #[tokio::test]
    async fn frames_come_out_whole_across_reads_and_a_cut_frame_is_an_error_at_eof() {
        let (mut write, read) = tokio::io::duplex(64);
        let mut bytes = BytesMut::new();
        for id in 1..=3 {
            let mut frame = Frame::control(id, Head::Ping);
            frame.body = vec![id as u8; 100].into();
            FrameCodec::new().encode(frame, &mut bytes).unwrap();
        }
        let whole = bytes.len();
        tokio::spawn(async move {
            write.write_all(&bytes).await.unwrap();
            // Half of a fourth frame, then the end of the stream.
            write
                .write_all(&[0xB7, 1, 3, 0, 0, 0, 0, 9, 4])
                .await
                .unwrap();
        });
        let mut reader = FrameReader::new(read, 1024);
        let mut ids = Vec::new();
        let mut total = 0;
        let error = loop {
            match reader.next_with(|_| None::<()>) {
                Ok(Some(Decoded::Frame(frame))) => ids.push(frame.request_id),
                Ok(Some(Decoded::Taken(..))) => unreachable!("nothing is taken"),
                Ok(None) if reader.at_eof() => panic!("the cut frame was not reported"),
                Ok(None) => total += reader.fill().await.unwrap(),
                Err(error) => break error,
            }
        };
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(total, whole + 9);
        assert!(matches!(error, WireError::TruncatedFrame { .. }), "{error}");
    }
}
