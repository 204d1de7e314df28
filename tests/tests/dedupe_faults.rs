//! Exactly-once when the dedupe store or the server fails: each test reproduces one way a
//! call used to run twice (or never), against real redis-server processes and real servers,
//! and counts the handler's effects.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use prpc::idempotency::{FailMode, RedisStore};
use prpc::server::Builder;
use prpc::wire::{Encoding, Frame, Head, RequestHead};
use prpc::{
    Call, CallOptions, Client, Code, Format, Request, Response, Server, Service, ServiceFuture,
};
use prpc_tests::redis::{Persistence, RedisServer};
use prpc_tests::{PATIENCE, RawConnection, spawn_server};

/// Runs once per call it is given: counts the run (its effect), calls the hook, takes
/// `run_for`, and answers `runs@attempt`, the count it reached and the attempt it ran under.
#[derive(Clone)]
struct Ledger {
    runs: Arc<AtomicUsize>,
    run_for: Duration,
    hook: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Ledger {
    fn new(runs: &Arc<AtomicUsize>, run_for: Duration) -> Self {
        Ledger {
            runs: runs.clone(),
            run_for,
            hook: None,
        }
    }

    fn with_hook(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }
}

impl Service for Ledger {
    fn name(&self) -> &str {
        "ledger"
    }

    fn methods(&self) -> Vec<String> {
        vec!["apply".into()]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        let ledger = self.clone();
        Box::pin(async move {
            let reached = ledger.runs.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(hook) = &ledger.hook {
                hook();
            }
            tokio::time::sleep(ledger.run_for).await;
            Ok(Response::new(Bytes::from(format!(
                "{reached}@{}",
                request.attempt
            ))))
        })
    }
}

fn apply(request_id: u64, attempt: u32, timeout: Duration) -> Call {
    Call::new("ledger", "apply", Format::Raw, Bytes::from_static(b"entry"))
        .resend_as(request_id, attempt)
        .with_options(CallOptions::new().timeout(timeout))
}

async fn redis_builder(redis: &RedisServer, ledger: Ledger) -> Builder {
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    Server::builder()
        .add_service(ledger)
        .idempotency_store(store)
}

/// Puts Redis to sleep for `seconds` through its own socket, without waiting.
fn stall(socket: &Path, seconds: &str) {
    use std::io::Write;
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect to redis");
    let command = format!(
        "*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n${}\r\n{seconds}\r\n",
        seconds.len()
    );
    stream
        .write_all(command.as_bytes())
        .expect("write to redis");
    // Kept open until Redis has read it.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(6));
        drop(stream);
    });
    std::thread::sleep(Duration::from_millis(50));
}

async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("a call hung")
}

/// Finding 1: Redis stalls while a call finishes. The reply write times out on the server
/// and is applied late, as is everything sent after it; fenced writes leave the reply in
/// place (before, a `data_loss` overwrote it and a `DEL` released the claim, and the resend
/// ran the call again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_stalled_while_a_call_finishes_never_lets_it_run_twice() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let socket: PathBuf = redis.socket().to_owned();
    let stalling = Ledger::new(&runs, Duration::ZERO).with_hook(move || stall(&socket, "2"));
    let first = spawn_server(
        redis_builder(&redis, stalling)
            .await
            .idempotency_failure(FailMode::Closed, Duration::from_millis(200)),
    )
    .await;
    let second =
        spawn_server(redis_builder(&redis, Ledger::new(&runs, Duration::ZERO)).await).await;
    let id = prpc::id::next_id();
    let to_first = Client::connect(first.addr).await.unwrap();
    let reply = within(to_first.call(apply(id, 0, Duration::from_secs(5))))
        .await
        .unwrap();
    assert_eq!(reply.body, "1@0");
    // Redis wakes and runs what was sent meanwhile; then the client resends elsewhere.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let to_second = Client::connect(second.addr).await.unwrap();
    let resent = within(to_second.call(apply(id, 1, Duration::from_secs(5)))).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the resend ran the call again: {resent:?}"
    );
    match resent {
        Ok(reply) => assert_eq!(reply.body, "1@0"),
        Err(error) => assert_eq!(error.code(), Code::OutcomeUnknown, "{error}"),
    }
}

