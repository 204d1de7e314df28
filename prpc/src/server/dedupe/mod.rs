//! The server's dedupe layer: a call marked for dedupe runs at most once, through the
//! server's idempotency store; its other attempts get the recorded outcome.
//!
//! Every rule here is stated in docs/PROTOCOL.md section 7.2. The layer is built around one
//! promise of fail-closed mode: a call never runs twice. So a claim is given up only when the
//! call provably took no effect: it never reached the service, or the service itself answered
//! `unavailable` or `resource_exhausted`, which say so (a downstream failure it passed on with
//! `?` does not count: [`Status`] remembers it). Once it started, its outcome is
//! recorded (a reply, `deadline_exceeded`, `cancelled`) or, when that cannot be done, marked
//! unknown, and its duplicates are answered `outcome_unknown`. Every write to the store is
//! fenced by the claim's token, so a write that timed out here and is applied late by the
//! store cannot undo a later decision.

mod answer;

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::shard_map::Entry as MapEntry;
use crate::shard_map::ShardMap;
use bytes::{Bytes, BytesMut};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::codec::Encoder;
use tokio_util::sync::CancellationToken;

use self::answer::{
    deadline_passed_waiting, not_the_same_call, outcome_unknown, replay, still_running,
};
use super::dispatch::ReplyEncoding;
use super::handler::Handler;
use super::tasks::Tasks;
use crate::compress::CompressionPolicy;
use crate::idempotency::{
    Begin, CLIENT_ID_KEY, Claim, FailMode, Fingerprint, Key, Outcome, Store, StoreError, Token,
};
use crate::layer::Either;
use crate::service::{Request, Response, Service, Started};
use crate::status::{Code, Status};
use crate::timer::Timer;
use crate::wire::{Frame, FrameCodec};

/// How many times a write that must reach the store (a release, an outcome unknown) is tried
/// in the background after it failed in the call's own time.
const BACKGROUND_TRIES: u32 = 5;

/// The longest a background write (a release, an outcome recorded after its call) takes:
/// [`BACKGROUND_TRIES`] tries, each bounded by the store timeout and followed by as long a
/// pause. A shutting-down server waits this long at most for them.
pub(crate) fn background_bound(store_timeout: Duration) -> Duration {
    store_timeout.saturating_mul(2 * BACKGROUND_TRIES)
}

/// Runs each call marked for dedupe (the request's [`dedupe`](Request::dedupe) flag) at most
/// once across its attempts, through the server's
/// [`idempotency`](crate::idempotency) store; other calls pass straight through. Every server
/// has it, outside [`Deadline`](super::Deadline), so a call stopped at its deadline keeps its
/// claim and records `deadline_exceeded` for its other attempts.
pub struct Dedupe<H> {
    inner: Arc<H>,
    settings: Arc<DedupeSettings>,
}

/// The server's dedupe settings and store.
pub(super) struct DedupeSettings {
    pub(super) store: Arc<dyn Store>,
    pub(super) timer: Timer,
    /// How long an outcome is kept, and how long a claim lives past its last renewal.
    pub(super) ttl: Duration,
    pub(super) fail_mode: FailMode,
    /// Longest a single store operation may take (the call's deadline may cut it shorter).
    pub(super) store_timeout: Duration,
    pub(super) max_frame_size: u32,
    /// Replies smaller than this are stored uncompressed, as they are sent.
    pub(super) compression_threshold: usize,
    /// The shutdown grace is over and running calls are being stopped: a handler stopped
    /// now leaves its outcome unknown (one cancelled by its client before, during the grace,
    /// records `cancelled`).
    pub(super) shutdown: CancellationToken,
    /// Writes to the store that outlive their call (releases, outcomes of stopped handlers);
    /// the server waits for them before it returns from serving.
    pub(super) settling: Tasks,
    /// Calls whose first attempt to reach this server is not done with the call here (its
    /// `run` has not returned): a later attempt arriving here waits behind it before it asks
    /// the store anything, so that the first to arrive runs the call even when several arrive
    /// in one read (docs/PROTOCOL.md section 7.2, rule 4).
    pub(super) arrivals: ShardMap<Key, watch::Sender<()>>,
}

