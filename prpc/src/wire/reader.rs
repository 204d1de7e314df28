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

/// A buffer with less free room than a read buffer's size divided by this (4 KiB of 64 KiB)
/// is given room before the next read, unless a partial frame asks for more.
const MIN_READS: usize = 16;

/// How many buffers a reader that keeps spares keeps besides its own.
const SPARES: usize = 2;

/// Reads frames from a byte stream.
///
/// The frames it hands out are slices of its buffer, so the buffer's memory is not free to
/// read into again until they are all dropped; a buffer that must move on gets new memory of
/// one read's worth, or of the whole frame when that is larger. A reader made
/// [`with_spares`](FrameReader::with_spares) (a client's) keeps the buffers it leaves (the
/// two largest) and reads into one of them again once its frames have gone: a connection
/// whose frames are handed on and dropped (a reply read while the one before is still with
/// its caller, say) so cycles through a few buffers, where it would allocate (and the kernel
/// zero and fault in) a new one for every large frame. It then holds up to three buffers,
/// each one read's worth or one frame; the spares go when its own buffer is next free in its
/// own memory with no partial frame in it, or when the owner lets go of them
/// ([`let_go_of_spares`](FrameReader::let_go_of_spares)). A server's reader keeps none: the
/// memory budget counts frames while they are held, and a spare would keep their memory past
/// it.
pub(crate) struct FrameReader<R> {
    read: R,
    codec: FrameCodec,
    /// The size of a new buffer ([`READ_BUFFER`]; smaller in fuzzing, to reach every path
    /// with small inputs).
    read_buffer: usize,
    buffer: BytesMut,
    /// The size of the buffer's memory (its capacity when it was made).
    buffer_size: usize,
    /// Buffers moved off before (emptied), whose memory comes back for reuse once the frames
    /// read into them are dropped.
    spares: [Option<Spare>; SPARES],
    /// Whether buffers moved off are kept as spares.
    keeps_spares: bool,
    eof: bool,
}

/// A buffer kept for reuse, and the size of its memory.
struct Spare {
    buffer: BytesMut,
    size: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(read: R, max_frame_size: u32) -> Self {
        Self::with_read_buffer(read, max_frame_size, READ_BUFFER)
    }

    /// This reader, keeping the buffers it moves off for reuse (see [`FrameReader`]).
    pub(crate) fn with_spares(mut self) -> Self {
        self.keeps_spares = true;
        self
    }

    fn with_read_buffer(read: R, max_frame_size: u32, read_buffer: usize) -> Self {
        FrameReader {
            keeps_spares: false,
            read,
            codec: FrameCodec::with_max_frame_size(max_frame_size),
            read_buffer,
            buffer: BytesMut::with_capacity(read_buffer),
            buffer_size: read_buffer,
            spares: Default::default(),
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
        // The rest of a partial frame is read into room made for all of it at once: growing
        // the buffer a read at a time would copy the partial frame at every step.
        let (held, rest) = (self.buffer.len(), self.rest_of_frame());
        let wanted = if rest > 0 {
            rest
        } else {
            self.read_buffer / MIN_READS
        };
        if self.buffer.capacity() - held < wanted {
            // A read buffer's worth in all, or the whole frame if it is larger: buffers of one
            // size, which the allocator recycles as they are.
            self.make_room(wanted.max(self.read_buffer.saturating_sub(held)));
            debug_assert!(self.buffer.capacity() - self.buffer.len() >= wanted);
        }
        let read = self.read.read_buf(&mut self.buffer).await?;
        self.eof |= read == 0;
        Ok(read)
    }

    /// Room for `additional` bytes after what the buffer holds: in its own memory if no frame
    /// read into it is still alive, else in a spare's if none of its frames is, else in a new
    /// buffer. The partial frame the buffer held (under one read's worth, or a large frame's
    /// first part) moves along, and a reader that keeps spares keeps the buffer left behind.
    fn make_room(&mut self, additional: usize) {
        let partial = self.buffer.len();
        if self.buffer.try_reclaim(additional) {
            if partial == 0 {
                // Every frame read into the buffer is gone: no spare is needed.
                self.spares = Default::default();
            }
            return;
        }
        let needed = partial + additional;
        let reused = self.spares.iter_mut().find_map(|slot| {
            let free = slot
                .as_mut()
                .is_some_and(|spare| spare.size >= needed && spare.buffer.try_reclaim(needed));
            if free { slot.take() } else { None }
        });
        let (mut next, size) = match reused {
            Some(Spare { buffer, size }) => (buffer, size),
            None => {
                let buffer = BytesMut::with_capacity(needed);
                let size = buffer.capacity();
                (buffer, size)
            }
        };
        next.extend_from_slice(&self.buffer);
        let mut left = std::mem::replace(&mut self.buffer, next);
        let size = std::mem::replace(&mut self.buffer_size, size);
        left.clear();
        if self.keeps_spares {
            self.keep(Spare { buffer: left, size });
        }
    }

    /// Lets go of the spares (a client's connection does at each keepalive check, so that an
    /// idle one does not hold the buffers of its largest replies for long).
    pub(crate) fn let_go_of_spares(&mut self) {
        self.spares = Default::default();
    }

    /// Keeps `spare` in an empty slot, else in place of the smallest spare if that is no larger.
    fn keep(&mut self, spare: Spare) {
        let size = |slot: &Option<Spare>| slot.as_ref().map_or(0, |kept| kept.size);
        if let Some(slot) = self.spares.iter_mut().min_by_key(|slot| size(slot))
            && (slot.is_none() || size(slot) <= spare.size)
        {
            *slot = Some(spare);
        }
    }
}

#[cfg(feature = "fuzzing")]
mod fuzz;
#[cfg(feature = "fuzzing")]
pub use fuzz::fuzz_read;

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

    /// Reads every whole frame `reader` can take in one `fill`, waiting for more as needed,
    /// until it has `count`; returns their bodies.
    async fn bodies(reader: &mut FrameReader<&[u8]>, count: usize) -> Vec<bytes::Bytes> {
        let mut bodies = Vec::new();
        while bodies.len() < count {
            match reader.next_with(|_| None::<()>).unwrap() {
                Some(Decoded::Frame(frame)) => bodies.push(frame.body),
                Some(Decoded::Taken(..)) => unreachable!("nothing is taken"),
                None => assert!(reader.fill().await.unwrap() > 0, "the stream ended"),
            }
        }
        bodies
    }

    #[tokio::test]
    async fn spares_are_kept_while_frames_are_held_and_let_go_when_none_is() {
        let mut bytes = BytesMut::new();
        for (id, size) in [(1, 200_000), (2, 200_000), (3, 200_000), (4, 10), (5, 10)] {
            let mut frame = Frame::control(id, Head::Ping);
            frame.body = vec![id as u8; size].into();
            FrameCodec::new().encode(frame, &mut bytes).unwrap();
        }
        let mut reader = FrameReader::new(&bytes[..], 1 << 20).with_spares();
        let spares = |reader: &FrameReader<&[u8]>| reader.spares.iter().flatten().count();
        // Three large frames held at once: each needed memory of its own, and the reader
        // keeps no more than two buffers besides its own.
        let held = bodies(&mut reader, 3).await;
        assert!(held.iter().all(|body| body.len() == 200_000));
        assert_eq!(spares(&reader), 2);
        // Once they are gone, the buffer is free in its own memory, and the spares go.
        drop(held);
        let small = bodies(&mut reader, 2).await;
        assert_eq!(small, [vec![4; 10], vec![5; 10]]);
        let _ = reader.fill().await.unwrap();
        assert_eq!(spares(&reader), 0);
    }
}
