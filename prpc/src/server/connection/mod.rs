//! One accepted connection: the read loop, its writer task, and a task for each call that
//! has to wait (and for each stream, in `streams`).

mod streams;

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use crate::server::tasks::Tasks;
use tokio::io::AsyncWriteExt;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::budget::{Charge, LARGE_FRAME, MemoryBudget, REQUEST_OVERHEAD};
use super::dispatch::{self, Incoming, Prepared, ReplyEncoding};
use super::handler::Handler;
use super::shared::Shared;
use crate::id::IdHashBuilder;
use crate::service::{Response, Service};
use crate::stats::ConnectionStats;
use crate::status::Code;
use crate::status::Status;
use crate::stream::{Arrivals, Broken, MessageHead, Received, StreamSet};
use crate::transport::{Address, AnyStream};
use crate::wire::Metadata;
use crate::wire::{self, Decoded, Frame, FrameReader, Head, RequestFields, View, WireError};
use bytestring::ByteString;

/// Replies queued for the socket past which the read loop stops reading requests until the
/// writer catches up: a client that never reads cannot grow the server's memory.
const HIGH_WATER: usize = 1 << 20;

/// Running calls by request id and attempt (a retrying client may have several attempts of one
/// call running). Only calls that run as tasks are here; one lock, taken by the read loop for
/// a request only while some call runs as a task, and once when a task ends.
#[derive(Clone)]
struct InFlight(Arc<InFlightShared>);

struct InFlightShared {
    calls: Mutex<RunningCalls>,
    /// `calls.len()`, as of the last unlock: read without the lock.
    len: AtomicUsize,
    /// The server's memory budget, which small running calls are charged to (here, where
    /// each call's task has it already, so that a charge costs no reference count).
    budget: MemoryBudget,
}

type RunningCalls = HashMap<(u64, u32), Running, IdHashBuilder>;

impl InFlight {
    fn new(budget: MemoryBudget) -> Self {
        InFlight(Arc::new(InFlightShared {
            calls: Mutex::default(),
            len: AtomicUsize::new(0),
            budget,
        }))
    }

    fn lock(&self) -> InFlightGuard<'_> {
        InFlightGuard {
            calls: self.0.calls.lock().unwrap_or_else(PoisonError::into_inner),
            len: &self.0.len,
        }
    }

    /// Whether no call runs as a task. Only the read loop adds calls, so when it sees none,
    /// none can appear before it next adds one.
    fn none_running(&self) -> bool {
        self.0.len.load(Ordering::Acquire) == 0
    }
}

/// The locked calls; publishes their number as it unlocks them.
struct InFlightGuard<'a> {
    calls: MutexGuard<'a, RunningCalls>,
    len: &'a AtomicUsize,
}

impl Deref for InFlightGuard<'_> {
    type Target = RunningCalls;

    fn deref(&self) -> &RunningCalls {
        &self.calls
    }
}

impl DerefMut for InFlightGuard<'_> {
    fn deref_mut(&mut self) -> &mut RunningCalls {
        &mut self.calls
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        // Still under the lock: the field's guard unlocks after this.
        self.len.store(self.calls.len(), Ordering::Release);
    }
}

/// One running call. The entry is made before the task exists (`handler: None`), so a call
/// that finishes at once cannot leave a stale entry behind.
struct Running {
    handler: Option<AbortHandle>,
    /// Marked for dedupe: it runs to completion even if its connection goes, so that a retry
    /// on another connection collects the stored result.
    dedupe: bool,
    /// The request's encoding, and whether it wants a reply: for the status a call gets when
    /// it is stopped after its connection broke the protocol.
    encoding: wire::Encoding,
    oneway: bool,
}

/// How the read loop ended, which decides how the connection winds down.
enum End {
    /// The client closed its side: let running calls finish and answer them.
    Eof,
    /// The socket failed: nobody can hear the answers.
    Broken,
    /// The client broke the protocol: tell it why and stop its calls.
    Protocol(WireError),
    /// Nothing heard for the idle timeout.
    Idle,
    /// A partial frame made no progress for the frame progress timeout.
    NoProgress,
    /// Graceful shutdown finished draining (or ran out of grace).
    Drained,
}

