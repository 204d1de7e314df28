//! A connection's outgoing frames: encoded by whoever sends them, written in batches by one
//! writer task.
//!
//! Senders encode their frame straight into a shared buffer (under a short lock), so a frame
//! is never moved through a channel, and the writer sends everything queued since its last
//! write with one (vectored, when large bodies are queued) write: many small calls cost one
//! syscall, not one each. Body parts of [`LARGE_PART`] bytes or more are not copied: they go
//! out from their own `Bytes`, spliced between the encoded headers.

use std::io::{self, IoSlice};
use std::mem;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{FrameCodec, FrameRef, WireError};
use crate::body::LARGE_PART;

/// A buffer that grew past this (a large batch went through) is given back afterwards.
const KEEP_BUFFER: usize = 1 << 20;

/// Queued bytes past which the writer sends at once instead of first letting other senders
/// add to the batch.
const FULL_BATCH: usize = 64 * 1024;

/// Why a frame was not queued.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The writer is gone (the socket failed or the connection closed).
    Closed,
    /// The frame cannot be encoded: it exceeds the frame size limit.
    Encode(WireError),
}

/// A frame queued.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent {
    /// Bytes queued now, this frame's included.
    pub(crate) queued: usize,
    /// The frame's length field.
    pub(crate) length: usize,
}

/// Frames queued for the socket: the encoded bytes, and the large bodies spliced into them.
#[derive(Default)]
struct Batch {
    buffer: BytesMut,
    /// Large body parts left out of `buffer`, each with the offset in `buffer` it follows.
    bodies: Vec<(usize, Bytes)>,
    /// Body bytes in `bodies`.
    body_bytes: usize,
}

impl Batch {
    fn len(&self) -> usize {
        self.buffer.len() + self.body_bytes
    }

    fn clear(&mut self) {
        self.buffer.clear();
        self.bodies.clear();
        self.body_bytes = 0;
        if self.buffer.capacity() > KEEP_BUFFER {
            self.buffer = BytesMut::new();
        }
    }

    /// Writes the batch, in as few (vectored) writes as the socket takes.
    async fn write_to<W: AsyncWrite + Unpin>(&self, write: &mut W) -> io::Result<()> {
        if self.bodies.is_empty() {
            return write.write_all(&self.buffer).await;
        }
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
            let written = write.write_vectored(remaining).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut remaining, written);
        }
        Ok(())
    }
}

struct Queue {
    batch: Batch,
    /// The writer, when it waits for frames.
    writer: Option<Waker>,
    /// Senders waiting for the queue to drain below their high-water marks (the read loop,
    /// and streams with messages to send).
    room: Vec<Waker>,
    /// Live [`Sender`]s; the writer finishes once they are gone and the queue is empty.
    senders: usize,
    /// The writer is gone: nothing more is queued.
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    codec: FrameCodec,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handle that queues frames for a connection's writer. The writer finishes once every
/// sender is dropped and what they queued is written.
pub(crate) struct Sender {
    shared: Arc<Shared>,
}

/// The writer's end: waits for queued frames and writes them.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    /// The batch being written (swapped with the queue's, so both buffers are reused).
    batch: Batch,
}

/// A connection's outgoing queue: its first sender and its writer.
pub(crate) fn outbox(max_frame_size: u32) -> (Sender, Writer) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            batch: Batch {
                buffer: BytesMut::with_capacity(8 * 1024),
                ..Batch::default()
            },
            writer: None,
            room: Vec::new(),
            senders: 1,
            closed: false,
        }),
        codec: FrameCodec::with_max_frame_size(max_frame_size),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Writer {
            shared,
            batch: Batch::default(),
        },
    )
}

