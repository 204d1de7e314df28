//! Added latency per call of server-side dedupe: calls marked for dedupe (a retry policy on a
//! non-idempotent method) against the same calls unmarked, with the in-memory store and with
//! the Redis store (a redis-server started on a unix socket). The Redis store's writes are
//! fenced (Lua scripts that check the claim's token); a fifth mode runs the same calls over an
//! unfenced Redis store defined here (plain `SET NX` / `SET XX` / `DEL`, what prpc did before
//! fencing), so the difference between the two is what fencing costs per call.
//!
//! ```text
//! cargo run --release -p prpc-benches --bin dedupe_latency [calls per run] [runs]
//! ```
//! Modes run interleaved (none, memory, redis, none, ...); each line is the median over runs
//! of each run's median latency, 1 call in flight, server and client in one process on
//! separate runtimes.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use prpc::idempotency::{
    Begin, Claim, Fingerprint, Key, Outcome, RedisStore, Store, StoreError, StoreFuture, Token,
};
use prpc::retry::RetryPolicy;
use prpc::server::ShutdownHandle;
use prpc_tests::redis::RedisServer;

#[prpc::service]
trait Counter {
    async fn bump(&self, by: u64) -> u64;
}

struct Bump;

impl Counter for Bump {
    async fn bump(&self, by: u64) -> u64 {
        by + 1
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Plain,
    Memory,
    Redis,
    Unfenced,
}

/// A Redis store without fencing: a claim is `SET NX`, an outcome `SET XX`, a release `DEL`,
/// whoever sends them. For comparison only (it keeps no fingerprint, and its writes can be
/// undone by late ones, which is why prpc's store is fenced).
#[derive(Clone)]
struct Unfenced {
    connection: redis::aio::ConnectionManager,
}

fn store_error(error: redis::RedisError) -> StoreError {
    StoreError(error.to_string())
}

impl Store for Unfenced {
    fn begin<'a>(&'a self, key: &'a Key, _claim: Claim, ttl: Duration) -> StoreFuture<'a, Begin> {
        Box::pin(async move {
            let key = format!("unfenced:{key}");
            let claimed: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg("r")
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis() as u64)
                .query_async(&mut self.connection.clone())
                .await
                .map_err(store_error)?;
            if claimed.is_some() {
                return Ok(Begin::New);
            }
            let held: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut self.connection.clone())
                .await
                .map_err(store_error)?;
            let fingerprint = Fingerprint::from_u64(0);
            Ok(match held {
                Some(value) if value.first() == Some(&b'd') => Begin::Settled(
                    fingerprint,
                    Outcome::Reply(Bytes::copy_from_slice(&value[1..])),
                ),
                _ => Begin::Running(fingerprint),
            })
        })
    }

    fn settle<'a>(
        &'a self,
        key: &'a Key,
        _claim: Claim,
        outcome: Outcome,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut value = vec![b'd'];
            if let Outcome::Reply(reply) = &outcome {
                value.extend_from_slice(reply);
            }
            let set: Option<String> = redis::cmd("SET")
                .arg(format!("unfenced:{key}"))
                .arg(value)
                .arg("XX")
                .arg("PX")
                .arg(ttl.as_millis() as u64)
                .query_async(&mut self.connection.clone())
                .await
                .map_err(store_error)?;
            Ok(set.is_some())
        })
    }

    fn renew<'a>(&'a self, key: &'a Key, _token: Token, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let renewed: i64 = redis::cmd("PEXPIRE")
                .arg(format!("unfenced:{key}"))
                .arg(ttl.as_millis() as u64)
                .query_async(&mut self.connection.clone())
                .await
                .map_err(store_error)?;
            Ok(renewed == 1)
        })
    }

    fn release<'a>(&'a self, key: &'a Key, _token: Token) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let deleted: i64 = redis::cmd("DEL")
                .arg(format!("unfenced:{key}"))
                .query_async(&mut self.connection.clone())
                .await
                .map_err(store_error)?;
            Ok(deleted == 1)
        })
    }

    fn wait<'a>(&'a self, _key: &'a Key) -> StoreFuture<'a, Option<Outcome>> {
        // Every call in this benchmark is new: nothing waits.
        Box::pin(async { Ok(None) })
    }

    fn started_at(&self) -> StoreFuture<'_, Option<SystemTime>> {
        Box::pin(async { Ok(None) })
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let calls: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let redis = RedisServer::start();
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let url = redis.url();
    let (memory_addr, memory_stop) = server_runtime.block_on(serve(None::<RedisStore>));
    let (redis_addr, redis_stop) = server_runtime.block_on(async {
        let store = RedisStore::connect(&url).await.expect("redis store");
        serve(Some(store)).await
    });
    let (unfenced_addr, unfenced_stop) = server_runtime.block_on(async {
        let client = redis::Client::open(url.as_str()).expect("redis url");
        let connection = redis::aio::ConnectionManager::new(client)
            .await
            .expect("redis connection");
        serve(Some(Unfenced { connection })).await
    });

    let mut medians: [Vec<Duration>; 4] = Default::default();
    client_runtime.block_on(async {
        for _ in 0..runs {
            for (slot, mode) in [Mode::Plain, Mode::Memory, Mode::Redis, Mode::Unfenced]
                .into_iter()
                .enumerate()
            {
                let addr = match mode {
                    Mode::Redis => redis_addr,
                    Mode::Unfenced => unfenced_addr,
                    _ => memory_addr,
                };
                medians[slot].push(run(addr, mode, calls).await);
            }
        }
    });
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2]
    };
    let plain = median(&mut medians[0]);
    let memory = median(&mut medians[1]);
    let redis_latency = median(&mut medians[2]);
    let unfenced = median(&mut medians[3]);
    println!("calls per run {calls}, runs {runs}, medians of per-run median latency:");
    println!("  no dedupe        {:>8.1} us", micros(plain));
    println!(
        "  memory store     {:>8.1} us  (+{:.1} us)",
        micros(memory),
        micros(memory) - micros(plain)
    );
    println!(
        "  redis store      {:>8.1} us  (+{:.1} us)",
        micros(redis_latency),
        micros(redis_latency) - micros(plain)
    );
    println!(
        "  redis unfenced   {:>8.1} us  (+{:.1} us); fencing adds {:.1} us per call",
        micros(unfenced),
        micros(unfenced) - micros(plain),
        micros(redis_latency) - micros(unfenced)
    );
    memory_stop.shutdown();
    redis_stop.shutdown();
    unfenced_stop.shutdown();
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

