//! prpc-etcd against a real etcd: registration through the server builder, withdrawal on
//! graceful shutdown and on a registrant's death, etcd restarts, and a watcher that loses
//! its connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prpc::discovery::{
    Discover, Endpoint, Register, Registered, Registration, RegistrationState, Snapshot, Watch,
};
use prpc_etcd::EtcdRegistry;
use prpc_tests::etcd::EtcdServer;
use prpc_tests::proxy::Proxy;
use prpc_tests::{PATIENCE, Probe, TestServer, spawn_server};

/// Waits (bounded by `within`) until the watch's snapshot satisfies `ready`.
async fn wait_for(
    watch: &mut Watch,
    within: Duration,
    what: &str,
    ready: impl Fn(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    let mut receiver = watch.receiver();
    let waited = tokio::time::timeout(within, receiver.wait_for(|snapshot| ready(snapshot))).await;
    match waited {
        Ok(Ok(snapshot)) => snapshot.clone(),
        Ok(Err(_)) => panic!("the source stopped while waiting for {what}"),
        Err(_) => panic!(
            "no snapshot with {what} within {within:?}; last: {:?}, stats: {:?}",
            watch.current(),
            watch.stats()
        ),
    }
}

/// Waits (bounded by [`PATIENCE`]) until the watch's source health is `healthy`.
async fn wait_healthy(watch: &Watch, healthy: bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while watch.stats().healthy != healthy {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the source's health stayed {}: {:?}",
            !healthy,
            watch.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A prpc server registered as an instance of `svc` with this TTL.
async fn registered_server(etcd: &EtcdRegistry, weight: u32, ttl: Duration) -> TestServer {
    let (probe, _) = Probe::new("probe");
    let builder = prpc::Server::builder()
        .add_service(probe)
        .register(
            etcd.clone(),
            "svc",
            weight,
            [("version", "1.4"), ("zone", "z1")],
        )
        .registration_ttl(ttl);
    spawn_server(builder).await
}

fn address_of(server: &TestServer) -> String {
    format!("tcp://{}", server.addr)
}

#[tokio::test]
async fn a_registered_server_appears_with_its_address_weight_and_tags() {
    let etcd_server = EtcdServer::start();
    let etcd = EtcdRegistry::new(&etcd_server.url()).unwrap();
    let mut watch = etcd.watch("svc");
    let first = tokio::time::timeout(PATIENCE, watch.ready())
        .await
        .unwrap()
        .unwrap();
    assert!(first.is_empty());

    let server = registered_server(&etcd, 3, Duration::from_secs(30)).await;
    let snapshot = wait_for(&mut watch, PATIENCE, "one endpoint", |s| s.len() == 1).await;
    let endpoint = &snapshot.endpoints[0];
    assert_eq!(endpoint.address.to_string(), address_of(&server));
    assert_eq!(endpoint.weight, 3);
    assert_eq!(endpoint.zone.as_deref(), Some("z1"));
    assert_eq!(
        endpoint.tags.get("version").map(String::as_str),
        Some("1.4")
    );
    assert!(watch.stats().healthy);
    assert_eq!(watch.stats().source, "etcd");
}

#[tokio::test]
async fn graceful_shutdown_withdraws_the_server_at_once() {
    let etcd_server = EtcdServer::start();
    let etcd = EtcdRegistry::new(&etcd_server.url()).unwrap();
    let mut watch = etcd.watch("svc");
    // A TTL far beyond the wait below: only the deregistration can remove it in time.
    let ttl = Duration::from_secs(120);
    let server = registered_server(&etcd, 1, ttl).await;
    wait_for(&mut watch, PATIENCE, "the server", |s| s.len() == 1).await;
    // The watcher may see the key before the registrant has read etcd's answer to its put;
    // a shutdown in that moment cancels the registration attempt, lease unknown, and the key
    // stays until its TTL (prpc's `Registered` does not finish an attempt it was stopped in).
    // Give the answer ample time to arrive.
    tokio::time::sleep(Duration::from_secs(1)).await;

    server.shutdown.shutdown();
    wait_for(&mut watch, PATIENCE, "no endpoint", Snapshot::is_empty).await;
    tokio::time::timeout(PATIENCE, server.serving)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}

/// Not a test: the registrant process of `a_killed_registrant_lapses_after_its_ttl`, which
/// runs this test binary again with this test alone.
#[test]
#[ignore = "a helper process, started by a_killed_registrant_lapses_after_its_ttl"]
fn registrant_process() {
    let Ok(url) = std::env::var("PRPC_ETCD_REGISTRANT_URL") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let etcd = EtcdRegistry::new(&url).unwrap();
        let _server = registered_server(&etcd, 7, REGISTRANT_TTL).await;
        std::future::pending::<()>().await;
    });
}

const REGISTRANT_TTL: Duration = Duration::from_secs(2);

#[tokio::test]
async fn a_killed_registrant_lapses_after_its_ttl() {
    let etcd_server = EtcdServer::start();
    let etcd = EtcdRegistry::new(&etcd_server.url()).unwrap();
    let mut watch = etcd.watch("svc");
    let mut registrant = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["registrant_process", "--exact", "--ignored", "--nocapture"])
        .env("PRPC_ETCD_REGISTRANT_URL", etcd_server.url())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let seen = wait_for(&mut watch, PATIENCE * 3, "the registrant", |s| s.len() == 1).await;
    assert_eq!(seen.endpoints[0].weight, 7);

    // SIGKILL: no deregistration, only the lease's lapse removes it.
    registrant.kill().unwrap();
    registrant.wait().unwrap();
    wait_for(
        &mut watch,
        REGISTRANT_TTL * 10,
        "the lapse",
        Snapshot::is_empty,
    )
    .await;
}

