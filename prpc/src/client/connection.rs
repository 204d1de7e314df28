use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::PendingCall;
use super::admission::{Admission, NoPlace, Place};
use super::config::ClientConfig;
use super::waiters::{CallId, Left, Outcome, Ticket, Waiters};
use crate::body::NO_TAIL;
use crate::call::Call;
use crate::call::Reply;
use crate::compress::Compression;
use crate::compress::CompressionPolicy;
use crate::error::Closed;
use crate::error::Error;
use crate::format::Format;
use crate::status::Code;
use crate::status::Status;
use crate::stream::{
    Arrivals, Broken, CONNECTION, INITIAL_STREAM_CREDIT, MessageHead, MessageStream, Messages,
    Opened, Ready, Received, SendCredit, Stopped, StreamId, StreamSet, Trailer, send_all,
};
use crate::timer::Timer;
use crate::transport::AnyStream;
use crate::wire::Metadata;
use crate::wire::{self, Decoded, FrameReader, Refused, ResponseHead, View};
use crate::wire::{Encoding, Frame, FrameRef, Head, HeadRef};

/// What the client handle, its calls and its two tasks share.
pub(super) struct State {
    waiters: Waiters,
    /// One place per call on the wire (the client's `max_in_flight`); closed with the
    /// connection so that waiting calls learn it is gone.
    admission: Admission,
    /// Set once: why the connection takes no new calls (goaway, or closed).
    refusal: OnceLock<Error>,
    /// Cancelled when the connection is finished: both tasks stop.
    shutdown: CancellationToken,
    /// The streams open on the connection.
    streams: Arc<StreamSet>,
}

impl State {
    /// Refuses new calls from now on; pending calls carry on.
    fn refuse_new(&self, reason: Error) {
        let _ = self.refusal.set(reason);
    }

    /// Ends the connection: stops both tasks and fails every pending call.
    fn close(&self, reason: Error) {
        self.refuse_new(reason);
        self.shutdown.cancel();
        self.admission.close();
        let reason = self.refusal.get().cloned().unwrap_or(Error::Cancelled);
        // Calls started after `refuse_new` see the refusal and remove themselves, so failing
        // the calls waiting now fails every call that could still be waiting.
        self.waiters.fail_all(&reason);
        self.streams.close_all(&reason);
    }
}

/// One attempt of a call as the connection sends it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Attempt {
    pub(super) request_id: u64,
    pub(super) number: u32,
    /// Sent to the server: how long the whole call may still take.
    pub(super) deadline: Option<Duration>,
    /// How long this attempt waits locally (at most `deadline`).
    pub(super) timeout: Option<Duration>,
    /// Ask the server to run the call at most once across attempts.
    pub(super) dedupe: bool,
    /// Whether a timeout of this attempt cancels the call on the server (the last attempt's
    /// does; an earlier one's leaves it running for the next attempt to collect).
    pub(super) cancel_on_timeout: bool,
}

impl Attempt {
    /// What a failure of this attempt says it was sent under.
    pub(super) fn sent_as(&self) -> crate::error::SentAs {
        crate::error::SentAs::new(self.request_id, self.number, self.dedupe)
    }

    /// The attempt a call's fields describe: its request id (a fresh one unless it is being
    /// resent), its number, the time left of its deadline (sent to the server) and the
    /// attempt's own timeout within it.
    #[inline]
    pub(super) fn of(call: &Call) -> Attempt {
        let left = call.time_left();
        let timeout = match (call.attempt_timeout, left) {
            (Some(attempt), Some(left)) => Some(attempt.min(left)),
            (attempt, left) => attempt.or(left),
        };
        Attempt {
            request_id: call.request_id.unwrap_or_else(crate::id::next_id),
            number: call.attempt,
            deadline: left,
            timeout,
            // A stream is sent once: nothing to dedupe.
            dedupe: call.dedupe && !call.is_stream(),
            // A deduplicated call that may be resent is left to finish on the server, so that
            // the resend collects its result instead of running it again.
            cancel_on_timeout: !call.dedupe || call.final_attempt,
        }
    }
}

