//! Chaos for exactly-once: two server processes share one Redis (`appendfsync always`)
//! behind a switching proxy; thousands of retried calls run while servers are killed with
//! SIGKILL and restarted, and Redis too. Every handler run appends its effect to a file; at the
//! end each call's effects are counted against its outcome: no call may take effect twice,
//! and every call answered ok must have taken effect once.
//!
//! The server processes are this test binary, run again with `PRPC_CHAOS_STORE` set: the
//! test `chaos_server_process` then serves until killed.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prpc::idempotency::RedisStore;
use prpc::retry::RetryPolicy;
use prpc::{Call, Client, Code, Format, Request, Response, Server, Service, ServiceFuture, Status};
use prpc_tests::proxy::Proxy;
use prpc_tests::redis::{Persistence, RedisServer};

/// Calls made, and how many are in flight at once.
const CALLS: u64 = 3_000;
const IN_FLIGHT: usize = 32;
/// Rounds of chaos, one every `ROUND`, in turn: the serving server is shut down gracefully
/// (a deploy: SIGTERM, 100 ms of grace); Redis stalls for 3 s (`DEBUG SLEEP`, past the
/// servers' 1 s store timeout) as the clients are moved to the other server; the serving
/// server is killed (SIGKILL); Redis is killed and restarted.
const ROUNDS: usize = 12;
const ROUND: Duration = Duration::from_millis(400);

/// Appends the call number of each run to the effects file (one `write` of a short line to a
/// file opened for appending: whole, even if the process is killed right after).
struct Effects {
    path: PathBuf,
}

impl Service for Effects {
    fn name(&self) -> &str {
        "effects"
    }

    fn methods(&self) -> Vec<String> {
        vec!["apply".into()]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        let path = self.path.clone();
        Box::pin(async move {
            let number: u64 = std::str::from_utf8(&request.body)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| Status::invalid_argument("the body is a call number"))?;
            // Handlers take 0 to 19 ms, so that kills land in the middle of some; one in 50
            // takes 1.5 s, so that a shutdown's grace ends in the middle of some.
            let takes = if number.is_multiple_of(50) {
                1_500
            } else {
                number % 20
            };
            tokio::time::sleep(Duration::from_millis(takes)).await;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .map_err(|error| Status::internal(error.to_string()))?;
            file.write_all(format!("{number}\n").as_bytes())
                .map_err(|error| Status::internal(error.to_string()))?;
            Ok(Response::new(request.body))
        })
    }
}

/// The server process's body: serves `Effects` with the Redis store until killed, or shuts
/// down gracefully (100 ms of grace) on SIGTERM. Returns at once in the ordinary test run.
#[test]
fn chaos_server_process() {
    let Ok(store_url) = std::env::var("PRPC_CHAOS_STORE") else {
        return;
    };
    let effects = PathBuf::from(std::env::var("PRPC_CHAOS_EFFECTS").unwrap());
    let addr_file = PathBuf::from(std::env::var("PRPC_CHAOS_ADDR").unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = RedisStore::connect(&store_url).await.unwrap();
        let server = Server::builder()
            .add_service(Effects { path: effects })
            .idempotency_store(store)
            .idempotency_ttl(Duration::from_secs(30))
            .shutdown_grace(Duration::from_millis(100))
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let addr = server.local_addr().socket_addr().unwrap();
        let written = addr_file.with_extension("tmp");
        std::fs::write(&written, addr.to_string()).unwrap();
        std::fs::rename(&written, &addr_file).unwrap();
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        server
            .serve_with_shutdown(async move {
                terminate.recv().await;
            })
            .await
            .unwrap();
    });
}

/// A call's number and how it ended: ok, or the error's code.
type Outcome = (u64, Result<(), Code>);