/// Finding 3: a claim whose write timed out (the call was answered `unavailable` and never
/// ran) is applied late; its release follows it, so resends run the call instead of being
/// blocked for the whole TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_applied_late_does_not_block_the_resends() {
    let redis = RedisServer::start();
    // Redis's uptime counts seconds: a retry of a call first sent in Redis's first second
    // could be taken as sent before it started.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let server = spawn_server(
        redis_builder(&redis, Ledger::new(&runs, Duration::ZERO))
            .await
            .idempotency_failure(FailMode::Closed, Duration::from_millis(200)),
    )
    .await;
    let client = Client::connect(server.addr).await.unwrap();
    let id = prpc::id::next_id();
    stall(redis.socket(), "1.5");
    let refused = within(client.call(apply(id, 0, Duration::from_secs(5))))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused}");
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let resent = within(client.call(apply(id, 1, Duration::from_secs(3)))).await;
    assert_eq!(
        resent.unwrap().body,
        "1@1",
        "the late claim blocked the resend"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// Finding 5: a claim lives while its call runs, however short the TTL: a retry of a call
/// that runs four TTLs waits for it instead of running it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_running_past_the_ttl_keeps_its_claim() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let server = spawn_server(
        redis_builder(&redis, Ledger::new(&runs, Duration::from_millis(1200)))
            .await
            .idempotency_ttl(Duration::from_millis(300)),
    )
    .await;
    let client = Client::connect(server.addr).await.unwrap();
    let id = prpc::id::next_id();
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.call(apply(id, 0, Duration::from_secs(5))).await }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let retry = within(client.call(apply(id, 1, Duration::from_secs(5)))).await;
    let first = within(first).await.unwrap();
    assert_eq!(first.unwrap().body, "1@0");
    assert_eq!(retry.unwrap().body, "1@0");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the call ran twice");
}

/// Finding 6: the builder's store timeout is the only one: a Redis that answers after
/// 800 ms is in time for a 3 s store timeout (the redis crate's own 500 ms timeout used to
/// cut it short).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_timeout_is_the_builders() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let server = spawn_server(
        redis_builder(&redis, Ledger::new(&runs, Duration::ZERO))
            .await
            .idempotency_failure(FailMode::Closed, Duration::from_secs(3)),
    )
    .await;
    let client = Client::connect(server.addr).await.unwrap();
    stall(redis.socket(), "0.8");
    let reply = within(client.call(apply(prpc::id::next_id(), 0, Duration::from_secs(5)))).await;
    assert_eq!(reply.unwrap().body, "1@0");
}

/// Findings 2 and 7: Redis restarts without persistence and loses the call's reply. A
/// retry of a call begun before the restart is answered `outcome_unknown` instead of running
/// it again; with `appendfsync always` the reply survives and the retry gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_never_lets_a_call_run_twice() {
    for persistence in [Persistence::None, Persistence::AlwaysFsync] {
        let mut redis = RedisServer::start_with(persistence);
        let runs = Arc::new(AtomicUsize::new(0));
        let server =
            spawn_server(redis_builder(&redis, Ledger::new(&runs, Duration::ZERO)).await).await;
        let client = Client::connect(server.addr).await.unwrap();
        let id = prpc::id::next_id();
        let reply = within(client.call(apply(id, 0, Duration::from_secs(5)))).await;
        assert_eq!(reply.unwrap().body, "1@0");
        redis.restart();
        // The store reconnects by itself; the first command after the restart may fail.
        let mut retried = within(client.call(apply(id, 1, Duration::from_secs(5)))).await;
        if matches!(&retried, Err(error) if error.code() == Code::Unavailable) {
            retried = within(client.call(apply(id, 2, Duration::from_secs(5)))).await;
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "{persistence:?}: ran twice: {retried:?}"
        );
        match persistence {
            Persistence::None => {
                let error = retried.unwrap_err();
                assert_eq!(error.code(), Code::OutcomeUnknown, "{error}");
            }
            Persistence::AlwaysFsync => assert_eq!(retried.unwrap().body, "1@0"),
        }
    }
}

