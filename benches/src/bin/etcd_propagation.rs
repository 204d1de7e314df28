//! Change propagation through etcd: how long after a registration changes does each of N
//! watchers hold a snapshot with the change.
//!
//! ```text
//! cargo run --release -p prpc-benches --bin etcd_propagation [watchers] [changes]
//! ```
//!
//! Starts a real etcd (the integration tests' harness: loopback, its own data directory,
//! `--heartbeat-interval 10 --election-timeout 100`) pinned to core 0, and pins itself to
//! core 1. Every watcher is an `EtcdRegistry` of its own, so each has its own HTTP connection
//! and its own etcd watch (a registry shares one watch per service among its watches, which
//! would measure one watch N times). A registrar then makes `changes` registration changes
//! one after the other, alternately registering a new instance and deregistering it; before
//! each it notes the time, and each watcher records when its snapshot first shows the
//! change. The registrar waits until every watcher has seen a change (and 20 ms more) before
//! the next. The delay therefore includes etcd's commit of the change (a lease grant and a
//! put, or a revoke), the watch event to every watcher, and the watchers' parsing and
//! publishing on one runtime thread. Printed: p50, p90, p99 and max over all samples
//! (watchers × changes), in an hdrhistogram of microseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use prpc::discovery::{Discover, Endpoint, Register, Registration};
use prpc_etcd::EtcdRegistry;
use prpc_tests::etcd::EtcdServer;

fn main() {
    let mut args = std::env::args().skip(1);
    let watchers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let changes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);

    let etcd = EtcdServer::start();
    pin(etcd.pid().expect("etcd runs"), 0);
    pin(std::process::id(), 1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let histogram = runtime.block_on(run(&etcd.url(), watchers, changes));
    println!(
        "watchers={watchers} changes={changes} samples={} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        histogram.len(),
        histogram.value_at_quantile(0.50) as f64 / 1000.0,
        histogram.value_at_quantile(0.90) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0,
    );
}

/// What the registrar shares with the watchers: when each change was made (microseconds
/// since `start`), and how many watchers have seen the current one.
struct Progress {
    start: Instant,
    made_at: Vec<AtomicU64>,
    seen: AtomicUsize,
}

fn instance(change: usize) -> String {
    format!("bench-{}", change - change % 2)
}

/// Whether `snapshot` shows change `change`: an even change registers an instance, the odd
/// one after it deregisters it.
fn shows(snapshot: &prpc::discovery::Snapshot, change: usize) -> bool {
    let present = snapshot.get(&instance(change)).is_some();
    if change.is_multiple_of(2) {
        present
    } else {
        !present
    }
}

async fn run(url: &str, watchers: usize, changes: usize) -> Histogram<u64> {
    let progress = Arc::new(Progress {
        start: Instant::now(),
        made_at: (0..changes).map(|_| AtomicU64::new(0)).collect(),
        seen: AtomicUsize::new(0),
    });
    let mut tasks = Vec::with_capacity(watchers);
    let ready = Arc::new(AtomicUsize::new(0));
    for _ in 0..watchers {
        let registry = EtcdRegistry::new(url).expect("etcd url");
        let progress = progress.clone();
        let ready = ready.clone();
        tasks.push(tokio::spawn(async move {
            let mut watch = registry.watch("bench");
            watch.ready().await.expect("first snapshot");
            ready.fetch_add(1, Ordering::SeqCst);
            let mut receiver = watch.receiver();
            let mut delays =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            for change in 0..progress.made_at.len() {
                receiver
                    .wait_for(|snapshot| shows(snapshot, change))
                    .await
                    .expect("the source runs");
                let now = progress.start.elapsed().as_micros() as u64;
                let made = progress.made_at[change].load(Ordering::SeqCst);
                delays.saturating_record(now.saturating_sub(made).max(1));
                progress.seen.fetch_add(1, Ordering::SeqCst);
            }
            delays
        }));
    }
    while ready.load(Ordering::SeqCst) < watchers {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("{watchers} watchers ready");

    let registrar = EtcdRegistry::new(url).expect("etcd url");
    let mut lease = None;
    for change in 0..changes {
        let registration = Registration::new(
            "bench",
            Endpoint::new("127.0.0.1:7000")
                .expect("address")
                .instance(instance(change)),
            Duration::from_secs(60),
        );
        progress.seen.store(0, Ordering::SeqCst);
        let made = progress.start.elapsed().as_micros() as u64;
        progress.made_at[change].store(made, Ordering::SeqCst);
        if change.is_multiple_of(2) {
            lease = Some(registrar.register(&registration).await.expect("register"));
        } else if let Some(lease) = lease.take() {
            registrar
                .deregister(&registration, &lease)
                .await
                .expect("deregister");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while progress.seen.load(Ordering::SeqCst) < watchers {
            assert!(
                Instant::now() < deadline,
                "change {change} not seen by every watcher"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    for task in tasks {
        all.add(task.await.expect("watcher")).expect("same bounds");
    }
    all
}

/// Pins process `pid` to `core` (best effort: `taskset` may be missing).
fn pin(pid: u32, core: usize) {
    let pinned = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &core.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status();
    if !matches!(pinned, Ok(status) if status.success()) {
        eprintln!("could not pin process {pid} to core {core}");
    }
}
