//! Retries and exactly-once execution, against real servers and a real redis-server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use prpc::idempotency::{FailMode, MemoryStore, RedisStore};
use prpc::retry::RetryPolicy;
use prpc::server::Builder;
use prpc::timer::Timer;
use prpc::{
    Call, CallOptions, Client, Code, Error, Format, Request, Response, Server, Service,
    ServiceFuture, Status,
};
use prpc_tests::proxy::Proxy;
use prpc_tests::redis::RedisServer;
use prpc_tests::{PATIENCE, spawn_server};

/// A non-idempotent counter whose first execution is slower than the callers' attempt
/// timeout. It answers the count it reached.
struct Counter {
    count: Arc<AtomicUsize>,
    first_run: Duration,
}

impl Service for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    fn methods(&self) -> Vec<String> {
        vec!["bump".into()]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        let count = self.count.clone();
        let first_run = self.first_run;
        Box::pin(async move {
            if &*request.method != "bump" {
                return Err(Status::unimplemented("only bump"));
            }
            let reached = count.fetch_add(1, Ordering::SeqCst) + 1;
            if reached == 1 {
                tokio::time::sleep(first_run).await;
            }
            Ok(Response::new(Bytes::from(reached.to_string())))
        })
    }
}

fn counter(count: &Arc<AtomicUsize>) -> Counter {
    Counter {
        count: count.clone(),
        first_run: Duration::from_millis(300),
    }
}

fn bump() -> Call {
    Call::new("counter", "bump", Format::Raw, Bytes::new())
}

fn retrying() -> RetryPolicy {
    RetryPolicy::new(5)
        .attempt_timeout(Duration::from_millis(100))
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
}

