//! A connection's streams: admitting a request that opens one, and ending one early (bad
//! frames from the client, or the server's shutdown). The frames of open streams go to the
//! connection's [`StreamSet`]; a stream's task runs its handler, then sends its messages as
//! the client's credit allows, then its trailer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::super::deadline::deadline_exceeded;
use super::super::dispatch::{self, Incoming, Prepared, ReplyEncoding};
use super::super::handler::Handler;
use super::Calls;
use crate::compress::CompressionPolicy;
use crate::format::Format;
use crate::service::Response;
use crate::status::{Code, Status};
use crate::stream::{
    INITIAL_STREAM_CREDIT, Messages, Opened, SendCredit, Stopped, StreamId, StreamSet, send_all,
};
use crate::timer::Sleep;
use crate::wire::RequestFields;

impl<H: Handler> Calls<'_, H> {
    /// Admits a request that opens a stream and starts its task: the handler, then its
    /// messages as the client's credit allows, then the trailer. Refusals are trailers too,
    /// sent even for a oneway request (a stream cannot be one). Returns the bytes queued for
    /// the socket if it answered at once.
    pub(super) fn start_stream(
        &mut self,
        fields: RequestFields,
        incoming: Result<Incoming<'_>, Status>,
        received: Instant,
    ) -> usize {
        let shared = self.shared;
        let config = &shared.config;
        let id = (fields.request_id, fields.attempt);
        let prepared = match self.stream_refusal(&fields) {
            Some(status) => Err(status),
            None => incoming.and_then(|incoming| {
                dispatch::prepare(
                    &fields,
                    incoming,
                    self.peer,
                    received,
                    config.compression_threshold,
                    config.max_frame_size as usize,
                )
            }),
        };
        let Prepared {
            service,
            mut request,
            reply,
        } = match prepared {
            Ok(prepared) => prepared,
            Err(status) => {
                let plain = ReplyEncoding::plain(id.0, id.1, fields.encoding);
                return plain.send(&Err(status), &self.outbound);
            }
        };
        let Opened { inbox, credit } =
            self.streams
                .open(id, fields.encoding, INITIAL_STREAM_CREDIT, 0);
        // Accepting the stream grants the client its credit to send.
        self.streams.open_windows(id, &inbox);
        let format = request.format;
        // The deadline covers the whole stream: the handler (the deadline layer stops it) and
        // its messages, however long they wait for the client's credit.
        let deadline = request.deadline.zip(request.timeout).map(|(at, budget)| {
            let sleep = shared.timer.sleep_until(Instant::from_std(at));
            (sleep, budget)
        });
        request.messages = Some(Messages::server(self.streams.clone(), inbox, id, format));
        let call = shared.handler.call(service, request);
        let mut stream = Running {
            streams: self.streams.clone(),
            id,
            credit,
            format,
            deadline,
        };
        let outbound = self.outbound.clone();
        let task = self.handlers.spawn(async move {
            let Some(result) = stream.run(call, reply.compression).await else {
                // Cancelled, or ended by the client breaking the stream's rules (already
                // answered): nothing more to send.
                return;
            };
            // Removed before the trailer goes: what the client sends after it is ignored. A
            // stream ended meanwhile (bad frames, shutdown) had its trailer sent by whoever
            // ended it.
            if stream.streams.remove(id) {
                reply.send(&result, &outbound);
            }
        });
        self.streams.set_task(id, task.abort_handle());
        0
    }

    /// Why a request that opens a stream is refused before it is read, if it is (PROTOCOL.md
    /// 9.3).
    fn stream_refusal(&self, fields: &RequestFields) -> Option<Status> {
        let config = &self.shared.config;
        let id = (fields.request_id, fields.attempt);
        if self.draining {
            Some(Status::new(Code::Unavailable, "server is shutting down"))
        } else if fields.oneway || fields.dedupe {
            Some(Status::invalid_argument(
                "a stream cannot be oneway or deduplicated",
            ))
        } else if fields.request_id == 0 {
            Some(Status::invalid_argument(
                "a stream cannot have request id 0 (it names the connection)",
            ))
        } else if self.streams.len() >= config.max_concurrent_streams {
            Some(Status::new(
                Code::ResourceExhausted,
                format!(
                    "connection is at max_concurrent_streams {}",
                    config.max_concurrent_streams
                ),
            ))
        } else if self.streams.contains(id) || self.in_flight.lock().contains_key(&id) {
            Some(Status::invalid_argument(format!(
                "request id {} attempt {} is already in flight on this connection",
                id.0, id.1
            )))
        } else {
            None
        }
    }

    /// Ends a stream early with `status` in its trailer (its task is stopped). Returns the
    /// bytes queued for the socket.
    pub(super) fn end_stream(&self, id: StreamId, status: Status) -> usize {
        let Some(encoding) = self
            .streams
            .close(id, Err(crate::error::Error::Status(status.clone())))
        else {
            return 0;
        };
        ReplyEncoding::plain(id.0, id.1, encoding).send(&Err(status), &self.outbound)
    }

    /// Ends every open stream with the status `why` makes.
    pub(super) fn end_streams(&self, why: impl Fn() -> Status) {
        for id in self.streams.ids() {
            self.end_stream(id, why());
        }
    }
}

/// An accepted stream, as its task runs it.
struct Running {
    streams: Arc<StreamSet>,
    id: StreamId,
    /// This side's credit to send on the stream.
    credit: Arc<SendCredit>,
    format: Format,
    /// The sleep until the call's deadline, and the budget the caller gave.
    deadline: Option<(Sleep, Duration)>,
}

impl Running {
    /// Runs the handler, then sends its messages (compressed by `policy`) within the
    /// deadline. Returns what the trailer says, or `None` when the stream was ended first.
    async fn run(
        &mut self,
        call: impl Future<Output = Result<Response, Status>>,
        policy: CompressionPolicy,
    ) -> Option<Result<Response, Status>> {
        let mut response = match call.await {
            Ok(response) => response,
            Err(status) => return Some(Err(status)),
        };
        let Some(messages) = response.messages.take() else {
            return Some(Ok(response));
        };
        let Running {
            streams,
            id,
            credit,
            format,
            deadline,
        } = self;
        let sending = send_all(streams, *id, credit, messages, *format, policy);
        let sent = match deadline {
            None => sending.await,
            Some((sleep, budget)) => match tokio::select! {
                sent = sending => sent,
                () = &mut *sleep => Err(Stopped::Status(deadline_exceeded(*budget))),
            } {
                // Messages made without waiting anywhere in time to be stopped (CPU-bound)
                // went out; the trailer after the deadline is neither ok nor the stream's own
                // error (PROTOCOL.md 7.3).
                sent @ Err(Stopped::Closed) => sent,
                _ if Instant::now() >= sleep.deadline() => {
                    Err(Stopped::Status(deadline_exceeded(*budget)))
                }
                sent => sent,
            },
        };
        match sent {
            Ok(()) => Some(Ok(response)),
            Err(Stopped::Closed) => None,
            Err(Stopped::Status(status)) => Some(Err(status)),
            Err(Stopped::Failed(error)) => Some(Err(Status::internal(format!(
                "a message of the stream could not be sent: {error}"
            )))),
        }
    }
}