/// What the read loop takes of a frame it reads in place, leaving the body.
enum Taken<'a> {
    /// A request without metadata, for a service and method found by their bytes (and the
    /// method's number).
    Request(RequestFields, (&'a Arc<dyn Service>, ByteString, u32)),
    /// A message on a stream.
    Message(MessageHead),
}

/// Replies the read loop queues from one batch of requests before it lets the writer send
/// them. A client that sent many calls at once then starts on the first replies while the
/// server handles the rest, instead of the two taking turns a whole batch at a time (which
/// left one of them idle at every moment). Sixteen quick calls take about as long as the write
/// that sends their replies, so the extra writes cost little; a slow handler's reply waits
/// behind fewer others.
const SHARE_AFTER: usize = 16;

/// What the read loop does after decoding the frames it had.
enum Drained {
    /// Nothing left: read more.
    Empty,
    /// [`SHARE_AFTER`] replies are queued: let the writer send them, then go on.
    Share,
    /// Replies are piling up unread: wait for the writer before decoding more.
    Stalled,
    /// The connection is over.
    Ended(End),
}

/// Serves one connection to its end. `peer` is for logs, and its IP address and port for the
/// connection's calls.
pub(super) async fn run<H: Handler>(
    stream: AnyStream,
    peer: Option<Address>,
    shared: Arc<Shared<H>>,
) {
    let (read, write) = stream.split();
    let config = &shared.config;
    // The connection's counters, in the server's stats while it is open.
    let counted = config.stats.then(|| shared.stats.open(peer.clone()));
    let counters = counted.as_ref().map(|guard| guard.counters.clone());
    let mut write = Counted {
        inner: write,
        counters: counters.clone(),
    };
    let (outbound, mut writer) = wire::outbox(config.max_frame_size);
    let writer = crate::task::spawn(async move {
        // Replies were size-checked as they were queued, and a failed socket has nobody to
        // hear them: either way nothing is left to do but close.
        if writer.run(&mut write).await.is_ok() {
            let _ = write.shutdown().await;
        }
    });
    let streams = Arc::new(StreamSet::new(
        outbound.clone(),
        config.flow,
        config.max_frame_size,
    ));
    let mut calls = Calls {
        shared: &shared,
        in_flight: InFlight::new(shared.budget.clone()),
        streams,
        arrivals: Arrivals::default(),
        handlers: Tasks::new(),
        outbound,
        inline_first_poll: single_worker(),
        draining: false,
        counters,
        // Once per connection: each call copies it.
        peer: peer.as_ref().and_then(Address::socket_addr),
        charge: None,
    };
    let mut frames = FrameReader::new(read, config.max_frame_size);
    let mut last_heard = Instant::now();
    // One timer for the connection's life: the idle check, or the end of the shutdown grace.
    let mut timer = shared
        .timer
        .sleep_until(crate::timer::deadline_after(config.idle_timeout));

    let end = loop {
        // The frames the last read brought, with no await in between (the handlers that finish
        // at once answer into one batch of replies), up to SHARE_AFTER replies at a time.
        let drained = poll_fn(|cx| Poll::Ready(calls.drain(&mut frames, last_heard, cx))).await;
        let stalled = match drained {
            Drained::Share => {
                tokio::task::yield_now().await;
                continue;
            }
            Drained::Empty => false,
            Drained::Stalled => true,
            Drained::Ended(end) => break end,
        };
        tokio::select! {
            biased;
            _ = shared.shutdown.drain.cancelled(), if !calls.draining => {
                let goaway = Frame::goaway(Code::Unavailable.as_u32(), "server is shutting down");
                let _ = calls.outbound.send(&goaway);
                // Streams may have no end of their own (a watch, a log tail): they end now,
                // with a status saying why, where calls get the grace period.
                calls.end_streams(|| Status::new(Code::Unavailable, "server is shutting down"));
                calls.handlers.close();
                calls.draining = true;
                timer.reset(crate::timer::deadline_after(config.shutdown_grace));
            }
            _ = calls.handlers.wait(), if calls.draining => break End::Drained,
            _ = &mut timer => {
                if calls.draining {
                    // The grace is over: what still runs is stopped by the shutdown.
                    shared.shutdown.stop.cancel();
                    break End::Drained;
                }
                if calls.in_flight.lock().is_empty()
                    && calls.streams.len() == 0
                    && last_heard.elapsed() >= config.idle_timeout
                {
                    break End::Idle;
                }
                // Reads do not move the timer (that would cost a timer update per read); the
                // check moves itself to the idle deadline the last read set.
                let idle_at = last_heard
                    .checked_add(config.idle_timeout)
                    .unwrap_or_else(|| crate::timer::deadline_after(config.idle_timeout))
                    .max(crate::timer::deadline_after(config.idle_timeout / 4));
                timer.reset(idle_at);
            }
            filled = read_more(
                &calls.outbound,
                &mut frames,
                stalled,
                !calls.in_flight.none_running(),
                &shared.budget,
                &mut calls.charge,
                config.frame_progress_timeout,
            ) => match filled {
                Ok(Read::Nothing | Read::Bytes(0)) => {}
                Ok(Read::NoProgress) => break End::NoProgress,
                Ok(Read::Bytes(read)) => {
                    last_heard = Instant::now();
                    if let Some(counters) = &calls.counters {
                        counters.bytes_in.fetch_add(read as u64, Ordering::Relaxed);
                    }
                }
                Err(error) => {
                    tracing::debug!(?peer, %error, "connection failed");
                    break End::Broken;
                }
            },
        }
    };

    let Calls {
        in_flight,
        streams,
        outbound,
        handlers,
        charge,
        ..
    } = calls;
    // A partial frame's charge goes back at once: no more of it will be read.
    drop(charge);
    let answer_running_calls = matches!(end, End::Eof);
    let idle = matches!(end, End::Idle);
    let gone = crate::error::Error::closed(crate::error::Closed::Eof);
    match end {
        // The client sends nothing more: its side of every stream has ended, as an end frame
        // would say. Streams finish like calls, within the bound below.
        End::Eof => streams.half_close_all(),
        End::Drained => {
            abort(&in_flight, Keep::Nothing);
            streams.close_all(&gone);
        }
        End::Broken => {
            abort(&in_flight, Keep::Dedupe);
            streams.close_all(&gone);
        }
        End::Protocol(_) | End::NoProgress => {
            let (code, message) = match end {
                End::Protocol(error) => {
                    tracing::debug!(?peer, %error, "closing a connection that broke the protocol");
                    let code = if error.is_limit() {
                        Code::ResourceExhausted
                    } else {
                        Code::InvalidArgument
                    };
                    (code, error.to_string())
                }
                _ => {
                    let timeout = config.frame_progress_timeout;
                    let message = format!("a partial frame made no progress for {timeout:?}");
                    (Code::Unavailable, message)
                }
            };
            streams.close_all(&gone);
            // Every request read whole before the bad bytes is answered before the goaway, so
            // that the client knows which of its calls ran: those still running get the grace
            // period, then are stopped and answered `aborted`.
            handlers.close();
            if tokio::time::timeout(config.shutdown_grace, handlers.wait())
                .await
                .is_err()
            {
                stop_and_answer(&in_flight, &outbound);
            }
            let _ = outbound.send(&Frame::goaway(code.as_u32(), message));
        }
        End::Idle => {
            streams.close_all(&gone);
            let message = format!("idle for {:?}", config.idle_timeout);
            let _ = outbound.send(&Frame::goaway(Code::Unavailable.as_u32(), message));
        }
    }
    // The writer ends once this and every call's sender are gone. On Eof the running calls
    // answer first; then their replies have the idle timeout to be taken: a client that stopped
    // sending and does not read does not keep the connection forever. Otherwise what is left is
    // a goaway at most, which a client has the grace period to read (after idling, the idle
    // timeout).
    drop(outbound);
    let flush_within = if answer_running_calls {
        handlers.close();
        // A stream may wait for credit the client will never send: running calls and
        // streams get the idle timeout to finish, then are stopped (deduplicated calls run
        // on: see `linger`). A shutdown meanwhile gives them its grace, then stops them all,
        // as on an open connection.
        let stopping = async {
            shared.shutdown.drain.cancelled().await;
            tokio::time::sleep(config.shutdown_grace).await;
        };
        tokio::select! {
            finished = tokio::time::timeout(config.idle_timeout, handlers.wait()) => {
                if finished.is_err() {
                    abort(&in_flight, Keep::Dedupe);
                    streams.close_all(&gone);
                }
            }
            () = stopping => {
                shared.shutdown.stop.cancel();
                abort(&in_flight, Keep::Nothing);
                streams.close_all(&gone);
            }
        }
        config.idle_timeout
    } else if idle {
        // Idle, or stalled: a client that neither sent nor read for the idle timeout (the
        // reader stops reading while replies wait to be written, so a client that does not
        // read looks idle) gets as long again to take the goaway, not the whole grace.
        config.idle_timeout.min(config.shutdown_grace)
    } else {
        config.shutdown_grace
    };
    // The stream set holds a sender too; the writer finishes once it and the tasks are gone.
    drop(streams);
    if !in_flight.none_running() {
        linger(&shared, handlers, in_flight);
    }
    let abort = writer.abort_handle();
    if tokio::time::timeout(flush_within, writer).await.is_err() {
        tracing::debug!(
            ?peer,
            "closing a connection whose replies were not read in time"
        );
        abort.abort();
    }
}

/// A connection's writing half, counting the bytes written into its stats.
struct Counted<W> {
    inner: W,
    counters: Option<Arc<ConnectionStats>>,
}

impl<W> Counted<W> {
    fn count(&self, written: &std::task::Poll<std::io::Result<usize>>) {
        if let (Some(counters), Poll::Ready(Ok(written))) = (&self.counters, written) {
            counters
                .bytes_out
                .fetch_add(*written as u64, Ordering::Relaxed);
        }
    }
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.count(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.count(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What [`read_more`] did.
enum Read {
    /// Nothing was read (frames already read wait to be handled).
    Nothing,
    /// Bytes read; 0 at the end of the stream.
    Bytes(usize),
    /// The partial frame in the buffer got no byte within the frame progress timeout.
    NoProgress,
}

/// Waits until the writer has taken the queued replies down to [`HIGH_WATER`]: replies from
/// call tasks pile up too (a task's entry leaves `in_flight` once its reply is queued, written
/// or not), so no more requests are read from a client that does not read its replies. Then,
/// unless the buffer still holds frames to handle (`stalled`), reads more. A connection that
/// holds running requests (`holds_requests`, each charged to the server's memory budget) first
/// waits for the budget to have room; a large frame is first charged to it (waiting, without
/// reading, while the budget is spent). The rest of a partial frame must come within
/// `progress_timeout` (time spent waiting for the budget is not counted).
async fn read_more<R>(
    outbound: &wire::Sender,
    frames: &mut FrameReader<R>,
    stalled: bool,
    holds_requests: bool,
    budget: &MemoryBudget,
    charge: &mut Option<Charge>,
    progress_timeout: std::time::Duration,
) -> std::io::Result<Read>
where
    R: tokio::io::AsyncRead + Unpin,
{
    outbound.room(HIGH_WATER).await;
    if stalled {
        return Ok(Read::Nothing);
    }
    if holds_requests {
        budget.room().await;
    }
    if charge.is_none()
        && let Some(total) = frames.partial_frame()
        && total > LARGE_FRAME
    {
        // The budget holds at least one largest frame, so this much is always granted in time.
        *charge = Some(budget.charge(total).await);
    }
    if !frames.holds_partial_frame() {
        return frames.fill().await.map(Read::Bytes);
    }
    match tokio::time::timeout(progress_timeout, frames.fill()).await {
        Ok(read) => read.map(Read::Bytes),
        Err(_) => Ok(Read::NoProgress),
    }
}

/// Whether this runtime runs every task on one thread, where a task of its own buys a handler
/// no parallelism.
fn single_worker() -> bool {
    let runtime = tokio::runtime::Handle::current();
    matches!(
        runtime.runtime_flavor(),
        tokio::runtime::RuntimeFlavor::CurrentThread
    ) || runtime.metrics().num_workers() == 1
}

/// A connection's calls: how they start, where they run, where their replies go.
struct Calls<'a, H> {
    shared: &'a Arc<Shared<H>>,
    in_flight: InFlight,
    /// Open streams, apart from calls: their own limit, and their frames go to them.
    streams: Arc<StreamSet>,
    /// Stream messages read and not yet handed to their stream.
    arrivals: Arrivals,
    handlers: Tasks,
    outbound: wire::Sender,
    /// Poll each handler once on the read loop before giving it a task.
    inline_first_poll: bool,
    /// Graceful shutdown began: new calls are refused.
    draining: bool,
    /// The connection's stats, when the server counts.
    counters: Option<Arc<ConnectionStats>>,
    /// The client's IP address and port, for its calls' requests and contexts (`None` when
    /// the transport has none).
    peer: Option<SocketAddr>,
    /// The large frame being read (or just read) holds this much of the server's memory
    /// budget; a request takes it along until it is answered.
    charge: Option<Charge>,
}

impl<H: Handler> Calls<'_, H> {
    /// Handles the whole frames `frames` holds, until none is left or [`SHARE_AFTER`] of them
    /// have been answered. A plain function, given the read loop's context to poll handlers
    /// once, so that no future holding a frame is built and moved for every request.
    fn drain<R>(
        &mut self,
        frames: &mut FrameReader<R>,
        received: Instant,
        cx: &mut Context<'_>,
    ) -> Drained
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        let drained = self.drain_frames(frames, received, cx);
        // The stream messages read last are handed over before the loop waits.
        self.deliver_arrivals();
        drained
    }

    /// [`drain`](Self::drain), but for the messages read last.
    fn drain_frames<R>(
        &mut self,
        frames: &mut FrameReader<R>,
        received: Instant,
        cx: &mut Context<'_>,
    ) -> Drained
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        // Borrowed apart from `self`, so that a request taken from the buffer can hold its
        // service while `self` starts it.
        let services = &self.shared.services;
        let mut answered = 0;
        loop {
            let next = frames.next_with(|view| match view {
                View::Request {
                    fields,
                    service,
                    method,
                } => services
                    .resolve(service, method)
                    .map(|resolved| Taken::Request(fields, resolved)),
                View::Message { .. } => MessageHead::of(view).map(Taken::Message),
                View::Ok { .. } => None,
            });
            let queued = match next {
                Ok(Some(Decoded::Taken(Taken::Message(head), body))) => {
                    // Handed to the stream with the messages after it, together.
                    let message = head.with_body(body);
                    match self.streams.arrive(head.id, message, &mut self.arrivals) {
                        Ok(()) => 0,
                        Err(Broken { id, status }) => self.end_stream(id, status),
                    }
                }
                Ok(Some(Decoded::Taken(Taken::Request(fields, (service, method, slot)), body))) => {
                    self.deliver_arrivals();
                    let incoming = Incoming {
                        service,
                        method,
                        metadata: Metadata::new(),
                        body,
                        slot: Some(slot),
                    };
                    self.start(fields, Ok(incoming), received, cx)
                }
                Ok(Some(Decoded::Frame(frame))) => self.handle(frame, received, cx),
                Ok(None) if frames.at_eof() => return Drained::Ended(End::Eof),
                Ok(None) => return Drained::Empty,
                Err(error) => return Drained::Ended(End::Protocol(error)),
            };
            // A frame other than a request gives back its charge once handled (a stream's
            // messages are bounded by its flow-control windows instead).
            self.charge = None;
            if queued > HIGH_WATER {
                return Drained::Stalled;
            }
            if queued > 0 {
                answered += 1;
                if answered == SHARE_AFTER {
                    return Drained::Share;
                }
            }
        }
    }

    /// Hands the stream messages read so far to their stream, ending it if they broke its
    /// rules.
    fn deliver_arrivals(&mut self) {
        if let Err(Broken { id, status }) = self.streams.deliver(&mut self.arrivals) {
            self.end_stream(id, status);
        }
    }

    /// Handles one frame decoded whole. Returns the bytes queued for the socket if it
    /// answered at once (0 if it did not).
    fn handle(&mut self, frame: Frame, received: Instant, cx: &mut Context<'_>) -> usize {
        if let Head::Message { .. } = frame.head {
            let (id, message) = Received::from_frame(frame);
            return match self.streams.arrive(id, message, &mut self.arrivals) {
                Ok(()) => 0,
                Err(Broken { id, status }) => self.end_stream(id, status),
            };
        }
        // Whatever this frame is, the messages read before it come first.
        self.deliver_arrivals();
        if let Head::Credit { .. } | Head::End = frame.head {
            if let Err(Broken { id, status }) = self.streams.on_frame(&frame) {
                return self.end_stream(id, status);
            }
            return 0;
        }
        let Frame {
            request_id,
            attempt,
            encoding,
            head,
            body,
        } = frame;
        match head {
            Head::Request(head) => {
                let fields = RequestFields::of(request_id, attempt, encoding, &head);
                let services = &self.shared.services;
                let incoming = Incoming::from_frame(services, head, body);
                self.start(fields, incoming, received, cx)
            }
            Head::Cancel => {
                let key = (request_id, attempt);
                if self
                    .streams
                    .close(key, Err(crate::error::Error::Cancelled))
                    .is_some()
                {
                    return 0;
                }
                let running = self.in_flight.lock().remove(&key);
                if let Some(Running {
                    handler: Some(handler),
                    ..
                }) = running
                {
                    handler.abort();
                }
                0
            }
            Head::Ping => self
                .outbound
                .send(&Frame::control(request_id, Head::Pong))
                .unwrap_or_default(),
            _ => 0,
        }
    }

    /// Queues the reply to a request, unless its caller wants none (a oneway caller is not
    /// even told of a refusal). Returns the bytes queued now.
    fn answer(
        &self,
        fields: &RequestFields,
        reply: ReplyEncoding,
        result: &Result<Response, Status>,
    ) -> usize {
        if fields.oneway {
            return 0;
        }
        reply.send(result, &self.outbound)
    }

    /// Admits one request (`incoming`, or the status that refuses it) and runs it: the reply
    /// is queued at once when the handler completes on its first poll (no task, no
    /// bookkeeping), else the call goes on as a task of its own. Returns the bytes queued for
    /// the socket if it answered at once (a refusal, or the finished call's reply), 0
    /// otherwise.
    fn start(
        &mut self,
        fields: RequestFields,
        incoming: Result<Incoming<'_>, Status>,
        received: Instant,
        cx: &mut Context<'_>,
    ) -> usize {
        if let Some(counters) = &self.counters {
            counters.calls.fetch_add(1, Ordering::Relaxed);
        }
        // A large request's share of the memory budget, held until it is answered.
        let charge = self.charge.take();
        if fields.stream {
            return self.start_stream(fields, incoming, received);
        }
        let shared = self.shared;
        let config = &shared.config;
        let key = (fields.request_id, fields.attempt);
        let refusal = if self.draining {
            Some(Status::new(Code::Unavailable, "server is shutting down"))
        } else if self.in_flight.none_running()
            && self.streams.len() == 0
            && config.max_in_flight > 0
        {
            // Inline calls never enter the map: while no call runs as a task there is nothing
            // to check (and no lock to take).
            None
        } else {
            let running = self.in_flight.lock();
            if running.len() >= config.max_in_flight {
                Some(Status::new(
                    Code::ResourceExhausted,
                    format!("connection is at max_in_flight {}", config.max_in_flight),
                ))
            } else if running.contains_key(&key) || self.streams.contains(key) {
                Some(Status::invalid_argument(format!(
                    "request id {} attempt {} is already in flight on this connection",
                    key.0, key.1
                )))
            } else {
                None
            }
        };
        let plain = ReplyEncoding::plain(fields.request_id, fields.attempt, fields.encoding);
        if let Some(status) = refusal {
            return self.answer(&fields, plain, &Err(status));
        }
        // What a small request holds while it runs, charged if it goes on as a task.
        let held = incoming.as_ref().map_or(0, |incoming| {
            incoming.body.len() + incoming.metadata.encoded_len() + REQUEST_OVERHEAD
        });
        let Prepared {
            service,
            request,
            reply,
        } = match incoming.and_then(|incoming| {
            dispatch::prepare(
                &fields,
                incoming,
                self.peer,
                received,
                config.compression_threshold,
                config.max_frame_size as usize,
            )
        }) {
            Ok(prepared) => prepared,
            Err(status) => return self.answer(&fields, plain, &Err(status)),
        };

        // Through the layers (dedupe, deadline, the user's) to the service.
        let mut call = shared.handler.call(service, request);
        // Most handlers finish without waiting on anything. Where one thread runs every task,
        // a task of its own buys a handler no parallelism, so poll it once here and skip the
        // task when it is done. (A handler polled here and then given a task is polled again
        // by the task straight away, so everything it waits on learns the task's waker.) With
        // more workers every call gets its task, so that the handlers of one connection run on
        // all of them.
        if self.inline_first_poll
            && let Poll::Ready(result) = Pin::new(&mut call).poll(cx)
        {
            return self.answer(&fields, reply, &result);
        }

        self.in_flight.lock().insert(
            key,
            Running {
                handler: None,
                dedupe: fields.dedupe,
                encoding: fields.encoding,
                oneway: fields.oneway,
            },
        );
        let outbound = self.outbound.clone();
        let oneway = fields.oneway;
        // A small request is charged now (a large one already was), and given back when the
        // task ends or is dropped, polled or not: the guard is made here, not in the task.
        let held = if charge.is_none() {
            self.in_flight.0.budget.take(held);
            held
        } else {
            0
        };
        let running = Held {
            in_flight: self.in_flight.clone(),
            bytes: held,
        };
        let task = self.handlers.spawn(async move {
            let _charge = charge;
            let result = call.await;
            // Whoever removes the entry answers: a call cancelled or stopped after its
            // handler finished was already answered (or is to get no answer).
            let answer = running.in_flight.lock().remove(&key).is_some();
            if answer && !oneway {
                reply.send(&result, &outbound);
            }
        });
        if let Some(entry) = self.in_flight.lock().get_mut(&key) {
            entry.handler = Some(task.abort_handle());
        }
        0
    }
}

