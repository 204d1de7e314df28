//! A reader driven by the `frame_reader` fuzz target (feature `fuzzing`): arbitrary chunks,
//! frames held and dropped, the reader's buffers checked after every read.

use std::io;

use bytes::BytesMut;
use tokio::io::AsyncRead;
use tokio_util::codec::Decoder;

use super::{Decoded, FrameCodec, FrameReader, PREFIX_LEN};

/// Fuzzing: the frames a reader takes from `chunks` (each arriving as one read, or several
/// when the buffer's room is smaller), with a read buffer of `read_buffer` bytes (at least
/// 16), keeping spares or not, each frame held until `holds` (cycled; one byte a frame) says,
/// then dropped: `byte % 4` more frames later; a hold byte with its top bit set also has the
/// reader let go of its spares after that frame (as a client's keepalive check does). Returns
/// copies of the frames, made in memory of their own when they came, and the error the stream
/// ended with, if any.
///
/// # Panics
///
/// If a held body changed, or a buffer outgrew what a frame and a read need: what the fuzz
/// target checks beside the frames themselves.
pub fn fuzz_read(
    chunks: &[&[u8]],
    holds: &[u8],
    max_frame_size: u32,
    read_buffer: usize,
    spares: bool,
) -> (Vec<crate::wire::Frame>, Option<String>) {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio_util::codec::Encoder;

    /// The chunks, one read at a time (no more than the room offered).
    struct Chunks<'a> {
        rest: std::slice::Iter<'a, &'a [u8]>,
        current: &'a [u8],
    }

    impl AsyncRead for Chunks<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            while self.current.is_empty() {
                match self.rest.next() {
                    Some(chunk) => self.current = chunk,
                    None => return Poll::Ready(Ok(())),
                }
            }
            let length = buf.remaining().min(self.current.len());
            buf.put_slice(&self.current[..length]);
            self.current = &self.current[length..];
            Poll::Ready(Ok(()))
        }
    }

    let read = Chunks {
        rest: chunks.iter(),
        current: &[],
    };
    let mut reader = FrameReader::with_read_buffer(read, max_frame_size, read_buffer.max(16));
    reader.keeps_spares = spares;
    let largest = PREFIX_LEN + max_frame_size as usize + reader.read_buffer;
    let mut holds = holds.iter().copied().cycle();
    let mut frames = Vec::new();
    // Frames still held: until which frame, the frame, and its copy.
    let mut held: VecDeque<(usize, crate::wire::Frame, crate::wire::Frame)> = VecDeque::new();
    // A frame in memory of its own: its header fields are slices of the buffer too.
    let copy = |frame: &crate::wire::Frame| {
        let mut codec = FrameCodec::with_max_frame_size(max_frame_size);
        let mut bytes = BytesMut::new();
        codec
            .encode(frame, &mut bytes)
            .expect("a frame read re-encodes");
        codec
            .decode(&mut BytesMut::from(&bytes[..]))
            .expect("a frame re-encoded decodes")
            .expect("whole")
    };
    let mut context = Context::from_waker(std::task::Waker::noop());
    let ended = loop {
        match reader.next_with(|_| None::<()>) {
            Ok(Some(Decoded::Frame(frame))) => {
                let copied = copy(&frame);
                let hold = holds.next().unwrap_or(0);
                if hold & 0x80 != 0 {
                    reader.let_go_of_spares();
                }
                let until = frames.len() + usize::from(hold % 4);
                frames.push(copied.clone());
                held.push_back((until, frame, copied));
                while let Some((until, frame, copied)) = held.front() {
                    if *until >= frames.len() {
                        break;
                    }
                    assert_eq!(frame, copied, "a held frame changed");
                    held.pop_front();
                }
            }
            Ok(Some(Decoded::Taken(..))) => unreachable!("nothing is taken"),
            Ok(None) if reader.at_eof() => break None,
            Ok(None) => {
                {
                    let fill = std::pin::pin!(reader.fill());
                    match fill.poll(&mut context) {
                        Poll::Ready(result) => {
                            result.expect("reading chunks does not fail");
                        }
                        Poll::Pending => unreachable!("chunks are always ready"),
                    }
                }
                assert!(
                    reader.buffer.capacity() <= reader.buffer_size,
                    "the buffer grew by itself"
                );
                assert!(spares || reader.spares.iter().all(Option::is_none));
                let sizes = std::iter::once(reader.buffer_size)
                    .chain(reader.spares.iter().flatten().map(|spare| spare.size));
                for size in sizes {
                    assert!(
                        size <= largest,
                        "a buffer of {size} bytes (limit {largest})"
                    );
                }
            }
            Err(error) => break Some(error.to_string()),
        }
    };
    for (_, frame, copied) in held {
        assert_eq!(frame, copied, "a held frame changed");
    }
    (frames, ended)
}
