//! One connection's stream state machine driven directly, for the `stream_state` fuzz target
//! (feature `fuzzing`, not a public API).
//!
//! A real server over an in-memory transport runs a few hundred inputs a second; this runs
//! the [`StreamSet`] of one side of a connection with no socket, no tasks and no runtime, so
//! an input takes microseconds. It plays the other parts itself: the read loop (messages
//! handed over in batches as [`Arrivals`], then credit and end frames), the consumers (one
//! [`Messages`] per stream, polled with a no-op waker), the tasks that end streams, and the
//! peer. The peer keeps the flow-control rules (docs/PROTOCOL.md section 7.10), counting its
//! credit from the grants this side writes to its outgoing queue, until an operation breaks
//! them on purpose. After every operation [`Driver::check`] asserts:
//!
//! - the set holds exactly the streams opened and not ended since;
//! - a stream's inbox holds at most its window (or the larger initial credit) and one
//!   message, and at most the credit it ever allowed and one message;
//! - all inboxes together hold at most the connection's window (or its larger initial
//!   credit) and one message, and at most the credit it ever allowed and one message;
//! - only whole credit (and, on a client, cancel) frames are written, each grant non-zero,
//!   for the connection or a stream opened here;
//! - while the peer has kept the rules: none of its messages is refused, no grant takes its
//!   credit past the maximum, a stream whose consumer took everything leaves it credit to
//!   send on, and so does the connection once every consumer took and settled everything.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use tokio_util::codec::Decoder;

use super::flow::{INITIAL_CONNECTION_CREDIT, INITIAL_STREAM_CREDIT, MAX_CREDIT};
use super::messages::Messages;
use super::set::{Arrivals, Broken, CONNECTION, FlowConfig, Inbox, Received, StreamId, StreamSet};
use crate::error::Error;
use crate::format::Format;
use crate::wire::{self, Encoding, Frame, FrameCodec, Head};

/// A stream's window here: small, so that a few operations fill it.
const STREAM_WINDOW: u32 = 4 * 1024;

/// The connection's window here.
const CONNECTION_WINDOW: u32 = 16 * 1024;

/// The largest frame either side reads.
const MAX_FRAME_SIZE: u32 = 64 * 1024;

/// Streams an input addresses at a time.
const SLOTS: usize = 4;

/// Streams an input may open: every stream opened is checked after every operation.
const MAX_OPENS: usize = 16;

/// Operations an input runs at most, so that its cost stays bounded (libFuzzer grows inputs
/// to kilobytes; longer programs reach nothing new).
const MAX_OPERATIONS: usize = 256;

/// Messages one burst operation sends at most.
const MAX_BURST: usize = 64;

/// Zeros that message bodies are sliced from: no allocation per message.
static ZEROS: [u8; MAX_FRAME_SIZE as usize] = [0; MAX_FRAME_SIZE as usize];

/// Runs the operations `input` encodes against a new connection's streams, panicking if an
/// invariant breaks. The first byte chooses the side (even: server, odd: client); then each
/// operation is a byte and its arguments, until the input runs out or 256 operations ran.
pub fn drive(input: &[u8]) {
    let mut input = Input(input);
    let side = match input.byte() {
        Some(byte) if byte & 1 == 1 => Side::Client,
        _ => Side::Server,
    };
    let mut driver = Driver::new(side);
    for _ in 0..MAX_OPERATIONS {
        let Some(op) = input.byte() else {
            break;
        };
        if !driver.step(op, &mut input) {
            break;
        }
        driver.check();
    }
}