#[tokio::test]
async fn registrar_and_watcher_survive_an_etcd_restart() {
    let mut etcd_server = EtcdServer::start();
    let etcd = EtcdRegistry::builder()
        .url(&etcd_server.url())
        .request_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let watcher = EtcdRegistry::new(&etcd_server.url()).unwrap();
    let mut watch = watcher.watch("svc");
    let ttl = Duration::from_secs(2);
    let server = registered_server(&etcd, 1, ttl).await;
    let before = wait_for(&mut watch, PATIENCE, "the server", |s| s.len() == 1).await;

    etcd_server.stop();
    wait_healthy(&watch, false).await;
    assert_eq!(
        watch.current().endpoints,
        before.endpoints,
        "the last set is kept"
    );
    let stats = watch.stats();
    assert!(
        stats.last_error.is_some() && stats.failures > 0,
        "{stats:?}"
    );

    etcd_server.restart();
    wait_healthy(&watch, true).await;
    assert!(watch.stats().resyncs >= 1);
    // Past several TTLs, the registration is still there: it was renewed (or made again).
    tokio::time::sleep(ttl * 3).await;
    let after = wait_for(&mut watch, PATIENCE, "the server", |s| s.len() == 1).await;
    assert_eq!(after.endpoints[0].address.to_string(), address_of(&server));

    // And changes after the restart are seen.
    let second = registered_server(&etcd, 2, ttl).await;
    let both = wait_for(&mut watch, PATIENCE, "both servers", |s| s.len() == 2).await;
    assert!(
        both.endpoints
            .iter()
            .any(|e| e.address.to_string() == address_of(&second))
    );
}