impl<H> Dedupe<H> {
    pub(super) fn new(inner: H, settings: DedupeSettings) -> Self {
        Dedupe {
            inner: Arc::new(inner),
            settings: Arc::new(settings),
        }
    }
}

/// One attempt of a call marked for dedupe, as the layer sees it.
struct Attempt {
    key: Key,
    /// What this attempt writes if it claims the call.
    claim: Claim,
    deadline: Option<Instant>,
    /// How its reply is encoded (and stored).
    reply: ReplyEncoding,
    /// For a retry (attempt > 0): when the call's first attempt was sent, from the request
    /// id's snowflake timestamp.
    first_sent: Option<SystemTime>,
    /// Set once the handler is called.
    started: Started,
}

impl<H: Handler> Handler for Dedupe<H> {
    type Future = DedupeFuture<H::Future>;

    fn call(&self, service: &Arc<dyn Service>, mut request: Request) -> Self::Future {
        if !request.dedupe {
            return Either::Left(self.inner.call(service, request));
        }
        let key = match call_key(service.name(), &request) {
            Ok(key) => key,
            Err(status) => return Either::Right(Box::pin(std::future::ready(Err(status)))),
        };
        let claim = Claim {
            token: Token::random(),
            fingerprint: Fingerprint::of(
                service.name(),
                &request.method,
                request.format.id(),
                &request.body,
            ),
        };
        let started = Started::default();
        request.started = Some(started.clone());
        let attempt = Attempt {
            key,
            claim,
            deadline: request.deadline.map(Instant::from_std),
            // The reply is stored as this attempt is answered: its format, compressed as it
            // asked.
            reply: ReplyEncoding {
                request_id: request.request_id,
                attempt: request.attempt,
                format_id: request.format.id(),
                compression: CompressionPolicy {
                    compression: request.compression,
                    threshold: self.settings.compression_threshold,
                },
            },
            first_sent: (request.attempt > 0)
                .then(|| crate::id::decode(request.request_id).timestamp()),
            started,
        };
        // Taken here, as the request is read, not in the future: the order of arrival.
        let arrival = self.settings.arrive(&attempt.key);
        let (inner, settings, service) =
            (self.inner.clone(), self.settings.clone(), service.clone());
        // The handler must not run before the store says this attempt may run it: it is
        // called from inside the future, once the claim is taken.
        let call = async move { inner.call(&service, request).await };
        Either::Right(Box::pin(async move {
            settings.run(attempt, arrival, call).await
        }))
    }
}

/// The future of [`Dedupe`]: a call not marked for dedupe as it is, or one marked for dedupe
/// (boxed: it is large, and rare next to the others).
pub type DedupeFuture<F> =
    Either<F, Pin<Box<dyn Future<Output = Result<Response, Status>> + Send>>>;

/// The key of a call: by the client's identity and the request id when the client sent its
/// identity, else by service, method and request id.
fn call_key(service: &str, request: &Request) -> Result<Key, Status> {
    let Some(text) = request.metadata.get(CLIENT_ID_KEY) else {
        return Ok(Key::new(service, &request.method, request.request_id));
    };
    // Exactly 16 lowercase hex digits (docs/PROTOCOL.md section 7.2): `from_str_radix`
    // alone would also take uppercase and a leading `+`.
    let identity = std::str::from_utf8(&text)
        .ok()
        .filter(|text| {
            text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .and_then(|text| u64::from_str_radix(text, 16).ok())
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "metadata {CLIENT_ID_KEY} must be 16 hex digits, not {} bytes",
                text.len()
            ))
        })?;
    Ok(Key::of_client(identity, request.request_id))
}

/// Where an attempt stands among the attempts of its call that reached this server.
enum Arrival {
    /// The first: it goes to the store; later ones wait until this is dropped.
    First(FirstHere),
    /// A later one: waits until the first has settled with the store (the sender is dropped).
    After(watch::Receiver<()>),
}

/// Holds a call's place as the first of its attempts on this server.
struct FirstHere {
    settings: Arc<DedupeSettings>,
    key: Key,
}