/// The rest of the input.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    /// The next byte, 0 once the input ran out.
    fn arg(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// One stream this side opened, kept for its bounds after it ends (its consumer may still
/// hold messages).
struct Tracked {
    id: StreamId,
    inbox: Arc<Inbox>,
    /// The credit the peer had when it opened: the protocol's, or none.
    initial: i64,
    /// `initial` and every grant written for it since.
    allowed: i64,
    /// The largest message sent to it.
    largest: usize,
}

/// A consumer of a stream's messages, as a handler or a caller holds one.
struct Consumer {
    messages: Messages,
    /// Its last poll found nothing more (or the end): it has given back on the connection's
    /// window all it took.
    settled: bool,
    /// It read the end.
    ended: bool,
}

/// A stream address the operations name, and what the peer knows of the stream there.
#[derive(Default)]
struct Slot {
    /// The stream last opened here, if any: an index into [`Driver::tracked`].
    stream: Option<usize>,
    /// Open in the set, as far as this side's operations went.
    open: bool,
    consumer: Option<Consumer>,
    /// The peer's credit on the stream, as the peer counts it.
    peer_credit: i64,
    /// The peer sent its end.
    peer_ended: bool,
}

struct Driver {
    side: Side,
    set: Arc<StreamSet>,
    /// The outgoing queue's writer, drained into `written` after every operation.
    writer: wire::Writer,
    written: Vec<u8>,
    codec: FrameCodec,
    arrivals: Arrivals,
    /// The messages in `arrivals`: their stream and whether the peer had credit for them.
    pending: Vec<(StreamId, bool)>,
    slots: [Slot; SLOTS],
    tracked: Vec<Tracked>,
    /// Consumers of streams whose address was opened again (a server's handler may outlive
    /// its stream's entry).
    retired: Vec<Consumer>,
    /// The next request id a stream opens with.
    next_id: u64,
    /// The peer's credit on the connection, as the peer counts it.
    peer_connection: i64,
    /// The connection's initial credit and every connection grant written since.
    connection_allowed: i64,
    /// The largest message sent on the connection.
    largest: usize,
    /// The peer kept the rules so far.
    honest: bool,
}

impl Driver {
    fn new(side: Side) -> Self {
        let (sender, writer) = wire::outbox(MAX_FRAME_SIZE);
        let config = FlowConfig {
            stream_window: STREAM_WINDOW,
            connection_window: CONNECTION_WINDOW,
        };
        Driver {
            side,
            set: Arc::new(StreamSet::new(sender, config, MAX_FRAME_SIZE)),
            writer,
            written: Vec::new(),
            codec: FrameCodec::with_max_frame_size(MAX_FRAME_SIZE),
            arrivals: Arrivals::default(),
            pending: Vec::new(),
            slots: Default::default(),
            tracked: Vec::new(),
            retired: Vec::new(),
            next_id: 1,
            peer_connection: INITIAL_CONNECTION_CREDIT,
            connection_allowed: INITIAL_CONNECTION_CREDIT,
            largest: 0,
            honest: true,
        }
    }

    /// Applies one operation. `false` once the connection is over.
    fn step(&mut self, op: u8, input: &mut Input<'_>) -> bool {
        let slot = usize::from(input.arg()) % SLOTS;
        match op % 12 {
            0 => self.open(slot, op & 0x80 != 0),
            1 => {
                let size = input.arg();
                self.message(slot, size, Encoding::new(Format::Raw.id(), 0), false);
            }
            2 => {
                let (size, encoding) = (input.arg(), input.arg());
                self.message(slot, size, Encoding::from_byte(encoding), true);
            }
            3 => {
                let (size, times) = (input.arg(), usize::from(input.arg()) % MAX_BURST + 1);
                for _ in 0..times {
                    self.message(slot, size, Encoding::new(Format::Raw.id(), 0), false);
                }
            }
            4 => {
                let amount = input.arg();
                self.credit(slot, op & 0x80 != 0, amount);
            }
            5 => self.end(slot),
            6 => self.consume(slot, 1),
            7 => self.consume(slot, usize::MAX),
            8 => self.drop_consumer(slot),
            9 => self.finish(slot, op >> 4),
            10 => self.deliver(),
            _ => {
                self.set.close_all(&Error::Cancelled);
                self.slots.iter_mut().for_each(|slot| slot.open = false);
                self.drain_written();
                return false;
            }
        }
        self.drain_written();
        true
    }

    /// Opens a stream on `slot` as this side does: a server when a request opens one, a
    /// client when it calls. `reuse`: the server is opened one under the address it had
    /// before (a client may do that once the old one ended, though no prpc client does).
    fn open(&mut self, slot: usize, reuse: bool) {
        if self.slots[slot].open || self.tracked.len() >= MAX_OPENS {
            return;
        }
        let reused = match self.slots[slot].stream {
            Some(index) if reuse && self.side == Side::Server => Some(self.tracked[index].id),
            _ => None,
        };
        let id = reused.unwrap_or_else(|| {
            self.next_id += 1;
            (self.next_id, u32::from(self.next_id % 3 == 0))
        });
        if reused.is_some() {
            // The peer's grants and messages for the old stream and the new one are no
            // longer told apart.
            self.honest = false;
        }
        if let Some(old) = self.slots[slot].consumer.take() {
            self.retired.push(old);
        }
        let encoding = Encoding::new(Format::Raw.id(), 0);
        let (opened, initial, messages) = match self.side {
            Side::Server => {
                let opened = self.set.open(id, encoding, INITIAL_STREAM_CREDIT, 0);
                let messages =
                    Messages::server(self.set.clone(), opened.inbox.clone(), id, Format::Raw);
                (opened, 0, messages)
            }
            Side::Client => {
                let opened = self.set.open(id, encoding, 0, INITIAL_STREAM_CREDIT);
                let messages = Messages::client(
                    self.set.clone(),
                    opened.inbox.clone(),
                    id,
                    Format::Raw,
                    None,
                    Arc::new(()),
                );
                (opened, INITIAL_STREAM_CREDIT, messages)
            }
        };
        // Messages sent to the old stream and not handed over yet go to the new one.
        let largest = match (reused, self.slots[slot].stream) {
            (Some(_), Some(old)) => self.tracked[old].largest,
            _ => 0,
        };
        self.tracked.push(Tracked {
            id,
            inbox: opened.inbox.clone(),
            initial,
            allowed: initial,
            largest,
        });
        self.slots[slot] = Slot {
            stream: Some(self.tracked.len() - 1),
            open: true,
            consumer: Some(Consumer {
                messages,
                settled: true,
                ended: false,
            }),
            peer_credit: initial,
            peer_ended: false,
        };
        if self.side == Side::Server {
            // Accepting the stream grants the client its credit.
            self.set.open_windows(id, &opened.inbox);
        }
    }

    /// The peer sends a message on `slot`'s stream: if `any`, whether or not it may; else
    /// only if its credit allows.
    fn message(&mut self, slot: usize, size: u8, encoding: Encoding, any: bool) {
        let Some(index) = self.slots[slot].stream else {
            return;
        };
        let id = self.tracked[index].id;
        let peer = &self.slots[slot];
        let allowed =
            self.peer_connection > 0 && peer.peer_credit > 0 && !(peer.open && peer.peer_ended);
        if !allowed && !any {
            return;
        }
        let body = Bytes::from_static(&ZEROS[..body_len(size)]);
        let frame = Frame {
            request_id: id.0,
            attempt: id.1,
            encoding,
            head: Head::Message {
                application_error: size & 1 == 1,
            },
            body,
        };
        let cost = frame.encoded_len();
        assert!(cost <= MAX_FRAME_SIZE as usize, "a message of {cost} bytes");
        self.honest &= allowed;
        self.peer_connection -= i64::try_from(cost).unwrap_or(i64::MAX);
        self.slots[slot].peer_credit -= i64::try_from(cost).unwrap_or(i64::MAX);
        let tracked = &mut self.tracked[index];
        tracked.largest = tracked.largest.max(cost);
        self.largest = self.largest.max(cost);
        let message = Received {
            body: frame.body,
            encoding: frame.encoding,
            application_error: size & 1 == 1,
            cost,
        };
        // A message for another stream first hands over the ones before it.
        let batch = match self.pending.last() {
            Some(&(last, _)) if last == id => Vec::new(),
            _ => std::mem::take(&mut self.pending),
        };
        let arrived = self.set.arrive(id, message, &mut self.arrivals);
        self.pending.push((id, allowed));
        if let Err(broken) = arrived {
            self.broken(broken, &batch);
        }
    }

    /// The read loop hands over the messages it read (it ran out of bytes, or reads another
    /// kind of frame next).
    fn deliver(&mut self) {
        let batch = std::mem::take(&mut self.pending);
        if let Err(broken) = self.set.deliver(&mut self.arrivals) {
            self.broken(broken, &batch);
        }
    }

    /// A stream broke the rules with one of `batch`: it ends, as the connection ends it.
    fn broken(&mut self, Broken { id, status }: Broken, batch: &[(StreamId, bool)]) {
        let messages: Vec<bool> = batch
            .iter()
            .filter(|(message, _)| *message == id)
            .map(|&(_, allowed)| allowed)
            .collect();
        assert!(
            !messages.is_empty(),
            "stream {id:?} broken ({status}) by messages of other streams"
        );
        assert!(
            !(self.honest && messages.iter().all(|&allowed| allowed)),
            "stream {id:?}: a message sent within the peer's credit was refused: {status}"
        );
        self.end_broken(id, status);
    }

    fn end_broken(&mut self, id: StreamId, status: crate::Status) {
        let closed = self.set.close(id, Err(Error::Status(status)));
        let slot = self.slot_of(id);
        if let Some(slot) = slot {
            assert_eq!(
                closed.is_some(),
                self.slots[slot].open,
                "stream {id:?}: broken while closed"
            );
            self.slots[slot].open = false;
        }
    }

    /// The slot whose current stream is `id`.
    fn slot_of(&self, id: StreamId) -> Option<usize> {
        self.slots.iter().position(|slot| {
            slot.stream
                .is_some_and(|index| self.tracked[index].id == id)
        })
    }

    /// The peer grants this side credit: on the connection, or on `slot`'s stream.
    fn credit(&mut self, slot: usize, connection: bool, amount: u8) {
        let id = match self.slots[slot].stream {
            Some(index) if !connection => self.tracked[index].id,
            _ => CONNECTION,
        };
        let bytes = match amount % 8 {
            0 => 0,
            1 => 1,
            2 => 4096,
            3 => u32::MAX >> 1,
            4 => u32::MAX,
            _ => u32::from(amount) << (amount % 24),
        };
        self.deliver();
        let frame = control(id, Head::Credit { bytes });
        match self.set.on_frame(&frame) {
            Ok(()) if self.side == Side::Client && id != CONNECTION => self.set.heard(id),
            Ok(()) => {}
            Err(Broken { id, status }) => self.end_broken(id, status),
        }
    }

    /// The peer ends its side of `slot`'s stream (a client's end; a client ignores one).
    fn end(&mut self, slot: usize) {
        let Some(index) = self.slots[slot].stream else {
            return;
        };
        let id = self.tracked[index].id;
        self.deliver();
        if self.side == Side::Client {
            return;
        }
        if self.slots[slot].open && self.slots[slot].peer_ended {
            self.honest = false;
        }
        self.slots[slot].peer_ended = true;
        if let Err(Broken { id, status }) = self.set.on_frame(&control(id, Head::End)) {
            self.end_broken(id, status);
        }
    }

    /// `slot`'s consumer takes up to `count` messages.
    fn consume(&mut self, slot: usize, count: usize) {
        let Some(consumer) = &mut self.slots[slot].consumer else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..count {
            match Pin::new(&mut consumer.messages).poll_next(&mut cx) {
                Poll::Ready(Some(_)) => consumer.settled = false,
                Poll::Ready(None) => {
                    consumer.settled = true;
                    consumer.ended = true;
                    break;
                }
                Poll::Pending => {
                    consumer.settled = true;
                    break;
                }
            }
        }
    }

    /// `slot`'s consumer lets go. A client's, before the end, cancels the call.
    fn drop_consumer(&mut self, slot: usize) {
        let Some(consumer) = self.slots[slot].consumer.take() else {
            return;
        };
        let ended = consumer.ended;
        drop(consumer);
        if self.side == Side::Client && !ended {
            self.slots[slot].open = false;
        }
    }

    /// The stream on `slot` ends here: its task finished, or the peer's trailer came.
    fn finish(&mut self, slot: usize, how: u8) {
        let Some(index) = self.slots[slot].stream else {
            return;
        };
        let id = self.tracked[index].id;
        match how % 3 {
            0 => {
                self.set.close(id, Ok(None));
            }
            1 => {
                self.set.remove(id);
            }
            _ => {
                self.set.close(id, Err(Error::Cancelled));
            }
        }
        self.slots[slot].open = false;
    }

    /// Reads what this side wrote and applies its grants to the peer's credit.
    fn drain_written(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        {
            let mut run = std::pin::pin!(self.writer.run(&mut self.written));
            // The writer yields once before it takes a small batch, then waits for more.
            for _ in 0..3 {
                if run.as_mut().poll(&mut cx).is_ready() {
                    panic!("the writer finished while the set still holds a sender");
                }
            }
        }
        let mut buffer = BytesMut::from(&self.written[..]);
        self.written.clear();
        while let Some(frame) = self
            .codec
            .decode(&mut buffer)
            .expect("this side writes whole, valid frames")
        {
            self.written_frame(&frame);
        }
        assert!(buffer.is_empty(), "a partial frame written");
    }

    fn written_frame(&mut self, frame: &Frame) {
        let id = (frame.request_id, frame.attempt);
        let bytes = match frame.head {
            Head::Credit { bytes } => bytes,
            Head::Cancel if self.side == Side::Client => return,
            ref head => panic!("{id:?}: a stream set wrote {head:?}"),
        };
        assert!(bytes > 0, "{id:?}: a grant of 0 bytes");
        let bytes = i64::from(bytes);
        if id == CONNECTION {
            self.peer_connection += bytes;
            self.connection_allowed += bytes;
            assert!(
                !self.honest || self.peer_connection <= MAX_CREDIT,
                "a connection grant takes the peer's credit to {}",
                self.peer_connection
            );
            return;
        }
        let index = self.tracked.iter().rposition(|tracked| tracked.id == id);
        let index = index.unwrap_or_else(|| panic!("a grant for {id:?}, never opened"));
        self.tracked[index].allowed += bytes;
        if let Some(slot) = self.slot_of(id) {
            let slot = &mut self.slots[slot];
            slot.peer_credit += bytes;
            assert!(
                !self.honest || slot.peer_credit <= MAX_CREDIT,
                "{id:?}: a grant takes the peer's credit to {}",
                slot.peer_credit
            );
        }
    }

    /// Asserts the invariants (see the module's documentation).
    fn check(&self) {
        let open = self.slots.iter().filter(|slot| slot.open).count();
        assert_eq!(self.set.len(), open, "streams in the set");
        let stream_window = i64::from(STREAM_WINDOW);
        let mut total = 0;
        for tracked in &self.tracked {
            let buffered = tracked.inbox.buffered();
            let largest = cost(tracked.largest);
            let bound = stream_window.max(tracked.initial) + largest;
            assert!(
                buffered <= bound,
                "{:?}: {buffered} bytes buffered, over a window and a message ({bound})",
                tracked.id
            );
            assert!(
                buffered <= tracked.allowed + largest,
                "{:?}: {buffered} bytes buffered, over the credit ever allowed ({}) and a message",
                tracked.id,
                tracked.allowed
            );
            total += buffered;
        }
        let largest = cost(self.largest);
        let bound = i64::from(CONNECTION_WINDOW).max(INITIAL_CONNECTION_CREDIT) + largest;
        assert!(
            total <= bound,
            "{total} bytes buffered on the connection, over a window and a message ({bound})"
        );
        assert!(
            total <= self.connection_allowed + largest,
            "{total} bytes buffered on the connection, over the credit ever allowed ({}) and a \
             message",
            self.connection_allowed
        );
        if self.honest {
            self.check_live(total);
        }
    }

    /// A peer that kept the rules is never left without credit once what it sent is taken.
    fn check_live(&self, total: i64) {
        for slot in &self.slots {
            let (Some(index), Some(consumer)) = (slot.stream, &slot.consumer) else {
                continue;
            };
            let tracked = &self.tracked[index];
            let waiting = slot.open && !slot.peer_ended && !consumer.ended;
            let arriving = self.pending.iter().any(|(id, _)| *id == tracked.id);
            if waiting && !arriving && tracked.inbox.buffered() == 0 {
                assert!(
                    slot.peer_credit > 0,
                    "{:?}: its consumer took every message, and the peer is left with {} \
                     credit on the stream",
                    tracked.id,
                    slot.peer_credit
                );
            }
        }
        let settled = self
            .slots
            .iter()
            .filter_map(|slot| slot.consumer.as_ref())
            .chain(&self.retired)
            .all(|consumer| consumer.settled);
        if settled && self.pending.is_empty() && total == 0 {
            assert!(
                self.peer_connection > 0,
                "every consumer took and settled every message, and the peer is left with {} \
                 credit on the connection",
                self.peer_connection
            );
        }
    }
}

/// A message body's length from an operation's byte: empty, small, around the window, or as
/// large as a frame may be.
fn body_len(size: u8) -> usize {
    let small = usize::from(size >> 3);
    match size % 8 {
        0 => 0,
        1 => small,
        2 => 100 + small,
        3 => 1000 + small,
        4 => 2040 + small,
        5 => STREAM_WINDOW as usize + small,
        6 => 20_000 + small,
        // Room for the header fields below the frame size limit.
        _ => MAX_FRAME_SIZE as usize - 64 - small,
    }
}

fn cost(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// A control frame (credit, end) for a stream or the connection.
fn control((request_id, attempt): StreamId, head: Head) -> Frame {
    let mut frame = Frame::control(request_id, head);
    frame.attempt = attempt;
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Operation bytes (see [`Driver::step`]).
    const OPEN: u8 = 0;
    const MESSAGE: u8 = 1;
    const BURST: u8 = 3;
    const CREDIT: u8 = 4;
    const END: u8 = 5;
    const TAKE: u8 = 6;
    const TAKE_ALL: u8 = 7;
    const DROP: u8 = 8;
    const FINISH: u8 = 9;
    const DELIVER: u8 = 10;
    const CLOSE_ALL: u8 = 11;

    const SERVER: u8 = 0;
    const CLIENT: u8 = 1;

    /// A message size byte: 100 bytes and a few, 1000 and a few.
    const SMALL: u8 = 2;
    const MEDIUM: u8 = 3;

    #[test]
    fn a_server_takes_messages_within_its_windows_and_grants_them_back() {
        drive(&[
            SERVER, OPEN, 0, OPEN, 1, BURST, 0, MEDIUM, 10, DELIVER, 0, TAKE, 0, TAKE_ALL, 0,
            BURST, 1, SMALL, 60, BURST, 0, MEDIUM, 60, DELIVER, 0, TAKE_ALL, 1, TAKE_ALL, 0, END,
            0, TAKE_ALL, 0, FINISH, 0, DROP, 1, FINISH, 1, CLOSE_ALL, 0,
        ]);
    }

    #[test]
    fn a_client_hears_the_server_then_grants() {
        drive(&[
            CLIENT, OPEN, 0, CREDIT, 0, 2, BURST, 0, MEDIUM, 64, DELIVER, 0, TAKE_ALL, 0, BURST, 0,
            MEDIUM, 64, TAKE_ALL, 0, DROP, 0, OPEN, 2, MESSAGE, 2, SMALL, DROP, 2, CLOSE_ALL, 0,
        ]);
    }

    #[test]
    fn streams_broken_by_the_peer_end_and_leave_the_others_alone() {
        // A message after the end, a second end, a credit overflow, and messages sent without
        // credit (code 2: any message, encoding byte 0).
        drive(&[
            SERVER,
            OPEN,
            0,
            OPEN,
            1,
            OPEN,
            2,
            END,
            0,
            2,
            0,
            SMALL,
            0,
            END,
            1,
            END,
            1,
            CREDIT,
            2,
            4,
            CREDIT,
            2,
            4,
            BURST,
            3,
            MEDIUM,
            64,
            2,
            3,
            0x07,
            0,
            DELIVER,
            0,
            TAKE_ALL,
            3,
            OPEN | 0x80,
            0,
            TAKE_ALL,
            0,
        ]);
    }

    #[test]
    fn a_message_larger_than_the_window_still_leaves_the_sender_credit_once_taken() {
        // The server's stream window is 4 KiB; a 20 KB message overdraws the client's credit
        // by more than a window.
        drive(&[SERVER, OPEN, 0, MESSAGE, 0, 6, DELIVER, 0, TAKE_ALL, 0]);
    }

    #[test]
    fn every_input_of_two_operations_keeps_the_invariants() {
        for side in [SERVER, CLIENT] {
            for first in 0..12 {
                for second in 0..12 {
                    drive(&[side, OPEN, 1, first, 1, 7, second, 1, 0x0f, 1]);
                }
            }
        }
    }
}