#[tokio::test]
async fn registrar_and_watcher_survive_an_etcd_that_lost_its_data() {
    let mut etcd_server = EtcdServer::start();
    let etcd = EtcdRegistry::new(&etcd_server.url()).unwrap();
    let mut watch = etcd.watch("svc");
    let ttl = Duration::from_secs(2);
    let server = registered_server(&etcd, 1, ttl).await;
    wait_for(&mut watch, PATIENCE, "the server", |s| s.len() == 1).await;
    // Revisions past what the fresh etcd will have, so that it must be read afresh.
    let other = Registration::new("svc", Endpoint::new("127.0.0.1:1").unwrap(), ttl);
    for _ in 0..5 {
        let lease = etcd.register(&other).await.unwrap();
        etcd.deregister(&other, &lease).await.unwrap();
    }

    etcd_server.restart_empty();
    // The registrar's next renewal finds its lease unknown and registers again; the watcher
    // sees etcd's revisions went back and reads the prefix afresh.
    let back = wait_for(&mut watch, PATIENCE, "the server again", |s| s.len() == 1).await;
    assert_eq!(back.endpoints[0].address.to_string(), address_of(&server));
    let extra = Registered::start(Arc::new(etcd.clone()), other.clone());
    wait_for(&mut watch, PATIENCE, "a new instance", |s| s.len() == 2).await;
    drop(extra);
    wait_for(&mut watch, PATIENCE, "one instance again", |s| s.len() == 1).await;
}

#[tokio::test]
async fn a_reconnecting_watcher_misses_no_change_and_replays_none() {
    let etcd_server = EtcdServer::start();
    let etcd = EtcdRegistry::new(&etcd_server.url()).unwrap();
    let etcd_addr: SocketAddr = etcd_server.url()["http://".len()..].parse().unwrap();
    // The watcher reaches etcd through a proxy that can cut it off.
    let proxy = Proxy::start(etcd_addr).await;
    let watcher = EtcdRegistry::new(&format!("http://{}", proxy.addr)).unwrap();
    let mut watch = watcher.watch("svc");

    // Every snapshot the watcher publishes, as (version, weight of instance "a", instances).
    let mut receiver = watch.receiver();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = tokio::spawn({
        let seen = seen.clone();
        async move {
            loop {
                {
                    let snapshot = receiver.borrow_and_update();
                    let weight = snapshot.get("a").map(|e| e.weight);
                    seen.lock()
                        .unwrap()
                        .push((snapshot.version, weight, snapshot.len()));
                }
                if receiver.changed().await.is_err() {
                    return;
                }
            }
        }
    });

    // Instance "a" changes weight at each step: 1..=5 while the watcher is connected,
    // 6..=10 while it is cut off. "b" comes while it is cut off; "c" comes and goes.
    let ttl = Duration::from_secs(60);
    let registration = |name: &str, weight: u32| {
        Registration::new(
            "svc",
            Endpoint::new("127.0.0.1:9")
                .unwrap()
                .instance(name)
                .weight(weight),
            ttl,
        )
    };
    let mut leases = Vec::new();
    for weight in 1..=5 {
        leases.push(etcd.register(&registration("a", weight)).await.unwrap());
        wait_for(&mut watch, PATIENCE, "a's new weight", |s| {
            s.get("a").map(|e| e.weight) == Some(weight)
        })
        .await;
    }
    let connected_version = watch.current().version;

    proxy.switch("127.0.0.1:1".parse().unwrap());
    wait_healthy(&watch, false).await;
    for weight in 6..=10 {
        leases.push(etcd.register(&registration("a", weight)).await.unwrap());
    }
    let b = registration("b", 1);
    etcd.register(&b).await.unwrap();
    let c = registration("c", 1);
    let c_lease = etcd.register(&c).await.unwrap();
    etcd.deregister(&c, &c_lease).await.unwrap();
    let changes_while_away = 5 + 1 + 2;

    proxy.switch(etcd_addr);
    let back = wait_for(&mut watch, PATIENCE, "every change made while away", |s| {
        s.get("a").map(|e| e.weight) == Some(10) && s.get("b").is_some()
    })
    .await;
    wait_healthy(&watch, true).await;
    // Let anything replayed arrive before judging.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        watch.current().version,
        back.version,
        "nothing after the last change"
    );
    assert_eq!(back.len(), 2, "c came and went: {back:?}");
    assert!(
        back.version - connected_version <= changes_while_away,
        "{} versions for {changes_while_away} changes",
        back.version - connected_version
    );

    recorder.abort();
    let seen = seen.lock().unwrap();
    // No snapshot ever went back to an older weight of "a": no event applied twice.
    let weights: Vec<u32> = seen.iter().filter_map(|(_, weight, _)| *weight).collect();
    assert!(weights.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
}

