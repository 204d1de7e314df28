//! Exactly-once execution of retried calls.
//!
//! A client that may resend a call marks it for dedupe (the request frame's dedupe flag) and
//! resends it under the same request id. The server keys each such call in a [`Store`]: the
//! first attempt to arrive [`begin`](Store::begin)s it and runs the handler; the reply is
//! [`finish`](Store::finish)ed into the store; every later attempt gets that reply instead of
//! a second execution. An attempt that arrives while the first still runs waits for its reply
//! (at most until its own deadline, then it is answered `unavailable`, which the client may
//! retry). A handler stopped before it finished (cancelled, connection gone, shutdown)
//! [`release`](Store::release)s its key, so a later attempt runs it afresh.
//!
//! [`MemoryStore`] is the default: per server, entries expire on prpc's timing wheel. With
//! the `redis` feature, [`RedisStore`] lets several servers behind one balancer share the
//! dedupe state, so a retry that lands on another server still runs once.

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

pub use memory::{DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, MemoryStore};
#[cfg(feature = "redis")]
pub use redis::RedisStore;

/// The future a [`Store`] operation returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// How long a finished call's reply is kept for late retries, unless the server sets its own:
/// well past any sensible call deadline (a retry comes within its call's deadline).
pub const DEFAULT_TTL: Duration = Duration::from_secs(120);

/// Identifies one call across its attempts: service, method and request id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    /// The key of a call.
    pub fn new(service: &str, method: &str, request_id: u64) -> Self {
        Key(format!("{service}/{method}/{request_id}"))
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

/// What [`Store::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The first attempt: the caller now owns the key and runs the call.
    New,
    /// Another attempt is running the call.
    InProgress,
    /// The call finished; here is its stored reply.
    Done(Bytes),
}

/// A store could not be reached or answered nonsense.
#[derive(Debug, Clone, thiserror::Error)]
#[error("idempotency store: {0}")]
pub struct StoreError(pub String);

/// What the server does when its store fails (or does not answer in time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailMode {
    /// Answer the call `unavailable` (retryable): never risk a second execution. The default.
    /// When the call has run but its reply cannot be stored, a `data_loss` status (not
    /// retryable) is stored in its place: its other attempts get that, and do not run it.
    #[default]
    Closed,
    /// Run the call without dedupe and log a warning: availability over exactly-once. When
    /// the call has run but its reply cannot be stored, its claim is released: another
    /// attempt may run it again.
    Open,
}

/// Where a server keeps the state of calls that may be retried.
///
/// Implementations must be atomic per key: of concurrent `begin`s for one key, exactly one
/// returns [`Begin::New`].
pub trait Store: Send + Sync + 'static {
    /// Claims the key for a first attempt, or reports what another attempt did. A claim lasts
    /// `ttl` if never finished.
    fn begin<'a>(&'a self, key: &'a Key, ttl: Duration) -> StoreFuture<'a, Begin>;

    /// Stores the reply of the attempt that claimed the key, kept for `ttl`.
    fn finish<'a>(&'a self, key: &'a Key, reply: Bytes, ttl: Duration) -> StoreFuture<'a, ()>;

    /// Gives up a claim whose call did not finish, so a later attempt may run it.
    fn release<'a>(&'a self, key: &'a Key) -> StoreFuture<'a, ()>;

    /// Waits while the key is claimed: the stored reply once it is finished, `None` if the
    /// claim was released or expired. The caller bounds the wait.
    fn wait<'a>(&'a self, key: &'a Key) -> StoreFuture<'a, Option<Bytes>>;

    /// How many calls the store tracks now, claimed or finished, if it can tell cheaply (for
    /// [stats](crate::stats); a shared store answers `None`, the default).
    fn entries(&self) -> Option<usize> {
        None
    }
}