/// One connection: its settings, the way to its writer, and the shared state. Its stream is
/// owned by its two tasks alone, so the connection names no transport.
pub(super) struct Connection {
    pub(super) config: ClientConfig,
    /// Call deadlines and keepalive checks run on the client's timing wheel.
    pub(super) timer: Timer,
    state: Arc<State>,
    outbound: wire::Sender,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The last client clone and the last call are gone: nobody can use the tasks.
        self.state.close(Error::closed(Closed::ClientDropped));
    }
}

impl Connection {
    /// Starts the reader and writer tasks of a connection over `stream`.
    pub(super) fn spawn(stream: AnyStream, config: ClientConfig, timer: Timer) -> Arc<Self> {
        let (read, write) = stream.split();
        let (outbound, writer) = wire::outbox(config.max_frame_size);
        let streams = Arc::new(StreamSet::new(
            outbound.clone(),
            config.flow,
            config.max_frame_size,
        ));
        let state = Arc::new(State {
            waiters: Waiters::default(),
            admission: Admission::new(config.max_in_flight),
            refusal: OnceLock::new(),
            shutdown: CancellationToken::new(),
            streams,
        });
        crate::task::spawn(write_loop(state.clone(), write, writer));
        crate::task::spawn(read_loop(
            state.clone(),
            read,
            outbound.clone(),
            config.clone(),
            timer.clone(),
        ));
        Arc::new(Connection {
            config,
            timer,
            state,
            outbound,
        })
    }

    pub(super) fn close_reason(&self) -> Option<&Error> {
        self.state.refusal.get()
    }