/// How long the hang test lets a watch stay silent, and a call take: a hang must be noticed
/// within their sum.
const CHECK_INTERVAL: Duration = Duration::from_millis(200);
const CALL_TIMEOUT: Duration = Duration::from_millis(300);

#[tokio::test]
async fn a_hung_etcd_is_noticed_and_the_watch_resumes_when_it_answers_again() {
    let etcd_server = EtcdServer::start();
    let etcd = EtcdRegistry::new(&etcd_server.url()).unwrap();
    let impatient = EtcdRegistry::builder()
        .url(&etcd_server.url())
        .watch_check_interval(CHECK_INTERVAL)
        .request_timeout(CALL_TIMEOUT)
        .build()
        .unwrap();
    let mut watch = impatient.watch("svc");
    // A TTL well beyond the pause below, renewed every 2 s.
    let registration = Registration::new(
        "svc",
        Endpoint::new("127.0.0.1:9").unwrap().instance("a"),
        Duration::from_secs(6),
    );
    let mut registered = Registered::start(Arc::new(impatient.clone()), registration);
    registered.wait_registered().await;
    wait_for(&mut watch, PATIENCE, "the registration", |s| s.len() == 1).await;

    // SIGSTOP: the connections stay open and the kernel acknowledges what is sent, but
    // etcd answers nothing: only the check of a silent watch can tell.
    etcd_server.pause();
    let paused = tokio::time::Instant::now();
    let bound = (CHECK_INTERVAL + CALL_TIMEOUT) * 10;
    while watch.stats().healthy {
        assert!(
            paused.elapsed() < bound,
            "the watcher stayed healthy for {bound:?} while etcd hung"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(watch.current().len(), 1, "the last set is kept");
    // The registrar's renewal (every 2 s) gives up after the call timeout rather than wait.
    let renewal_bound = Duration::from_secs(2) + CALL_TIMEOUT * 10;
    while !matches!(registered.state(), RegistrationState::Failing(_)) {
        assert!(
            paused.elapsed() < renewal_bound,
            "the registrar did not notice the hang: {:?}",
            registered.state()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    etcd_server.resume();
    wait_healthy(&watch, true).await;
    let other = Registration::new(
        "svc",
        Endpoint::new("127.0.0.1:10").unwrap().instance("b"),
        Duration::from_secs(60),
    );
    etcd.register(&other).await.unwrap();
    wait_for(&mut watch, PATIENCE, "a change after the hang", |s| {
        s.get("a").is_some() && s.get("b").is_some()
    })
    .await;
    registered.wait_registered().await;
}

/// Records the watch events prpc-etcd applies, as (key, revision), from its trace events:
/// a thread's subscriber, so with a current-thread runtime it sees this test's tasks alone.
struct AppliedEvents(Arc<std::sync::Mutex<Vec<(String, i64)>>>);

impl tracing::Subscriber for AppliedEvents {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("prpc_etcd")
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        #[derive(Default)]
        struct Fields {
            message: String,
            key: String,
            revision: i64,
        }
        impl tracing::field::Visit for Fields {
            fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
                if field.name() == "revision" {
                    self.revision = value;
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.message = format!("{value:?}"),
                    "key" => self.key = format!("{value:?}"),
                    _ => {}
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message == "applying a watch event" {
            self.0.lock().unwrap().push((fields.key, fields.revision));
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn a_watch_resumed_after_a_cut_applies_each_change_exactly_once() {
    // Progress notifications often, so that the watch's resume revision moves past its last
    // event too, as it does in a busy cluster.
    let etcd_server =
        EtcdServer::start_with(&["--experimental-watch-progress-notify-interval=100ms"]);
    let etcd = EtcdRegistry::new(&etcd_server.url()).unwrap();
    let etcd_addr: SocketAddr = etcd_server.url()["http://".len()..].parse().unwrap();
    let proxy = Proxy::start(etcd_addr).await;
    let applied = Arc::new(std::sync::Mutex::new(Vec::new()));
    let _capture = tracing::subscriber::set_default(AppliedEvents(applied.clone()));
    let watcher = EtcdRegistry::new(&format!("http://{}", proxy.addr)).unwrap();
    let mut watch = watcher.watch("svc");
    tokio::time::timeout(PATIENCE, watch.ready())
        .await
        .unwrap()
        .unwrap();

    // Each (instance, seq) the watcher publishes, in order: every change bumps `seq`.
    let mut receiver = watch.receiver();
    let published = Arc::new(std::sync::Mutex::new(Vec::<(String, u64)>::new()));
    let recorder = tokio::spawn({
        let published = published.clone();
        async move {
            let mut last = std::collections::BTreeMap::new();
            loop {
                for endpoint in &receiver.borrow_and_update().endpoints {
                    let seq: u64 = endpoint.tags["seq"].parse().unwrap();
                    if last.insert(endpoint.instance.clone(), seq) != Some(seq) {
                        published
                            .lock()
                            .unwrap()
                            .push((endpoint.instance.clone(), seq));
                    }
                }
                if receiver.changed().await.is_err() {
                    return;
                }
            }
        }
    });

    let mut seq = 0;
    let mut change = async |instance: &str| {
        seq += 1;
        let endpoint = Endpoint::new("127.0.0.1:9")
            .unwrap()
            .instance(instance)
            .tag("seq", seq.to_string());
        let registration = Registration::new("svc", endpoint, Duration::from_secs(60));
        let lease = etcd.register(&registration).await.unwrap();
        (seq, registration, lease)
    };
    let seq_of = |snapshot: &Snapshot, instance: &str| {
        snapshot
            .get(instance)
            .map(|e| e.tags["seq"].parse::<u64>().unwrap())
    };

    // Connected: four changes, all delivered; the first cut comes right after the last.
    for instance in ["a", "b", "a", "b"] {
        change(instance).await;
    }
    wait_for(&mut watch, PATIENCE, "b at seq 4", |s| {
        seq_of(s, "b") == Some(4)
    })
    .await;
    proxy.switch("127.0.0.1:1".parse().unwrap());
    wait_healthy(&watch, false).await;
    // Away: a changes, c comes and goes.
    change("a").await;
    let (_, c, c_lease) = change("c").await;
    etcd.deregister(&c, &c_lease).await.unwrap();
    proxy.switch(etcd_addr);
    wait_for(&mut watch, PATIENCE, "the changes made while away", |s| {
        seq_of(s, "a") == Some(5) && s.get("c").is_none()
    })
    .await;
    wait_healthy(&watch, true).await;

    // The second cut comes after revisions moved on outside the watched prefix and a
    // progress notification moved the watch's resume revision past its last event.
    let elsewhere = Registration::new(
        "other",
        Endpoint::new("127.0.0.1:9").unwrap(),
        Duration::from_secs(60),
    );
    for _ in 0..3 {
        etcd.register(&elsewhere).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.switch("127.0.0.1:1".parse().unwrap());
    wait_healthy(&watch, false).await;
    change("b").await;
    proxy.switch(etcd_addr);
    wait_for(&mut watch, PATIENCE, "the change made while away", |s| {
        seq_of(s, "b") == Some(7)
    })
    .await;
    change("a").await;
    wait_for(&mut watch, PATIENCE, "a change after the cuts", |s| {
        seq_of(s, "a") == Some(8)
    })
    .await;
    // Let anything replayed arrive before judging.
    tokio::time::sleep(Duration::from_millis(300)).await;
    recorder.abort();

    // Every change to the prefix is one event: 8 puts and c's deletion, each applied once,
    // in revision order.
    let applied = applied.lock().unwrap().clone();
    let in_prefix: Vec<&(String, i64)> = applied
        .iter()
        .filter(|(key, _)| key.contains("/svc/"))
        .collect();
    assert_eq!(in_prefix.len(), 9, "{applied:?}");
    assert!(
        in_prefix.windows(2).all(|pair| pair[0].1 < pair[1].1),
        "an event applied twice or out of order: {applied:?}"
    );
    // Each (instance, seq) was published once, and each instance's seqs only went up.
    let published = published.lock().unwrap().clone();
    for instance in ["a", "b"] {
        let seqs: Vec<u64> = published
            .iter()
            .filter(|(name, _)| name == instance)
            .map(|&(_, seq)| seq)
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{published:?}");
    }
    assert_eq!(
        published.iter().filter(|(name, _)| name == "c").count(),
        published.iter().any(|(name, _)| name == "c") as usize,
        "{published:?}"
    );
}

#[tokio::test]
async fn a_key_deleted_or_replaced_behind_the_registrar_is_put_back() {
    use base64::Engine as _;
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);

    let etcd_server = EtcdServer::start();
    let etcd = EtcdRegistry::new(&etcd_server.url()).unwrap();
    let mut watch = etcd.watch("svc");
    // Renewed every second; only the renewal's check can restore the key that fast.
    let endpoint = Endpoint::new("127.0.0.1:9")
        .unwrap()
        .instance("a")
        .weight(2);
    let registration = Registration::new("svc", endpoint.clone(), Duration::from_secs(3));
    let mut registered = Registered::start(Arc::new(etcd.clone()), registration);
    registered.wait_registered().await;
    let key = base64(etcd.key("svc", "a").unwrap().as_bytes());
    let first = wait_for(&mut watch, PATIENCE, "the registration", |s| s.len() == 1).await;

    // Deleted: the watcher sees it go (one version), then come back (another).
    let deleted = etcd_server.post("/v3/kv/deleterange", &format!(r#"{{"key":"{key}"}}"#));
    assert!(deleted.contains(r#""deleted":"1""#), "{deleted}");
    let back = wait_for(&mut watch, PATIENCE, "the key put back", |s| {
        s.version >= first.version + 2 && s.len() == 1
    })
    .await;
    assert_eq!(back.endpoints[0], endpoint);

    // Replaced by a value of someone else's, with no lease (it would outlive the server).
    let mut other = endpoint.clone().weight(9);
    other.tags.insert("by".into(), "hand".into());
    let value = base64(&serde_json::to_vec(&other).unwrap());
    let put = etcd_server.post(
        "/v3/kv/put",
        &format!(r#"{{"key":"{key}","value":"{value}"}}"#),
    );
    assert!(put.starts_with("HTTP/1.1 200"), "{put}");
    let restored = wait_for(&mut watch, PATIENCE, "the value put back", |s| {
        s.version >= back.version + 2 && s.get("a").is_some_and(|e| e.weight == 2)
    })
    .await;
    assert_eq!(restored.endpoints[0], endpoint);
    let read = etcd_server.post("/v3/kv/range", &format!(r#"{{"key":"{key}"}}"#));
    assert!(read.contains(r#""lease":""#), "under a lease again: {read}");
    assert_eq!(registered.state(), RegistrationState::Registered);

    // And the registrar's withdrawal still deletes it.
    registered.deregister().await;
    wait_for(&mut watch, PATIENCE, "no endpoint", Snapshot::is_empty).await;
}
