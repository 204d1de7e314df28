//! The balanced client against real servers on loopback: it picks endpoints per call, fails
//! over, skips what cannot be dialed, drains what leaves discovery.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prpc::cluster::{Cluster, FailMode};
use prpc::discovery::{Endpoint, StaticDiscover};
use prpc_tests::{PATIENCE, TestServer, spawn_server};
use tokio::time::timeout;

#[prpc::service]
pub trait Who {
    /// The name of the server that answered.
    #[prpc(idempotent)]
    async fn who(&self) -> String;
    /// The same, after a pause.
    #[prpc(idempotent)]
    async fn slow(&self, millis: u64) -> String;
    /// Not idempotent: never retried by default.
    async fn once(&self) -> String;
    /// The caller's port: which connection the call came on.
    #[prpc(idempotent)]
    async fn port(&self) -> u16;
    /// The name, or `unavailable` while the server is set to fail.
    async fn health(&self) -> Result<String, prpc::Status>;
    /// The name, after the server's own delay.
    #[prpc(idempotent)]
    async fn lagging(&self) -> String;
}

struct Named {
    name: String,
    calls: Arc<AtomicUsize>,
    failing: Arc<std::sync::atomic::AtomicBool>,
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Who for Named {
    async fn lagging(&self) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        self.name.clone()
    }

    async fn who(&self) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.name.clone()
    }

    async fn slow(&self, millis: u64) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        self.name.clone()
    }

    async fn once(&self) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.name.clone()
    }

    async fn health(&self) -> Result<String, prpc::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(prpc::Status::new(
                prpc::Code::Unavailable,
                "failing on purpose",
            ));
        }
        Ok(self.name.clone())
    }

    async fn port(&self) -> u16 {
        prpc::context::current()
            .and_then(|context| context.peer)
            .map_or(0, |peer| peer.port())
    }
}

struct Fleet {
    servers: Vec<TestServer>,
    calls: Vec<Arc<AtomicUsize>>,
    failing: Vec<Arc<std::sync::atomic::AtomicBool>>,
    delays: Vec<Arc<std::sync::atomic::AtomicU64>>,
}

impl Fleet {
    async fn start(names: &[&str]) -> Fleet {
        let mut servers = Vec::new();
        let mut calls = Vec::new();
        let mut failing = Vec::new();
        let mut delays = Vec::new();
        for name in names {
            let delay = Arc::new(std::sync::atomic::AtomicU64::new(0));
            delays.push(delay.clone());
            let counter = Arc::new(AtomicUsize::new(0));
            let fails = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let named = Named {
                name: (*name).to_owned(),
                calls: counter.clone(),
                failing: fails.clone(),
                delay_ms: delay,
            };
            failing.push(fails);
            servers.push(
                spawn_server(prpc::Server::builder().add_service(WhoServer::new(named))).await,
            );
            calls.push(counter);
        }
        Fleet {
            servers,
            calls,
            failing,
            delays,
        }
    }

    fn endpoint(&self, index: usize) -> Endpoint {
        Endpoint::new(self.servers[index].addr).unwrap()
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        (0..self.servers.len()).map(|i| self.endpoint(i)).collect()
    }

    fn calls(&self) -> Vec<usize> {
        self.calls
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect()
    }
}

fn cluster(discovery: &StaticDiscover, algorithm: &str) -> WhoClient<Cluster> {
    WhoClient::new(
        Cluster::builder()
            .balance(algorithm.parse().unwrap())
            .build(discovery, "Who"),
    )
}

#[tokio::test]
async fn round_robin_spreads_calls_evenly_over_real_servers() {
    let fleet = Fleet::start(&["a", "b", "c"]).await;
    let discovery = StaticDiscover::new(fleet.endpoints());
    let who = cluster(&discovery, "round_robin");
    let mut answers = Vec::new();
    for _ in 0..9 {
        answers.push(who.who().await.unwrap());
    }
    assert_eq!(fleet.calls(), [3, 3, 3]);
    // In turn: no server twice in a row.
    assert!(answers.windows(2).all(|w| w[0] != w[1]), "{answers:?}");
}

