//! A server's stats over real sockets: calls by method and code, latency, calls in flight,
//! connections with their calls and bytes, the idempotency store's size; and nothing counted
//! when stats are off.

use std::time::Duration;

use prpc::{CallOptions, Code, Server};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

#[prpc::service(name = "stats.Work")]
pub trait Work {
    async fn quick(&self) -> u8;
    async fn refuse(&self) -> Result<u8, Refused>;
    #[prpc(idempotent)]
    async fn sleep(&self, ms: u64) -> u64;
}

struct Worker;

impl Work for Worker {
    async fn quick(&self) -> u8 {
        1
    }

    async fn refuse(&self) -> Result<u8, Refused> {
        Err(Refused)
    }

    async fn sleep(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

/// A server of [`Worker`] from `builder`, serving: its address and router.
async fn serve(builder: prpc::server::Builder) -> (prpc::transport::Address, prpc::server::Router) {
    let server = builder
        .add_service(WorkServer::new(Worker))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let router = server.router();
    let addr = server.local_addr();
    tokio::spawn(server.serve());
    (addr, router)
}

#[tokio::test]
async fn calls_are_counted_by_method_and_code_with_latency_and_connections() {
    let (addr, router) = serve(Server::builder()).await;
    let client = WorkClient::connect(addr).await.unwrap();

    for _ in 0..3 {
        assert_eq!(client.quick().await.unwrap(), 1);
    }
    assert_eq!(client.refuse().await.unwrap(), Err(Refused));
    let late = client
        .clone()
        .with_options(CallOptions::new().timeout(Duration::from_millis(20)))
        .sleep(5_000)
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::DeadlineExceeded);

    // A call in flight is counted as such.
    let slow = {
        let client = client.clone();
        tokio::spawn(async move { client.sleep(300).await })
    };
    let mut in_flight = 0;
    for _ in 0..100 {
        in_flight = router
            .stats()
            .method("stats.Work", "sleep")
            .unwrap()
            .in_flight;
        if in_flight == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(in_flight, 1);
    slow.await.unwrap().unwrap();

    let stats = router.stats();
    let quick = stats.method("stats.Work", "quick").unwrap();
    assert_eq!(
        (quick.calls(), quick.count(Code::Ok), quick.errors()),
        (3, 3, 0)
    );
    assert_eq!(quick.latency.count, 3);
    assert!(quick.latency.quantile(0.5).unwrap() < Duration::from_secs(1));
    let refuse = stats.method("stats.Work", "refuse").unwrap();
    assert_eq!(refuse.count(Code::Application), 1);
    let sleep = stats.method("stats.Work", "sleep").unwrap();
    // Stopped by the server's deadline, or by the client's cancel when it arrives first.
    assert_eq!(
        sleep.count(Code::DeadlineExceeded) + sleep.count(Code::Cancelled),
        1,
        "{sleep:?}"
    );
    assert_eq!(sleep.count(Code::Ok), 1);
    assert_eq!(sleep.in_flight, 0);
    assert!(sleep.latency.quantile(1.0).unwrap() >= Duration::from_millis(250));
    // Health and reflection are counted like any service.
    assert!(
        stats
            .method(prpc::health::SERVICE, prpc::health::CHECK)
            .is_some()
    );

    assert_eq!(stats.connections.len(), 1);
    let connection = &stats.connections[0];
    assert_eq!(connection.calls, 6);
    assert!(connection.bytes_in > 6 * 10, "{connection:?}");
    assert!(connection.bytes_out > 6 * 10, "{connection:?}");
    assert!(connection.peer.is_some());
    // The default store is in memory: it tracks the calls that may be retried.
    assert!(stats.idempotency_entries.is_some());

    drop(client);
    for _ in 0..200 {
        if router.stats().connections.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a closed connection is still counted");
}

/// Requests read in place (no metadata) and decoded whole (with metadata) find their method's
/// counters; a method the service does not list counts under empty names.
#[tokio::test]
async fn calls_with_and_without_metadata_and_unlisted_ones_count_where_they_belong() {
    let (addr, router) = serve(Server::builder()).await;
    let client = WorkClient::connect(addr.clone()).await.unwrap();
    let tagged = client
        .clone()
        .with_options(CallOptions::new().metadata("tag", "x"));
    assert_eq!(tagged.quick().await.unwrap(), 1);
    assert_eq!(client.quick().await.unwrap(), 1);
    assert_eq!(tagged.refuse().await.unwrap(), Err(Refused));

    let raw = prpc::Client::connect(addr).await.unwrap();
    let call = prpc::Call::new(
        prpc::ByteString::from_static("stats.Work"),
        prpc::ByteString::from_static("unlisted"),
        prpc::Format::MsgPack,
        bytes::Bytes::new(),
    );
    let error = raw.call(call).await.unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented);

    let stats = router.stats();
    let quick = stats.method("stats.Work", "quick").unwrap();
    assert_eq!((quick.calls(), quick.count(Code::Ok)), (2, 2));
    let refuse = stats.method("stats.Work", "refuse").unwrap();
    assert_eq!((refuse.calls(), refuse.count(Code::Application)), (1, 1));
    let unlisted = stats.method("", "").unwrap();
    assert_eq!(unlisted.count(Code::Unimplemented), 1, "{unlisted:?}");
}

#[tokio::test]
async fn with_stats_off_nothing_is_counted() {
    let (addr, router) = serve(Server::builder().stats(false)).await;
    let client = WorkClient::connect(addr).await.unwrap();
    assert_eq!(client.quick().await.unwrap(), 1);
    let stats = router.stats();
    assert!(stats.methods.is_empty());
    assert!(stats.connections.is_empty());
}

#[tokio::test]
async fn a_cluster_counts_attempts_per_endpoint_and_its_backup_requests() {
    use prpc::cluster::{Cluster, FailMode};
    use prpc::discovery::{Endpoint, StaticDiscover};

    let (a, b) = (
        serve(Server::builder()).await.0,
        serve(Server::builder()).await.0,
    );
    let discovery = StaticDiscover::new([Endpoint::new(a).unwrap(), Endpoint::new(b).unwrap()]);
    let cluster = Cluster::builder()
        .balance("round_robin".parse().unwrap())
        .method_fail_mode("sleep", FailMode::Backup)
        .hedge_delay(Duration::from_millis(20))
        .build(&discovery, "stats.Work");
    let client = WorkClient::new(cluster.clone());
    for _ in 0..10 {
        assert_eq!(client.quick().await.unwrap(), 1);
    }
    // A slow idempotent call in backup mode sends a second request after 20 ms.
    assert_eq!(client.sleep(200).await.unwrap(), 200);

    let snapshot = cluster.snapshot();
    assert_eq!(snapshot.service, "stats.Work");
    assert_eq!(snapshot.hedges, 1);
    assert_eq!(snapshot.attempts, 12);
    assert_eq!(snapshot.retries, 1);
    let per_endpoint: Vec<u64> = snapshot.endpoints.iter().map(|e| e.calls).collect();
    assert_eq!(per_endpoint.iter().sum::<u64>(), 12);
    assert!(
        per_endpoint.iter().all(|calls| *calls >= 5),
        "{per_endpoint:?}"
    );
    assert!(snapshot.discovery.healthy);
    assert!(
        prpc::cluster::clusters()
            .iter()
            .any(|every| every.service == "stats.Work" && every.attempts == 12)
    );
}
