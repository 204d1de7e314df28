//! prpc::discovery's own sources and the registration keeper.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use prpc::discovery::{
    Discover, DnsDiscover, Endpoint, Lease, Publisher, Register, RegisterError, RegisterFuture,
    Registered, Registration, RegistrationState, StaticDiscover,
};

#[tokio::test]
async fn a_failing_source_keeps_its_last_set_and_says_so() {
    let (publisher, mut watch) = Publisher::new("test", "svc");
    assert_eq!(watch.current().version, 0);
    let a = Endpoint::new("10.0.0.1:7000").unwrap();
    let b = Endpoint::new("10.0.0.2:7000").unwrap();
    assert!(publisher.publish(vec![b.clone(), a.clone(), b.clone()]));
    let first = watch.ready().await.unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(
        first.endpoints,
        [a.clone(), b.clone()],
        "sorted, each instance once"
    );

    publisher.failed("connection refused");
    let stats = watch.stats();
    assert!(!stats.healthy);
    assert_eq!(stats.last_error.as_deref(), Some("connection refused"));
    assert!(stats.failing_since.is_some());
    assert_eq!(
        watch.current().endpoints.len(),
        2,
        "emptied while the source is down"
    );

    // Back with the same set: healthy, a resync, no new version.
    assert!(!publisher.publish(vec![a.clone(), b.clone()]));
    let stats = watch.stats();
    assert!(stats.healthy && stats.last_error.is_none());
    assert_eq!((stats.resyncs, stats.failures, stats.version), (1, 1, 1));
    // A different set is a new version, and an empty one is published when it is the truth.
    assert!(publisher.publish(vec![]));
    assert!(watch.changed().await.unwrap().is_empty());
    drop(publisher);
    assert!(
        watch.changed().await.is_err(),
        "a stopped source must say so"
    );
}

#[tokio::test]
async fn a_static_list_is_replaced_for_every_watch() {
    let fixed = StaticDiscover::from_addresses(["10.0.0.1:7000"]).unwrap();
    let mut one = fixed.watch("a");
    let mut two = fixed.watch("b");
    assert_eq!(one.ready().await.unwrap().len(), 1);
    fixed.set([
        Endpoint::new("10.0.0.1:7000").unwrap(),
        Endpoint::new("10.0.0.2:7000").unwrap().weight(5),
    ]);
    assert_eq!(one.changed().await.unwrap().len(), 2);
    let snapshot = two.changed().await.unwrap();
    assert_eq!(snapshot.get("tcp://10.0.0.2:7000").unwrap().weight, 5);
}

#[tokio::test]
async fn dns_resolves_every_address_and_reports_failed_lookups() {
    let dns = DnsDiscover::new("localhost:7000", Duration::from_millis(50)).unwrap();
    let mut watch = dns.watch("svc");
    let snapshot = tokio::time::timeout(Duration::from_secs(10), watch.ready())
        .await
        .unwrap()
        .unwrap();
    assert!(!snapshot.is_empty());
    assert!(snapshot.endpoints.iter().all(|e| {
        e.address.port() == Some(7000)
            && e.address
                .host()
                .is_some_and(|h| h == "127.0.0.1" || h == "::1")
    }));

    // A name that does not resolve: no set, and the stats say why.
    let missing = DnsDiscover::new("no-such-host.invalid:7000", Duration::from_millis(50)).unwrap();
    let watch = missing.watch("svc");
    tokio::time::timeout(Duration::from_secs(10), async {
        while watch.stats().healthy {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert!(watch.current().is_empty());
    assert!(
        watch
            .stats()
            .last_error
            .unwrap()
            .contains("no-such-host.invalid")
    );
    assert!(DnsDiscover::new("tls://localhost:443", Duration::from_secs(1)).is_err());
}

/// A registry in memory that can lose its registrations or be unreachable: drives the
/// keeper's every branch.
#[derive(Default)]
struct Flaky {
    log: Mutex<Vec<String>>,
    down: Mutex<bool>,
    lost: Mutex<bool>,
}

impl Flaky {
    fn count(&self, what: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|entry| *entry == what)
            .count()
    }

    fn answer(&self, what: &str) -> Result<(), RegisterError> {
        if *self.down.lock().unwrap() {
            return Err(RegisterError::Unavailable("down".into()));
        }
        self.log.lock().unwrap().push(what.to_owned());
        Ok(())
    }
}

impl Register for Flaky {
    fn register<'a>(&'a self, registration: &'a Registration) -> RegisterFuture<'a, Lease> {
        Box::pin(async move {
            self.answer("register")?;
            *self.lost.lock().unwrap() = false;
            Ok(Lease::new("token", registration.ttl))
        })
    }

    fn renew<'a>(&'a self, _: &'a Registration, _: &'a Lease) -> RegisterFuture<'a, ()> {
        Box::pin(async move {
            if *self.lost.lock().unwrap() {
                return Err(RegisterError::Expired);
            }
            self.answer("renew")
        })
    }

    fn deregister<'a>(&'a self, _: &'a Registration, _: &'a Lease) -> RegisterFuture<'a, ()> {
        Box::pin(async move { self.answer("deregister") })
    }
}

