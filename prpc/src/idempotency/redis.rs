use std::time::{Duration, SystemTime};

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Begin, Claim, Fingerprint, Key, Outcome, Store, StoreError, StoreFuture, Token};

/// The first byte of a stored value: what state the call is in.
const RUNNING: u8 = b'r';
const UNKNOWN: u8 = b'u';
const DONE: u8 = b'd';
/// State byte, token and fingerprint (8 bytes each, big-endian) before a reply.
const HEADER: usize = 17;
/// How often `wait` looks again, at first and at most.
const POLL_FIRST: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);

/// A Lua script, run by its SHA1 digest (`EVALSHA`) once Redis has it: the script's text
/// goes over the connection only when Redis does not know it (first use, or after a restart).
struct Script {
    text: &'static str,
    /// The digest `SCRIPT LOAD` returned (the same for every Redis).
    sha: std::sync::OnceLock<String>,
}

impl Script {
    const fn new(text: &'static str) -> Self {
        Script {
            text,
            sha: std::sync::OnceLock::new(),
        }
    }
}

static BEGIN: Script = Script::new(BEGIN_LUA);
static SETTLE: Script = Script::new(SETTLE_LUA);
static RENEW: Script = Script::new(RENEW_LUA);
static RELEASE: Script = Script::new(RELEASE_LUA);

/// Claims the key unless it is held: nil when claimed, else what it holds. One round trip.
const BEGIN_LUA: &str = "\
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false";

/// Settles a claim if the key holds its token (ARGV[1]) and is running, or is unknown and a
/// reply replaces it. Reads only the header, however large the value.
const SETTLE_LUA: &str = "\
local held = redis.call('GETRANGE', KEYS[1], 0, 8)
if string.sub(held, 2, 9) ~= ARGV[1] then return 0 end
local state = string.sub(held, 1, 1)
if state == 'r' or (state == 'u' and string.sub(ARGV[2], 1, 1) == 'd') then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0";

/// Extends a running claim held under the token ARGV[1] to ARGV[2] ms.
const RENEW_LUA: &str = "\
local held = redis.call('GETRANGE', KEYS[1], 0, 8)
if string.sub(held, 1, 1) == 'r' and string.sub(held, 2, 9) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

/// Deletes a running claim held under the token ARGV[1].
const RELEASE_LUA: &str = "\
local held = redis.call('GETRANGE', KEYS[1], 0, 8)
if string.sub(held, 1, 1) == 'r' and string.sub(held, 2, 9) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Dedupe state in Redis, shared by every server that points at the same Redis.
///
/// Each call's key holds a state byte (running, outcome unknown, done), its claim's fencing
/// token, its fingerprint, and, once done, its reply frame. Every write is a Lua script that
/// checks the token and writes in one step, so a write that timed out and is applied late by a
/// stalled Redis changes nothing once the key moved on. Scripts run by digest (`EVALSHA`),
/// loaded again whenever Redis does not know them (after a restart). The connection is a redis
/// `ConnectionManager`, which reconnects by itself after Redis restarts; it has no response
/// timeout of its own, so the server's store timeout
/// ([`idempotency_failure`](crate::server::Builder::idempotency_failure)) is the only one.
///
/// Redis must keep what it is told for no call to run twice: see [what exactly-once needs from
/// Redis](super#what-exactly-once-needs-from-redis). [`started_at`](Store::started_at) is
/// read from `INFO server` (now less `uptime_in_seconds`; a changed `run_id` is logged), so the
/// server can tell a key lost in a restart from one never written. It is asked only for a
/// retry that finds no key.
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
    /// The `run_id` of the Redis process last seen, to log a restart once.
    run_id: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl RedisStore {
    /// Connects to Redis at `url` (`redis://host:port/db`, or `redis+unix:///path`), with no
    /// response timeout on the connection (the server bounds each operation by its store
    /// timeout).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(redis_error)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(redis_error)?;
        Ok(RedisStore::new(connection))
    }

    /// A store over an existing connection manager, with keys under `prpc:dedupe:`. The
    /// manager's own response timeout (the redis crate's default is 500 ms) cuts every
    /// operation shorter than the server's store timeout if it is shorter.
    pub fn new(connection: ConnectionManager) -> Self {
        RedisStore {
            connection,
            prefix: "prpc:dedupe:".to_owned(),
            run_id: Default::default(),
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

    /// Runs a fenced script on `key` with the token and further arguments: 1 if it acted.
    async fn fenced(
        &self,
        script: &Script,
        key: &Key,
        token: Token,
        arguments: &[&[u8]],
    ) -> Result<bool, StoreError> {
        let key = self.redis_key(key);
        let token = token.get().to_be_bytes();
        let acted: i64 = self
            .run(script, |command| {
                command.arg(1).arg(&key).arg(&token[..]);
                for argument in arguments {
                    command.arg(*argument);
                }
            })
            .await?;
        Ok(acted == 1)
    }

    /// Runs `script` with the keys and arguments `arguments` adds: by digest, loading the
    /// script first when Redis does not have it. (A script Redis did not know did not run, so
    /// running it after loading it is safe.)
    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        arguments: impl Fn(&mut redis::Cmd),
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        let sha = match script.sha.get() {
            Some(sha) => sha.clone(),
            None => self.load(script).await?,
        };
        let mut command = redis::cmd("EVALSHA");
        command.arg(&sha);
        arguments(&mut command);
        match command.query_async(&mut connection).await {
            Err(error)
                if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                self.load(script).await?;
                command
                    .query_async(&mut connection)
                    .await
                    .map_err(redis_error)
            }
            other => other.map_err(redis_error),
        }
    }

    /// Loads `script` into Redis; returns its digest.
    async fn load(&self, script: &Script) -> Result<String, StoreError> {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(script.text)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error)?;
        Ok(script.sha.get_or_init(|| sha).clone())
    }
}

