//! A connection's open streams, shared by its read loop (which hands them the message, credit
//! and end frames it reads) and the tasks that send and consume their messages.
//!
//! Both sides of a connection keep one: the read loop calls [`StreamSet::on_frame`], which
//! finds the stream, checks the frame against the flow-control rules and either queues it or
//! says which stream broke them; how a broken stream ends (a trailer from a server, a cancel
//! from a client) is the caller's business.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::task::AbortHandle;

use super::flow::{INITIAL_CONNECTION_CREDIT, Ready, SendCredit, Window};
use super::message::Trailer;
use crate::error::Error;
use crate::id::IdHashBuilder;
use crate::status::{Code, Status};
use crate::wire::{self, Encoding, Frame, FrameRef, Head, HeadRef, View};

/// Bytes of the connection's outgoing queue past which stream messages wait for the writer:
/// what a unary reply or a credit frame may find queued ahead of it (a few dozen
/// microseconds of writing).
const STREAM_QUEUE: usize = 16 * 1024;

/// A stream's request id and attempt: what its frames are addressed to.
pub(crate) type StreamId = (u64, u32);

/// The id a connection-level credit frame carries.
pub(crate) const CONNECTION: StreamId = (0, 0);

/// Flow-control settings of one side of a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlowConfig {
    /// Bytes of messages one stream may have in flight and buffered here.
    pub(crate) stream_window: u32,
    /// Bytes of messages all streams together may have in flight and buffered here.
    pub(crate) connection_window: u32,
}

/// The defaults: 4 MiB per stream (several large messages in flight at once), 16 MiB per
/// connection.
impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            stream_window: 4 << 20,
            connection_window: 16 << 20,
        }
    }
}

/// A connection's streams.
pub(crate) struct StreamSet {
    entries: Mutex<HashMap<StreamId, Entry, IdHashBuilder>>,
    /// `entries.len()`, readable without the lock.
    len: AtomicUsize,
    /// This side's credit to send messages on the connection.
    pub(crate) send: SendCredit,
    /// What the peer may send on the connection: its credit and what is buffered here.
    recv: Mutex<Window>,
    /// A stream has been accepted (by this server, or by the server a client talks to): only
    /// then may connection credit be granted (a peer that knows no streams must receive no
    /// stream frame).
    windows_open: AtomicBool,
    pub(crate) outbound: wire::Sender,
    pub(crate) config: FlowConfig,
    /// The largest body a compressed message may inflate to.
    pub(crate) max_frame_size: u32,
}

struct Entry {
    /// The request's encoding, which the stream's trailer echoes.
    encoding: Encoding,
    inbox: Arc<Inbox>,
    credit: Arc<SendCredit>,
    /// The task that runs the stream (the server's handler, the client's sender), stopped
    /// when the stream ends early.
    task: Option<AbortHandle>,
    /// A frame of the peer's has arrived on the stream (a client grants credit only then).
    heard: bool,
}

/// A stream's half on this side: its received messages, and its credit to send.
pub(crate) struct Opened {
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) credit: Arc<SendCredit>,
}

/// A stream that broke the rules, and the status it ends with.
#[derive(Debug)]
pub(crate) struct Broken {
    pub(crate) id: StreamId,
    pub(crate) status: Status,
}

impl StreamSet {
    pub(crate) fn new(outbound: wire::Sender, config: FlowConfig, max_frame_size: u32) -> Self {
        StreamSet {
            entries: Mutex::new(HashMap::default()),
            len: AtomicUsize::new(0),
            send: SendCredit::new(INITIAL_CONNECTION_CREDIT),
            recv: Mutex::new(Window::new(
                config.connection_window,
                INITIAL_CONNECTION_CREDIT,
            )),
            windows_open: AtomicBool::new(false),
            outbound,
            config,
            max_frame_size,
        }
    }