/// Finding 4: a handler still running when the shutdown grace ends is stopped, and its call
/// is left outcome unknown, not released: the retry on another server does not run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_stopped_past_the_shutdown_grace_is_not_run_again() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let leaving = spawn_server(
        redis_builder(&redis, Ledger::new(&runs, Duration::from_secs(30)))
            .await
            .shutdown_grace(Duration::from_millis(100)),
    )
    .await;
    let staying =
        spawn_server(redis_builder(&redis, Ledger::new(&runs, Duration::ZERO)).await).await;
    let id = prpc::id::next_id();
    let client = Client::connect(leaving.addr).await.unwrap();
    let first =
        tokio::spawn(async move { client.call(apply(id, 0, Duration::from_secs(60))).await });
    while runs.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    leaving.shutdown.shutdown();
    within(leaving.serving).await.unwrap().unwrap();
    let first = within(first).await.unwrap();
    assert!(first.is_err(), "{first:?}");
    let elsewhere = Client::connect(staying.addr).await.unwrap();
    let retried = within(elsewhere.call(apply(id, 1, Duration::from_secs(5)))).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the retry ran the call again: {retried:?}"
    );
    let error = retried.unwrap_err();
    assert_eq!(error.code(), Code::OutcomeUnknown, "{error}");
}

fn raw_apply(request_id: u64, attempt: u32, body: &'static [u8]) -> Frame {
    Frame {
        request_id,
        attempt,
        encoding: Encoding::new(Format::Raw.id(), 0),
        head: Head::Request(RequestHead {
            service: "ledger".into(),
            method: "apply".into(),
            dedupe: true,
            ..RequestHead::default()
        }),
        body: Bytes::from_static(body),
    }
}

/// Rules 4 and 8: an attempt that waits for an earlier one still running, and whose deadline
/// passes first, is answered `deadline_exceeded` (the call's one deadline passed; the running
/// attempt carries it too), on the server the earlier attempt runs on (rule 4) and on
/// another server sharing the store (rule 8). It raced the client's own deadline before: the
/// server's `unavailable` sometimes arrived first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_waiting_past_its_deadline_is_answered_deadline_exceeded() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let running = Ledger::new(&runs, Duration::from_secs(30));
    let here = spawn_server(redis_builder(&redis, running.clone()).await).await;
    let elsewhere = spawn_server(redis_builder(&redis, running).await).await;
    let id = prpc::id::next_id();
    let mut first = RawConnection::connect(here.addr).await;
    first.send(raw_apply(id, 0, b"entry")).await;
    while runs.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (attempt, server) in [(1, &here), (2, &elsewhere)] {
        let mut waiting = raw_apply(id, attempt, b"entry");
        if let Head::Request(head) = &mut waiting.head {
            head.deadline = Some(Duration::from_millis(200));
        }
        let mut later = RawConnection::connect(server.addr).await;
        later.send(waiting).await;
        let answer = within(later.recv()).await.expect("an answer");
        let Head::Response(head) = &answer.head else {
            panic!("{:?}", answer.head);
        };
        assert_eq!(
            head.code,
            Code::DeadlineExceeded.as_u32(),
            "attempt {attempt}: {}",
            head.message
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// Finding 8: attempts 0, 1 and 2 of one call arrive in one read; attempt 0, the first to
/// arrive, runs the call, and the others get its reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_attempt_to_arrive_runs_the_call_also_in_one_read() {
    let runs = Arc::new(AtomicUsize::new(0));
    let server =
        spawn_server(Server::builder().add_service(Ledger::new(&runs, Duration::ZERO))).await;
    for trial in 0..20 {
        let id = prpc::id::next_id();
        let mut raw = RawConnection::connect(server.addr).await;
        let mut bytes = bytes::BytesMut::new();
        let mut codec = prpc::wire::FrameCodec::new();
        for attempt in 0..3 {
            tokio_util::codec::Encoder::encode(
                &mut codec,
                raw_apply(id, attempt, b"x"),
                &mut bytes,
            )
            .unwrap();
        }
        raw.send_bytes(&bytes).await;
        let mut answers = Vec::new();
        for _ in 0..3 {
            let frame = raw.recv().await.expect("an answer");
            let Head::Response(head) = &frame.head else {
                panic!("{:?}", frame.head);
            };
            assert_eq!(head.code, 0, "{}", head.message);
            answers.push((frame.attempt, frame.body));
        }
        for (attempt, body) in answers {
            assert_eq!(
                body,
                format!("{}@0", trial + 1),
                "trial {trial}: attempt {attempt} got another attempt's run"
            );
        }
    }
    assert_eq!(runs.load(Ordering::SeqCst), 20);
}

/// Finding 7: request ids are unique per client identity, and a request id reused for
/// another call (another body) is refused rather than answered the first call's reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_keyed_by_client_identity_and_checked_by_fingerprint() {
    let runs = Arc::new(AtomicUsize::new(0));
    let server =
        spawn_server(Server::builder().add_service(Ledger::new(&runs, Duration::ZERO))).await;
    let client = Client::connect(server.addr).await.unwrap();
    let id = prpc::id::next_id();
    let from = |identity: &'static str, body: &'static [u8]| {
        Call::new("ledger", "apply", Format::Raw, Bytes::from_static(body))
            .resend_as(id, 0)
            .with_options(CallOptions::new().metadata(prpc::idempotency::CLIENT_ID_KEY, identity))
    };
    // Two client processes that drew the same request id: each call runs.
    let one = within(client.call(from("00000000000000aa", b"a")))
        .await
        .unwrap();
    let other = within(client.call(from("00000000000000bb", b"a")))
        .await
        .unwrap();
    assert_eq!((one.body, other.body), ("1@0".into(), "2@0".into()));
    // The same client reusing the id for other arguments is refused.
    let reused = within(client.call(from("00000000000000aa", b"b")))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument, "{reused}");
    // A malformed identity is refused.
    let malformed = within(client.call(from("not hex", b"a")))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument, "{malformed}");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// A client sends its process's identity with every call it marks for dedupe (resent by