    /// Waits for room on the wire (the client's `max_in_flight`), at most `timeout`.
    pub(super) async fn admit(
        &self,
        call: &Call,
        timeout: Option<Duration>,
    ) -> Result<Place<'_>, Error> {
        let place = self.state.admission.take();
        let place = match timeout {
            None => place.await,
            Some(timeout) => tokio::select! {
                place = place => place,
                () = self.timer.sleep(timeout) => {
                    return Err(Error::Timeout {
                        method: format!("{}/{}", call.service, call.method),
                        timeout,
                        sent: None,
                    });
                }
            },
        };
        place.map_err(|_| self.closed_error())
    }

    /// Room on the wire now, or an error saying there is none.
    pub(super) fn try_admit(&self) -> Result<Place<'_>, Error> {
        self.state
            .admission
            .try_take()
            .map_err(|error| match error {
                NoPlace::Closed => self.closed_error(),
                NoPlace::Full => Error::Status(Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "the client has max_in_flight {} calls on the wire",
                        self.config.max_in_flight
                    ),
                )),
            })
    }

    /// Gives back the place on the wire of a call that has ended (see `PendingCall`).
    pub(super) fn release_place(&self) {
        self.state.admission.release();
    }

    fn closed_error(&self) -> Error {
        self.close_reason()
            .cloned()
            .unwrap_or(Error::closed(Closed::ClientDropped))
    }

    /// Queues the request for one attempt of a call, encoded from the call where it lies.
    fn send_request(&self, call: &Call, attempt: &Attempt, oneway: bool) -> Result<(), Error> {
        let policy = self.compression_policy(call);
        let packed = policy.apply(call.body.parts())?;
        let (compression, (body, tail)) = match &packed {
            Some((compression, packed)) => (*compression, (packed, &NO_TAIL)),
            None => (Compression::None, call.body.parts()),
        };
        // The call's options were merged with the client's defaults once, when it was resolved.
        let metadata = &call.options.metadata;
        self.send(FrameRef {
            request_id: attempt.request_id,
            attempt: attempt.number,
            encoding: Encoding::new(call.format.id(), compression.id()),
            head: HeadRef::Request {
                service: &call.service,
                method: &call.method,
                deadline: attempt.deadline,
                oneway,
                dedupe: attempt.dedupe,
                stream: call.is_stream(),
                metadata,
            },
            body,
            tail,
        })
    }

    /// How the call's bodies (and a stream's messages) are compressed.
    fn compression_policy(&self, call: &Call) -> CompressionPolicy {
        CompressionPolicy {
            compression: call.options.compression.unwrap_or_default(),
            threshold: self.config.compression_threshold,
        }
    }

    /// Opens a call as a stream: registers it, sends its request, and starts the task that
    /// sends the client's messages (if it has any). The returned messages are the server's.
    pub(super) fn open_stream(
        this: &Arc<Self>,
        call: &Call,
        attempt: Attempt,
    ) -> Result<Messages, Error> {
        if let Some(reason) = this.close_reason() {
            return Err(reason.clone());
        }
        let id = (attempt.request_id, attempt.number);
        let streams = &this.state.streams;
        let encoding = Encoding::new(call.format.id(), 0);
        // Registered before the request goes, so that the quickest answer finds it; the
        // client may send nothing on it until the server has accepted it.
        let Opened { inbox, credit } = streams.open(id, encoding, 0, INITIAL_STREAM_CREDIT);
        if let Err(error) = this.send_request(call, &attempt, false) {
            streams.close(id, Err(error.clone()));
            return Err(error);
        }
        let outgoing = call.stream.as_ref().and_then(|outgoing| outgoing.take());
        if let Some(messages) = outgoing {
            let task = crate::task::spawn(send_stream(
                streams.clone(),
                id,
                credit,
                messages,
                call.format,
                this.compression_policy(call),
            ));
            streams.set_task(id, task.abort_handle());
        }
        let deadline = attempt.timeout.map(|timeout| {
            let method = format!("{}/{}", call.service, call.method);
            (this.timer.sleep(timeout), timeout, method)
        });
        let keep: Arc<dyn Send + Sync> = this.clone();
        Ok(Messages::client(
            streams.clone(),
            inbox,
            id,
            call.format,
            deadline,
            keep,
        ))
    }

    /// Queues a frame for the writer.
    fn send<'a>(&self, frame: impl Into<FrameRef<'a>>) -> Result<(), Error> {
        match self.outbound.send(frame) {
            Ok(_) => Ok(()),
            Err(Refused::Closed) => Err(self.closed_error()),
            Err(Refused::Encode(error)) => Err(Error::protocol(error)),
        }
    }

    /// Sends a call that wants no reply.
    pub(super) fn send_oneway(&self, call: &Call, attempt: Attempt) -> Result<(), Error> {
        if let Some(reason) = self.close_reason() {
            return Err(reason.clone());
        }
        self.send_request(call, &attempt, true)
    }

    /// Sends one attempt of a call; the returned handle completes with its reply. `waker`,
    /// when given, is woken when the reply comes, without the handle being polled first.
    pub(super) fn start(
        this: &Arc<Self>,
        call: &Call,
        attempt: Attempt,
        place: Place<'_>,
        waker: Option<&Waker>,
    ) -> Result<PendingCall, Error> {
        // A timeout's error names the call.
        let names = attempt
            .timeout
            .map(|_| (call.service.clone(), call.method.clone()));
        let id = (attempt.request_id, attempt.number);
        let ticket = this.state.waiters.insert(id, call.format, waker.cloned());
        // Checked after inserting: a close that ran before the insert set the refusal first.
        if let Some(reason) = this.close_reason() {
            this.state.waiters.remove(ticket);
            return Err(reason.clone());
        }
        if let Err(error) = this.send_request(call, &attempt, false) {
            this.state.waiters.remove(ticket);
            return Err(error);
        }
        // From here the pending call gives the place back when it goes.
        place.keep();
        Ok(PendingCall::new(this.clone(), attempt, names, ticket))
    }

    /// The outcome of the call holding `ticket`, once it has come (which spends the ticket).
    pub(super) fn poll_outcome(
        &self,
        ticket: &mut Option<Ticket>,
        cx: &mut Context<'_>,
    ) -> Poll<Outcome> {
        self.state.waiters.poll(ticket, cx)
    }

    /// Lets go of a call's place among the waiting calls. A call still waiting for its reply
    /// is given up; with `cancel`, the server is told to stop its handler (without, the server
    /// finishes it, so that a retry can collect the result).
    pub(super) fn abandon(&self, ticket: Ticket, attempt: &Attempt, cancel: bool) {
        if self.state.waiters.remove(ticket) == Left::Waiting && cancel {
            let mut frame = Frame::control(attempt.request_id, Head::Cancel);
            frame.attempt = attempt.number;
            let _ = self.outbound.send(&frame);
        }
    }
}

