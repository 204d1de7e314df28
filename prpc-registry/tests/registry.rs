//! The built-in registry against real servers: in-process and as its own process, with
//! registrants that shut down, die with SIGKILL, and outlive a registry restart.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prpc::discovery::{
    Discover, Endpoint, Lease, Register, RegisterFuture, Registration, Snapshot, Watch,
};
use prpc::transport::Address;
use prpc_registry::{Registry, RegistryApiClient, RegistryClient};
use prpc_tests::proxy::Proxy;
use tokio::time::timeout;

#[prpc::service]
pub trait Echo {
    async fn echo(&self, text: String) -> String;
}

struct Parrot;

impl Echo for Parrot {
    async fn echo(&self, text: String) -> String {
        text
    }
}

/// Generous bound on waits for something that should happen within milliseconds.
const SOON: Duration = Duration::from_secs(10);

/// A registry hosted in this process.
async fn registry_in_process() -> (Address, prpc::server::ShutdownHandle) {
    let server = prpc::Server::builder()
        .add_service(Registry::default().warm_up(Duration::ZERO).service())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let address = server.local_addr();
    let handle = server.shutdown_handle();
    tokio::spawn(server.serve());
    (address, handle)
}

/// A registry with these bounds (and no warm-up), served in this process.
async fn serve_registry(limits: prpc_registry::Limits) -> (Registry, Address) {
    let registry = Registry::new(limits).warm_up(Duration::ZERO);
    let server = prpc::Server::builder()
        .add_service(registry.service())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let address = server.local_addr();
    tokio::spawn(server.serve());
    (registry, address)
}

/// An echo server registered as `service` with `registry`.
async fn registered_server(
    registry: impl Register,
    service: &str,
    ttl: Duration,
) -> (
    Address,
    prpc::server::ShutdownHandle,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let server = prpc::Server::builder()
        .add_service(EchoServer::new(Parrot))
        .register(registry, service, 3, [("zone", "z1"), ("version", "1.2")])
        .registration_ttl(ttl)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let address = server.local_addr();
    let handle = server.shutdown_handle();
    (address, handle, tokio::spawn(server.serve()))
}

/// Waits until the watch's snapshot satisfies `done`.
async fn until(watch: &mut Watch, done: impl Fn(&Snapshot) -> bool) -> Arc<Snapshot> {
    timeout(SOON, async {
        loop {
            let snapshot = watch.current();
            if done(&snapshot) {
                return snapshot;
            }
            watch.changed().await.expect("source stopped");
        }
    })
    .await
    .expect("the snapshot never got there")
}

fn holds(snapshot: &Snapshot, address: &Address) -> bool {
    snapshot.endpoints.iter().any(|e| &e.address == address)
}

#[tokio::test]
async fn a_server_appears_with_its_weight_and_tags_and_goes_at_once_on_shutdown() {
    let (registry, _registry) = registry_in_process().await;
    let client = RegistryClient::new(registry).unwrap();
    let mut watch = client.watch("echo");
    // A long TTL: only the deregistration can remove it within the test.
    let (address, shutdown, serving) =
        registered_server(client.clone(), "echo", Duration::from_secs(600)).await;

    let snapshot = until(&mut watch, |s| holds(s, &address)).await;
    let endpoint = &snapshot.endpoints[0];
    assert_eq!(endpoint.weight, 3);
    assert_eq!(endpoint.zone.as_deref(), Some("z1"));
    assert_eq!(endpoint.tags["version"], "1.2");
    assert!(endpoint.instance.starts_with(&address.to_string()));
    // The endpoint works.
    let echo = EchoClient::connect(endpoint.address.clone()).await.unwrap();
    assert_eq!(echo.echo("hi".into()).await.unwrap(), "hi");

    shutdown.shutdown();
    until(&mut watch, |s| s.is_empty()).await;
    serving.await.unwrap().unwrap();
    assert!(watch.stats().healthy);
}