#[tokio::test(start_paused = true)]
async fn the_keeper_renews_at_a_third_of_the_ttl_and_registers_again_when_lost() {
    let registry = Arc::new(Flaky::default());
    let registration = Registration::new(
        "svc",
        Endpoint::new("10.0.0.1:7000").unwrap(),
        Duration::from_secs(30),
    );
    let mut kept = Registered::start(registry.clone(), registration);
    kept.wait_registered().await;
    assert_eq!(registry.count("register"), 1);

    // 10 s apart: 3 renewals in 31 s.
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(registry.count("renew"), 3);

    // The registry lost it: registered again at the next renewal.
    *registry.lost.lock().unwrap() = true;
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(registry.count("register"), 2);
    assert_eq!(kept.state(), RegistrationState::Registered);

    // Unreachable: failing, retried sooner than the renewal interval, then registered again.
    *registry.down.lock().unwrap() = true;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(matches!(
        kept.state(),
        RegistrationState::Failing(RegisterError::Unavailable(_))
    ));
    *registry.down.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(kept.state(), RegistrationState::Registered);

    kept.deregister().await;
    assert_eq!(registry.count("deregister"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_keeper_withdraws_its_registration() {
    let registry = Arc::new(Flaky::default());
    let registration = Registration::new(
        "svc",
        Endpoint::new("10.0.0.1:7000").unwrap(),
        Duration::from_secs(30),
    );
    let mut kept = Registered::start(registry.clone(), registration);
    kept.wait_registered().await;
    drop(kept);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(registry.count("deregister"), 1);
}

/// A registry whose registrations take a while to be confirmed.
struct Slow(Flaky);

impl Register for Slow {
    fn register<'a>(&'a self, registration: &'a Registration) -> RegisterFuture<'a, Lease> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.0.register(registration).await
        })
    }

    fn renew<'a>(
        &'a self,
        registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()> {
        self.0.renew(registration, lease)
    }

    fn deregister<'a>(
        &'a self,
        registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()> {
        self.0.deregister(registration, lease)
    }
}

#[tokio::test(start_paused = true)]
async fn a_registration_in_flight_at_shutdown_is_withdrawn_not_left_to_lapse() {
    let registry = Arc::new(Slow(Flaky::default()));
    let registration = Registration::new(
        "svc",
        Endpoint::new("10.0.0.1:7000").unwrap(),
        Duration::from_secs(30),
    );
    let kept = Registered::start(registry.clone(), registration);
    tokio::time::sleep(Duration::from_millis(500)).await; // the registration is on its way
    kept.deregister().await;
    assert_eq!(registry.0.count("register"), 1);
    assert_eq!(registry.0.count("deregister"), 1);
}