/// hand, or retried by a policy), and none with other calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sends_its_identity_with_deduplicated_calls() {
    let (probe, _) = prpc_tests::Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let key = prpc::idempotency::CLIENT_ID_KEY;
    let identity = format!("{:016x}", prpc::idempotency::client_identity());
    let metadata = || Call::new("probe", "metadata", Format::Raw, Bytes::from(key));
    let plain = Client::connect(server.addr).await.unwrap();
    assert_eq!(
        within(plain.call(metadata())).await.unwrap().body,
        "missing"
    );
    let resent = within(plain.call(metadata().resend_as(prpc::id::next_id(), 0))).await;
    assert_eq!(resent.unwrap().body, identity);
    let retrying = Client::builder()
        .retry(prpc::retry::RetryPolicy::new(2))
        .connect(server.addr)
        .await
        .unwrap();
    assert_eq!(
        within(retrying.call(metadata())).await.unwrap().body,
        identity
    );
}

#[prpc::service]
trait Bank {
    async fn deposit(&self, cents: u64) -> u64;
}

#[derive(Clone)]
struct Vault {
    balance: Arc<AtomicUsize>,
    runs: Arc<AtomicUsize>,
}

impl Bank for Vault {
    async fn deposit(&self, cents: u64) -> u64 {
        self.runs.fetch_add(1, Ordering::SeqCst);
        (self.balance.fetch_add(cents as usize, Ordering::SeqCst) + cents as usize) as u64
    }
}

/// Finding 9: a generated client sends a call under a request id its caller chose, and
/// resends it under that id: the server runs it once, and the resend gets the first reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_client_resends_under_the_request_id_it_chose() {
    let vault = Vault {
        balance: Arc::new(AtomicUsize::new(0)),
        runs: Arc::new(AtomicUsize::new(0)),
    };
    let server = spawn_server(Server::builder().add_service(BankServer::new(vault.clone()))).await;
    let bank = BankClient::connect(server.addr).await.unwrap();
    let id = prpc::id::next_id();
    let first = within(bank.clone().with_request_id(id, 0).deposit(500)).await;
    let resent = within(bank.clone().with_request_id(id, 1).deposit(500)).await;
    assert_eq!((first.unwrap(), resent.unwrap()), (500, 500));
    assert_eq!(vault.runs.load(Ordering::SeqCst), 1);
    // Another call under the same id with other arguments is refused, not answered 500.
    let reused = within(bank.clone().with_request_id(id, 2).deposit(7))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument, "{reused}");
    // Without an id, each call is its own.
    assert_eq!(within(bank.deposit(1)).await.unwrap(), 501);
}