/// A running call's connection, and the bytes of the memory budget it holds (a small
/// request's), given back when its task ends or is dropped. The budget is reached through the
/// connection's running calls, which the task holds anyway: a charge costs no reference count.
struct Held {
    in_flight: InFlight,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.in_flight.0.budget.give_back(self.bytes);
        }
    }
}

/// Stops the running calls of a connection closing for bad input (a protocol error, a frame
/// that made no progress), and answers each (but oneway ones) `aborted`: it may have run in
/// part. Deduplicated calls run on, as they do when
/// a connection breaks, and answer themselves.
fn stop_and_answer(in_flight: &InFlight, outbound: &wire::Sender) {
    let stopped = Err(Status::new(
        Code::Aborted,
        "stopped: the connection is closing and the call did not finish within the shutdown \
         grace period",
    ));
    in_flight.lock().retain(|&(request_id, attempt), running| {
        if running.dedupe {
            return true;
        }
        if let Some(handler) = &running.handler {
            handler.abort();
        }
        if !running.oneway {
            ReplyEncoding::plain(request_id, attempt, running.encoding).send(&stopped, outbound);
        }
        false
    });
}

/// Which running calls survive their connection's end.
/// Hands the deduplicated calls still running after their connection ended (docs/PROTOCOL.md
/// section 7.2, rule 11) to the server, which waits for them as it shuts down: they run on,
/// but once shutdown begins they get the grace like the calls of open connections, then are
/// stopped (and leave their outcome unknown).
fn linger<H>(shared: &Shared<H>, handlers: Tasks, in_flight: InFlight) {
    let (drain, stop) = (shared.shutdown.drain.clone(), shared.shutdown.stop.clone());
    let grace = shared.config.shutdown_grace;
    shared.lingering.spawn(async move {
        handlers.close();
        tokio::select! {
            () = handlers.wait() => return,
            () = drain.cancelled() => {}
        }
        if tokio::time::timeout(grace, handlers.wait()).await.is_err() {
            stop.cancel();
            abort(&in_flight, Keep::Nothing);
            handlers.wait().await;
        }
    });
}

enum Keep {
    Nothing,
    Dedupe,
}

fn abort(in_flight: &InFlight, keep: Keep) {
    in_flight.lock().retain(|_, running| {
        if matches!(keep, Keep::Dedupe) && running.dedupe {
            return true;
        }
        if let Some(handler) = &running.handler {
            handler.abort();
        }
        false
    });
}
