//! The server's dedupe layer: a call marked for dedupe runs at most once, through the
//! server's idempotency store; its other attempts get the stored reply.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;
use tokio_util::codec::{Decoder, Encoder};

use super::dispatch::ReplyEncoding;
use super::handler::Handler;
use crate::compress::{Compression, CompressionPolicy};
use crate::format::Format;
use crate::idempotency::{Begin, FailMode, Key, Store, StoreError};
use crate::layer::Either;
use crate::service::{Request, Response, Service};
use crate::status::{Code, Status};
use crate::timer::Timer;
use crate::wire::{Frame, FrameCodec, Head};

/// Runs each call marked for dedupe (the request's [`dedupe`](Request::dedupe) flag) at most
/// once across its attempts, through the server's
/// [`idempotency`](crate::idempotency) store; other calls pass straight through. Every server
/// has it, outside [`Deadline`](super::Deadline), so a call stopped at its deadline keeps its
/// claim and stores `deadline_exceeded` for its other attempts.
pub struct Dedupe<H> {
    inner: Arc<H>,
    settings: Arc<DedupeSettings>,
}

/// The server's dedupe settings and store.
pub(super) struct DedupeSettings {
    pub(super) store: Arc<dyn Store>,
    pub(super) timer: Timer,
    pub(super) ttl: Duration,
    pub(super) fail_mode: FailMode,
    /// Longest a single store operation may take (the call's deadline may cut it shorter).
    pub(super) store_timeout: Duration,
    pub(super) max_frame_size: u32,
    /// Replies smaller than this are stored uncompressed, as they are sent.
    pub(super) compression_threshold: usize,
}

impl<H> Dedupe<H> {
    pub(super) fn new(inner: H, settings: DedupeSettings) -> Self {
        Dedupe {
            inner: Arc::new(inner),
            settings: Arc::new(settings),
        }
    }
}

impl<H: Handler> Handler for Dedupe<H> {
    type Future = DedupeFuture<H::Future>;

    fn call(&self, service: &Arc<dyn Service>, request: Request) -> Self::Future {
        if !request.dedupe {
            return Either::Left(self.inner.call(service, request));
        }
        let key = Key::new(service.name(), &request.method, request.request_id);
        let deadline = request.deadline.map(Instant::from_std);
        // The reply is stored as this attempt is answered: its format, compressed as it asked.
        let reply = ReplyEncoding {
            request_id: request.request_id,
            attempt: request.attempt,
            format_id: request.format.id(),
            compression: CompressionPolicy {
                compression: request.compression,
                threshold: self.settings.compression_threshold,
            },
        };
        let (inner, settings, service) =
            (self.inner.clone(), self.settings.clone(), service.clone());
        // The handler must not run before the store says this attempt may run it: it is
        // called from inside the future, once the claim is taken.
        let call = async move { inner.call(&service, request).await };
        Either::Right(Box::pin(async move {
            settings.run(key, deadline, reply, call).await
        }))
    }
}

/// The future of [`Dedupe`]: a call not marked for dedupe as it is, or one marked for dedupe
/// (boxed: it is large, and rare next to the others).
pub type DedupeFuture<F> =
    Either<F, Pin<Box<dyn Future<Output = Result<Response, Status>> + Send>>>;

/// Releases a claim whose call did not finish (its task was dropped).
struct Claim {
    store: Arc<dyn Store>,
    key: Key,
    finished: bool,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let store = self.store.clone();
        let key = self.key.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = store.release(&key).await {
                    tracing::warn!(%key, %error, "could not release an unfinished call's claim");
                }
            });
        }
    }
}

impl DedupeSettings {
    /// Runs `call` unless another attempt of the same call ran or runs it, in which case that
    /// attempt's reply is answered. `deadline` bounds the store's operations and the wait for
    /// another attempt; the call itself is stopped there by the deadline layer under this one,
    /// and its `deadline_exceeded` is stored as its outcome, since every attempt of a retried
    /// call carries the call's one deadline.
    async fn run(
        &self,
        key: Key,
        deadline: Option<Instant>,
        reply: ReplyEncoding,
        call: impl Future<Output = Result<Response, Status>>,
    ) -> Result<Response, Status> {
        for _ in 0..3 {
            let begun = self
                .bounded(self.store.begin(&key, self.ttl), deadline)
                .await;
            let stored = match begun {
                Err(error) => match self.fail_mode {
                    FailMode::Closed => {
                        return Err(Status::new(Code::Unavailable, error.to_string()));
                    }
                    FailMode::Open => {
                        tracing::warn!(%key, %error, "running a call without dedupe");
                        return call.await;
                    }
                },
                Ok(Begin::New) => return self.run_first(key, reply, call).await,
                Ok(Begin::Done(stored)) => stored,
                Ok(Begin::InProgress) => {
                    // Waits as long as the caller does; without a deadline, as long as a claim
                    // can live.
                    let until = deadline.unwrap_or_else(|| Instant::now() + self.ttl);
                    let waited = tokio::select! {
                        waited = self.store.wait(&key) => Ok(waited),
                        () = self.timer.sleep_until(until) => Err(()),
                    };
                    match waited {
                        Err(()) => {
                            return Err(Status::new(
                                Code::Unavailable,
                                format!("call {key} is still running under an earlier attempt"),
                            ));
                        }
                        Ok(Err(error)) => {
                            return Err(Status::new(Code::Unavailable, error.to_string()));
                        }
                        // Released or expired: claim it again.
                        Ok(Ok(None)) => continue,
                        Ok(Ok(Some(stored))) => stored,
                    }
                }
            };
            return replay(&stored, reply.format_id, self.max_frame_size).unwrap_or_else(|| {
                Err(Status::internal(format!(
                    "the stored reply of {key} does not decode"
                )))
            });
        }
        Err(Status::new(
            Code::Unavailable,
            format!("call {key} was claimed and released repeatedly"),
        ))
    }