/// A deduplicated call cancelled after its handler started records `cancelled`: a later
/// attempt gets that answer, and the call does not run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_after_it_started_is_not_run_again() {
    let (probe, counters) = prpc_tests::Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let id = prpc::id::next_id();
    let sleep = move |attempt| {
        Call::new("probe", "sleep", Format::Raw, Bytes::from_static(b"60000"))
            .resend_as(id, attempt)
    };
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.call(sleep(0)).await }
    });
    counters.wait_for(|counters| &counters.started, 1).await;
    // Dropping the call sends a cancel; the server stops the handler.
    first.abort();
    let later = within(
        client.call(sleep(1).with_options(CallOptions::new().timeout(Duration::from_secs(5)))),
    )
    .await;
    let error = later.unwrap_err();
    assert_eq!(error.code(), Code::Cancelled, "{error}");
    assert_eq!(counters.started.load(Ordering::SeqCst), 1);
}

/// A handler that took effect and then passed on a downstream call's failure with `?` (an
/// `unavailable`: the downstream connection closed) keeps its claim: the answer is recorded,
/// and a retry does not run the handler again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_answers_unavailable_after_its_effect_is_not_run_again() {
    let runs = Arc::new(AtomicUsize::new(0));
    let flaky = Flaky { runs: runs.clone() };
    let server = spawn_server(Server::builder().add_service(flaky)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let id = prpc::id::next_id();
    let first = within(client.call(apply(id, 0, PATIENCE)))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::Unavailable, "{first}");
    let retry = within(client.call(apply(id, 1, PATIENCE)))
        .await
        .unwrap_err();
    assert_eq!(retry.code(), Code::Unavailable, "{retry}");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the retry ran the handler again"
    );
}

/// A retry that comes after the idempotency TTL, when the call's recorded outcome has expired,
/// finds no claim: failing closed, it is answered `outcome_unknown` rather than run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_ttl_is_not_run_again() {
    let runs = Arc::new(AtomicUsize::new(0));
    let ttl = Duration::from_millis(300);
    let server = spawn_server(
        Server::builder()
            .add_service(Ledger::new(&runs, Duration::ZERO))
            .idempotency_ttl(ttl),
    )
    .await;
    let client = Client::connect(server.addr).await.unwrap();
    let id = prpc::id::next_id();
    within(client.call(apply(id, 0, PATIENCE))).await.unwrap();
    tokio::time::sleep(ttl * 3).await;
    let late = within(client.call(apply(id, 1, PATIENCE)))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::OutcomeUnknown, "{late}");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the late retry ran the call again"
    );
    // A new call is unaffected.
    within(client.call(apply(prpc::id::next_id(), 0, PATIENCE)))
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// Takes effect (counts a run), then passes on a downstream call's failure with `?`.
struct Flaky {
    runs: Arc<AtomicUsize>,
}

impl Service for Flaky {
    fn name(&self) -> &str {
        "ledger"
    }

    fn methods(&self) -> Vec<String> {
        vec!["apply".into()]
    }

    fn call(&self, _request: Request) -> ServiceFuture {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {
            let downstream: Result<Response, prpc::Error> = Err(prpc::Error::Closed {
                reason: prpc::Closed::Eof,
                sent: None,
            });
            Ok(downstream?)
        })
    }
}

#[prpc::service]
trait Till {
    async fn deposit(&self, cents: u64) -> u64;
}

/// A till whose deposits take `run_for`; it counts each run and signals its start.
#[derive(Clone)]
struct SlowTill {
    balance: Arc<AtomicUsize>,
    runs: Arc<AtomicUsize>,
    run_for: Duration,
    started: Arc<tokio::sync::Notify>,
}

