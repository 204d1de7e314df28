//! One accepted connection: the read loop, its writer task, and one task per call.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use dashmap::DashMap;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::Shared;
use super::dispatch::{self, Prepared, ReplyEncoding};
use crate::id::IdHashBuilder;
use crate::wire::{BatchWriter, Frame, Head, WireError, framed_read, next_frame};
use crate::{Code, Status};

/// Frames coalesced into one write at most.
const MAX_BATCH: usize = 128;

/// Running calls by request id and attempt (a retrying client may have several attempts of one
/// call running).
type InFlight = Arc<DashMap<(u64, u32), Running, IdHashBuilder>>;

/// Shards of a connection's `InFlight` map. Its users are one read loop and that connection's
/// call tasks, so a few shards are enough; the default (four per core) would make the
/// `len()` every request checks against `max_in_flight` lock every one of many shards.
const IN_FLIGHT_SHARDS: usize = 4;

/// One running call. The entry is made before the task exists (`handler: None`), so a call
/// that finishes at once cannot leave a stale entry behind.
struct Running {
    handler: Option<AbortHandle>,
    /// Marked for dedupe: it runs to completion even if its connection goes, so that a retry
    /// on another connection collects the stored result.
    dedupe: bool,
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
    /// Graceful shutdown finished draining (or ran out of grace).
    Drained,
}

pub(super) async fn run(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let config = &shared.config;
    // Bounded: when the client stops reading, the writer stalls, this fills, and the read loop
    // stops reading too, so a client that never reads cannot grow the server's memory.
    let (outbound, queued) = mpsc::channel(config.max_in_flight.max(MAX_BATCH));
    let writer = tokio::spawn(write_loop(write, queued, config.max_frame_size));
    let in_flight: InFlight = Arc::new(DashMap::with_hasher_and_shard_amount(
        IdHashBuilder::default(),
        IN_FLIGHT_SHARDS,
    ));
    let inline_first_poll = matches!(
        tokio::runtime::Handle::current().runtime_flavor(),
        tokio::runtime::RuntimeFlavor::CurrentThread
    );
    let handlers = TaskTracker::new();

    let mut frames = framed_read(read, config.max_frame_size);
    let mut last_heard = Instant::now();
    let mut draining = false;
    // One timer for the connection's life: the idle check, or the end of the shutdown grace.
    let mut timer = shared.timer.sleep_until(last_heard + config.idle_timeout);

    let end = loop {
        let next = tokio::select! {
            biased;
            _ = shared.shutdown.cancelled(), if !draining => {
                let goaway = Frame::goaway(Code::Unavailable.as_u32(), "server is shutting down");
                let _ = outbound.send(goaway).await;
                handlers.close();
                draining = true;
                timer.reset(Instant::now() + config.shutdown_grace);
                continue;
            }
            _ = handlers.wait(), if draining => break End::Drained,
            _ = &mut timer => {
                if draining {
                    break End::Drained;
                }
                if in_flight.is_empty() && last_heard.elapsed() >= config.idle_timeout {
                    break End::Idle;
                }
                // Frames do not move the timer (that would cost a timer update per frame);
                // the check moves itself to the idle deadline the last frame set.
                let idle_at = (last_heard + config.idle_timeout).max(Instant::now() + config.idle_timeout / 4);
                timer.reset(idle_at);
                continue;
            }
            next = next_frame(&mut frames) => next,
        };
        let frame = match next {
            None => break End::Eof,
            Some(Err(WireError::Io(error))) => {
                tracing::debug!(%peer, %error, "connection failed");
                break End::Broken;
            }
            Some(Err(error)) => break End::Protocol(error),
            Some(Ok(frame)) => frame,
        };
        last_heard = Instant::now();
        match frame.head {
            Head::Request(ref head) => {
                // A oneway caller wants no answer: not even a refusal.
                let oneway = head.oneway;
                let reply = if draining {
                    let status = Status::new(Code::Unavailable, "server is shutting down");
                    Some(ReplyEncoding::plain(&frame).frame(Err(status), config.max_frame_size))
                } else {
                    let calls = Calls {
                        in_flight: &in_flight,
                        handlers: &handlers,
                        outbound: &outbound,
                        inline_first_poll,
                    };
                    // `start_call` is a plain function given this task's context (to poll
                    // the handler once), so that no future holding the frame is built and
                    // moved for every request.
                    let mut frame = Some(frame);
                    poll_fn(|cx| {
                        let frame = frame.take().expect("poll_fn's closure runs once here");
                        Poll::Ready(start_call(frame, last_heard, &shared, calls, cx))
                    })
                    .await
                };
                if let Some(reply) = reply.filter(|_| !oneway) {
                    let _ = outbound.send(reply).await;
                }
            }
            Head::Cancel => {
                let key = (frame.request_id, frame.attempt);
                if let Some((
                    _,
                    Running {
                        handler: Some(handler),
                        ..
                    },
                )) = in_flight.remove(&key)
                {
                    handler.abort();
                }
            }
            Head::Ping => {
                let _ = outbound
                    .send(Frame::control(frame.request_id, Head::Pong))
                    .await;
            }
            Head::Pong | Head::Response(_) | Head::GoAway(_) => {}
        }
    };

    match end {
        End::Eof => {}
        End::Drained => abort(&in_flight, Keep::Nothing),
        End::Broken => abort(&in_flight, Keep::Dedupe),
        End::Protocol(error) => {
            tracing::debug!(%peer, %error, "closing a connection that broke the protocol");
            abort(&in_flight, Keep::Dedupe);
            let code = match error {
                WireError::FrameTooLarge { .. } => Code::ResourceExhausted,
                _ => Code::InvalidArgument,
            };
            let _ = outbound
                .send(Frame::goaway(code.as_u32(), error.to_string()))
                .await;
        }
        End::Idle => {
            let message = format!("idle for {:?}", config.idle_timeout);
            let _ = outbound
                .send(Frame::goaway(Code::Unavailable.as_u32(), message))
                .await;
        }
    }
    // The writer ends once this and every call's sender are gone; on Eof that is after the
    // running calls have answered.
    drop(outbound);
    let _ = writer.await;
}