    fn lock(&self) -> StreamsGuard<'_> {
        StreamsGuard {
            entries: self.entries.lock().unwrap_or_else(PoisonError::into_inner),
            len: &self.len,
        }
    }

    fn recv(&self) -> MutexGuard<'_, Window> {
        self.recv.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Open streams.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether a stream is open under `id`.
    pub(crate) fn contains(&self, id: StreamId) -> bool {
        self.len() > 0 && self.lock().contains_key(&id)
    }

    /// Registers a stream. `send_credit` is this side's credit to start with (the protocol's
    /// initial credit for a server, none for a client), `recv_credit` the peer's.
    pub(crate) fn open(
        &self,
        id: StreamId,
        encoding: Encoding,
        send_credit: i64,
        recv_credit: i64,
    ) -> Opened {
        let inbox = Arc::new(Inbox::new(Window::new(
            self.config.stream_window,
            recv_credit,
        )));
        let credit = Arc::new(SendCredit::new(send_credit));
        let entry = Entry {
            encoding,
            inbox: inbox.clone(),
            credit: credit.clone(),
            task: None,
            heard: false,
        };
        let replaced = self.lock().insert(id, entry);
        if let Some(old) = replaced {
            let dropped = old.end(Err(Error::Cancelled));
            self.consumed(dropped);
        }
        Opened { inbox, credit }
    }

    /// Sets the task that runs the stream, to be stopped if it ends early.
    pub(crate) fn set_task(&self, id: StreamId, task: AbortHandle) {
        let ended = match self.lock().get_mut(&id) {
            Some(entry) => {
                entry.task = Some(task);
                None
            }
            None => Some(task),
        };
        // Ended already: its task has nothing left to do.
        if let Some(task) = ended {
            task.abort();
        }
    }

    /// Ends the peer's side of every stream, as its end frame would (the peer closed its side
    /// of the connection).
    pub(crate) fn half_close_all(&self) {
        let inboxes: Vec<Arc<Inbox>> = self.lock().values().map(|e| e.inbox.clone()).collect();
        for inbox in inboxes {
            let _ = inbox.half_close();
        }
    }

    /// Grants the peer its credit on a stream it may now send on (and on the connection, the
    /// first time): the server does this when it accepts a stream, the client when it hears
    /// the server's first frame on one.
    pub(crate) fn open_windows(&self, id: StreamId, inbox: &Inbox) {
        let stream = inbox.lock().window.grant();
        if let Some(bytes) = stream {
            self.send_credit(id, bytes);
        }
        let connection = {
            let mut window = self.recv();
            self.windows_open.store(true, Ordering::Release);
            window.grant()
        };
        if let Some(bytes) = connection {
            self.send_credit(CONNECTION, bytes);
        }
    }

    /// A client heard the server's first frame on a stream (its acceptance): from now on it
    /// may send on it, so it grants the server its full windows.
    pub(crate) fn heard(&self, id: StreamId) {
        let inbox = {
            let mut entries = self.lock();
            match entries.get_mut(&id) {
                Some(entry) if !entry.heard => {
                    entry.heard = true;
                    entry.inbox.clone()
                }
                _ => return,
            }
        };
        self.open_windows(id, &inbox);
    }

    fn send_credit(&self, (request_id, attempt): StreamId, bytes: u32) {
        let mut frame = Frame::control(request_id, Head::Credit { bytes });
        frame.attempt = attempt;
        let _ = self.outbound.send(&frame);
    }

    /// Removes a stream and ends it with `outcome` (what its consumer reads last). Returns
    /// the request's encoding if it was open.
    pub(crate) fn close(
        &self,
        id: StreamId,
        outcome: Result<Option<Trailer>, Error>,
    ) -> Option<Encoding> {
        let entry = self.lock().remove(&id)?;
        let encoding = entry.encoding;
        let dropped = entry.end(outcome);
        self.consumed(dropped);
        Some(encoding)
    }

    /// The ids of the open streams.
    pub(crate) fn ids(&self) -> Vec<StreamId> {
        self.lock().keys().copied().collect()
    }

    /// Ends every stream with `reason` (the connection is over).
    pub(crate) fn close_all(&self, reason: &Error) {
        let entries: Vec<Entry> = self.lock().drain().map(|(_, entry)| entry).collect();
        for entry in entries {
            let _ = entry.end(Err(reason.clone()));
        }
        self.send.close();
    }

    /// Removes a stream whose task has finished: a consumer still reading the peer's messages
    /// (one the handler handed to a task of its own) reads what is queued, then the end.
    /// Returns whether the stream was still open: whoever removes it sends its trailer.
    pub(crate) fn remove(&self, id: StreamId) -> bool {
        let entry = self.lock().remove(&id);
        let Some(entry) = entry else {
            return false;
        };
        entry.credit.close();
        let dropped = entry.inbox.finish(Ok(None));
        self.consumed(dropped);
        true
    }

    /// Takes a message read off the connection into `arrivals`, which hands the messages
    /// read in a row for one stream over together. A message for another stream first
    /// delivers those (its `Err` is theirs).
    pub(crate) fn arrive(
        &self,
        id: StreamId,
        message: Received,
        arrivals: &mut Arrivals,
    ) -> Result<(), Broken> {
        let delivered = if arrivals.id == id {
            Ok(())
        } else {
            self.deliver(arrivals)
        };
        arrivals.id = id;
        arrivals.messages.push(message);
        delivered
    }

    /// Hands the messages in `arrivals` to their stream: one lock of the connection's
    /// window, one lookup and one lock of the stream's inbox for all of them. Messages for a
    /// stream that is not open are dropped (a stream may end while the peer still sends),
    /// though they still count against the connection's window.
    pub(crate) fn deliver(&self, arrivals: &mut Arrivals) -> Result<(), Broken> {
        let id = arrivals.id;
        let messages = &mut arrivals.messages;
        if messages.is_empty() {
            return Ok(());
        }
        let within = {
            let mut window = self.recv();
            messages
                .iter()
                .take_while(|message| window.receive(message.cost).is_ok())
                .count()
        };
        // Messages past the connection's credit are not buffered, so not counted.
        let over_connection = within < messages.len();
        messages.truncate(within);
        let inbox = self.lock().get(&id).map(|entry| entry.inbox.clone());
        let Some(inbox) = inbox else {
            let cost = messages.drain(..).map(|message| message.cost).sum();
            self.consumed(cost);
            return Ok(());
        };
        let (refused, refusal) = inbox.push_all(messages);
        self.consumed(refused);
        let broken = |status| Err(Broken { id, status });
        match refusal {
            Some(Refusal::AfterEnd) => broken(Status::invalid_argument(format!(
                "stream {}: a message after the end of the stream",
                id.0
            ))),
            Some(Refusal::OverCredit) => broken(Status::new(
                Code::ResourceExhausted,
                format!("stream {}: a message beyond the stream's credit", id.0),
            )),
            _ if over_connection => broken(Status::new(
                Code::ResourceExhausted,
                format!("stream {}: a message beyond the connection's credit", id.0),
            )),
            _ => Ok(()),
        }
    }

    /// Handles a credit or end frame read off the connection (after delivering the messages
    /// before it). Frames for streams that are not open are dropped.
    pub(crate) fn on_frame(&self, frame: &Frame) -> Result<(), Broken> {
        let id = (frame.request_id, frame.attempt);
        match frame.head {
            Head::Credit { bytes } if id == CONNECTION => {
                if let Err(overflow) = self.send.grant(bytes) {
                    tracing::debug!(%overflow, "ignoring a connection grant past the maximum");
                }
                Ok(())
            }
            Head::Credit { bytes } => {
                let credit = self.lock().get(&id).map(|entry| entry.credit.clone());
                match credit.map(|credit| credit.grant(bytes)) {
                    Some(Err(overflow)) => Err(Broken {
                        id,
                        status: Status::invalid_argument(format!("stream {}: {overflow}", id.0)),
                    }),
                    _ => Ok(()),
                }
            }
            Head::End => {
                let inbox = self.lock().get(&id).map(|entry| entry.inbox.clone());
                match inbox.map(|inbox| inbox.half_close()) {
                    Some(Err(())) => Err(Broken {
                        id,
                        status: Status::invalid_argument(format!(
                            "stream {}: end received after the end of the stream",
                            id.0
                        )),
                    }),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// `cost` bytes of messages left the connection's buffer: grants them back when enough
    /// has come free.
    pub(crate) fn consumed(&self, cost: usize) {
        if cost == 0 {
            return;
        }
        let grant = {
            let mut window = self.recv();
            if self.windows_open.load(Ordering::Acquire) {
                window.consume(cost)
            } else {
                // No grant before a stream is accepted; the first one covers this.
                window.release(cost);
                None
            }
        };
        if let Some(bytes) = grant {
            self.send_credit(CONNECTION, bytes);
        }
    }

    /// Grants the peer `bytes` more credit on a stream whose consumer took messages.
    pub(crate) fn grant_stream(&self, id: StreamId, bytes: u32) {
        self.send_credit(id, bytes);
    }

    /// Sends one message on a stream once both it and the connection have credit (and, when
    /// `queue_full`, once the connection's queue has room). Returns the bytes queued after
    /// it, or `None` when the stream ended first.
    pub(crate) async fn send_message(
        &self,
        id: StreamId,
        credit: &SendCredit,
        queue_full: bool,
        encoding: Encoding,
        application_error: bool,
        body: &Bytes,
    ) -> Result<Option<usize>, Error> {
        let ready = std::future::poll_fn(|cx| {
            match credit.poll_ready(cx) {
                Poll::Ready(Ready::Closed) => return Poll::Ready(Ready::Closed),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ready::Go) => {}
            }
            match self.send.poll_ready(cx) {
                Poll::Ready(Ready::Go) => {}
                other => return other,
            }
            if !queue_full {
                return Poll::Ready(Ready::Go);
            }
            // Credit lets a stream queue a whole window; the queue is first in, first out,
            // so the replies and credit frames queued after it would wait behind all of it.
            self.outbound
                .poll_room(cx, STREAM_QUEUE)
                .map(|()| Ready::Go)
        })
        .await;
        if ready == Ready::Closed {
            return Ok(None);
        }
        let frame = FrameRef {
            request_id: id.0,
            attempt: id.1,
            encoding,
            head: HeadRef::Message { application_error },
            body,
            tail: &crate::body::NO_TAIL,
        };
        let sent = match self.outbound.send_sized(frame) {
            Ok(sent) => sent,
            Err(wire::Refused::Closed) => return Ok(None),
            Err(wire::Refused::Encode(error)) => {
                return Err(Error::protocol(error));
            }
        };
        // Paid after the send, with the length the encoder wrote: the frame is sized once.
        credit.spend(sent.length);
        self.send.spend(sent.length);
        Ok(Some(sent.queued))
    }

    /// Whether `queued` bytes fill the connection's queue for stream messages.
    pub(crate) fn queue_full(queued: usize) -> bool {
        queued > STREAM_QUEUE
    }
}

/// The locked entries; publishes their number as it unlocks them.
struct StreamsGuard<'a> {
    entries: MutexGuard<'a, HashMap<StreamId, Entry, IdHashBuilder>>,
    len: &'a AtomicUsize,
}

impl std::ops::Deref for StreamsGuard<'_> {
    type Target = HashMap<StreamId, Entry, IdHashBuilder>;

    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

impl std::ops::DerefMut for StreamsGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.entries
    }
}