impl SlowTill {
    fn new(run_for: Duration) -> Self {
        SlowTill {
            balance: Arc::new(AtomicUsize::new(0)),
            runs: Arc::new(AtomicUsize::new(0)),
            run_for,
            started: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

impl Till for SlowTill {
    async fn deposit(&self, cents: u64) -> u64 {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        tokio::time::sleep(self.run_for).await;
        (self.balance.fetch_add(cents as usize, Ordering::SeqCst) + cents as usize) as u64
    }
}

/// Finding 9: a call made without choosing a request id, sent for dedupe (it has a retry
/// policy), loses its connection while the handler runs. The error names the request id and
/// attempt it was sent under; resending under them from another client collects the first
/// run's reply, and the handler ran once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_reports_the_request_id_to_resend_under() {
    let till = SlowTill::new(Duration::from_millis(300));
    let server = spawn_server(Server::builder().add_service(TillServer::new(till.clone()))).await;
    let proxy = prpc_tests::proxy::Proxy::start(server.addr).await;
    let through_proxy = TillClient::new(
        Client::builder()
            .retry(prpc::retry::RetryPolicy::new(1))
            .connect(proxy.addr)
            .await
            .unwrap(),
    );
    let call = tokio::spawn(async move { through_proxy.deposit(500).await });
    till.started.notified().await;
    // The balancer cuts the connection while the handler runs.
    proxy.switch(server.addr);
    let error = within(call).await.unwrap().unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error}");
    let id = error.request_id().expect("the error names its request id");
    assert_eq!(error.attempt(), Some(0));
    let (resend_id, attempt) = error
        .resend_as()
        .expect("a deduplicated call can be resent");
    assert_eq!((resend_id, attempt), (id, 1));
    let direct = TillClient::connect(server.addr).await.unwrap();
    let resent = within(
        direct
            .with_request_id(resend_id, attempt)
            .with_timeout(PATIENCE)
            .deposit(500),
    )
    .await;
    assert_eq!(resent.unwrap(), 500);
    assert_eq!(till.runs.load(Ordering::SeqCst), 1);
}

/// A call through the balanced client whose every attempt times out (each shorter than the
/// handler) reports its one request id and its last attempt; a resend under them, to either
/// server, collects the reply of the one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balanced_call_reports_its_last_attempt_to_resend_after() {
    use prpc::cluster::{Cluster, FailMode as ClusterFailMode};
    use prpc::discovery::{Endpoint, StaticDiscover};
    let redis = RedisServer::start();
    let till = SlowTill::new(Duration::from_millis(800));
    let mut servers = Vec::new();
    for _ in 0..2 {
        let store = RedisStore::connect(&redis.url()).await.unwrap();
        servers.push(
            spawn_server(
                Server::builder()
                    .add_service(TillServer::new(till.clone()))
                    .idempotency_store(store),
            )
            .await,
        );
    }
    let discovery = StaticDiscover::new(
        servers
            .iter()
            .map(|server| Endpoint::new(server.addr).unwrap()),
    );
    let balanced = TillClient::new(
        Cluster::builder()
            .balance("round_robin".parse().unwrap())
            .fail_mode(ClusterFailMode::Failover)
            .build(&discovery, "Till"),
    );
    let policy = prpc::retry::RetryPolicy::new(3)
        .attempt_timeout(Duration::from_millis(100))
        .backoff(Duration::from_millis(1), Duration::from_millis(2));
    let error = within(
        balanced
            .with_options(
                CallOptions::new()
                    .retry(policy)
                    .timeout(Duration::from_secs(5)),
            )
            .deposit(500),
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error}");
    assert_eq!(error.attempt(), Some(2), "{error}");
    let (id, attempt) = error.resend_as().expect("a retried call can be resent");
    assert_eq!(attempt, 3);
    let direct = TillClient::connect(servers[1].addr).await.unwrap();
    let resent = within(
        direct
            .with_request_id(id, attempt)
            .with_timeout(PATIENCE)
            .deposit(500),
    )
    .await;
    assert_eq!(resent.unwrap(), 500);
    assert_eq!(till.runs.load(Ordering::SeqCst), 1);
}

/// An idempotency TTL and a store timeout as long as a `Duration` holds are taken as "never":
/// a deduplicated call without a deadline runs and is answered (no overflow on the way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_ttl_and_store_timeout_are_taken_as_never() {
    let runs = Arc::new(AtomicUsize::new(0));
    let server = spawn_server(
        Server::builder()
            .add_service(Ledger::new(&runs, Duration::ZERO))
            .idempotency_ttl(Duration::MAX)
            .idempotency_failure(FailMode::Closed, Duration::MAX),
    )
    .await;
    let client = Client::connect(server.addr).await.unwrap();
    let id = prpc::id::next_id();
    let call = || Call::new("ledger", "apply", Format::Raw, Bytes::from_static(b"entry"));
    let reply = within(client.call(call().resend_as(id, 0))).await.unwrap();
    assert_eq!(reply.body, "1@0");
    let again = within(client.call(call().resend_as(id, 1))).await.unwrap();
    assert_eq!(again.body, "1@0");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// A call cancelled while the store is still taking its claim (Redis stalled): the claim,
