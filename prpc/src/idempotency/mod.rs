//! Exactly-once execution of retried calls.
//!
//! A client that may resend a call marks it for dedupe (the request frame's dedupe flag) and
//! resends it under the same request id. The server keys each such call in a [`Store`]: the
//! first attempt to arrive [`begin`](Store::begin)s it with a [`Claim`] and runs the handler;
//! the outcome is [`settle`](Store::settle)d into the store; every later attempt gets that
//! outcome instead of a second execution. docs/PROTOCOL.md section 7.2 states every rule; the
//! ones a store implements are these:
//!
//! - **Fencing.** A claim carries a random [`Token`]. [`settle`](Store::settle),
//!   [`renew`](Store::renew) and [`release`](Store::release) act only while the key still holds
//!   that token, so a write that was sent, timed out and was abandoned, and then applied late
//!   (a stalled store), changes nothing once the key moved on.
//! - **A reply is final.** Once a key holds a reply, nothing replaces it until it expires; an
//!   [`Outcome::Unknown`] may still be replaced by the reply it stands for.
//! - **Claims outlive their calls.** A claim lasts the TTL, and the server renews it while the
//!   handler runs, so a key never vanishes under a running call.
//! - **Losses are visible.** [`started_at`](Store::started_at) says when the store's state
//!   began (a Redis restart, a new process), so the server can tell "never claimed" from
//!   "claimed, then lost" for a retry that finds no key.
//!
//! [`MemoryStore`] is the default: per server, entries expire on prpc's timing wheel. With
//! the `redis` feature, [`RedisStore`] lets several servers behind one balancer share the
//! dedupe state, so a retry that lands on another server still runs once.
//!
//! # What exactly-once needs from Redis
//!
//! The server never runs a call twice while Redis keeps what it was told. What Redis may lose
//! decides what a failure costs, in fail-closed mode ([`FailMode::Closed`]):
//!
//! - **`appendonly yes` with `appendfsync always`**: every claim is on disk before Redis
//!   answers. A restart loses nothing; no call runs twice. (The server still answers
//!   `outcome_unknown` to retries of calls begun before a restart, for one TTL, since it cannot
//!   tell which Redis this is.)
//! - **`appendfsync everysec`** (Redis's default with AOF): a crash loses up to a second of
//!   writes. Retries of calls begun before the restart are answered `outcome_unknown` for one
//!   TTL instead of running: nothing runs twice, but those calls' retries fail.
//! - **No persistence**: a restart loses every claim and reply; as for `everysec`, retries of
//!   calls begun before it get `outcome_unknown` for one TTL.
//! - **Replica failover**: replication is asynchronous, so a promoted replica may lack the
//!   last claims, and its `run_id` and uptime are its own (its uptime may predate the calls).
//!   A call whose claim was lost in the failover may run again. Use one Redis with
//!   `appendfsync always` for zero duplicates, or accept this window.
//! - **Eviction**: every dedupe key has a TTL, so under memory pressure a `maxmemory-policy`
//!   of `volatile-*` or `allkeys-*` evicts claims with no restart to tell by; a call whose
//!   claim was evicted may run again. Run Redis with `maxmemory-policy noeviction` (the
//!   store then fails writes when full, which fail-closed answers `unavailable`).
//!
//! Whatever the store does, a retry that comes one TTL or more after its call was first
//! sent and finds no claim is answered `outcome_unknown`: its claim may have expired.
//!
//! In fail-open mode ([`FailMode::Open`]) a store that fails lets calls run without dedupe.

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

pub use memory::{DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, MemoryStore};
#[cfg(feature = "redis")]
pub use redis::RedisStore;

/// The future a [`Store`] operation returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// How long a call's outcome is kept for late retries, unless the server sets its own: well
/// past any sensible call deadline (a retry comes within its call's deadline). A running call's
/// claim is renewed to this while the call runs.
pub const DEFAULT_TTL: Duration = Duration::from_secs(120);

/// The metadata key under which a client sends its [client identity](client_identity) with a
/// call marked for dedupe: 16 lowercase hex digits. Reserved for prpc.
pub const CLIENT_ID_KEY: &str = "prpc-client-id";

/// This process's client identity: a random 64-bit number, drawn once per process, that makes
/// request ids unique across a fleet of clients without configuration (two processes may draw
/// the same snowflake worker id, but not, in practice, the same identity). A prpc client sends
/// it under [`CLIENT_ID_KEY`] with every call marked for dedupe, and the server keys the call
/// by it and the request id.
///
/// ```
/// let identity = prpc::idempotency::client_identity();
/// assert_eq!(identity, prpc::idempotency::client_identity());
/// ```
pub fn client_identity() -> u64 {
    static IDENTITY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *IDENTITY.get_or_init(|| {
        use std::hash::BuildHasher;
        // RandomState's keys come from the operating system's random source.
        let drawn = std::collections::hash_map::RandomState::new()
            .hash_one((std::process::id(), SystemTime::now()));
        drawn.max(1)
    })
}

/// The text of a client identity as it travels in metadata.
pub(crate) fn client_id_text(identity: u64) -> String {
    format!("{identity:016x}")
}