async fn serve(store: Option<impl Store>) -> (std::net::SocketAddr, ShutdownHandle) {
    let mut builder = prpc::Server::builder().add_service(CounterServer::new(Bump));
    if let Some(store) = store {
        builder = builder.idempotency_store(store);
    }
    let server = builder.bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().socket_addr().expect("tcp");
    let stop = server.shutdown_handle();
    tokio::spawn(server.serve());
    (addr, stop)
}

async fn run(addr: std::net::SocketAddr, mode: Mode, calls: usize) -> Duration {
    let mut builder = prpc::Client::builder().timeout(Duration::from_secs(5));
    if !matches!(mode, Mode::Plain) {
        // A retry policy on a non-idempotent method marks every call for dedupe.
        builder = builder.retry(RetryPolicy::new(3));
    }
    let client = CounterClient::new(builder.connect(addr).await.expect("connect"));
    for i in 0..1000 {
        client.bump(i).await.expect("warm-up");
    }
    let mut latencies = Vec::with_capacity(calls);
    for i in 0..calls {
        let sent = Instant::now();
        let reply = client.bump(i as u64).await.expect("call");
        latencies.push(sent.elapsed());
        assert_eq!(reply, i as u64 + 1);
    }
    latencies.sort();
    latencies[latencies.len() / 2]
}