/// Where a connection keeps its running calls.
#[derive(Clone, Copy)]
struct Calls<'a> {
    in_flight: &'a InFlight,
    handlers: &'a TaskTracker,
    outbound: &'a mpsc::Sender<Frame>,
    /// Poll each handler once on the read loop before giving it a task.
    inline_first_poll: bool,
}

/// Admits a call and runs it: the reply comes back at once when the handler completes on its
/// first poll (no task, no bookkeeping), else the call goes on as a task of its own. Returns
/// the reply to send now, if any (a refusal, or the finished call's reply).
fn start_call(
    frame: Frame,
    received: Instant,
    shared: &Arc<Shared>,
    calls: Calls<'_>,
    cx: &mut Context<'_>,
) -> Option<Frame> {
    let Calls {
        in_flight,
        handlers,
        outbound,
        inline_first_poll,
    } = calls;
    let config = &shared.config;
    let refuse = |frame: &Frame, status: Status| {
        Some(ReplyEncoding::plain(frame).frame(Err(status), config.max_frame_size))
    };
    let key = (frame.request_id, frame.attempt);
    if in_flight.len() >= config.max_in_flight {
        let status = Status::new(
            Code::ResourceExhausted,
            format!("connection is at max_in_flight {}", config.max_in_flight),
        );
        return refuse(&frame, status);
    }
    if in_flight.contains_key(&key) {
        let status = Status::invalid_argument(format!(
            "request id {} attempt {} is already in flight on this connection",
            key.0, key.1
        ));
        return refuse(&frame, status);
    }
    let plain = ReplyEncoding::plain(&frame);
    let prepared = match dispatch::prepare(
        &shared.services,
        frame,
        received,
        config.compression_threshold,
        config.max_frame_size as usize,
    ) {
        Ok(prepared) => prepared,
        Err(status) => return Some(plain.frame(Err(status), config.max_frame_size)),
    };
    let oneway = prepared.oneway;
    let dedupe = prepared.dedupe.is_some();

    let mut call = Box::pin(run_call(prepared, shared.clone()));
    // Most handlers finish without waiting on anything. On a single-threaded runtime a task
    // of their own buys no parallelism, so poll once here and skip the task when they do.
    // (A future polled here and then spawned is polled again by its task straight away, so
    // everything it waits on learns the task's waker.) On a multi-thread runtime every call
    // gets its task, so that handlers of one connection run on every worker.
    if inline_first_poll && let Poll::Ready(reply) = call.as_mut().poll(cx) {
        return (!oneway).then_some(reply);
    }

    in_flight.insert(
        key,
        Running {
            handler: None,
            dedupe,
        },
    );
    let task_in_flight = in_flight.clone();
    let outbound = outbound.clone();
    let task = handlers.spawn(async move {
        let reply = call.await;
        task_in_flight.remove(&key);
        if !oneway {
            let _ = outbound.send(reply).await;
        }
    });
    if let Some(mut entry) = in_flight.get_mut(&key) {
        entry.handler = Some(task.abort_handle());
    }
    None
}

/// Runs a call to its reply frame: the handler, under its deadline and dedupe.
async fn run_call(prepared: Prepared, shared: Arc<Shared>) -> Frame {
    let Prepared {
        service,
        request,
        reply,
        deadline,
        dedupe,
        ..
    } = prepared;
    let max_frame_size = shared.config.max_frame_size;
    let call = async {
        let result = dispatch::invoke(service, request).await;
        reply.frame(result, max_frame_size)
    };
    match (dedupe, deadline) {
        // Boxed: the dedupe future is large, and inline it would bloat every call's future.
        (Some(dedupe_key), _) => {
            Box::pin(shared.dedupe.run(dedupe_key, deadline, reply, call)).await
        }
        (None, None) => call.await,
        (None, Some((at, budget))) => tokio::select! {
            frame = call => frame,
            () = shared.timer.sleep_until(at) => {
                reply.frame(Err(dispatch::deadline_exceeded(budget)), max_frame_size)
            }
        },
    }
}

/// Which running calls survive their connection's end.
enum Keep {
    Nothing,
    Dedupe,
}

fn abort(in_flight: &InFlight, keep: Keep) {
    in_flight.retain(|_, running| {
        if matches!(keep, Keep::Dedupe) && running.dedupe {
            return true;
        }
        if let Some(handler) = &running.handler {
            handler.abort();
        }
        false
    });
}

async fn write_loop(write: OwnedWriteHalf, mut queued: mpsc::Receiver<Frame>, max_frame_size: u32) {
    let mut writer = BatchWriter::new(write, max_frame_size);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if batch.len() < MAX_BATCH {
            // Let handlers that are finishing now queue their replies for this same write
            // (see the client's writer).
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                match queued.try_recv() {
                    Ok(frame) => batch.push(frame),
                    Err(_) => break,
                }
            }
        }
        // Replies were size-checked when made, so nothing is refused here in practice.
        let written = writer
            .write(batch.drain(..), |request_id, error| {
                tracing::warn!(request_id, %error, "dropping a reply that cannot be encoded");
            })
            .await;
        if written.is_err() {
            // The client is gone. Keep draining so senders never block on a dead socket.
            while queued.recv().await.is_some() {}
            return;
        }
    }
    writer.shutdown().await;
}
