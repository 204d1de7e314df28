//! Many calls at once on one connection through a generated client: every one answered, each
//! with its own reply.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use prpc::Client;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

const CALLS: usize = 10_000;

#[prpc::service]
pub trait Gather {
    /// Answers with values derived from its arguments, after `gather` lets it go.
    async fn gather(&self, id: u64, label: String) -> (u64, String);
}

/// Holds every call until `CALLS` calls are in the handler at the same time.
struct AllAtOnce {
    everyone: Barrier,
}

impl Gather for AllAtOnce {
    async fn gather(&self, id: u64, label: String) -> (u64, String) {
        self.everyone.wait().await;
        (id * 3, label.chars().rev().collect())
    }
}

/// Lets other calls run before answering, so replies come back out of order.
struct Interleaved;

impl Gather for Interleaved {
    async fn gather(&self, id: u64, label: String) -> (u64, String) {
        for _ in 0..id % 4 {
            tokio::task::yield_now().await;
        }
        (id * 3, label.chars().rev().collect())
    }
}

async fn serve(service: impl prpc::Service) -> SocketAddr {
    let server = prpc::Server::builder()
        .max_in_flight(CALLS)
        .add_service(service)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().socket_addr().unwrap();
    tokio::spawn(server.serve());
    addr
}

/// Makes `CALLS` calls at once through clones of `client` (one connection) and checks that
/// each got its own reply.
async fn call_all(client: GatherClient) {
    let mut calls = JoinSet::new();
    for id in 0..CALLS as u64 {
        let client = client.clone();
        calls.spawn(async move {
            let label = format!("call-{id}");
            let reply = client.gather(id, label.clone()).await;
            (id, label, reply)
        });
    }
    let answered = bounded(async {
        let mut answered = 0;
        while let Some(joined) = calls.join_next().await {
            let (id, label, reply) = joined.expect("the calling task panicked");
            let (tripled, reversed) = reply.unwrap_or_else(|error| panic!("call {id}: {error}"));
            assert_eq!(tripled, id * 3, "call {id} got another call's reply");
            assert_eq!(reversed, label.chars().rev().collect::<String>());
            answered += 1;
        }
        answered
    })
    .await;
    assert_eq!(answered, CALLS);
}

/// Fails the test instead of hanging the suite if calls stall.
async fn bounded<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), work)
        .await
        .expect("not every call was answered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_calls_on_one_connection_are_all_answered() {
    let addr = serve(GatherServer::new(Interleaved)).await;
    // Default client settings: calls over its in-flight limit wait their turn, none is lost.
    call_all(GatherClient::connect(addr).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_are_in_flight_together_on_one_connection() {
    let addr = serve(GatherServer::new(AllAtOnce {
        everyone: Barrier::new(CALLS),
    }))
    .await;
    // The barrier lets calls go only once all of them are in handlers at the same time.
    let connection = Client::builder()
        .max_in_flight(CALLS)
        .connect(addr)
        .await
        .unwrap();
    call_all(GatherClient::new(connection)).await;
}