impl Drop for StreamsGuard<'_> {
    fn drop(&mut self) {
        self.len.store(self.entries.len(), Ordering::Release);
    }
}

impl Entry {
    /// Ends the stream; returns the bytes of queued messages thrown away.
    fn end(self, outcome: Result<Option<Trailer>, Error>) -> usize {
        self.credit.close();
        let dropped = self.inbox.finish(outcome);
        if let Some(task) = self.task {
            task.abort();
        }
        dropped
    }
}

/// Messages read in a row for one stream, not yet handed to it (see
/// [`StreamSet::arrive`]): whoever reads a connection keeps one and calls
/// [`StreamSet::deliver`] before anything else it reads and when it has read all it has.
#[derive(Default)]
pub(crate) struct Arrivals {
    id: StreamId,
    messages: Vec<Received>,
}

/// A message frame's header, read in place in the read buffer (its body is taken apart).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageHead {
    pub(crate) id: StreamId,
    encoding: Encoding,
    application_error: bool,
    /// The frame's length field: the message's cost in credit.
    cost: usize,
}

impl MessageHead {
    /// The header of a message frame's view; `None` for a view of another kind.
    pub(crate) fn of(view: View<'_>) -> Option<MessageHead> {
        let View::Message {
            request_id,
            attempt,
            encoding,
            application_error,
            length,
        } = view
        else {
            return None;
        };
        Some(MessageHead {
            id: (request_id, attempt),
            encoding,
            application_error,
            cost: length,
        })
    }