/// A server process, killed with SIGKILL on drop.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(dir: &Path, store_url: &str, effects: &Path) -> ServerProcess {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let addr_file = dir.join(format!(
            "server-{}.addr",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "chaos_server_process", "--nocapture"])
            .env("PRPC_CHAOS_STORE", store_url)
            .env("PRPC_CHAOS_EFFECTS", effects)
            .env("PRPC_CHAOS_ADDR", &addr_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file) {
                break text.parse().unwrap();
            }
            assert!(Instant::now() < deadline, "a server process did not start");
            std::thread::sleep(Duration::from_millis(10));
        };
        ServerProcess { child, addr }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks for a graceful shutdown (SIGTERM, as a deploy does) and waits for the exit.
    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_of_servers_and_redis_never_run_a_call_twice() {
    let mut redis = RedisServer::start_with(Persistence::AlwaysFsync);
    let dir = tempfile::tempdir().unwrap();
    let effects = dir.path().join("effects");
    let url = redis.url();
    let mut servers = [
        ServerProcess::start(dir.path(), &url, &effects),
        ServerProcess::start(dir.path(), &url, &effects),
    ];
    let proxy = Proxy::start(servers[0].addr).await;
    let client = Client::builder()
        .timeout(Duration::from_secs(4))
        .retry(
            RetryPolicy::new(8)
                .attempt_timeout(Duration::from_millis(400))
                .backoff(Duration::from_millis(20), Duration::from_millis(200)),
        )
        .connect(proxy.addr)
        .await
        .unwrap();

    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let calls = tokio::spawn({
        let outcomes = outcomes.clone();
        async move {
            let room = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            let mut running = tokio::task::JoinSet::new();
            for number in 0..CALLS {
                let permit = room.clone().acquire_owned().await.unwrap();
                let (client, outcomes) = (client.clone(), outcomes.clone());
                running.spawn(async move {
                    let call = Call::new(
                        "effects",
                        "apply",
                        Format::Raw,
                        Bytes::from(number.to_string()),
                    );
                    let outcome = match client.call(call).await {
                        Ok(reply) => {
                            assert_eq!(reply.body, number.to_string());
                            Ok(())
                        }
                        Err(error) => Err(error.code()),
                    };
                    outcomes.lock().unwrap().push((number, outcome));
                    drop(permit);
                });
            }
            while running.join_next().await.is_some() {}
        }
    });

    let (mut server_kills, mut deploys, mut redis_restarts, mut redis_stalls) = (0, 0, 0, 0);
    let mut serving = 0;
    for round in 1..=ROUNDS {
        tokio::time::sleep(ROUND).await;
        if calls.is_finished() {
            break;
        }
        if round % 4 == 0 {
            redis.restart();
            redis_restarts += 1;
        } else if round % 4 == 2 {
            // Calls finish while Redis sleeps, and the balancer moves their clients: the
            // replies are lost with the connections, and the retries reach the other server.
            redis.send_command(&["DEBUG", "SLEEP", "3"]);
            redis_stalls += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            serving = 1 - serving;
            proxy.switch(servers[serving].addr);
        } else {
            // The serving server stops or dies; the balancer moves clients to the other; the
            // stopped one comes back (on a new port) for the next round.
            if round % 4 == 1 {
                servers[serving].terminate();
                deploys += 1;
            } else {
                servers[serving].kill();
                server_kills += 1;
            }
            let other = 1 - serving;
            proxy.switch(servers[other].addr);
            servers[serving] = ServerProcess::start(dir.path(), &url, &effects);
            serving = other;
        }
    }
    tokio::time::timeout(Duration::from_secs(120), calls)
        .await
        .expect("the calls did not finish")
        .unwrap();

    let mut effects_of: HashMap<u64, usize> = HashMap::new();
    for line in std::fs::read_to_string(&effects).unwrap().lines() {
        *effects_of.entry(line.parse().unwrap()).or_default() += 1;
    }
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(outcomes.len() as u64, CALLS);
    let mut failed: HashMap<Code, usize> = HashMap::new();
    let (mut succeeded, mut ok_without_effect) = (0, 0);
    for (number, outcome) in outcomes.iter() {
        match outcome {
            Ok(()) => {
                succeeded += 1;
                if !effects_of.contains_key(number) {
                    ok_without_effect += 1;
                }
            }
            Err(code) => *failed.entry(*code).or_default() += 1,
        }
    }
    let duplicated: Vec<_> = effects_of
        .iter()
        .filter(|(_, runs)| **runs > 1)
        .map(|(number, runs)| (*number, *runs))
        .collect();
    println!(
        "{CALLS} calls, {deploys} graceful shutdowns, {server_kills} server kills, \
         {redis_stalls} redis stalls, \
         {redis_restarts} redis restarts: \
         {succeeded} ok, failed {failed:?}, {} took effect, {} twice",
        effects_of.len(),
        duplicated.len()
    );
    assert!(
        duplicated.is_empty(),
        "calls that took effect twice: {duplicated:?}"
    );
    assert_eq!(
        ok_without_effect, 0,
        "calls answered ok that never took effect"
    );
    assert!(succeeded > 0, "no call succeeded");
}