impl Drop for FirstHere {
    fn drop(&mut self) {
        // Dropping the sender wakes the attempts waiting behind this one.
        self.settings.arrivals.remove(&self.key);
    }
}

/// A claim this attempt may have written: from the moment it asks the store for it until
/// a [`Held`] takes it over, or the store's answer says the key is not this attempt's.
/// Dropped armed (the task was cancelled or aborted while the store answered, or the
/// attempt gave up before running the call), it releases the claim in the background: the
/// handler never started. The release is fenced, so a claim never applied, or not this
/// attempt's, is left alone, and a claim the store applies late is released behind it.
struct Claiming {
    settings: Arc<DedupeSettings>,
    key: Key,
    token: Token,
    armed: bool,
}

impl Claiming {
    /// The key is not this attempt's, or its claim is settled another way: nothing to
    /// release.
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Claiming {
    fn drop(&mut self) {
        if self.armed {
            self.settings.release_later(self.key.clone(), self.token);
        }
    }
}

/// The claim an attempt holds while its call runs. Dropped unsettled (the call's task was
/// stopped: cancelled, or at shutdown), it settles the claim in the background: released if
/// the handler never started, else `cancelled`, or outcome unknown when the shutdown grace
/// ended.
struct Held {
    settings: Arc<DedupeSettings>,
    key: Key,
    claim: Claim,
    reply: ReplyEncoding,
    started: Started,
    settled: bool,
}

impl Held {
    /// Gives the claim up: the call took no effect.
    fn give_up(mut self) {
        self.settled = true;
        self.settings
            .release_later(self.key.clone(), self.claim.token);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (key, claim) = (self.key.clone(), self.claim);
        if !self.started.get() {
            self.settings.release_later(key, claim.token);
            return;
        }
        let outcome = if self.settings.shutdown.is_cancelled() {
            tracing::warn!(%key, "a handler stopped at shutdown: its outcome is unknown");
            Outcome::Unknown
        } else {
            let status = Status::new(Code::Cancelled, format!("call {key} was cancelled"));
            match self.settings.encode(
                &self
                    .reply
                    .uncompressed()
                    .frame(&Err(status), self.settings.max_frame_size),
            ) {
                Ok(stored) => Outcome::Reply(stored),
                Err(_) => Outcome::Unknown,
            }
        };
        self.settings.settle_later(key, claim, outcome);
    }
}

impl DedupeSettings {
    /// Registers an attempt's arrival at this server, in arrival order.
    fn arrive(self: &Arc<Self>, key: &Key) -> Arrival {
        match self.arrivals.entry(key.clone()) {
            MapEntry::Occupied(first) => Arrival::After(first.get().subscribe()),
            MapEntry::Vacant(vacant) => {
                vacant.insert(watch::channel(()).0);
                Arrival::First(FirstHere {
                    settings: self.clone(),
                    key: key.clone(),
                })
            }
        }
    }