impl Sender {
    /// Encodes `frame` onto the queue and wakes the writer if it waits. Returns the bytes
    /// queued now, this frame's included.
    pub(crate) fn send<'a>(&self, frame: impl Into<FrameRef<'a>>) -> Result<usize, Refused> {
        self.send_sized(frame).map(|sent| sent.queued)
    }

    /// [`send`](Sender::send), also saying the frame's length field.
    pub(crate) fn send_sized<'a>(&self, frame: impl Into<FrameRef<'a>>) -> Result<Sent, Refused> {
        let frame = frame.into();
        let (sent, waker) = {
            let mut queue = self.shared.lock();
            if queue.closed {
                return Err(Refused::Closed);
            }
            let batch = &mut queue.batch;
            let length = if frame.body_len() >= LARGE_PART {
                let length = self
                    .shared
                    .codec
                    .encode_head(&frame, &mut batch.buffer)
                    .map_err(Refused::Encode)?;
                for part in [frame.body, frame.tail] {
                    if part.len() >= LARGE_PART {
                        batch.bodies.push((batch.buffer.len(), part.clone()));
                        batch.body_bytes += part.len();
                    } else {
                        batch.buffer.extend_from_slice(part);
                    }
                }
                length
            } else {
                self.shared
                    .codec
                    .encode_frame(&frame, &mut batch.buffer)
                    .map_err(Refused::Encode)?
            };
            let sent = Sent {
                queued: batch.len(),
                length: length as usize,
            };
            (sent, queue.writer.take())
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(sent)
    }

    /// Ready while at most `high_water` bytes are queued; else waits until the writer has
    /// taken them (or is gone). For a sender that makes more work for the writer and should
    /// stop when the peer stops reading.
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>, high_water: usize) -> Poll<()> {
        let mut queue = self.shared.lock();
        if queue.closed || queue.batch.len() <= high_water {
            return Poll::Ready(());
        }
        if !queue.room.iter().any(|waker| waker.will_wake(cx.waker())) {
            queue.room.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits until at most `high_water` bytes are queued (see [`Sender::poll_room`]).
    pub(crate) async fn room(&self, high_water: usize) {
        std::future::poll_fn(|cx| self.poll_room(cx, high_water)).await;
    }
}

impl Clone for Sender {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let waker = {
            let mut queue = self.shared.lock();
            queue.senders -= 1;
            if queue.senders > 0 {
                return;
            }
            queue.writer.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Writer {
    /// Writes queued frames to `write` until every sender is gone and the queue is empty
    /// (`Ok`), or a write fails (`Err`). Either way the queue is closed on return: later sends
    /// are refused.
    pub(crate) async fn run<W: AsyncWrite + Unpin>(&mut self, write: &mut W) -> io::Result<()> {
        let written = self.write_all(write).await;
        self.close();
        written
    }

    async fn write_all<W: AsyncWrite + Unpin>(&mut self, write: &mut W) -> io::Result<()> {
        loop {
            let queued = std::future::poll_fn(|cx| self.poll_queued(cx)).await;
            if queued == 0 {
                return Ok(());
            }
            if queued < FULL_BATCH {
                // Woken by the first frame: let the senders that are ready now (the callers or
                // handlers woken by the same read) queue theirs too, so that they share this
                // write. On a multi-thread runtime the writer would otherwise run right after
                // each sender and send every frame in its own segment.
                tokio::task::yield_now().await;
            }
            self.take();
            let written = self.batch.write_to(write).await;
            self.batch.clear();
            written?;
        }
    }

    /// Ready with the bytes queued once there are some; with 0 once every sender is gone and
    /// nothing is left.
    fn poll_queued(&mut self, cx: &mut Context<'_>) -> Poll<usize> {
        let mut queue = self.shared.lock();
        let queued = queue.batch.len();
        if queued > 0 || queue.senders == 0 {
            return Poll::Ready(queued);
        }
        if !queue
            .writer
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            queue.writer = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Swaps the queue's batch (everything queued so far) with the writer's empty one.
    fn take(&mut self) {
        let room = {
            let mut queue = self.shared.lock();
            mem::swap(&mut queue.batch, &mut self.batch);
            std::mem::take(&mut queue.room)
        };
        room.into_iter().for_each(Waker::wake);
    }

    /// Refuses further sends and drops what is queued.
    pub(crate) fn close(&mut self) {
        let room = {
            let mut queue = self.shared.lock();
            queue.closed = true;
            queue.batch.clear();
            std::mem::take(&mut queue.room)
        };
        room.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;

    use tokio_util::codec::Decoder;

    use super::*;
    use crate::wire::{Frame, Head};

    /// A sink that takes at most a few hundred bytes per write, so every slice boundary gets
    /// split.
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

    /// Runs `writer` to its end into a [`Trickle`] and decodes what it wrote, which must be
    /// whole frames and nothing more.
    async fn written(mut writer: Writer) -> Vec<Frame> {
        let mut sink = Trickle(Vec::new());
        writer.run(&mut sink).await.unwrap();
        let mut wire = BytesMut::from(&sink.0[..]);
        let mut decoded = Vec::new();
        while let Some(frame) = FrameCodec::new().decode(&mut wire).unwrap() {
            decoded.push(frame);
        }
        assert!(wire.is_empty(), "a partial frame was written");
        decoded
    }

    fn frame(id: u64, size: usize) -> Frame {
        let mut frame = Frame::control(id, Head::Pong);
        frame.body = Bytes::from(vec![id as u8; size]);
        frame
    }

    #[tokio::test]
    async fn large_bodies_go_out_in_order_around_small_frames() {
        let frames = [
            frame(1, 5000),
            frame(2, 10),
            frame(3, LARGE_PART),
            frame(4, 3000),
            frame(5, 2000),
            frame(6, 0),
        ];
        let (sender, writer) = outbox(4096);
        // Frame 1 is over the limit: refused, and nothing of it is queued.
        assert!(matches!(
            sender.send(&frames[0]),
            Err(Refused::Encode(WireError::FrameTooLarge { .. }))
        ));
        for frame in &frames[1..] {
            sender.send(frame).unwrap();
        }
        drop(sender);
        assert_eq!(written(writer).await, frames[1..]);
    }

    /// A body in two parts (a short header and a large byte string it did not copy) goes out
    /// as the one body it is, whichever of its parts is large enough to go from its own
    /// buffer, and refused whole when the two together exceed the limit.
    #[tokio::test]
    async fn a_body_in_two_parts_goes_out_as_one() {
        let splits = [
            (3, 4000),
            (3, 10),
            (2000, 5),
            (1500, 1500),
            (0, 3000),
            (10, 0),
        ];
        let (sender, writer) = outbox(4096);
        let mut sent = Vec::new();
        for (id, &(head, tail)) in splits.iter().enumerate() {
            let id = id as u64 + 1;
            let (head, tail) = (Bytes::from(vec![1; head]), Bytes::from(vec![2; tail]));
            let mut frame = frame(id, 0);
            frame.body = crate::Body::from_parts(head.clone(), tail.clone()).into_bytes();
            let split = FrameRef {
                body: &head,
                tail: &tail,
                ..FrameRef::from(&frame)
            };
            let queued = sender.send_sized(split).unwrap();
            assert_eq!(queued.length, frame.encoded_len());
            sent.push(frame);
        }
        // Over the limit only together: refused, and nothing of it queued.
        let (head, tail) = (Bytes::from(vec![1; 2100]), Bytes::from(vec![2; 2100]));
        let over = FrameRef {
            body: &head,
            tail: &tail,
            ..FrameRef::from(&sent[0])
        };
        assert!(matches!(
            sender.send(over),
            Err(Refused::Encode(WireError::FrameTooLarge { .. }))
        ));
        drop(sender);
        assert_eq!(written(writer).await, sent);
    }

    #[tokio::test]
    async fn the_writer_ends_when_the_last_sender_goes_and_refuses_sends_after() {
        let (sender, mut writer) = outbox(4096);
        let second = sender.clone();
        let writing = tokio::spawn(async move {
            let mut sink = Trickle(Vec::new());
            writer.run(&mut sink).await.map(|()| sink.0.len())
        });
        sender.send(&frame(1, 10)).unwrap();
        drop(sender);
        tokio::task::yield_now().await;
        assert!(!writing.is_finished(), "a sender is still alive");
        second.send(&frame(2, 10)).unwrap();
        let kept = second.clone();
        drop(second);
        drop(kept);
        let written = writing.await.unwrap().unwrap();
        assert_eq!(
            written,
            2 * frame(1, 10).encoded_len() + 2 * crate::wire::PREFIX_LEN
        );
    }

    #[tokio::test]
    async fn a_sender_waiting_for_room_is_woken_when_the_writer_takes_the_queue() {
        let (sender, mut writer) = outbox(4096);
        sender.send(&frame(1, 100)).unwrap();
        let waiting = std::future::poll_fn(|cx| Poll::Ready(sender.poll_room(cx, 10))).await;
        assert!(waiting.is_pending(), "over the high-water mark");
        let writing = tokio::spawn(async move {
            let mut sink = Trickle(Vec::new());
            writer.run(&mut sink).await
        });
        // Biased towards the timer: a `timeout` would poll the waiter once more when it fires
        // and so pass even if the writer never woke it.
        tokio::select! {
            biased;
            () = tokio::time::sleep(std::time::Duration::from_secs(10)) => {
                panic!("the writer took the queue but the waiting sender was not woken");
            }
            () = sender.room(10) => {}
        }
        drop(sender);
        writing.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_closed_outbox_refuses_sends_and_frees_room_waiters() {
        let (sender, mut writer) = outbox(4096);
        sender.send(&frame(1, 100)).unwrap();
        let waiting = std::future::poll_fn(|cx| Poll::Ready(sender.poll_room(cx, 10))).await;
        assert!(waiting.is_pending(), "over the high-water mark");
        writer.close();
        assert!(matches!(sender.send(&frame(2, 1)), Err(Refused::Closed)));
        sender.room(10).await;
    }
}