#[tokio::test]
async fn smooth_weighted_round_robin_follows_the_weights_over_the_wire() {
    let fleet = Fleet::start(&["a", "b", "c"]).await;
    // Named instances: a snapshot is sorted by instance id, and nginx's sequence breaks ties
    // in that order.
    let discovery = StaticDiscover::new([
        fleet.endpoint(0).instance("a").weight(5),
        fleet.endpoint(1).instance("b").weight(1),
        fleet.endpoint(2).instance("c").weight(1),
    ]);
    let who = cluster(&discovery, "smooth_weighted_round_robin");
    let mut answers = String::new();
    for _ in 0..14 {
        answers.push_str(&who.who().await.unwrap());
    }
    assert_eq!(answers, "aabacaaaabacaa");
}

#[tokio::test]
async fn calls_with_one_hash_key_go_to_one_server() {
    let fleet = Fleet::start(&["a", "b", "c"]).await;
    let discovery = StaticDiscover::new(fleet.endpoints());
    let who = cluster(&discovery, "consistent_hash");
    let mut seen = std::collections::BTreeSet::new();
    for user in ["ada", "grace", "edsger", "barbara", "alan", "donald"] {
        let keyed = who.clone().with_options(
            prpc::CallOptions::new().hash_key(prpc::balance::hash_key(user.as_bytes())),
        );
        let first = keyed.who().await.unwrap();
        for _ in 0..5 {
            assert_eq!(keyed.who().await.unwrap(), first, "{user} moved");
        }
        seen.insert(first);
    }
    assert!(seen.len() > 1, "every key went to one server");
}

#[tokio::test]
async fn an_endpoint_that_cannot_be_dialed_is_passed_over_even_for_calls_never_retried() {
    let fleet = Fleet::start(&["a"]).await;
    // Nothing listens at the first address.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let discovery = StaticDiscover::new([Endpoint::new(dead_addr).unwrap(), fleet.endpoint(0)]);
    let who = WhoClient::new(
        Cluster::builder()
            .balance("round_robin".parse().unwrap())
            .fail_mode(FailMode::Failfast)
            .build(&discovery, "Who"),
    );
    for _ in 0..10 {
        assert_eq!(who.once().await.unwrap(), "a");
    }
    assert_eq!(fleet.calls(), [10]);
}

/// Run by `failover_loses_no_idempotent_call_when_a_server_dies_under_load` in a process of
/// its own: a server that prints its address, then serves until killed.
#[tokio::test]
#[ignore = "a child process of another test"]
async fn server_child() {
    if std::env::var("PRPC_TEST_CLUSTER_CHILD").is_err() {
        return;
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let named = Named {
        name: "child".into(),
        calls,
        failing: Default::default(),
        delay_ms: Default::default(),
    };
    let server = spawn_server(prpc::Server::builder().add_service(WhoServer::new(named))).await;
    println!("serving {}", server.addr);
    std::future::pending::<()>().await;
}

/// A server in a child process, and its address.
fn server_process() -> (std::process::Child, std::net::SocketAddr) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["server_child", "--exact", "--ignored", "--nocapture"])
        .env("PRPC_TEST_CLUSTER_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("serving ").map(str::to_owned))
        .expect("the child never served")
        .parse()
        .unwrap();
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

#[tokio::test]
async fn failover_loses_no_idempotent_call_when_a_server_dies_under_load() {
    let fleet = Fleet::start(&["a", "b"]).await;
    let (mut victim, victim_addr) = server_process();
    let mut endpoints = fleet.endpoints();
    endpoints.push(Endpoint::new(victim_addr).unwrap());
    let discovery = StaticDiscover::new(endpoints);
    let who = cluster(&discovery, "round_robin");
    // 128 calls in flight at all times, 1,536 in all; the victim dies a third of the way in.
    let mut calls = tokio::task::JoinSet::new();
    let mut answered = Vec::new();
    for i in 0..1_536u64 {
        if calls.len() >= 128 {
            answered.push(calls.join_next().await.unwrap().unwrap());
        }
        let who = who.clone();
        calls.spawn(async move { who.slow(5 + i % 10).await });
        if i == 512 {
            victim.kill().unwrap(); // SIGKILL: its connections break with calls on them
            victim.wait().unwrap();
        }
    }
    while let Some(result) = calls.join_next().await {
        answered.push(result.unwrap());
    }
    let lost: Vec<_> = answered.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        lost.is_empty(),
        "{} idempotent calls lost, e.g. {}",
        lost.len(),
        lost[0]
    );
    let by_child = answered
        .iter()
        .filter(|r| matches!(r.as_deref(), Ok("child")))
        .count();
    assert!(
        by_child > 50,
        "the victim took only {by_child} calls before it died"
    );
    // After the kill the others took every call.
    assert_eq!(fleet.calls().iter().sum::<usize>() + by_child, 1_536);
}