    /// The message, with its body.
    pub(crate) fn with_body(self, body: Bytes) -> Received {
        Received {
            body,
            encoding: self.encoding,
            application_error: self.application_error,
            cost: self.cost,
        }
    }
}

impl Received {
    /// A message frame decoded whole (a reader takes messages in place; this is for any that
    /// reach it another way), and its stream.
    pub(crate) fn from_frame(frame: Frame) -> (StreamId, Received) {
        let cost = frame.encoded_len();
        let application_error = matches!(
            frame.head,
            Head::Message {
                application_error: true
            }
        );
        let message = Received {
            body: frame.body,
            encoding: frame.encoding,
            application_error,
            cost,
        };
        ((frame.request_id, frame.attempt), message)
    }
}

/// A message as it arrived: still compressed.
pub(crate) struct Received {
    pub(crate) body: Bytes,
    pub(crate) encoding: Encoding,
    pub(crate) application_error: bool,
    /// What it cost the sender in credit (the frame's length field).
    pub(crate) cost: usize,
}

/// Why a message was not queued.
enum Refusal {
    /// The peer had ended its side of the stream.
    AfterEnd,
    /// The peer had no credit left on the stream.
    OverCredit,
}

/// One stream's received messages, between the read loop and the consumer.
pub(crate) struct Inbox {
    state: Mutex<InboxState>,
}