    /// Runs `call` unless another attempt of the same call ran or runs it, in which case that
    /// attempt's outcome is answered. `deadline` bounds the store's operations and the wait for
    /// another attempt; the call itself is stopped there by the deadline layer under this one,
    /// and its `deadline_exceeded` is recorded as its outcome, since every attempt of a retried
    /// call carries the call's one deadline.
    async fn run(
        self: Arc<Self>,
        attempt: Attempt,
        arrival: Arrival,
        call: impl Future<Output = Result<Response, Status>>,
    ) -> Result<Response, Status> {
        let key = &attempt.key;
        // Waits as long as the caller does; without a deadline, as long as a claim lives.
        let until = attempt
            .deadline
            .unwrap_or_else(|| crate::timer::deadline_after(self.ttl));
        // Past the deadline the call is over (the running attempt is stopped there too): its
        // status says so, and does not race the caller's own deadline with `unavailable`.
        let waited_too_long = || match attempt.deadline {
            Some(_) => deadline_passed_waiting(key),
            None => still_running(key),
        };
        let _first_here = match arrival {
            Arrival::First(first) => Some(first),
            Arrival::After(mut earlier) => {
                tokio::select! {
                    _ = earlier.changed() => None,
                    () = self.timer.sleep_until(until) => return Err(waited_too_long()),
                }
            }
        };
        for _ in 0..3 {
            let mut claiming = Claiming {
                settings: self.clone(),
                key: key.clone(),
                token: attempt.claim.token,
                armed: true,
            };
            let begun = self
                .bounded(
                    self.store.begin(key, attempt.claim, self.ttl),
                    attempt.deadline,
                )
                .await;
            let (fingerprint, outcome) = match begun {
                Err(error) => {
                    // The claim may have been written and its answer lost (a stalled store
                    // applies it late): given up as `claiming` drops, since this attempt
                    // never runs the call.
                    drop(claiming);
                    return match self.fail_mode {
                        FailMode::Open => {
                            tracing::warn!(%key, %error, "running a call without dedupe");
                            call.await
                        }
                        _ => Err(Status::new(Code::Unavailable, error.to_string())),
                    };
                }
                Ok(Begin::New) => {
                    if let Some(refusal) = self.lost_earlier(&attempt, &mut claiming).await {
                        return refusal;
                    }
                    return self.run_first(attempt, claiming, call).await;
                }
                Ok(Begin::Settled(fingerprint, outcome)) => {
                    claiming.disarm();
                    (fingerprint, outcome)
                }
                Ok(Begin::Running(fingerprint)) => {
                    claiming.disarm();
                    if fingerprint != attempt.claim.fingerprint {
                        return Err(not_the_same_call(key));
                    }
                    let waited = tokio::select! {
                        waited = self.store.wait(key) => waited,
                        () = self.timer.sleep_until(until) => return Err(waited_too_long()),
                    };
                    match waited {
                        Err(error) => {
                            return Err(Status::new(Code::Unavailable, error.to_string()));
                        }
                        // Released (its handler never started) or expired: claim it again.
                        Ok(None) => continue,
                        Ok(Some(outcome)) => (fingerprint, outcome),
                    }
                }
            };
            if fingerprint != attempt.claim.fingerprint {
                return Err(not_the_same_call(key));
            }
            return match outcome {
                Outcome::Unknown => Err(outcome_unknown(key)),
                Outcome::Reply(stored) => {
                    replay(&stored, attempt.reply.format_id, self.max_frame_size).unwrap_or_else(
                        || {
                            Err(Status::internal(format!(
                                "the stored reply of {key} does not decode"
                            )))
                        },
                    )
                }
            };
        }
        Err(Status::new(
            Code::Unavailable,
            format!("call {key} was claimed and released repeatedly"),
        ))
    }

    /// For a retry that found no claim (and took it): whether an earlier attempt's claim or
    /// outcome may be gone — the call was first sent one TTL ago or more (its claim could have
    /// expired: its server died, the store was unreachable that long, or the retry is simply
    /// late), or the store lost its state since the call was first sent and less than one TTL
    /// ago. Failing closed, such a retry is answered `outcome_unknown` (and the call marked
    /// so for its other attempts); `None` lets it run.
    async fn lost_earlier(
        &self,
        attempt: &Attempt,
        claiming: &mut Claiming,
    ) -> Option<Result<Response, Status>> {
        let first_sent = attempt.first_sent?;
        if self.fail_mode == FailMode::Open {
            return None;
        }
        let key = &attempt.key;
        // The first attempt's time is the client's clock, the store's start and `now` the
        // server's: they are compared as they are (clocks in sync to well under a second are
        // assumed).
        let now = SystemTime::now();
        let expired = now
            .duration_since(first_sent)
            .is_ok_and(|age| age >= self.ttl);
        let reason = if expired {
            "was first sent one idempotency TTL ago or more"
        } else {
            let started_at = match self
                .bounded(self.store.started_at(), attempt.deadline)
                .await
            {
                Ok(started_at) => started_at?,
                // Released as `claiming` drops: the call did not run.
                Err(error) => return Some(Err(Status::new(Code::Unavailable, error.to_string()))),
            };
            let within_ttl = started_at.checked_add(self.ttl).is_none_or(|end| now < end);
            if !(first_sent < started_at && within_ttl) {
                return None;
            }
            "was first sent before the idempotency store lost its state"
        };
        tracing::warn!(%key, reason, "a retry finds no trace of its call's earlier attempts");
        // Marked unknown, not released, also if this task is stopped while that is written.
        claiming.disarm();
        match self
            .bounded(
                self.store
                    .settle(key, attempt.claim, Outcome::Unknown, self.ttl),
                attempt.deadline,
            )
            .await
        {
            Ok(_) => {}
            Err(_) => self.settle_later(key.clone(), attempt.claim, Outcome::Unknown),
        }
        Some(Err(Status::new(
            Code::OutcomeUnknown,
            format!("call {key} {reason}: it may have run, and is not run again"),
        )))
    }