#[tokio::test]
async fn failtry_retries_the_endpoint_it_started_on() {
    let fleet = Fleet::start(&["a", "b"]).await;
    let discovery = StaticDiscover::new(fleet.endpoints());
    let who = WhoClient::new(
        Cluster::builder()
            .balance("round_robin".parse().unwrap())
            .fail_mode(FailMode::Failtry)
            .build(&discovery, "Who"),
    );
    // A per-attempt timeout shorter than the handler: every attempt times out, each on the
    // same server.
    let policy = prpc::retry::RetryPolicy::new(3)
        .attempt_timeout(Duration::from_millis(50))
        .backoff(Duration::from_millis(1), Duration::from_millis(2));
    let error = who
        .clone()
        .with_options(
            prpc::CallOptions::new()
                .retry(policy)
                .timeout(Duration::from_secs(5)),
        )
        .slow(1_000)
        .await
        .unwrap_err();
    assert!(matches!(error, prpc::Error::Timeout { .. }), "{error}");
    let calls = fleet.calls();
    assert!(calls == [3, 0] || calls == [0, 3], "{calls:?}");
}

#[tokio::test]
async fn failover_retries_go_to_servers_not_yet_tried() {
    let fleet = Fleet::start(&["a", "b", "c"]).await;
    let discovery = StaticDiscover::new(fleet.endpoints());
    let who = cluster(&discovery, "random");
    let policy = prpc::retry::RetryPolicy::new(3)
        .attempt_timeout(Duration::from_millis(50))
        .backoff(Duration::from_millis(1), Duration::from_millis(2));
    let _ = who
        .clone()
        .with_options(
            prpc::CallOptions::new()
                .retry(policy)
                .timeout(Duration::from_secs(5)),
        )
        .slow(1_000)
        .await;
    assert_eq!(fleet.calls(), [1, 1, 1]);
}