    async fn run_first(
        &self,
        key: Key,
        reply: ReplyEncoding,
        call: impl Future<Output = Result<Response, Status>>,
    ) -> Result<Response, Status> {
        let mut claim = Claim {
            store: self.store.clone(),
            key,
            finished: false,
        };
        let result = call.await;
        if let Err(status) = &result
            && matches!(status.code(), Code::ResourceExhausted | Code::Unavailable)
        {
            // A refusal (a rate limit, a full server, one shutting down) says the call did not
            // run: a retry should run it, not be answered with the refusal. The claim is given
            // up as the guard drops.
            return result;
        }
        claim.finished = true;
        let key = &claim.key;
        // A reply is stored as it is sent, compressed as this attempt asked (so that a reply
        // that fits the frame size compressed is kept too); an error status, uncompressed.
        let encoding = match &result {
            Ok(_) => reply,
            Err(_) => reply.uncompressed(),
        };
        let frame = encoding.frame(&result, self.max_frame_size);
        if let Err(error) = self.store_reply(key, &frame).await {
            self.reply_lost(key, reply, error).await;
        }
        result
    }

    /// The call under `key` ran, but its reply could not be stored. Failing closed, its other
    /// attempts (waiting now, or still to come) get a `data_loss` status in its place: they
    /// must not run it again. Failing open, the claim is given up, and one of them runs it.
    async fn reply_lost(&self, key: &Key, reply: ReplyEncoding, error: StoreError) {
        if self.fail_mode == FailMode::Closed {
            let status = Status::new(
                Code::DataLoss,
                format!(
                    "call {key} ran, but its reply could not be kept for its retries ({error}); \
                     it is not run again"
                ),
            );
            let substitute = reply
                .uncompressed()
                .frame(&Err(status), self.max_frame_size);
            match self.store_reply(key, &substitute).await {
                Ok(()) => {
                    tracing::warn!(%key, %error, "could not store a reply; its retries get data_loss");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%key, %error, "could not store a reply, nor data_loss in its place");
                }
            }
        }
        // Nothing stands for the reply: give the claim up, so that the attempts waiting on it
        // run the call rather than wait out its ttl.
        tracing::warn!(%key, %error, "could not store a reply; a retry may run the call again");
        if let Err(error) = self.bounded(self.store.release(key), None).await {
            tracing::warn!(%key, %error, "could not release the claim of a call whose reply was lost");
        }
    }

    /// Stores the reply frame of the call under `key`, encoded as it went on the wire.
    async fn store_reply(&self, key: &Key, frame: &Frame) -> Result<(), StoreError> {
        let mut stored = BytesMut::new();
        FrameCodec::with_max_frame_size(self.max_frame_size)
            .encode(frame, &mut stored)
            .map_err(|error| StoreError(format!("the reply does not encode: {error}")))?;
        let finished = self.store.finish(key, stored.freeze(), self.ttl);
        self.bounded(finished, None).await
    }

    async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
        deadline: Option<Instant>,
    ) -> Result<T, StoreError> {
        let limit = Instant::now() + self.store_timeout;
        let until = deadline.map_or(limit, |deadline| deadline.min(limit));
        tokio::select! {
            result = operation => result,
            () = self.timer.sleep_until(until) => Err(StoreError("no answer in time".to_owned())),
        }
    }
}

/// The answer a stored reply frame holds, for an attempt in the format `format_id`: `None`
/// when the bytes are not a response frame.
fn replay(stored: &[u8], format_id: u8, max_frame_size: u32) -> Option<Result<Response, Status>> {
    let mut buffer = BytesMut::from(stored);
    let frame = FrameCodec::with_max_frame_size(max_frame_size)
        .decode(&mut buffer)
        .ok()??;
    if !matches!(frame.head, Head::Response(_)) {
        return None;
    }
    // Every attempt of a call carries the call's one format; a resend by hand in another
    // format would be answered a body it cannot read.
    let stored_format = frame.encoding.format_id();
    if stored_format != format_id {
        return Some(Err(Status::invalid_argument(format!(
            "this call ran in format {}; this attempt asks for {}",
            format_name(stored_format),
            format_name(format_id)
        ))));
    }
    Some(answer_of(frame, max_frame_size))
}

/// The handler's answer a stored response frame carries. An ok reply's body goes on as it was
/// stored, compressed or not (its codec is the one the call asked for); an error's details
/// are decompressed (servers store them uncompressed, but one of an older version may not).
fn answer_of(frame: Frame, max_frame_size: u32) -> Result<Response, Status> {
    let Head::Response(head) = frame.head else {
        return Err(Status::internal("a stored reply is not a response"));
    };
    let compression = Compression::from_id(frame.encoding.compression_id())
        .map_err(|error| Status::internal(format!("a stored reply: {error}")))?;
    if head.code == Code::Ok.as_u32() {
        let mut response = Response::new(frame.body);
        response.metadata = head.metadata;
        if compression != Compression::None {
            response.compressed = Some(compression);
        }
        return Ok(response);
    }
    let details = match compression {
        Compression::None => frame.body,
        other => other
            .decompress(&frame.body, max_frame_size as usize)
            .map_err(|error| Status::internal(format!("a stored reply: {error}")))?,
    };
    Err(
        Status::new(Code::from_u32(head.code), head.message.to_string())
            .with_details(details)
            .with_metadata(head.metadata),
    )
}

/// A format's name, or its id when it names none.
fn format_name(id: u8) -> String {
    Format::from_id(id).map_or_else(|_| id.to_string(), |format| format.to_string())
}