/// applied when Redis wakes, is released behind it, so a resend runs the call rather than
/// waiting on a claim nothing would ever settle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_while_its_claim_is_taken_leaves_no_claim() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let server = spawn_server(
        redis_builder(&redis, Ledger::new(&runs, Duration::ZERO))
            .await
            .idempotency_failure(FailMode::Closed, Duration::from_secs(5)),
    )
    .await;
    let client = Client::connect(server.addr).await.unwrap();
    // One call first, so that the server has loaded its scripts into Redis.
    within(client.call(apply(prpc::id::next_id(), 0, PATIENCE)))
        .await
        .unwrap();
    // Redis tells its start to the second, rounded late: a call first sent within a second
    // of it would read as sent before it (rule 13), and its resend, finding no claim, would
    // be answered `outcome_unknown`.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let id = prpc::id::next_id();
    stall(redis.socket(), "1");
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.call(apply(id, 0, Duration::from_secs(10))).await }
    });
    // The claim is on its way to the stalled Redis when the caller gives up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.abort();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let resent = within(client.call(apply(id, 1, Duration::from_secs(3)))).await;
    assert_eq!(resent.unwrap().body, "2@1");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// A deduplicated call whose connection broke runs on (rule 11); when its server then shuts
/// down, it is stopped at the end of the grace like the calls of open connections, and its
/// outcome is marked unknown before `serve` returns: a retry elsewhere is answered
/// `outcome_unknown` at once, not left waiting on a claim nobody holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_connection_broke_is_settled_before_serve_returns() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let leaving = spawn_server(
        redis_builder(&redis, Ledger::new(&runs, Duration::from_secs(30)))
            .await
            .shutdown_grace(Duration::from_millis(100)),
    )
    .await;
    let staying =
        spawn_server(redis_builder(&redis, Ledger::new(&runs, Duration::ZERO)).await).await;
    let proxy = prpc_tests::proxy::Proxy::start(leaving.addr).await;
    let id = prpc::id::next_id();
    let client = Client::connect(proxy.addr).await.unwrap();
    let first =
        tokio::spawn(async move { client.call(apply(id, 0, Duration::from_secs(60))).await });
    while runs.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proxy.switch(staying.addr);
    let first = within(first).await.unwrap();
    assert!(first.is_err(), "{first:?}");
    leaving.shutdown.shutdown();
    within(leaving.serving).await.unwrap().unwrap();
    let elsewhere = Client::connect(staying.addr).await.unwrap();
    let retried = within(elsewhere.call(apply(id, 1, Duration::from_secs(2)))).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "{retried:?}");
    let error = retried.unwrap_err();
    assert_eq!(error.code(), Code::OutcomeUnknown, "{error}");
}

/// The same, with the connection reset (a client process killed) rather than closed: the
/// server's connection ends at once, and the call runs on, tracked by the server alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_connection_was_reset_is_settled_before_serve_returns() {
    use tokio::io::AsyncWriteExt;
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let leaving = spawn_server(
        redis_builder(&redis, Ledger::new(&runs, Duration::from_secs(30)))
            .await
            .shutdown_grace(Duration::from_millis(100)),
    )
    .await;
    let staying =
        spawn_server(redis_builder(&redis, Ledger::new(&runs, Duration::ZERO)).await).await;
    let id = prpc::id::next_id();
    let encode = |attempt| {
        let mut bytes = bytes::BytesMut::new();
        tokio_util::codec::Encoder::encode(
            &mut prpc::wire::FrameCodec::new(),
            raw_apply(id, attempt, b"entry"),
            &mut bytes,
        )
        .unwrap();
        bytes
    };
    let mut socket = tokio::net::TcpStream::connect(leaving.addr).await.unwrap();
    socket.write_all(&encode(0)).await.unwrap();
    while runs.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    socket.set_zero_linger().unwrap();
    drop(socket);
    // The server has read the reset before it shuts down.
    tokio::time::sleep(Duration::from_millis(200)).await;
    leaving.shutdown.shutdown();
    within(leaving.serving).await.unwrap().unwrap();
    let mut elsewhere = RawConnection::connect(staying.addr).await;
    elsewhere.send_bytes(&encode(1)).await;
    let answer = within(elsewhere.recv()).await.expect("an answer");
    let Head::Response(head) = &answer.head else {
        panic!("{:?}", answer.head);
    };
    assert_eq!(runs.load(Ordering::SeqCst), 1, "{}", head.message);
    assert_eq!(head.code, Code::OutcomeUnknown.as_u32(), "{}", head.message);
}