#[tokio::test]
async fn an_endpoint_removed_from_discovery_is_drained_not_cut() {
    let fleet = Fleet::start(&["a", "b"]).await;
    let discovery = StaticDiscover::new([fleet.endpoint(0)]);
    let who = cluster(&discovery, "round_robin");
    assert_eq!(who.who().await.unwrap(), "a");
    let in_flight = tokio::spawn({
        let who = who.clone();
        async move { who.slow(300).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    discovery.set([fleet.endpoint(1)]);
    // New calls go to the one left, at once.
    timeout(PATIENCE, async {
        while who.who().await.unwrap() != "b" {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    // The call on the one removed finishes on it.
    assert_eq!(in_flight.await.unwrap().unwrap(), "a");
}

#[tokio::test]
async fn with_no_endpoint_a_call_fails_with_unavailable() {
    let discovery = StaticDiscover::new([]);
    let who = cluster(&discovery, "p2c");
    let error = who.who().await.unwrap_err();
    assert_eq!(error.code(), prpc::Code::Unavailable);
    assert!(error.to_string().contains("no endpoint of Who"), "{error}");
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_the_next_call_opens_another() {
    let fleet = Fleet::start(&["a"]).await;
    let discovery = StaticDiscover::new(fleet.endpoints());
    let who = WhoClient::new(
        Cluster::builder()
            .idle_timeout(Duration::from_millis(100))
            .build(&discovery, "Who"),
    );
    let first = who.port().await.unwrap();
    // Busy: the same connection.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(who.port().await.unwrap(), first);
    }
    // Idle for ten times the timeout: closed, and the next call dials anew.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_ne!(who.port().await.unwrap(), first);
}

#[tokio::test]
async fn a_failing_endpoint_trips_its_breaker_and_comes_back_after_the_open_timeout() {
    use prpc::cluster::{BreakerConfig, BreakerState};
    let fleet = Fleet::start(&["a", "b"]).await;
    let discovery = StaticDiscover::new(fleet.endpoints());
    let who = WhoClient::new(
        Cluster::builder()
            .balance("round_robin".parse().unwrap())
            .breaker(
                BreakerConfig::default()
                    .consecutive_failures(3)
                    .open_timeout(Duration::from_millis(300)),
            )
            .build(&discovery, "Who"),
    );
    let breaker_of = |name: usize| {
        let address = fleet.endpoint(name).address;
        who.channel()
            .endpoint_stats()
            .into_iter()
            .find(|stats| stats.endpoint.address == address)
            .unwrap()
            .breaker
    };
    fleet.failing[0].store(true, Ordering::SeqCst);
    // Round robin: every other call reaches a and fails, until its third failure trips it.
    let mut failures = 0;
    for _ in 0..6 {
        if who.health().await.is_err() {
            failures += 1;
        }
    }
    assert_eq!(failures, 3);
    assert_eq!(breaker_of(0).state, BreakerState::Open);
    assert_eq!(breaker_of(0).trips, 1);
    // Open: a takes nothing, b takes everything.
    let before = fleet.calls();
    for _ in 0..10 {
        assert_eq!(who.health().await.unwrap(), "b");
    }
    assert_eq!(fleet.calls()[0], before[0]);

    // a recovers; after the open timeout a trial call reaches it and closes the breaker.
    fleet.failing[0].store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut answers = std::collections::BTreeSet::new();
    for _ in 0..6 {
        answers.insert(who.health().await.unwrap());
    }
    assert!(
        answers.contains("a"),
        "a never took a call again: {answers:?}"
    );
    assert_eq!(breaker_of(0).state, BreakerState::Closed);
}

#[tokio::test]
async fn the_retry_budget_stops_retries_while_a_service_keeps_failing() {
    let attempts = async |budget: bool| {
        let fleet = Fleet::start(&["a"]).await;
        fleet.failing[0].store(true, Ordering::SeqCst);
        let discovery = StaticDiscover::new(fleet.endpoints());
        let mut builder = Cluster::builder()
            .breaker(
                prpc::cluster::BreakerConfig::default()
                    .consecutive_failures(0)
                    .without_failure_ratio(),
            )
            // A reserve of 5, a fifth of a retry per call, no refill by time.
            .retry_budget(0.2, 5, 0);
        if !budget {
            builder = builder.without_retry_budget();
        }
        let who = WhoClient::new(builder.build(&discovery, "Who")).with_options(
            prpc::CallOptions::new().retry(
                prpc::retry::RetryPolicy::new(3)
                    .backoff(Duration::from_millis(1), Duration::from_millis(1)),
            ),
        );
        for _ in 0..20 {
            assert!(who.health().await.is_err());
        }
        fleet.calls()[0]
    };
    assert_eq!(attempts(false).await, 60);
    // The reserve's 5 retries and a fifth of one per call (4): 29 attempts at most.
    let with_budget = attempts(true).await;
    assert!((25..=29).contains(&with_budget), "{with_budget} attempts");
}

fn backup_cluster(fleet: &Fleet, delay: Option<Duration>) -> (StaticDiscover, WhoClient<Cluster>) {
    // Named instances, so round robin starts at a.
    let discovery = StaticDiscover::new([
        fleet.endpoint(0).instance("a"),
        fleet.endpoint(1).instance("b"),
    ]);
    let mut builder = Cluster::builder()
        .balance("round_robin".parse().unwrap())
        .fail_mode(FailMode::Backup);
    if let Some(delay) = delay {
        builder = builder.hedge_delay(delay);
    }
    let who = WhoClient::new(builder.build(&discovery, "Who"));
    (discovery, who)
}

#[tokio::test]
async fn a_slow_first_attempt_gets_a_backup_request_on_another_endpoint() {
    let fleet = Fleet::start(&["a", "b"]).await;
    fleet.delays[0].store(5_000, Ordering::SeqCst);
    let (_discovery, who) = backup_cluster(&fleet, Some(Duration::from_millis(20)));
    let answer = timeout(PATIENCE, who.lagging()).await.unwrap().unwrap();
    // a holds its call for 5 s; b answered the backup request.
    assert_eq!(answer, "b");
    assert_eq!(fleet.calls(), [1, 1]);
}

#[tokio::test]
async fn without_a_fixed_delay_the_backup_waits_the_methods_p95() {
    let fleet = Fleet::start(&["a", "b"]).await;
    let (_discovery, who) = backup_cluster(&fleet, None);
    // Fast calls teach the cluster the method's p95 (under a few milliseconds).
    for _ in 0..30 {
        who.lagging().await.unwrap();
    }
    // Each took its turns; on a loaded machine a call slower than the p95 learned so far
    // also sent a backup, so a count may be above 15.
    let learned = fleet.calls();
    assert!(learned.iter().all(|&calls| calls >= 15), "{learned:?}");
    fleet.delays[0].store(5_000, Ordering::SeqCst);
    // Round robin sends one of the next two to a, which now lags: its backup goes to b.
    for _ in 0..2 {
        let answer = timeout(PATIENCE, who.lagging()).await.unwrap().unwrap();
        assert_eq!(answer, "b");
    }
    // a took at least one of them (and lags 5 s, so answering "a" would have been it).
    assert!(fleet.calls()[0] > learned[0], "{:?}", fleet.calls());
}

#[tokio::test]
async fn backup_requests_are_not_sent_for_calls_that_are_never_retried() {
    let fleet = Fleet::start(&["a", "b"]).await;
    let (_discovery, who) = backup_cluster(&fleet, Some(Duration::from_millis(1)));
    for _ in 0..10 {
        who.once().await.unwrap();
    }
    // Not idempotent, no retry policy: one attempt each.
    assert_eq!(fleet.calls().iter().sum::<usize>(), 10);
}

fn mode_cluster(fleet: &Fleet, mode: FailMode) -> (StaticDiscover, Cluster) {
    let discovery = StaticDiscover::new(fleet.endpoints());
    let cluster = Cluster::builder().fail_mode(mode).build(&discovery, "Who");
    (discovery, cluster)
}

#[tokio::test]
async fn broadcast_reaches_every_endpoint_and_fails_if_any_fails() {
    let fleet = Fleet::start(&["a", "b", "c"]).await;
    let (_discovery, cluster) = mode_cluster(&fleet, FailMode::Broadcast);
    let who = WhoClient::new(cluster.clone());
    // Not idempotent, yet every server runs it: each copy is a call of its own.
    let answer = who.once().await.unwrap();
    assert!(["a", "b", "c"].contains(&answer.as_str()));
    assert_eq!(fleet.calls(), [1, 1, 1]);

    fleet.failing[1].store(true, Ordering::SeqCst);
    let error = who.health().await.unwrap_err();
    assert_eq!(error.code(), prpc::Code::Unavailable);
    assert_eq!(fleet.calls(), [2, 2, 2]);

    // The lower-level call returns every endpoint's result.
    let call = prpc::Call::new(
        "Who",
        "health",
        prpc::Format::Json,
        bytes::Bytes::from_static(b"{}"),
    );
    let results = cluster.broadcast(call).await;
    assert_eq!(results.len(), 3);
    let failed: Vec<_> = results
        .iter()
        .filter(|(_, result)| result.is_err())
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, fleet.endpoint(1));
}

#[tokio::test]
async fn fork_answers_with_the_first_success_and_fails_only_if_all_fail() {
    let fleet = Fleet::start(&["a", "b", "c"]).await;
    fleet.delays[0].store(5_000, Ordering::SeqCst);
    fleet.delays[2].store(5_000, Ordering::SeqCst);
    let (_discovery, cluster) = mode_cluster(&fleet, FailMode::Fork);
    let who = WhoClient::new(cluster);
    // a and c lag: b's answer wins, well before theirs.
    let answer = timeout(PATIENCE, who.lagging()).await.unwrap().unwrap();
    assert_eq!(answer, "b");
    // A failure does not end the call while another endpoint may succeed.
    fleet.failing[0].store(true, Ordering::SeqCst);
    fleet.failing[2].store(true, Ordering::SeqCst);
    assert_eq!(who.health().await.unwrap(), "b");
    // Only when every endpoint fails does the call fail.
    fleet.failing[1].store(true, Ordering::SeqCst);
    let error = who.health().await.unwrap_err();
    assert_eq!(error.code(), prpc::Code::Unavailable);
}

#[tokio::test]
async fn a_method_may_have_a_fail_mode_of_its_own() {
    let fleet = Fleet::start(&["a", "b", "c"]).await;
    let discovery = StaticDiscover::new(fleet.endpoints());
    let cluster = Cluster::builder()
        .balance("round_robin".parse().unwrap())
        .method_fail_mode("once", FailMode::Broadcast)
        .build(&discovery, "Who");
    let who = WhoClient::new(cluster);
    who.once().await.unwrap();
    assert_eq!(fleet.calls(), [1, 1, 1], "once is broadcast");
    who.who().await.unwrap();
    assert_eq!(
        fleet.calls().iter().sum::<usize>(),
        4,
        "who goes to one server"
    );
}

/// A source that answers only after a while, as a registry across the network does.
struct Late {
    endpoints: Vec<Endpoint>,
    publishers: prpc::discovery::Publishers,
}

impl prpc::discovery::Discover for Late {
    fn watch(&self, service: &str) -> prpc::discovery::Watch {
        self.publishers.watch(service, |publisher| {
            let endpoints = self.endpoints.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                publisher.publish(endpoints);
                publisher.closed().await;
            });
        })
    }
}

#[tokio::test]
async fn the_first_calls_of_a_new_cluster_wait_for_discovery_to_answer() {
    let fleet = Fleet::start(&["a"]).await;
    let late = Late {
        endpoints: fleet.endpoints(),
        publishers: prpc::discovery::Publishers::new("late"),
    };
    let who = WhoClient::new(Cluster::builder().build(&late, "Who"));
    assert_eq!(who.who().await.unwrap(), "a");
}

#[tokio::test]
async fn a_cluster_rate_limit_refuses_calls_over_it_before_they_leave() {
    let fleet = Fleet::start(&["a"]).await;
    let discovery = StaticDiscover::new(fleet.endpoints());
    // One a second after a burst of three: the burst takes milliseconds.
    let who = WhoClient::new(
        Cluster::builder()
            .rate_limit(prpc::rate::Rate::per_second(1).burst(3))
            .build(&discovery, "Who"),
    );
    for _ in 0..3 {
        who.who().await.unwrap();
    }
    let error = who.who().await.unwrap_err();
    assert_eq!(error.code(), prpc::Code::ResourceExhausted);
    let wait = error
        .status()
        .unwrap()
        .metadata()
        .get(prpc::retry::RETRY_AFTER_MS)
        .map(|value| std::str::from_utf8(&value).unwrap().parse::<u64>().unwrap())
        .unwrap();
    assert!((1..=1_000).contains(&wait), "{wait} ms");
    assert_eq!(fleet.calls(), [3], "a refused call reached the server");
}