/// Identifies one call across its attempts.
///
/// With a client identity (the request's [`CLIENT_ID_KEY`]) the key is
/// `client identity/request id`, and the service and method are part of the call's
/// [`Fingerprint`]; without one (an older client) it is `service/method/request id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    /// The key of a call from a client that sends no identity.
    pub fn new(service: &str, method: &str, request_id: u64) -> Self {
        Key(format!("{service}/{method}/{request_id}"))
    }

    /// The key of a call from the client with this identity.
    pub fn of_client(client: u64, request_id: u64) -> Self {
        Key(format!("{}/{request_id}", client_id_text(client)))
    }

    /// The key as text (what stores index by).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A claim's fencing token: random per claim, so that only the attempt that claimed a key
/// settles, renews or releases it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(u64);

impl Token {
    /// A fresh random token.
    pub fn random() -> Token {
        Token(fastrand::u64(..))
    }

    /// The token with this value (as a store read it back).
    pub const fn from_u64(value: u64) -> Token {
        Token(value)
    }

    /// The token's value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// What a call asks for: a hash of its service, method, format and body. A duplicate whose
/// fingerprint differs from its claim's is not the same call (a reused request id) and is
/// refused rather than answered another call's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// The fingerprint of a call (xxHash64 with seed 0 of the service, a zero byte, the
    /// method, a zero byte, the format id, and the body as it was decompressed): the same in
    /// every server process.
    pub fn of(service: &str, method: &str, format_id: u8, body: &[u8]) -> Fingerprint {
        let mut hasher = xxhash_rust::xxh64::Xxh64::new(0);
        hasher.update(service.as_bytes());
        hasher.update(&[0]);
        hasher.update(method.as_bytes());
        hasher.update(&[0, format_id]);
        hasher.update(body);
        Fingerprint(hasher.digest())
    }

    /// The fingerprint with this value (as a store read it back).
    pub const fn from_u64(value: u64) -> Fingerprint {
        Fingerprint(value)
    }

    /// The fingerprint's value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// What an attempt writes when it claims a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Fences this claim's later writes.
    pub token: Token,
    /// What the call asks for, for its duplicates to compare.
    pub fingerprint: Fingerprint,
}

/// A settled call's outcome, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The call ran (or may have), but its reply could not be recorded: its duplicates are
    /// answered `outcome_unknown`, and never run it.
    Unknown,
    /// The call's reply frame, encoded as it was sent.
    Reply(Bytes),
}

/// What [`Store::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The first attempt: the caller now holds the claim and runs the call.
    New,
    /// Another attempt holds the claim and runs the call (or ran it and has not settled it).
    Running(Fingerprint),
    /// The call is settled.
    Settled(Fingerprint, Outcome),
}

/// A store could not be reached or answered nonsense.
#[derive(Debug, Clone)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "idempotency store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// What the server does when its store fails (or does not answer in time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailMode {
    /// Never risk a second execution; the default. A call whose claim cannot be taken is
    /// answered `unavailable` (retryable: it did not run). A call that ran but whose outcome
    /// cannot be recorded keeps its claim, marked outcome unknown where the store lets it:
    /// its duplicates are answered `outcome_unknown` (or, while the claim still reads as
    /// running, `unavailable`), never run again. A retry of a call begun before the store last
    /// lost its state is answered `outcome_unknown` for one TTL.
    #[default]
    Closed,
    /// Run the call without dedupe and log a warning: availability over exactly-once. When
    /// the call has run but its outcome cannot be stored, its claim is released: another
    /// attempt may run it again.
    Open,
}

/// Where a server keeps the state of calls that may be retried.
///
/// Implementations must be atomic per key: of concurrent `begin`s for one key, exactly one
/// returns [`Begin::New`]; and each fenced write must check the token and write in one step.
pub trait Store: Send + Sync + 'static {
    /// Claims the key for a first attempt, or reports what another attempt did. A claim lasts
    /// `ttl` unless renewed or settled.
    fn begin<'a>(&'a self, key: &'a Key, claim: Claim, ttl: Duration) -> StoreFuture<'a, Begin>;

    /// Records the outcome of the call claimed with `claim`, kept for `ttl`. Applies only if
    /// the key still holds the claim's token and is running, or is [`Outcome::Unknown`] and a
    /// reply replaces it; returns whether it applied.
    fn settle<'a>(
        &'a self,
        key: &'a Key,
        claim: Claim,
        outcome: Outcome,
        ttl: Duration,
    ) -> StoreFuture<'a, bool>;

    /// Extends a running claim to `ttl` from now, if the key still holds `token` and is
    /// running; returns whether it did.
    fn renew<'a>(&'a self, key: &'a Key, token: Token, ttl: Duration) -> StoreFuture<'a, bool>;

    /// Gives up a claim whose call never started, so that a later attempt may run it: only if
    /// the key still holds `token` and is running; returns whether it did. A store must apply
    /// a release after any claim sent to it before (the server takes `false` as final: the
    /// claim is not there and will not be).
    fn release<'a>(&'a self, key: &'a Key, token: Token) -> StoreFuture<'a, bool>;

    /// Waits while the key is claimed and running: its outcome once settled, `None` if the
    /// claim was released or expired. The caller bounds the wait.
    fn wait<'a>(&'a self, key: &'a Key) -> StoreFuture<'a, Option<Outcome>>;

    /// When the store's present state began: keys written before then may be lost (a Redis
    /// restart, a new process). `None` if it cannot tell (the default).
    fn started_at(&self) -> StoreFuture<'_, Option<SystemTime>> {
        Box::pin(async { Ok(None) })
    }

    /// How many calls the store tracks now, claimed or finished, if it can tell cheaply (for
    /// [stats](crate::stats); a shared store answers `None`, the default).
    fn entries(&self) -> Option<usize> {
        None
    }
}