#[tokio::test]
async fn a_service_not_serving_is_withdrawn_until_it_serves_again() {
    let (registry, _registry) = registry_in_process().await;
    let client = RegistryClient::new(registry).unwrap();
    let mut watch = client.watch("echo");
    let server = prpc::Server::builder()
        .add_service(EchoServer::new(Parrot))
        .register(client.clone(), "echo", 1, [("zone", "z1")])
        .registration_ttl(Duration::from_secs(600))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let address = server.local_addr();
    let router = server.router();
    let health = router.health();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());
    until(&mut watch, |s| holds(s, &address)).await;
    let views = router.registrations();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].registration.service, "echo");
    assert!(views[0].serving);
    assert!(
        matches!(
            views[0].state,
            prpc::discovery::RegistrationState::Registered
        ),
        "{views:?}"
    );

    // The application says its service is down: the registration goes (long before its TTL).
    health.set_not_serving("echo");
    until(&mut watch, |s| s.is_empty()).await;
    // The server marks it withdrawn once the registry confirmed it.
    timeout(SOON, async {
        while router.registrations()[0].serving {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the registration is shown withdrawn");
    // ... and comes back when it serves again.
    health.set_serving("echo");
    until(&mut watch, |s| holds(s, &address)).await;
    // The whole server switched off withdraws it too.
    health.set_not_serving("");
    until(&mut watch, |s| s.is_empty()).await;
    health.set_serving("");
    until(&mut watch, |s| holds(s, &address)).await;

    shutdown.shutdown();
    until(&mut watch, |s| s.is_empty()).await;
    serving.await.unwrap().unwrap();
}

/// A registry that records whether the server still answered when it was deregistered.
struct Recording {
    inner: RegistryClient,
    server: Arc<std::sync::Mutex<Option<Address>>>,
    answered_at_deregistration: Arc<AtomicBool>,
}

impl Register for Recording {
    fn register<'a>(&'a self, registration: &'a Registration) -> RegisterFuture<'a, Lease> {
        self.inner.register(registration)
    }

    fn renew<'a>(
        &'a self,
        registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()> {
        self.inner.renew(registration, lease)
    }

    fn deregister<'a>(
        &'a self,
        registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()> {
        Box::pin(async move {
            let address = self.server.lock().unwrap().clone().unwrap();
            // A new connection and a call: a draining server would refuse both.
            if let Ok(echo) = EchoClient::connect(address).await
                && echo.echo("still here".into()).await.is_ok()
            {
                self.answered_at_deregistration
                    .store(true, Ordering::SeqCst);
            }
            self.inner.deregister(registration, lease).await
        })
    }
}

#[tokio::test]
async fn a_server_withdraws_before_it_drains() {
    let (registry, _registry) = registry_in_process().await;
    let client = RegistryClient::new(registry).unwrap();
    let answered = Arc::new(AtomicBool::new(false));
    let server_address = Arc::new(std::sync::Mutex::new(None));
    let recording = Recording {
        inner: client.clone(),
        server: server_address.clone(),
        answered_at_deregistration: answered.clone(),
    };
    let mut watch = client.watch("echo");
    let (address, shutdown, serving) =
        registered_server(recording, "echo", Duration::from_secs(600)).await;
    *server_address.lock().unwrap() = Some(address.clone());
    until(&mut watch, |s| holds(s, &address)).await;

    shutdown.shutdown();
    until(&mut watch, |s| s.is_empty()).await;
    serving.await.unwrap().unwrap();
    assert!(
        answered.load(Ordering::SeqCst),
        "the server stopped answering before it withdrew its registration"
    );
}

#[tokio::test]
async fn a_watcher_cut_off_misses_no_change_and_keeps_its_set_meanwhile() {
    let (registry, _registry) = registry_in_process().await;
    let registry_addr = registry.socket_addr().unwrap();
    let proxy = Proxy::start(registry_addr).await;
    let watcher = RegistryClient::new(proxy.addr).unwrap();
    let registrar = RegistryClient::new(registry.clone()).unwrap();
    let mut watch = watcher.watch("echo");

    let (first, first_shutdown, first_serving) =
        registered_server(registrar.clone(), "echo", Duration::from_secs(600)).await;
    until(&mut watch, |s| holds(s, &first)).await;

    // Cut the watcher off: its connection drops and no new one reaches the registry.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    proxy.switch(dead_addr);
    timeout(SOON, async {
        while watch.stats().healthy {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the watcher never noticed it was cut off");
    let kept = watch.current();
    assert!(
        holds(&kept, &first),
        "the last known set was dropped while the source is down"
    );

    // Meanwhile: one server leaves, another comes.
    first_shutdown.shutdown();
    first_serving.await.unwrap().unwrap();
    let (second, _second_shutdown, _second_serving) =
        registered_server(registrar.clone(), "echo", Duration::from_secs(600)).await;
    let direct = registrar.watch("echo");
    let mut direct = direct;
    until(&mut direct, |s| holds(s, &second) && !holds(s, &first)).await;
    assert_eq!(
        watch.current().version,
        kept.version,
        "a cut-off watcher changed"
    );

    // Back: the watcher resyncs to exactly the registry's set, in one step.
    proxy.switch(registry_addr);
    let now = until(&mut watch, |s| holds(s, &second)).await;
    assert!(
        !holds(&now, &first),
        "a change made while cut off was missed"
    );
    assert_eq!(now.len(), 1);
    assert_eq!(
        now.version,
        kept.version + 1,
        "the resync went through stale sets"
    );
    let stats = watch.stats();
    assert!(stats.healthy);
    assert!(stats.resyncs >= 1);
    assert!(stats.failures >= 1);
}

/// A registry in a process of its own, on `port` (0 for any).
struct RegistryProcess {
    child: Child,
    address: SocketAddr,
}

impl RegistryProcess {
    fn start(port: u16, warm_up_secs: u64) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_prpc-registry"))
            .args(["serve", &format!("127.0.0.1:{port}")])
            .args(["--warm-up", &warm_up_secs.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start prpc-registry");
        let address = listening_on(&mut child, "listening on tcp://");
        RegistryProcess {
            child,
            address: address.parse().unwrap(),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads the child's stdout up to a line starting with `prefix`; the rest of that line.
fn listening_on(child: &mut Child, prefix: &str) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let found = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix(prefix).map(str::to_owned))
        .expect("the child ended before it was ready");
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    found
}

#[tokio::test]
async fn registrar_and_watcher_survive_a_registry_restart() {
    let mut registry = RegistryProcess::start(0, 0);
    let port = registry.address.port();
    let client = RegistryClient::new(registry.address).unwrap();
    let mut watch = client.watch("echo");
    // TTL 1.5 s: renewals every 0.5 s, so the registrar learns of the restart quickly.
    let (address, _shutdown, _serving) =
        registered_server(client.clone(), "echo", Duration::from_millis(1500)).await;
    until(&mut watch, |s| holds(s, &address)).await;
    // Every set the watcher is given from here on.
    let mut recorder = watch.clone();
    let smallest = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
    let recording = tokio::spawn({
        let smallest = smallest.clone();
        async move {
            while let Ok(snapshot) = recorder.changed().await {
                smallest.fetch_min(snapshot.len(), Ordering::SeqCst);
            }
        }
    });

    registry.kill();
    timeout(SOON, async {
        while watch.stats().healthy {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the watcher never noticed the registry was gone");
    assert!(
        holds(&watch.current(), &address),
        "the set was emptied while the registry is down"
    );
    assert!(watch.stats().last_error.is_some());

    // The restarted registry knows nothing; the registrar registers again, the watcher
    // watches again and sees it.
    let _registry = RegistryProcess::start(port, 2);
    timeout(SOON, async {
        while !watch.stats().healthy {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the watcher never came back");
    until(&mut watch, |s| holds(s, &address)).await;
    let listed = client
        .api()
        .await
        .unwrap()
        .list("echo".into())
        .await
        .unwrap();
    assert_eq!(
        listed.endpoints.len(),
        1,
        "the registrar did not register again"
    );
    assert!(watch.stats().resyncs >= 1);
    // The restarted registry held watches back for its warm-up (2 s, above the 0.5 s
    // heartbeat interval), so the watcher never took its empty set for the truth.
    recording.abort();
    assert_ne!(
        smallest.load(Ordering::SeqCst),
        0,
        "the watcher saw an empty set across the restart"
    );
}

/// Run by `a_killed_registrant_lapses_at_its_ttl` in a process of its own.
#[tokio::test]
#[ignore = "a child process of another test"]
async fn registrant_child() {
    let Ok(registry) = std::env::var("PRPC_TEST_REGISTRY") else {
        return;
    };
    let client = RegistryClient::new(registry.as_str()).unwrap();
    let (address, _shutdown, _serving) =
        registered_server(client.clone(), "echo", Duration::from_millis(1000)).await;
    let mut watch = client.watch("echo");
    until(&mut watch, |s| holds(s, &address)).await;
    println!("registered {address}");
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn a_killed_registrant_lapses_at_its_ttl() {
    let registry = RegistryProcess::start(0, 0);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["registrant_child", "--exact", "--ignored", "--nocapture"])
        .env("PRPC_TEST_REGISTRY", registry.address.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let registered: Address = listening_on(&mut child, "registered ").parse().unwrap();
    let client = RegistryClient::new(registry.address).unwrap();
    let mut watch = client.watch("echo");
    until(&mut watch, |s| holds(s, &registered)).await;

    child.kill().unwrap(); // SIGKILL: no deregistration
    child.wait().unwrap();
    let killed = tokio::time::Instant::now();
    until(&mut watch, |s| s.is_empty()).await;
    // Not before its TTL of 1 s (minus the renewal it may have just made): expiry, not a
    // deregistration.
    let after = killed.elapsed();
    assert!(
        after >= Duration::from_millis(300),
        "gone after {after:?}: not by its TTL"
    );
}

/// Raw JSON calls, as a client in another language would make them.
async fn raw(
    client: &prpc::Client,
    method: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, prpc::Error> {
    let call = prpc::Call::new(
        "prpc.Registry",
        method.to_owned(),
        prpc::Format::Json,
        bytes::Bytes::from(body.to_string()),
    );
    let reply = client.call(call).await?;
    Ok(serde_json::from_slice(&reply.body).unwrap())
}

fn code(result: Result<serde_json::Value, prpc::Error>) -> prpc::Code {
    match result {
        Ok(value) => panic!("accepted: {value}"),
        Err(error) => {
            assert!(error.status().is_some(), "not a status: {error}");
            assert!(!error.status().unwrap().message().is_empty());
            error.code()
        }
    }
}

#[tokio::test]
async fn malformed_registrations_are_refused_with_invalid_argument() {
    let (registry, _registry) = registry_in_process().await;
    let client = prpc::Client::connect(registry).await.unwrap();
    let endpoint =
        |address: &str| serde_json::json!({"instance": "i1", "address": address, "weight": 1});
    let register = |service: serde_json::Value,
                    endpoint: serde_json::Value,
                    ttl: serde_json::Value| {
        serde_json::json!({"service": service, "endpoint": endpoint, "ttl_ms": ttl})
    };
    let name = serde_json::Value::from("svc");
    let ttl = serde_json::Value::from(10_000);
    let cases = [
        (
            "empty address",
            register(name.clone(), endpoint(""), ttl.clone()),
        ),
        (
            "unparsable address",
            register(name.clone(), endpoint("tcp://host:port"), ttl.clone()),
        ),
        (
            "unknown scheme",
            register(name.clone(), endpoint("udp://1.2.3.4:5"), ttl.clone()),
        ),
        (
            "port 0",
            register(name.clone(), endpoint("127.0.0.1:0"), ttl.clone()),
        ),
        (
            "host with a space",
            register(name.clone(), endpoint("tcp://a b:80"), ttl.clone()),
        ),
        (
            "empty service",
            register("".into(), endpoint("127.0.0.1:80"), ttl.clone()),
        ),
        (
            "service over 255 bytes",
            register(
                "s".repeat(256).into(),
                endpoint("127.0.0.1:80"),
                ttl.clone(),
            ),
        ),
        (
            "instance over 255 bytes",
            register(
                name.clone(),
                serde_json::json!({"instance": "i".repeat(256), "address": "127.0.0.1:80"}),
                ttl.clone(),
            ),
        ),
        (
            "empty instance",
            register(
                name.clone(),
                serde_json::json!({"instance": "", "address": "127.0.0.1:80"}),
                ttl.clone(),
            ),
        ),
        (
            "too many tags",
            register(
                name.clone(),
                serde_json::json!({"instance": "i", "address": "127.0.0.1:80", "tags": (0..65).map(|i| (i.to_string(), "v".to_owned())).collect::<std::collections::BTreeMap<_, _>>()}),
                ttl.clone(),
            ),
        ),
        (
            "metadata over 8 KiB",
            register(
                name.clone(),
                serde_json::json!({"instance": "i", "address": "127.0.0.1:80", "zone": "z".repeat(9000)}),
                ttl.clone(),
            ),
        ),
        (
            "control character in a tag",
            register(
                name.clone(),
                serde_json::json!({"instance": "i", "address": "127.0.0.1:80", "tags": {"k": "a\u{7}b"}}),
                ttl.clone(),
            ),
        ),
        (
            "ttl 0",
            register(name.clone(), endpoint("127.0.0.1:80"), 0.into()),
        ),
        (
            "ttl of a year",
            register(
                name.clone(),
                endpoint("127.0.0.1:80"),
                (365u64 * 86_400_000).into(),
            ),
        ),
        (
            "ttl negative",
            register(name.clone(), endpoint("127.0.0.1:80"), (-5).into()),
        ),
        (
            "no endpoint",
            serde_json::json!({"service": "svc", "ttl_ms": 1000}),
        ),
        ("not a map", serde_json::json!([1, 2, 3])),
    ];
    for (case, body) in cases {
        assert_eq!(
            code(raw(&client, "register", body).await),
            prpc::Code::InvalidArgument,
            "{case}"
        );
    }
    // Nothing was registered; a good registration still is.
    let good = raw(
        &client,
        "register",
        register(name.clone(), endpoint("127.0.0.1:80"), ttl),
    )
    .await
    .unwrap();
    assert_eq!(good["ttl_ms"], 10_000);
    let listed = raw(&client, "list", serde_json::json!({"service": "svc"}))
        .await
        .unwrap();
    assert_eq!(listed["endpoints"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn only_the_registrant_renews_or_withdraws() {
    let (registry, _registry) = registry_in_process().await;
    let api = RegistryClient::new(registry).unwrap().api().await.unwrap();
    let endpoint = Endpoint::new("127.0.0.1:9").unwrap().instance("one");
    let granted = api
        .register("svc".into(), endpoint.clone(), 60_000, None)
        .await
        .unwrap();

    let wrong = api
        .heartbeat("svc".into(), "one".into(), "guess".into())
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), prpc::Code::PermissionDenied);
    let wrong = api
        .deregister("svc".into(), "one".into(), "guess".into())
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), prpc::Code::PermissionDenied);
    // Taking over a live instance id is refused too.
    let taken = api
        .register("svc".into(), endpoint, 60_000, None)
        .await
        .unwrap_err();
    assert_eq!(taken.code(), prpc::Code::AlreadyExists);
    assert_eq!(api.list("svc".into()).await.unwrap().endpoints.len(), 1);

    let unknown = api
        .heartbeat("svc".into(), "two".into(), granted.token.clone())
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), prpc::Code::NotFound);
    api.heartbeat("svc".into(), "one".into(), granted.token.clone())
        .await
        .unwrap();
    api.deregister("svc".into(), "one".into(), granted.token)
        .await
        .unwrap();
    assert!(api.list("svc".into()).await.unwrap().endpoints.is_empty());
}

#[tokio::test]
async fn a_flood_of_registrations_stops_at_the_bound_and_others_still_register() {
    let mut limits = prpc_registry::Limits::default();
    limits.max_instances = 200;
    limits.max_per_service = 150;
    let (registry, address) = serve_registry(limits).await;
    let api = RegistryClient::new(address).unwrap().api().await.unwrap();
    let mut refused = None;
    for i in 0..1_000 {
        let endpoint = Endpoint::new("127.0.0.1:9")
            .unwrap()
            .instance(format!("i{i}"));
        if let Err(error) = api.register("flood".into(), endpoint, 60_000, None).await {
            refused = Some((i, error));
            break;
        }
    }
    let (at, error) = refused.expect("the flood was never refused");
    assert_eq!(at, 150);
    assert_eq!(error.code(), prpc::Code::ResourceExhausted);
    assert_eq!(registry.instances(), 150);
    // Another service still has room, up to the registry's total.
    for i in 0..50 {
        let endpoint = Endpoint::new("127.0.0.1:9")
            .unwrap()
            .instance(format!("o{i}"));
        api.register("other".into(), endpoint, 60_000, None)
            .await
            .unwrap();
    }
    let endpoint = Endpoint::new("127.0.0.1:9").unwrap().instance("over");
    let error = api
        .register("third".into(), endpoint, 60_000, None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), prpc::Code::ResourceExhausted);
    assert_eq!(registry.instances(), 200);
}

#[tokio::test]
async fn a_watcher_that_never_reads_holds_no_queue_and_hurts_no_one() {
    let mut limits = prpc_registry::Limits::default();
    limits.max_watchers = 3;
    let (registry, address) = serve_registry(limits).await;
    let api = RegistryClient::new(address.clone())
        .unwrap()
        .api()
        .await
        .unwrap();
    // Opened, then never read while the set churns; a small window, so little is in flight.
    let small = prpc::Client::builder()
        .stream_windows(65_536, 1 << 20)
        .connect(address.clone())
        .await
        .unwrap();
    let mut stalled = RegistryApiClient::new(small)
        .watch("svc".into())
        .await
        .unwrap();
    let reader = RegistryClient::new(address).unwrap();
    let mut watch = reader.watch("svc");

    let last = 1_999;
    for i in 0..=last {
        let mut endpoint = Endpoint::new("127.0.0.1:9")
            .unwrap()
            .instance(format!("i{i}"));
        for key in 0..8 {
            endpoint = endpoint.tag(format!("k{key}"), "v".repeat(900));
        }
        let granted = api
            .register("svc".into(), endpoint, 60_000, None)
            .await
            .unwrap();
        if i != last {
            api.deregister("svc".into(), format!("i{i}"), granted.token)
                .await
                .unwrap();
        }
    }
    let last = format!("i{last}");
    // The reading watcher kept up: it holds the final set.
    until(&mut watch, |s| s.len() == 1 && s.get(&last).is_some()).await;

    // The stalled one gets the current set in a few merged events, not 4,000 queued ones.
    let mut events = 0;
    let mut set = std::collections::BTreeSet::new();
    while set.len() != 1 || !set.contains(&last) {
        let event = timeout(SOON, stalled.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        events += 1;
        if event.reset {
            set.clear();
        }
        for gone in event.remove {
            set.remove(&gone);
        }
        for endpoint in event.upsert {
            set.insert(endpoint.instance);
        }
    }
    assert!(
        events < 100,
        "{events} events: the registry queued changes for a stalled watcher"
    );

    // The watch bound holds: a third watch is the last.
    assert_eq!(registry.watchers(), 2);
    let _third = api.watch("svc".into()).await.unwrap();
    // (A stream's refusal arrives as the end of its messages.)
    let mut fourth = api.watch("svc".into()).await.unwrap();
    let error = fourth.message().await.unwrap_err();
    assert_eq!(error.code(), prpc::Code::ResourceExhausted);
}

#[tokio::test]
async fn a_services_bytes_are_bounded_and_versions_only_go_up() {
    let mut limits = prpc_registry::Limits::default();
    limits.max_service_bytes = 10_000;
    let (_registry, address) = serve_registry(limits).await;
    let api = RegistryClient::new(address).unwrap().api().await.unwrap();
    let big = |i: usize| {
        Endpoint::new("127.0.0.1:9")
            .unwrap()
            .instance(format!("i{i}"))
            .tag("notes", "n".repeat(4_000))
    };
    let first = api
        .register("svc".into(), big(0), 60_000, None)
        .await
        .unwrap();
    api.register("svc".into(), big(1), 60_000, None)
        .await
        .unwrap();
    let error = api
        .register("svc".into(), big(2), 60_000, None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), prpc::Code::ResourceExhausted);
    // Another service has its own budget.
    api.register("other".into(), big(0), 60_000, None)
        .await
        .unwrap();
    // Room again once one leaves.
    api.deregister("svc".into(), "i0".into(), first.token)
        .await
        .unwrap();
    api.register("svc".into(), big(2), 60_000, None)
        .await
        .unwrap();

    // A service emptied (and forgotten, nobody watching) counts on when it comes back.
    let small = |id: &str| Endpoint::new("127.0.0.1:9").unwrap().instance(id);
    let once = api
        .register("v".into(), small("x"), 60_000, None)
        .await
        .unwrap();
    let before = api.list("v".into()).await.unwrap().version;
    api.deregister("v".into(), "x".into(), once.token)
        .await
        .unwrap();
    assert!(api.list("v".into()).await.unwrap().endpoints.is_empty());
    api.register("v".into(), small("y"), 60_000, None)
        .await
        .unwrap();
    let after = api.list("v".into()).await.unwrap().version;
    assert!(after > before, "version went from {before} back to {after}");
}

/// A registry client whose connection comes from `source` (any address on loopback).
async fn api_from(source: &str, registry: &Address) -> RegistryApiClient {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let stream = socket
        .connect(registry.socket_addr().unwrap())
        .await
        .unwrap();
    RegistryApiClient::new(prpc::Client::builder().from_stream(stream))
}

#[tokio::test]
async fn one_peer_cannot_fill_the_registry_for_the_others() {
    let mut limits = prpc_registry::Limits::default();
    limits.max_per_peer = 20;
    let (registry, address) = serve_registry(limits).await;
    let flood = api_from("127.0.0.2", &address).await;
    // Two connections from one IP share its budget.
    let flood_too = api_from("127.0.0.2", &address).await;
    let endpoint = |i: usize| {
        Endpoint::new("127.0.0.1:9")
            .unwrap()
            .instance(format!("i{i}"))
    };
    let mut last = None;
    for i in 0..15 {
        last = Some(
            flood
                .register("svc".into(), endpoint(i), 60_000, None)
                .await
                .unwrap(),
        );
    }
    for i in 15..20 {
        flood_too
            .register("svc".into(), endpoint(i), 60_000, None)
            .await
            .unwrap();
    }
    let error = flood_too
        .register("svc".into(), endpoint(20), 60_000, None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), prpc::Code::ResourceExhausted);
    assert!(error.to_string().contains("127.0.0.2"), "{error}");

    // Another peer still registers.
    let other = api_from("127.0.0.3", &address).await;
    other
        .register("svc".into(), endpoint(100), 60_000, None)
        .await
        .unwrap();
    // And the flooding peer gets room back as its registrations go.
    flood
        .deregister("svc".into(), "i14".into(), last.unwrap().token)
        .await
        .unwrap();
    flood
        .register("svc".into(), endpoint(21), 60_000, None)
        .await
        .unwrap();
    assert_eq!(registry.instances(), 21);
}

/// The watch request of docs/REGISTRY.md's worked example, as another language would copy
/// it: a consistent frame, and no deadline, since a deadline would end the watch when it
/// passed (a request's deadline covers its whole stream).
#[test]
fn the_documented_watch_request_has_no_deadline() {
    let doc = include_str!("../../docs/REGISTRY.md");
    let block = doc
        .split("The watch request, whole")
        .nth(1)
        .and_then(|rest| rest.split("```text").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the worked example's watch request");
    let frame: Vec<u8> = block
        .split_whitespace()
        .map(|byte| u8::from_str_radix(byte, 16).unwrap())
        .collect();
    assert_eq!(frame[..4], [0xb7, 0x01, 0x81, 0x10]);
    let length = u32::from_be_bytes(frame[4..8].try_into().unwrap()) as usize;
    assert_eq!(length, frame.len() - 8, "the length field");
    let mut at = 8;
    let (_request_id, _attempt) = (varint(&frame, &mut at), varint(&frame, &mut at));
    let service = varint(&frame, &mut at) as usize;
    at += service;
    let method = varint(&frame, &mut at) as usize;
    assert_eq!(&frame[at..at + method], b"watch");
    at += method;
    assert_eq!(varint(&frame, &mut at), 0, "the watch carries a deadline");
    assert_eq!(varint(&frame, &mut at), 0, "metadata");
    assert_eq!(&frame[at..], br#"{"service":"math.Arith"}"#);
}

/// The varint at `at` (PROTOCOL.md section 3.1), moving `at` past it.
fn varint(frame: &[u8], at: &mut usize) -> u64 {
    let (mut value, mut shift) = (0u64, 0);
    loop {
        let byte = frame[*at];
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return value;
        }
    }
}

#[tokio::test]
async fn a_registration_repeated_after_a_lost_reply_gets_the_same_grant() {
    let (registry, _registry) = registry_in_process().await;
    let api = RegistryClient::new(registry).unwrap().api().await.unwrap();
    let endpoint = Endpoint::new("127.0.0.1:9").unwrap().instance("one");
    let nonce = Some("a-secret-of-the-registrant".to_owned());
    let first = api
        .register("svc".into(), endpoint.clone(), 60_000, nonce.clone())
        .await
        .unwrap();
    // The reply was lost; the registrant asks again.
    let again = api
        .register("svc".into(), endpoint.clone(), 60_000, nonce.clone())
        .await
        .unwrap();
    assert_eq!(again.token, first.token);
    api.heartbeat("svc".into(), "one".into(), again.token)
        .await
        .unwrap();
    // Anyone else, or the same secret with another endpoint, is still refused.
    for (other, nonce) in [
        (endpoint.clone(), None),
        (endpoint.clone(), Some("a-guess".to_owned())),
        (endpoint.clone().weight(7), nonce),
    ] {
        let error = api
            .register("svc".into(), other, 60_000, nonce)
            .await
            .unwrap_err();
        assert_eq!(error.code(), prpc::Code::AlreadyExists);
    }
    assert_eq!(api.list("svc".into()).await.unwrap().endpoints.len(), 1);
}

#[tokio::test]
async fn the_number_of_services_is_bounded() {
    let mut limits = prpc_registry::Limits::default();
    limits.max_services = 3;
    let (_registry, address) = serve_registry(limits).await;
    let api = RegistryClient::new(address).unwrap().api().await.unwrap();
    let endpoint = |i: usize| {
        Endpoint::new("127.0.0.1:9")
            .unwrap()
            .instance(format!("i{i}"))
    };
    for service in ["a", "b", "c"] {
        api.register(service.into(), endpoint(0), 60_000, None)
            .await
            .unwrap();
    }
    let error = api
        .register("d".into(), endpoint(0), 60_000, None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), prpc::Code::ResourceExhausted);
    // A service that exists still takes registrations.
    api.register("a".into(), endpoint(1), 60_000, None)
        .await
        .unwrap();
    assert_eq!(api.services().await.unwrap().len(), 3);
}
