//! Added latency per call of server-side dedupe: calls marked for dedupe (a retry policy on a
//! non-idempotent method) against the same calls unmarked, with the in-memory store and with
//! the Redis store (a redis-server started on a unix socket).
//!
//! ```text
//! cargo run --release -p prpc-benches --bin dedupe_latency [calls per run] [runs]
//! ```
//! Modes run interleaved (none, memory, redis, none, ...); each line is the median over runs
//! of each run's median latency, 1 call in flight, server and client in one process on
//! separate runtimes.

use std::time::{Duration, Instant};

use prpc::idempotency::RedisStore;
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
    let (memory_addr, memory_stop) = server_runtime.block_on(serve(None));
    let (redis_addr, redis_stop) = server_runtime.block_on(async {
        let store = RedisStore::connect(&url).await.expect("redis store");
        serve(Some(store)).await
    });

    let mut medians: [Vec<Duration>; 3] = Default::default();
    client_runtime.block_on(async {
        for _ in 0..runs {
            for (slot, mode) in [Mode::Plain, Mode::Memory, Mode::Redis]
                .into_iter()
                .enumerate()
            {
                let addr = match mode {
                    Mode::Redis => redis_addr,
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
    memory_stop.shutdown();
    redis_stop.shutdown();
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

async fn serve(store: Option<RedisStore>) -> (std::net::SocketAddr, ShutdownHandle) {
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