    /// Runs the call this attempt claimed, renewing the claim while it runs, and records its
    /// outcome.
    async fn run_first(
        self: &Arc<Self>,
        attempt: Attempt,
        mut claiming: Claiming,
        call: impl Future<Output = Result<Response, Status>>,
    ) -> Result<Response, Status> {
        let Attempt {
            key,
            claim,
            reply,
            started,
            ..
        } = attempt;
        let mut held = Held {
            settings: self.clone(),
            key,
            claim,
            reply,
            started,
            settled: false,
        };
        // Taken over by `held`, with no await between.
        claiming.disarm();
        let result = self.renewing(&held.key, claim, call).await;
        if let Err(status) = &result
            && matches!(status.code(), Code::ResourceExhausted | Code::Unavailable)
            && !(held.started.get() && status.passed_on())
        {
            // A refusal: from a layer before the handler (a rate limit, a full server), or
            // from the handler, whose own answer with these codes says that it took no effect
            // (docs/PROTOCOL.md section 6). A retry should run the call, not be answered with
            // the refusal. But a downstream call's failure the handler passed on (`?` on a
            // `prpc::Error`) says nothing of what the handler did before it: recorded.
            held.give_up();
            return result;
        }
        held.settled = true;
        let key = &held.key;
        // A reply is stored as it is sent, compressed as this attempt asked (so that a reply
        // that fits the frame size compressed is kept too); an error status, uncompressed.
        let encoding = match &result {
            Ok(_) => reply,
            Err(_) => reply.uncompressed(),
        };
        let recorded = match self.encode(&encoding.frame(&result, self.max_frame_size)) {
            Ok(stored) => {
                self.bounded(
                    self.store
                        .settle(key, claim, Outcome::Reply(stored), self.ttl),
                    None,
                )
                .await
            }
            Err(error) => Err(error),
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%key, "a call's claim was lost before its outcome was recorded");
            }
            Err(error) => self.outcome_lost(key, claim, error).await,
        }
        result
    }

    /// Runs `call`, renewing its claim on the timing wheel every third of the TTL, so that
    /// the claim outlives the call however long it runs.
    async fn renewing(
        &self,
        key: &Key,
        claim: Claim,
        call: impl Future<Output = Result<Response, Status>>,
    ) -> Result<Response, Status> {
        let period = (self.ttl / 3).max(Duration::from_millis(1));
        let mut call = pin!(call);
        let mut next = self.timer.sleep(period);
        loop {
            tokio::select! {
                biased;
                result = &mut call => return result,
                () = &mut next => {
                    next.reset(crate::timer::deadline_after(period));
                    let (store, key, ttl, limit) =
                        (self.store.clone(), key.clone(), self.ttl, self.store_timeout);
                    self.settling.spawn(async move {
                        match tokio::time::timeout(limit, store.renew(&key, claim.token, ttl)).await {
                            Ok(Ok(true)) => {}
                            Ok(Ok(false)) => {
                                tracing::warn!(%key, "a running call's claim was lost");
                            }
                            Ok(Err(error)) => {
                                tracing::warn!(%key, %error, "could not renew a running call's claim");
                            }
                            Err(_) => {
                                tracing::warn!(%key, "could not renew a running call's claim in time");
                            }
                        }
                    });
                }
            }
        }
    }

    /// The call under `key` ran, but its outcome could not be recorded. Failing closed, the
    /// claim stays and is marked outcome unknown (in the background until the store takes
    /// it): its other attempts are answered `outcome_unknown` and do not run it again.
    /// Failing open, the claim is given up, and one of them runs it.
    async fn outcome_lost(&self, key: &Key, claim: Claim, error: StoreError) {
        if self.fail_mode == FailMode::Open {
            tracing::warn!(%key, %error, "could not record an outcome; a retry may run the call again");
            self.release_later(key.clone(), claim.token);
            return;
        }
        tracing::warn!(%key, %error, "could not record an outcome; its retries get outcome_unknown");
        let marked = self
            .bounded(
                self.store.settle(key, claim, Outcome::Unknown, self.ttl),
                None,
            )
            .await;
        if marked.is_err() {
            self.settle_later(key.clone(), claim, Outcome::Unknown);
        }
    }

    /// Gives up a claim whose handler never started, in the background (fenced: it changes
    /// nothing unless the key still holds this claim, running).
    ///
    /// Retried only while the store fails. An answer, `true` or `false`, ends it: `false`
    /// says the key does not hold this claim running (never written, expired, or another
    /// attempt's), and it cannot come to hold it later, because the claim's write went out
    /// before the release on the store's one ordered connection (the memory store writes the
    /// claim at once). The one exception: the Redis connection broke between the two and
    /// Redis, stalled, runs the new connection's release before the old one's claim; that
    /// claim then lives until its TTL. Nothing runs twice for it (attempts wait on it and
    /// get `unavailable`; a retry after it expired, one TTL after the call was first sent,
    /// `outcome_unknown`).
    fn release_later(&self, key: Key, token: Token) {
        let (store, limit) = (self.store.clone(), self.store_timeout);
        self.spawn(async move {
            for _ in 0..BACKGROUND_TRIES {
                match tokio::time::timeout(limit, store.release(&key, token)).await {
                    // Released, or not this claim's to release (above).
                    Ok(Ok(_)) => return,
                    Ok(Err(error)) => tracing::debug!(%key, %error, "could not release a claim"),
                    Err(_) => tracing::debug!(%key, "could not release a claim in time"),
                }
                tokio::time::sleep(limit).await;
            }
            tracing::warn!(%key, "gave up releasing a claim; it expires after its ttl");
        });
    }

    /// Records an outcome in the background (fenced), trying a few times.
    fn settle_later(&self, key: Key, claim: Claim, outcome: Outcome) {
        let (store, limit, ttl) = (self.store.clone(), self.store_timeout, self.ttl);
        self.spawn(async move {
            for _ in 0..BACKGROUND_TRIES {
                match tokio::time::timeout(limit, store.settle(&key, claim, outcome.clone(), ttl))
                    .await
                {
                    Ok(Ok(_)) => return,
                    Ok(Err(error)) => tracing::debug!(%key, %error, "could not record an outcome"),
                    Err(_) => tracing::debug!(%key, "could not record an outcome in time"),
                }
                tokio::time::sleep(limit).await;
            }
            tracing::warn!(%key, "gave up recording an outcome; the claim stays until its ttl");
        });
    }

    /// Runs a store write that outlives its call, if there is still a runtime to run it on
    /// (a claim dropped as its runtime shuts down has none: the claim then stays until its
    /// TTL, which is safe).
    fn spawn(&self, write: impl Future<Output = ()> + Send + 'static) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.settling.spawn_on(write, &runtime);
        }
    }

    /// A reply frame, encoded as it goes on the wire.
    fn encode(&self, frame: &Frame) -> Result<Bytes, StoreError> {
        let mut stored = BytesMut::new();
        FrameCodec::with_max_frame_size(self.max_frame_size)
            .encode(frame, &mut stored)
            .map_err(|error| StoreError(format!("the reply does not encode: {error}")))?;
        Ok(stored.freeze())
    }

    async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
        deadline: Option<Instant>,
    ) -> Result<T, StoreError> {
        let limit = crate::timer::deadline_after(self.store_timeout);
        let until = deadline.map_or(limit, |deadline| deadline.min(limit));
        tokio::select! {
            result = operation => result,
            () = self.timer.sleep_until(until) => Err(StoreError("no answer in time".to_owned())),
        }
    }
}