fn redis_error(error: redis::RedisError) -> StoreError {
    StoreError(format!("redis: {error}"))
}

fn millis(ttl: Duration) -> String {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
        .to_string()
}

/// A stored value: the state byte, the claim's token and fingerprint, the reply if any.
fn encode(state: u8, token: Token, fingerprint: Fingerprint, reply: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(HEADER + reply.len());
    value.push(state);
    value.extend_from_slice(&token.get().to_be_bytes());
    value.extend_from_slice(&fingerprint.get().to_be_bytes());
    value.extend_from_slice(reply);
    value
}

/// Reads a stored value: its fingerprint and its outcome (`None` while running).
fn parse(value: &[u8]) -> Result<(Fingerprint, Option<Outcome>), StoreError> {
    let malformed = || {
        StoreError(format!(
            "unexpected value of {} bytes under a dedupe key",
            value.len()
        ))
    };
    if value.len() < HEADER {
        return Err(malformed());
    }
    let mut fingerprint = [0; 8];
    fingerprint.copy_from_slice(&value[9..HEADER]);
    let fingerprint = Fingerprint::from_u64(u64::from_be_bytes(fingerprint));
    let outcome = match value[0] {
        RUNNING => None,
        UNKNOWN => Some(Outcome::Unknown),
        DONE => Some(Outcome::Reply(Bytes::copy_from_slice(&value[HEADER..]))),
        _ => return Err(malformed()),
    };
    Ok((fingerprint, outcome))
}

/// The value of `field` in the text of `INFO server`.
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

impl Store for RedisStore {
    fn begin<'a>(&'a self, key: &'a Key, claim: Claim, ttl: Duration) -> StoreFuture<'a, Begin> {
        Box::pin(async move {
            let claimed = encode(RUNNING, claim.token, claim.fingerprint, &[]);
            let (key, ttl) = (self.redis_key(key), millis(ttl));
            let held: Option<Vec<u8>> = self
                .run(&BEGIN, |command| {
                    command.arg(1).arg(&key).arg(&claimed).arg(&ttl);
                })
                .await?;
            let Some(held) = held else {
                return Ok(Begin::New);
            };
            Ok(match parse(&held)? {
                (fingerprint, None) => Begin::Running(fingerprint),
                (fingerprint, Some(outcome)) => Begin::Settled(fingerprint, outcome),
            })
        })
    }

