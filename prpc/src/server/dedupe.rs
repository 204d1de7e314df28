//! Runs calls marked for dedupe at most once, through the server's idempotency store.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;
use tokio_util::codec::{Decoder, Encoder};

use super::dispatch::ReplyEncoding;
use crate::idempotency::{Begin, FailMode, Key, Store, StoreError};
use crate::status::Code;
use crate::status::Status;
use crate::timer::Timer;
use crate::wire::{Frame, FrameCodec};

/// The server's dedupe settings and store.
pub(super) struct Dedupe {
    pub(super) store: Arc<dyn Store>,
    pub(super) timer: Timer,
    pub(super) ttl: Duration,
    pub(super) fail_mode: FailMode,
    /// Longest a single store operation may take (the call's deadline may cut it shorter).
    pub(super) store_timeout: Duration,
    pub(super) max_frame_size: u32,
}

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

impl Dedupe {
    /// Runs `call` (which yields the reply frame) unless another attempt of the same call ran
    /// or runs it, in which case that attempt's reply is answered. `deadline` (when, and the
    /// budget it came from) bounds everything; a call stopped at its deadline stores
    /// `deadline_exceeded` as its outcome, since every attempt of a retried call carries the
    /// call's one deadline.
    pub(super) async fn run(
        &self,
        key: Key,
        deadline: Option<(Instant, Duration)>,
        reply: ReplyEncoding,
        call: impl Future<Output = Frame>,
    ) -> Frame {
        let budget = deadline.map(|(_, budget)| budget);
        let deadline = deadline.map(|(at, _)| at);
        let refuse = |status: Status| reply.frame(Err(status), self.max_frame_size);
        for _ in 0..3 {
            let begun = self
                .bounded(self.store.begin(&key, self.ttl), deadline)
                .await;
            let stored = match begun {
                Err(error) => match self.fail_mode {
                    FailMode::Closed => {
                        return refuse(Status::new(Code::Unavailable, error.to_string()));
                    }
                    FailMode::Open => {
                        tracing::warn!(%key, %error, "running a call without dedupe");
                        return call.await;
                    }
                },
                Ok(Begin::New) => {
                    let call = async {
                        match (deadline, budget) {
                            (Some(at), Some(budget)) => tokio::select! {
                                frame = call => frame,
                                () = self.timer.sleep_until(at) => {
                                    refuse(super::dispatch::deadline_exceeded(budget))
                                }
                            },
                            _ => call.await,
                        }
                    };
                    return self.run_first(key, reply, call).await;
                }
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
                            return refuse(Status::new(
                                Code::Unavailable,
                                format!("call {key} is still running under an earlier attempt"),
                            ));
                        }
                        Ok(Err(error)) => {
                            return refuse(Status::new(Code::Unavailable, error.to_string()));
                        }
                        // Released or expired: claim it again.
                        Ok(Ok(None)) => continue,
                        Ok(Ok(Some(stored))) => stored,
                    }
                }
            };
            return match replay(&stored, reply, self.max_frame_size) {
                Some(frame) => frame,
                None => refuse(Status::internal(format!(
                    "the stored reply of {key} does not decode"
                ))),
            };
        }
        refuse(Status::new(
            Code::Unavailable,
            format!("call {key} was claimed and released repeatedly"),
        ))
    }

    async fn run_first(
        &self,
        key: Key,
        reply: ReplyEncoding,
        call: impl Future<Output = Frame>,
    ) -> Frame {
        let mut claim = Claim {
            store: self.store.clone(),
            key,
            finished: false,
        };
        let frame = call.await;
        claim.finished = true;
        let key = &claim.key;
        if let Err(error) = self.store_reply(key, &frame).await {
            self.reply_lost(key, reply, error).await;
        }
        frame
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
            let substitute = reply.frame(Err(status), self.max_frame_size);
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

/// The stored reply frame, readdressed to this attempt.
fn replay(stored: &[u8], reply: ReplyEncoding, max_frame_size: u32) -> Option<Frame> {
    let mut buffer = BytesMut::from(stored);
    let mut frame = FrameCodec::with_max_frame_size(max_frame_size)
        .decode(&mut buffer)
        .ok()??;
    frame.request_id = reply.request_id;
    frame.attempt = reply.attempt;
    Some(frame)
}