pub(crate) struct InboxState {
    queue: VecDeque<Received>,
    pub(crate) window: Window,
    /// The peer sent its end (or a client's trailer came): nothing more is queued.
    half_closed: bool,
    /// How the stream ended, once it has: taken by the consumer after the queue.
    outcome: Option<Result<Option<Trailer>, Error>>,
    /// The consumer let go: messages are thrown away as they come.
    dropped: bool,
    waker: Option<Waker>,
}

/// What a consumer polling an inbox gets.
pub(crate) enum Next {
    /// A message, the credit to grant back on the stream now that it is taken, and whether
    /// it was the last one queued.
    Message(Received, Option<u32>, bool),
    /// The stream ended: `Ok(None)` for a plain end, `Ok(Some(reply))` for a client's
    /// trailer, `Err` for a failure.
    End(Result<Option<Trailer>, Error>),
}

impl Inbox {
    fn new(window: Window) -> Self {
        Inbox {
            state: Mutex::new(InboxState {
                queue: VecDeque::new(),
                window,
                half_closed: false,
                outcome: None,
                dropped: false,
                waker: None,
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `messages` (leaving the vector empty) up to the first one refused. Returns the
    /// bytes not queued (refused, or thrown away for a consumer that is gone) and why the
    /// first refused one was.
    fn push_all(&self, messages: &mut Vec<Received>) -> (usize, Option<Refusal>) {
        let mut refused = 0;
        let mut refusal = None;
        let waker = {
            let mut state = self.lock();
            for message in messages.drain(..) {
                if refusal.is_some() {
                    refused += message.cost;
                    continue;
                }
                if state.half_closed || state.outcome.is_some() {
                    refusal = Some(Refusal::AfterEnd);
                } else if state.window.receive(message.cost).is_err() {
                    refusal = Some(Refusal::OverCredit);
                } else if state.dropped {
                    state.window.consume(message.cost);
                } else {
                    state.queue.push_back(message);
                    continue;
                }
                refused += message.cost;
            }
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        (refused, refusal)
    }

    /// The peer's end frame. `Err` if it had ended already.
    fn half_close(&self) -> Result<(), ()> {
        let waker = {
            let mut state = self.lock();
            if state.half_closed || state.outcome.is_some() {
                return Err(());
            }
            state.half_closed = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Ends the stream with `outcome`, which the consumer reads after what is queued (the
    /// messages that came before an error status are the stream's as much as any). Returns
    /// the bytes thrown away: those queued for a consumer that is gone.
    pub(crate) fn finish(&self, outcome: Result<Option<Trailer>, Error>) -> usize {
        let (waker, dropped) = {
            let mut state = self.lock();
            if state.outcome.is_some() {
                return 0;
            }
            let mut dropped = 0;
            if state.dropped {
                dropped = state.queue.drain(..).map(|message| message.cost).sum();
                state.window.consume(dropped);
            }
            state.outcome = Some(outcome);
            (state.waker.take(), dropped)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        dropped
    }

    /// The next message, or the end. A consumer that took the end gets `End(Err(Cancelled))`
    /// after.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Next> {
        let mut state = self.lock();
        if let Some(message) = state.queue.pop_front() {
            // Granted back on the stream only while it is open: a peer that has ended its
            // side sends nothing more.
            let grant = state.window.consume(message.cost);
            let grant = grant.filter(|_| !state.half_closed && state.outcome.is_none());
            let drained = state.queue.is_empty();
            return Poll::Ready(Next::Message(message, grant, drained));
        }
        if let Some(outcome) = state.outcome.take() {
            state.half_closed = true;
            state.outcome = Some(Err(Error::Cancelled));
            return Poll::Ready(Next::End(outcome));
        }
        if state.half_closed {
            return Poll::Ready(Next::End(Ok(None)));
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The consumer lets go: what is queued is thrown away, and so is what comes after.
    /// Returns the bytes thrown away (to grant back on the connection).
    pub(crate) fn drop_consumer(&self) -> usize {
        let mut state = self.lock();
        state.dropped = true;
        let cost: usize = state.queue.drain(..).map(|message| message.cost).sum();
        state.window.consume(cost);
        cost
    }

    /// Bytes received and not consumed.
    pub(crate) fn buffered(&self) -> i64 {
        self.lock().window.buffered()
    }
}