/// A call its client cancels during the shutdown grace was cancelled, not stopped by the
/// shutdown: it records `cancelled`, as it would outside a shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_during_the_shutdown_grace_records_cancelled() {
    let redis = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let leaving = spawn_server(
        redis_builder(&redis, Ledger::new(&runs, Duration::from_secs(30)))
            .await
            .shutdown_grace(Duration::from_secs(3)),
    )
    .await;
    let staying =
        spawn_server(redis_builder(&redis, Ledger::new(&runs, Duration::ZERO)).await).await;
    let id = prpc::id::next_id();
    // Kept open after the call is dropped, so that its cancel goes out.
    let client = Client::connect(leaving.addr).await.unwrap();
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.call(apply(id, 0, Duration::from_secs(60))).await }
    });
    while runs.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    leaving.shutdown.shutdown();
    // Within the grace, the caller gives up: a cancel goes out, and the server stops the
    // handler for it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.abort();
    within(leaving.serving).await.unwrap().unwrap();
    let elsewhere = Client::connect(staying.addr).await.unwrap();
    let retried = within(elsewhere.call(apply(id, 1, Duration::from_secs(2)))).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "{retried:?}");
    let error = retried.unwrap_err();
    assert_eq!(error.code(), Code::Cancelled, "{error}");
}

/// A hedged call (a backup request after 20 ms) whose two attempts both time out reports its
/// one request id with the backup's attempt, 1, whichever attempt failed last; a resend under
/// (id, 2) gets the recorded outcome (here the deadline the run hit), and the call ran once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hedged_call_reports_the_backups_attempt() {
    use prpc::cluster::{Cluster, FailMode as ClusterFailMode};
    use prpc::discovery::{Endpoint, StaticDiscover};
    let redis = RedisServer::start();
    let till = SlowTill::new(Duration::from_millis(800));
    let mut servers = Vec::new();
    for _ in 0..2 {
        let store = RedisStore::connect(&redis.url()).await.unwrap();
        servers.push(
            spawn_server(
                Server::builder()
                    .add_service(TillServer::new(till.clone()))
                    .idempotency_store(store),
            )
            .await,
        );
    }
    let discovery = StaticDiscover::new(
        servers
            .iter()
            .map(|server| Endpoint::new(server.addr).unwrap()),
    );
    let hedging = TillClient::new(
        Cluster::builder()
            .balance("round_robin".parse().unwrap())
            .fail_mode(ClusterFailMode::Backup)
            .hedge_delay(Duration::from_millis(20))
            .build(&discovery, "Till"),
    );
    let error = within(
        hedging
            .with_options(
                CallOptions::new()
                    .retry(prpc::retry::RetryPolicy::new(2))
                    .timeout(Duration::from_millis(300)),
            )
            .deposit(500),
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error}");
    assert_eq!(error.attempt(), Some(1), "{error}");
    let (id, attempt) = error.resend_as().expect("a hedged call can be resent");
    let direct = TillClient::connect(servers[0].addr).await.unwrap();
    let resent = within(
        direct
            .with_request_id(id, attempt)
            .with_timeout(PATIENCE)
            .deposit(500),
    )
    .await
    .unwrap_err();
    // The run ended at its deadline on the server, or by the cancel the client sent when its
    // own timeout (as long) fired first: which comes first is a race, and either is the
    // outcome the resend must be answered with, without a second run.
    assert!(
        matches!(resent.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{resent}"
    );
    assert_eq!(till.runs.load(Ordering::SeqCst), 1);
}
