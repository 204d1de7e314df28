use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;

use super::{Begin, Key, Store, StoreError, StoreFuture};

/// Marks a claimed key whose call is still running.
const RUNNING: &[u8] = b"r";
/// Prefixes a finished call's stored reply.
const DONE: u8 = b'd';
/// How often `wait` looks again, at first and at most.
const POLL_FIRST: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);

/// Dedupe state in Redis, shared by every server that points at the same Redis.
///
/// A claim is `SET prefix+key "r" NX PX ttl`; a finished call replaces it with its reply under
/// `SET ... XX PX ttl`; a release deletes it. The connection is a redis `ConnectionManager`,
/// which reconnects by itself after Redis restarts.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let store = prpc::idempotency::RedisStore::connect("redis://127.0.0.1:6379/").await?;
/// let server = prpc::Server::builder().idempotency_store(store);
/// # let _ = server; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
}

impl RedisStore {
    /// Connects to Redis at `url` (`redis://host:port/db`, or `redis+unix:///path`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(redis_error)?;
        let connection = ConnectionManager::new(client).await.map_err(redis_error)?;
        Ok(RedisStore::new(connection))
    }

    /// A store over an existing connection manager, with keys under `prpc:dedupe:`.
    pub fn new(connection: ConnectionManager) -> Self {
        RedisStore {
            connection,
            prefix: "prpc:dedupe:".to_owned(),
        }
    }

    /// Puts keys under another prefix (to share one Redis between deployments).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn redis_key(&self, key: &Key) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error)
    }
}

fn redis_error(error: redis::RedisError) -> StoreError {
    StoreError(format!("redis: {error}"))
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Reads a stored value: `Some(reply)` when finished, `None` while running.
fn parse(value: &[u8]) -> Result<Option<Bytes>, StoreError> {
    match value.split_first() {
        Some((&DONE, reply)) => Ok(Some(Bytes::copy_from_slice(reply))),
        _ if value == RUNNING => Ok(None),
        _ => Err(StoreError(format!(
            "unexpected value of {} bytes under a dedupe key",
            value.len()
        ))),
    }
}

impl Store for RedisStore {
    fn begin<'a>(&'a self, key: &'a Key, ttl: Duration) -> StoreFuture<'a, Begin> {
        Box::pin(async move {
            let key = self.redis_key(key);
            // A key can expire between SET NX failing and GET; then claim again.
            for _ in 0..3 {
                let claimed: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(RUNNING)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .query_async(&mut self.connection.clone())
                    .await
                    .map_err(redis_error)?;
                if claimed.is_some() {
                    return Ok(Begin::New);
                }
                if let Some(value) = self.get(&key).await? {
                    return Ok(match parse(&value)? {
                        Some(reply) => Begin::Done(reply),
                        None => Begin::InProgress,
                    });
                }
            }
            Err(StoreError(format!("{key} keeps vanishing")))
        })
    }

    fn finish<'a>(&'a self, key: &'a Key, reply: Bytes, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut value = Vec::with_capacity(reply.len() + 1);
            value.push(DONE);
            value.extend_from_slice(&reply);
            let _: Option<String> = redis::cmd("SET")
                .arg(self.redis_key(key))
                .arg(value)
                .arg("XX")
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut self.connection.clone())
                .await
                .map_err(redis_error)?;
            Ok(())
        })
    }

    fn release<'a>(&'a self, key: &'a Key) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let _: i64 = redis::cmd("DEL")
                .arg(self.redis_key(key))
                .query_async(&mut self.connection.clone())
                .await
                .map_err(redis_error)?;
            Ok(())
        })
    }

    fn wait<'a>(&'a self, key: &'a Key) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            let key = self.redis_key(key);
            let mut pause = POLL_FIRST;
            loop {
                match self.get(&key).await? {
                    None => return Ok(None),
                    Some(value) => {
                        if let Some(reply) = parse(&value)? {
                            return Ok(Some(reply));
                        }
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(POLL_MAX);
            }
        })
    }
}