/// Sends a client's messages on a stream, then its end (once the server has accepted the
/// stream: a server that does not speak streams never receives a stream frame). A message
/// that fails to go out ends the stream with the failure, and the server is told.
async fn send_stream(
    streams: Arc<StreamSet>,
    id: StreamId,
    credit: Arc<SendCredit>,
    messages: MessageStream,
    format: Format,
    policy: CompressionPolicy,
) {
    let failed = match send_all(&streams, id, &credit, messages, format, policy).await {
        Ok(()) => {
            // An end costs no credit: it waits only for the acceptance.
            let accepted = std::future::poll_fn(|cx| credit.poll_granted(cx)).await;
            if accepted == Ready::Go {
                let mut end = Frame::control(id.0, Head::End);
                end.attempt = id.1;
                let _ = streams.outbound.send(&end);
            }
            return;
        }
        Err(Stopped::Closed) => return,
        Err(Stopped::Status(status)) => Error::Status(status),
        Err(Stopped::Failed(error)) => error,
    };
    if streams.close(id, Err(failed)).is_some() {
        let mut cancel = Frame::control(id.0, Head::Cancel);
        cancel.attempt = id.1;
        let _ = streams.outbound.send(&cancel);
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    state: Arc<State>,
    mut write: W,
    mut writer: wire::Writer,
) {
    let written = tokio::select! {
        biased;
        _ = state.shutdown.cancelled() => Ok(()),
        written = writer.run(&mut write) => written,
    };
    writer.close();
    match written {
        Ok(()) => {
            let _ = write.shutdown().await;
        }
        Err(error) => state.close(Error::closed(Closed::Io(Arc::new(error)))),
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    state: Arc<State>,
    read: R,
    outbound: wire::Sender,
    config: ClientConfig,
    timer: Timer,
) {
    // Replies are handed to their callers, who drop them soon: their memory is read into
    // again (a server's reader keeps no spares, as its memory budget counts frames).
    let mut frames = FrameReader::new(read, config.max_frame_size).with_spares();
    let mut arrivals = Arrivals::default();
    let mut keepalive = Keepalive::new(config.keepalive_interval, config.keepalive_timeout);
    // One timer for the connection's life, moved only when the keepalive check moves.
    let mut check = timer.sleep_until(keepalive.check_at);
    let reason = loop {
        // Every frame the last read brought, with no await in between.
        if let Err(reason) = deliver(
            &state,
            &mut frames,
            &outbound,
            config.max_frame_size,
            &mut arrivals,
        ) {
            break reason;
        }
        tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => break Error::closed(Closed::ClientDropped),
            filled = frames.fill() => match filled {
                Ok(0) => {}
                Ok(_) => {
                    if keepalive.heard() {
                        check.reset(keepalive.check_at);
                    }
                }
                Err(error) => break Error::closed(Closed::Io(Arc::new(error))),
            },
            _ = &mut check => {
                // The reader's spare buffers go at every check (a busy connection makes them
                // again at its next large reply): past one keepalive interval, an idle
                // connection holds only its own buffer.
                frames.let_go_of_spares();
                match keepalive.check() {
                    KeepaliveAction::Nothing => {}
                    KeepaliveAction::Ping(id) => {
                        let _ = outbound.send(&Frame::control(id, Head::Ping));
                    }
                    KeepaliveAction::Dead => {
                        break Error::closed(Closed::Unresponsive(config.keepalive_timeout));
                    }
                }
                check.reset(keepalive.check_at);
            }
        }
    };
    state.close(reason);
}

/// Hands every whole frame read so far to its call. `Err` is why the connection is over.
fn deliver<R: AsyncRead + Unpin>(
    state: &State,
    frames: &mut FrameReader<R>,
    outbound: &wire::Sender,
    max_frame_size: u32,
    arrivals: &mut Arrivals,
) -> Result<(), Error> {
    // The server broke a stream's rules: it ends here, and the server is told to stop it.
    let broken = |Broken { id, status }| {
        if state
            .streams
            .close(id, Err(Error::Status(status)))
            .is_some()
        {
            let mut cancel = Frame::control(id.0, Head::Cancel);
            cancel.attempt = id.1;
            let _ = outbound.send(&cancel);
        }
    };
    // Nobody waits when the caller gave up (timeout or drop) before the reply came. (The reply
    // is made before the waiting calls are locked; the call's format, for a reply whose format
    // id is unknown, is filled in under the lock.)
    let answer = |id: CallId, reply: Result<ReplyParts, Error>| {
        // The response to a stream is its trailer.
        if state.streams.contains(id) {
            let trailer = reply.map(|(body, _, metadata)| Some(Trailer { body, metadata }));
            state.streams.close(id, trailer);
            return;
        }
        state.waiters.complete(id, |format| {
            reply.map(|(body, reply_format, metadata)| Reply {
                body,
                format: reply_format.unwrap_or(format),
                metadata,
                messages: None,
            })
        });
    };
    loop {
        let next = frames.next_with(|view| match view {
            View::Ok {
                request_id,
                attempt,
                encoding,
            } => Some(Taken::Reply((request_id, attempt), encoding)),
            View::Message { .. } => MessageHead::of(view).map(Taken::Message),
            View::Request { .. } => None,
        });
        let frame = match next {
            Ok(Some(Decoded::Taken(Taken::Message(head), body))) => {
                // Handed to the stream with the messages after it, together.
                if let Err(error) = state
                    .streams
                    .arrive(head.id, head.with_body(body), arrivals)
                {
                    broken(error);
                }
                continue;
            }
            Ok(Some(Decoded::Taken(Taken::Reply(id, encoding), body))) => {
                if let Err(error) = state.streams.deliver(arrivals) {
                    broken(error);
                }
                // An ok reply with a body alone: no head to make or take apart.
                answer(id, ok_reply(encoding, body, max_frame_size));
                continue;
            }
            Ok(Some(Decoded::Frame(frame))) if matches!(frame.head, Head::Message { .. }) => {
                let (id, message) = Received::from_frame(frame);
                if let Err(error) = state.streams.arrive(id, message, arrivals) {
                    broken(error);
                }
                continue;
            }
            Ok(Some(Decoded::Frame(frame))) => frame,
            Ok(None) if frames.at_eof() => return Err(Error::closed(Closed::Eof)),
            Ok(None) => {
                if let Err(error) = state.streams.deliver(arrivals) {
                    broken(error);
                }
                return Ok(());
            }
            Err(error) => return Err(Error::protocol(error)),
        };
        // Whatever this frame is, the messages read before it come first.
        if let Err(error) = state.streams.deliver(arrivals) {
            broken(error);
        }
        match frame.head {
            // A server never ends its side with an end frame (its trailer does that).
            Head::End => {}
            Head::Credit { .. } => {
                let id = (frame.request_id, frame.attempt);
                match state.streams.on_frame(&frame) {
                    Ok(()) if id != CONNECTION => state.streams.heard(id),
                    Ok(()) => {}
                    Err(error) => broken(error),
                }
            }
            Head::Response(head) => {
                let id = (frame.request_id, frame.attempt);
                answer(
                    id,
                    reply_from(frame.encoding, head, frame.body, max_frame_size),
                );
            }
            Head::Ping => {
                let _ = outbound.send(&Frame::control(frame.request_id, Head::Pong));
            }
            Head::GoAway(head) => {
                state.refuse_new(Error::closed(Closed::GoAway {
                    code: Code::from_u32(head.code),
                    message: head.message.to_string(),
                }));
            }
            Head::Pong => {}
            _ => {
                tracing::debug!("ignoring a request-side frame sent by the server");
            }
        }
    }
}

/// What the reader takes of a frame it reads in place, leaving the body.
enum Taken {
    /// An ok reply without metadata.
    Reply(CallId, Encoding),
    /// A message on a stream.
    Message(MessageHead),
}

/// A reply's body, its format (`None` when the id is unknown: the caller's is used), and its
/// metadata.
type ReplyParts = (Bytes, Option<Format>, Metadata);

/// Turns a response into the caller's result: decompresses, and maps non-ok codes to
/// [`Error::Status`].
fn reply_from(
    encoding: Encoding,
    head: ResponseHead,
    body: Bytes,
    max_frame_size: u32,
) -> Result<ReplyParts, Error> {
    if head.code != Code::Ok.as_u32() {
        let details = decompress(encoding, body, max_frame_size)?;
        return Err(Error::Status(
            Status::new(Code::from_u32(head.code), head.message.to_string())
                .with_details(details)
                .with_metadata(head.metadata),
        ));
    }
    let (body, format, _) = ok_reply(encoding, body, max_frame_size)?;
    Ok((body, format, head.metadata))
}

/// An ok reply's parts, before its metadata.
fn ok_reply(encoding: Encoding, body: Bytes, max_frame_size: u32) -> Result<ReplyParts, Error> {
    let body = decompress(encoding, body, max_frame_size)?;
    Ok((
        body,
        Format::from_id(encoding.format_id()).ok(),
        Metadata::new(),
    ))
}

/// A body as its encoding's compression id says to read it.
fn decompress(encoding: Encoding, body: Bytes, max_frame_size: u32) -> Result<Bytes, Error> {
    match Compression::from_id(encoding.compression_id())? {
        Compression::None => Ok(body),
        other => Ok(other.decompress(&body, max_frame_size as usize)?),
    }
}

/// Keepalive without a timer per frame: frames only set `heard`, and a check runs every
/// `interval` (or `timeout` after a ping). A silent peer is pinged after one to two intervals
/// and declared dead `timeout` after that.
struct Keepalive {
    interval: Duration,
    timeout: Duration,
    check_at: Instant,
    heard: bool,
    ping_outstanding: bool,
    next_ping_id: u64,
}

enum KeepaliveAction {
    Nothing,
    Ping(u64),
    Dead,
}

impl Keepalive {
    fn new(interval: Duration, timeout: Duration) -> Self {
        Keepalive {
            interval,
            timeout,
            check_at: crate::timer::deadline_after(interval),
            heard: false,
            ping_outstanding: false,
            next_ping_id: 1,
        }
    }

    /// A frame arrived. An answered ping starts a new interval at once, so a quiet but live
    /// peer is pinged every interval rather than every interval plus timeout.
    /// Returns whether `check_at` moved.
    fn heard(&mut self) -> bool {
        self.heard = true;
        if !self.ping_outstanding {
            return false;
        }
        self.ping_outstanding = false;
        self.check_at = crate::timer::deadline_after(self.interval);
        true
    }

    fn check(&mut self) -> KeepaliveAction {
        let now = Instant::now();
        if std::mem::take(&mut self.heard) {
            self.ping_outstanding = false;
            self.check_at = now + self.interval;
            return KeepaliveAction::Nothing;
        }
        if self.ping_outstanding {
            return KeepaliveAction::Dead;
        }
        self.ping_outstanding = true;
        self.check_at = now + self.timeout;
        self.next_ping_id += 1;
        KeepaliveAction::Ping(self.next_ping_id)
    }
}