    fn settle<'a>(
        &'a self,
        key: &'a Key,
        claim: Claim,
        outcome: Outcome,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let value = match &outcome {
                Outcome::Unknown => encode(UNKNOWN, claim.token, claim.fingerprint, &[]),
                Outcome::Reply(reply) => encode(DONE, claim.token, claim.fingerprint, reply),
            };
            self.fenced(&SETTLE, key, claim.token, &[&value, millis(ttl).as_bytes()])
                .await
        })
    }

    fn renew<'a>(&'a self, key: &'a Key, token: Token, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.fenced(&RENEW, key, token, &[millis(ttl).as_bytes()])
                .await
        })
    }

    fn release<'a>(&'a self, key: &'a Key, token: Token) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.fenced(&RELEASE, key, token, &[]).await })
    }

    fn wait<'a>(&'a self, key: &'a Key) -> StoreFuture<'a, Option<Outcome>> {
        Box::pin(async move {
            let key = self.redis_key(key);
            let mut pause = POLL_FIRST;
            loop {
                match self.get(&key).await? {
                    None => return Ok(None),
                    Some(value) => {
                        if let (_, Some(outcome)) = parse(&value)? {
                            return Ok(Some(outcome));
                        }
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(POLL_MAX);
            }
        })
    }

    fn started_at(&self) -> StoreFuture<'_, Option<SystemTime>> {
        Box::pin(async move {
            let info: String = redis::cmd("INFO")
                .arg("server")
                .query_async(&mut self.connection.clone())
                .await
                .map_err(redis_error)?;
            let uptime = uptime(&info)?;
            if let Some(run_id) = info_field(&info, "run_id") {
                let mut seen = self
                    .run_id
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                if seen.as_deref().is_some_and(|before| before != run_id) {
                    tracing::warn!(
                        run_id,
                        ?uptime,
                        "Redis restarted: retries of calls begun before get outcome_unknown"
                    );
                }
                *seen = Some(run_id.to_owned());
            }
            began(SystemTime::now(), uptime).map(Some)
        })
    }
}

/// How long the Redis process has run, from its `INFO server` reply.
fn uptime(info: &str) -> Result<Duration, StoreError> {
    info_field(info, "uptime_in_seconds")
        .and_then(|seconds| seconds.parse().ok())
        .map(Duration::from_secs)
        .ok_or_else(|| StoreError("INFO server has no uptime_in_seconds".to_owned()))
}

/// When a process that has run for `uptime` at `now` started. Uptime counts whole seconds:
/// this is the latest the start can have been, so a call begun up to a second after it may
/// be taken as begun before it (the safe side). An uptime reaching back past the Unix epoch
/// (no Redis has run that long: a broken reply, or a clock far off) is a store error: the
/// retry that asked is answered `unavailable` and does not run.
fn began(now: SystemTime, uptime: Duration) -> Result<SystemTime, StoreError> {
    now.checked_sub(uptime)
        .filter(|start| *start >= SystemTime::UNIX_EPOCH)
        .ok_or_else(|| {
            StoreError(format!(
                "Redis reports an uptime of {uptime:?}, before 1970"
            ))
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn a_stored_value_reads_back_as_written(
            token: u64,
            fingerprint: u64,
            reply: Vec<u8>,
            state in prop::sample::select(vec![RUNNING, UNKNOWN, DONE]),
        ) {
            let value = encode(state, Token::from_u64(token), Fingerprint::from_u64(fingerprint), &reply);
            let (read, outcome) = parse(&value).unwrap();
            prop_assert_eq!(read, Fingerprint::from_u64(fingerprint));
            let expected = match state {
                RUNNING => None,
                UNKNOWN => Some(Outcome::Unknown),
                _ => Some(Outcome::Reply(Bytes::from(reply))),
            };
            prop_assert_eq!(outcome, expected);
        }

        #[test]
        fn any_bytes_parse_or_fail_cleanly(value: Vec<u8>) {
            let _ = parse(&value);
        }
    }

    #[test]
    fn any_uptime_gives_a_start_without_overflow() {
        let now = SystemTime::now();
        let info = "# Server\r\nuptime_in_seconds:18446744073709551615\r\n";
        let longest = uptime(info).unwrap();
        assert!(began(now, longest).is_err());
        assert!(began(now, Duration::MAX).is_err());
        assert_eq!(
            began(now, Duration::from_secs(42)).unwrap(),
            now - Duration::from_secs(42)
        );
        assert!(uptime("uptime_in_seconds:-1\r\n").is_err());
        assert!(uptime("uptime_in_seconds:1e9\r\n").is_err());
    }

    #[test]
    fn info_fields_are_found_by_name() {
        let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:abc123\r\nuptime_in_seconds:42\r\n";
        assert_eq!(info_field(info, "run_id"), Some("abc123"));
        assert_eq!(info_field(info, "uptime_in_seconds"), Some("42"));
        assert_eq!(info_field(info, "uptime"), None);
    }
}