async fn retrying_client(addr: std::net::SocketAddr) -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .retry(retrying())
        .connect(addr)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_call_runs_once_and_returns_the_first_result() {
    let count = Arc::new(AtomicUsize::new(0));
    let server = spawn_server(Server::builder().add_service(counter(&count))).await;
    let client = retrying_client(server.addr).await;
    let reply = client.call(bump()).await.unwrap();
    assert_eq!(reply.body, "1");
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "the retry ran the counter again"
    );
    // A second, distinct call is a new request id: it runs.
    assert_eq!(client.call(bump()).await.unwrap().body, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dedupe_the_same_retries_run_twice() {
    // The control: a call marked idempotent is retried without dedupe, so the slow first
    // execution is followed by a second one. This is what dedupe prevents above.
    let count = Arc::new(AtomicUsize::new(0));
    let server = spawn_server(Server::builder().add_service(counter(&count))).await;
    let client = retrying_client(server.addr).await;
    let reply = client.call(bump().idempotent(true)).await.unwrap();
    assert_eq!(reply.body, "2");
    assert!(count.load(Ordering::SeqCst) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_errors_are_never_retried() {
    let (probe, counters) = prpc_tests::Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = retrying_client(server.addr).await;
    let call = Call::new("probe", "fail", Format::Raw, Bytes::from_static(b"no"));
    let error = client.call(call).await.unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    assert_eq!(counters.started.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_timeout_bounds_every_attempt() {
    let (probe, counters) = prpc_tests::Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::builder()
        // 1000 attempts of 50 ms take 50 s, far past PATIENCE, if the total timeout is ignored.
        .retry(RetryPolicy::new(1000).attempt_timeout(Duration::from_millis(50)))
        .connect(server.addr)
        .await
        .unwrap();
    let call = Call::new("probe", "sleep", Format::Raw, Bytes::from_static(b"60000"))
        .with_options(CallOptions::new().timeout(Duration::from_millis(300)));
    let error = tokio::time::timeout(PATIENCE, client.call(call))
        .await
        .unwrap()
        .unwrap_err();
    // The client's timer and the server's (which got the same deadline) race; either way the
    // call ends as deadline_exceeded.
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error}");
    // Far fewer than 1000 attempts fit in 300 ms of 50 ms attempts; dedupe kept it to one run.
    assert_eq!(counters.started.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_is_retried_on_a_new_one() {
    let (probe, counters) = prpc_tests::Probe::new("probe");
    let server = spawn_server(
        Server::builder()
            .add_service(probe)
            .idle_timeout(Duration::from_millis(50)),
    )
    .await;
    let client = Client::builder()
        .keepalive(Duration::from_secs(60), Duration::from_secs(60))
        .retry(RetryPolicy::new(3))
        .connect(server.addr)
        .await
        .unwrap();
    let call = || Call::new("probe", "echo", Format::Raw, Bytes::from_static(b"hi"));
    client.call(call()).await.unwrap();
    while client.is_open() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(client.call(call()).await.unwrap().body, "hi");
    assert_eq!(counters.finished.load(Ordering::SeqCst), 2);
}

async fn redis_server_builder(redis: &RedisServer, count: &Arc<AtomicUsize>) -> Builder {
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    Server::builder()
        .add_service(counter(count))
        .idempotency_store(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dedupes_a_retry_on_the_same_server() {
    let redis = RedisServer::start();
    let count = Arc::new(AtomicUsize::new(0));
    let server = spawn_server(redis_server_builder(&redis, &count).await).await;
    let client = retrying_client(server.addr).await;
    assert_eq!(client.call(bump()).await.unwrap().body, "1");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dedupes_a_retry_that_lands_on_another_server() {
    let redis = RedisServer::start();
    let count = Arc::new(AtomicUsize::new(0));
    let first = spawn_server(redis_server_builder(&redis, &count).await).await;
    let second = spawn_server(redis_server_builder(&redis, &count).await).await;
    // The client reaches the servers through a "balancer" that can move it.
    let balancer = Proxy::start(first.addr).await;
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .retry(RetryPolicy::new(3).backoff(Duration::from_millis(5), Duration::from_millis(20)))
        .connect(balancer.addr)
        .await
        .unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call(bump()).await }
    });
    // The first server is running the call (slowly) when the balancer moves the client: the
    // connection drops, the client retries, and the retry reaches the second server.
    while count.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    balancer.switch(second.addr);
    let reply = tokio::time::timeout(PATIENCE, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        reply.body, "1",
        "the retry did not get the first execution's result"
    );
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "the call ran more than once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_by_hand_gets_the_stored_reply_from_any_server() {
    let redis = RedisServer::start();
    let count = Arc::new(AtomicUsize::new(0));
    let first = spawn_server(redis_server_builder(&redis, &count).await).await;
    let second = spawn_server(redis_server_builder(&redis, &count).await).await;
    let request_id = prpc::id::next_id();
    let to_first = Client::connect(first.addr).await.unwrap();
    let reply = to_first
        .call(bump().resend_as(request_id, 0))
        .await
        .unwrap();
    assert_eq!(reply.body, "1");
    let to_second = Client::connect(second.addr).await.unwrap();
    let reply = to_second
        .call(bump().resend_as(request_id, 1))
        .await
        .unwrap();
    assert_eq!(reply.body, "1");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

async fn store_failure_scene(
    fail_mode: FailMode,
    break_redis: impl FnOnce(&mut RedisServer),
) -> (Result<prpc::Reply, Error>, Arc<AtomicUsize>) {
    let mut redis = RedisServer::start();
    let count = Arc::new(AtomicUsize::new(0));
    let builder = redis_server_builder(&redis, &count)
        .await
        .idempotency_failure(fail_mode, Duration::from_millis(200));
    let server = spawn_server(builder).await;
    let client = Client::builder()
        .timeout(Duration::from_secs(3))
        .connect(server.addr)
        .await
        .unwrap();
    break_redis(&mut redis);
    let call = bump().resend_as(prpc::id::next_id(), 0);
    let result = tokio::time::timeout(PATIENCE, client.call(call))
        .await
        .expect("the call hung on a broken store");
    (result, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_fails_closed_with_unavailable() {
    let (result, count) = store_failure_scene(FailMode::Closed, RedisServer::kill).await;
    let error = result.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error}");
    assert!(error.to_string().contains("idempotency store"), "{error}");
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_fails_open_by_running_the_call() {
    let (result, count) = store_failure_scene(FailMode::Open, RedisServer::kill).await;
    assert_eq!(result.unwrap().body, "1");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

fn stall(redis: &mut RedisServer) {
    // Redis answers nothing for five seconds: far slower than the 200 ms store timeout, and
    // still asleep when the call comes even if this test is slow to be scheduled.
    redis.send_command(&["DEBUG", "SLEEP", "5"]);
    std::thread::sleep(Duration::from_millis(50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_redis_fails_closed_within_the_store_timeout() {
    let (result, count) = store_failure_scene(FailMode::Closed, stall).await;
    let error = result.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error}");
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_redis_fails_open_by_running_the_call() {
    let (result, count) = store_failure_scene(FailMode::Open, stall).await;
    assert_eq!(result.unwrap().body, "1");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

/// Counts its runs; the first takes a while. Replies 4 KiB.
struct Large {
    count: Arc<AtomicUsize>,
}

impl Service for Large {
    fn name(&self) -> &str {
        "large"
    }

    fn methods(&self) -> Vec<String> {
        vec!["get".into()]
    }

    fn call(&self, _request: Request) -> ServiceFuture {
        let count = self.count.clone();
        Box::pin(async move {
            if count.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Ok(Response::new(Bytes::from(vec![7u8; 4096])))
        })
    }
}

/// A call whose reply is too large for a memory store that keeps 1 KiB of replies: its first
/// attempt runs, and a second attempt waits on it. Returns the two outcomes, a third
/// attempt's after both, and how many times the call ran.
async fn reply_too_large_to_store(
    fail_mode: FailMode,
) -> (
    Result<prpc::Reply, Error>,
    Result<prpc::Reply, Error>,
    Result<prpc::Reply, Error>,
    usize,
) {
    let count = Arc::new(AtomicUsize::new(0));
    let store = MemoryStore::with_limits(Timer::default(), 100, 1024);
    let server = Server::builder()
        .add_service(Large {
            count: count.clone(),
        })
        .idempotency_store(store)
        .idempotency_failure(fail_mode, Duration::from_secs(1));
    let server = spawn_server(server).await;
    let client = Client::connect(server.addr).await.unwrap();
    let request_id = prpc::id::next_id();
    let get = |attempt| {
        Call::new("large", "get", Format::Raw, Bytes::new()).resend_as(request_id, attempt)
    };
    let within = |call| async move {
        tokio::time::timeout(PATIENCE, call)
            .await
            .expect("an attempt hung")
    };
    let (first, second) = tokio::join!(within(client.call(get(0))), async {
        // Sent while the first attempt runs.
        tokio::time::sleep(Duration::from_millis(100)).await;
        within(client.call(get(1))).await
    });
    let third = within(client.call(get(2))).await;
    (first, second, third, count.load(Ordering::SeqCst))
}

/// Failing closed, a call whose reply cannot be stored still runs once: its other attempts
/// get `outcome_unknown` instead of running it again.
#[tokio::test]
async fn a_reply_the_store_cannot_keep_fails_its_retries_closed_with_outcome_unknown() {
    let (first, second, third, runs) = reply_too_large_to_store(FailMode::Closed).await;
    assert_eq!(first.unwrap().body.len(), 4096);
    for retry in [second, third] {
        let error = retry.unwrap_err();
        assert_eq!(error.code(), Code::OutcomeUnknown, "{error}");
        assert!(error.to_string().contains("not run again"), "{error}");
    }
    assert_eq!(runs, 1);
}

/// Failing open, the claim is released instead: a waiting attempt runs the call again.
#[tokio::test]
async fn a_reply_the_store_cannot_keep_lets_a_retry_run_it_when_failing_open() {
    let (first, second, _, runs) = reply_too_large_to_store(FailMode::Open).await;
    assert_eq!(first.unwrap().body.len(), 4096);
    assert_eq!(second.unwrap().body.len(), 4096);
    assert!(runs >= 2, "the waiting attempt ran the call: {runs}");
}

/// A deduplicated call whose reply fits the frame size only compressed is stored and replayed
/// as it was sent, as the same call without dedupe is answered; an attempt in another format
/// than the call ran in is refused rather than sent a body it cannot read.
#[tokio::test]
async fn a_stored_reply_is_replayed_as_it_was_sent() {
    let (probe, counters) = prpc_tests::Probe::new("probe");
    let server = spawn_server(
        prpc::Server::builder()
            .add_service(probe)
            .max_frame_size(4096),
    )
    .await;
    // Requests compressed (the server compresses its replies as the request came): the
    // size asked, 100000, written with leading zeros so that compressing it pays.
    let client = Client::builder()
        .compression(prpc::Compression::Gzip)
        .compression_threshold(0)
        .connect(server.addr)
        .await
        .unwrap();
    let size = |format| {
        let mut asked = vec![b'0'; 2000];
        asked.extend_from_slice(b"100000");
        Call::new("probe", "size", format, Bytes::from(asked))
    };
    // Without dedupe, the 100 kB reply fits compressed.
    let plain = client.call(size(prpc::Format::Raw)).await.unwrap();
    assert_eq!(plain.body.len(), 100_000);
    // The same call marked for dedupe, and a second attempt of it, get the same reply; the
    // handler runs once for both.
    let id = prpc::id::next_id();
    for attempt in 0..2 {
        let reply = client
            .call(size(prpc::Format::Raw).resend_as(id, attempt))
            .await
            .unwrap();
        assert_eq!(reply.body.len(), 100_000, "attempt {attempt}");
        assert!(reply.body.iter().all(|&byte| byte == b'x'));
    }
    assert_eq!(counters.finished.load(Ordering::SeqCst), 2);
    // An attempt in another format is refused.
    let refused = client
        .call(size(prpc::Format::Json).resend_as(id, 2))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused}");
    assert_eq!(counters.finished.load(Ordering::SeqCst), 2);
}

/// Dedupe sits outside the deadline: a deduplicated call stopped at its deadline stores
/// `deadline_exceeded`, and a later attempt of it gets that answer without a second run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_stopped_at_its_deadline_answers_its_later_attempts_the_same() {
    let (probe, counters) = prpc_tests::Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let id = prpc::id::next_id();
    let sleep = |attempt, timeout| {
        Call::new("probe", "sleep", Format::Raw, Bytes::from_static(b"60000"))
            .resend_as(id, attempt)
            .with_options(CallOptions::new().timeout(timeout))
    };
    // The first attempt runs out of time (the client's timer and the server's race).
    let first = client
        .call(sleep(0, Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::DeadlineExceeded, "{first}");
    // A later attempt with time to spare gets the stored outcome (waiting for it if the first
    // has not stored it yet), not a second run.
    let later = client
        .call(sleep(1, Duration::from_secs(5)))
        .await
        .unwrap_err();
    let Error::Status(status) = &later else {
        panic!("{later}");
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{later}");
    assert_eq!(counters.started.load(Ordering::SeqCst), 1);
}
