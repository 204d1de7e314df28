//! The registry itself: registrations with TTLs on prpc's timing wheel, and the sets watchers
//! follow.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use prpc::discovery::Endpoint;
use prpc::timer::{Timer, TimerHandle};
use prpc::{Code, Status, Streaming};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::{Granted, RegistryApi, RegistryApiServer, ServiceSet, ServiceSummary, WatchEvent};
use crate::limits::Limits;

/// The built-in registry: host it in any prpc server with
/// `.add_service(registry.service())`, or run the `prpc-registry` binary.
///
/// Registrations live for their TTL past the last heartbeat; expiry runs on prpc's timing
/// wheel. Only the registrant (the holder of the token issued at registration) may renew or
/// withdraw an instance. Clones share one registry.
///
/// ```
/// use prpc_registry::{Registry, RegistryClient};
/// use prpc::discovery::Discover;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::default();
/// let server = prpc::Server::builder()
///     .add_service(registry.service())
///     .bind("127.0.0.1:0")
///     .await?;
/// let address = server.local_addr();
/// tokio::spawn(server.serve());
///
/// let client = RegistryClient::new(address)?;
/// let watch = client.watch("math.Arith");
/// assert_eq!(registry.instances(), 0);
/// # drop(watch);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    limits: Limits,
    /// When it started, and when watches start getting sets (see [`Registry::warm_up`]).
    started: Instant,
    ready_at: Mutex<Instant>,
    timer: Timer,
    state: Mutex<State>,
    watchers: AtomicUsize,
}

#[derive(Default)]
struct State {
    services: HashMap<String, Service>,
    instances: usize,
    per_peer: HashMap<IpAddr, usize>,
    /// Tells apart the expiry timers of successive registrations of one instance id.
    generation: u64,
    /// Bytes of every endpoint held (see [`weight_in_bytes`]).
    bytes: usize,
    /// The last version given to a change of any service: versions only go up, even across a
    /// service forgotten while idle and then used again.
    version: u64,
}

struct Service {
    instances: BTreeMap<String, Instance>,
    version: u64,
    bytes: usize,
    /// What watchers follow; rebuilt on a change only while someone watches.
    published: watch::Sender<Arc<Current>>,
}

struct Instance {
    endpoint: Arc<Endpoint>,
    token: String,
    ttl: Duration,
    expires: Instant,
    peer: Option<IpAddr>,
    generation: u64,
    bytes: usize,
    /// The registrant's own secret, which makes a repeated registration get the same grant.
    nonce: Option<String>,
    /// Its expiry check: dropped with the registration, so a withdrawn one leaves no timer
    /// on the wheel until its TTL would have run out.
    expiry: TimerHandle,
}

/// How long a registry holds back watches after it starts (see [`Registry::warm_up`]).
const DEFAULT_WARM_UP: Duration = Duration::from_secs(5);

/// A service's set as watchers see it: cheap to share, endpoints behind `Arc`s.
#[derive(Default)]
struct Current {
    version: u64,
    endpoints: Vec<Arc<Endpoint>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(Limits::default())
    }
}

impl Registry {
    /// An empty registry with these bounds. Call it within a tokio runtime (it starts a
    /// timing wheel).
    pub fn new(limits: Limits) -> Self {
        let started = Instant::now();
        Registry {
            inner: Arc::new(Inner {
                limits,
                started,
                ready_at: Mutex::new(started + DEFAULT_WARM_UP),
                // 10 ms ticks: expiry needs no finer grain, and the wheel sleeps less.
                timer: Timer::new(Duration::from_millis(10), 512),
                state: Mutex::new(State::default()),
                watchers: AtomicUsize::new(0),
            }),
        }
    }

    /// Holds back every watch's first set until `warm_up` after the registry started (5
    /// seconds by default; zero for none).
    ///
    /// A registry keeps its registrations in memory: one that restarts knows nobody until
    /// the registrants' next heartbeats tell them to register again. Watchers that came
    /// straight back would take its empty set for the truth and drop every endpoint; held back,
    /// they keep their last set until the registrants are back. Set it above the longest
    /// heartbeat interval of the fleet (a third of the longest TTL; servers default to a 10 s
    /// TTL) plus a margin.
    ///
    /// ```
    /// use std::time::Duration;
    /// use prpc_registry::{Limits, Registry};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // Servers here register with a 30 s TTL, so they heartbeat every 10 s.
    /// let registry = Registry::new(Limits::default()).warm_up(Duration::from_secs(12));
    /// # }
    /// ```
    pub fn warm_up(self, warm_up: Duration) -> Self {
        *self
            .inner
            .ready_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = self.inner.started + warm_up;
        self
    }

    /// The registry as a prpc service, to add to a server.
    pub fn service(&self) -> RegistryApiServer<Registry> {
        RegistryApiServer::new(self.clone())
    }

    /// How many registrations it holds.
    pub fn instances(&self) -> usize {
        self.inner.lock().instances
    }

    /// How many watches are open.
    pub fn watchers(&self) -> usize {
        self.inner.watchers.load(Ordering::Relaxed)
    }

    /// The bounds it was made with.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Arms the expiry check of one registration; dropping the handle disarms it.
    fn arm(
        self: &Arc<Self>,
        service: &str,
        instance: &str,
        generation: u64,
        at: Instant,
    ) -> TimerHandle {
        let registry = Arc::downgrade(self);
        let (service, instance) = (service.to_owned(), instance.to_owned());
        self.timer.schedule_at(at, move || {
            expire(registry, &service, &instance, generation)
        })
    }
}

/// A registration's timer fired: remove it if no heartbeat came since, else check again when
/// its new TTL runs out.
fn expire(registry: Weak<Inner>, service: &str, instance: &str, generation: u64) {
    let Some(inner) = registry.upgrade() else {
        return;
    };
    let mut state = inner.lock();
    let Some(entry) = state.services.get_mut(service) else {
        return;
    };
    let Some(held) = entry.instances.get_mut(instance) else {
        return;
    };
    if held.generation != generation {
        return;
    }
    let now = Instant::now();
    if held.expires > now {
        held.expiry = inner.arm(service, instance, generation, held.expires);
        return;
    }
    tracing::info!(service, instance, "registration expired");
    state.remove(service, instance);
}

impl State {
    fn remove(&mut self, service: &str, instance: &str) -> Option<Instance> {
        let entry = self.services.get_mut(service)?;
        let removed = entry.instances.remove(instance)?;
        self.version += 1;
        entry.changed(self.version);
        entry.bytes -= removed.bytes;
        self.bytes -= removed.bytes;
        self.instances -= 1;
        if let Some(peer) = removed.peer
            && let Some(count) = self.per_peer.get_mut(&peer)
        {
            *count -= 1;
            if *count == 0 {
                self.per_peer.remove(&peer);
            }
        }
        self.forget_if_idle(service);
        Some(removed)
    }

    /// Drops a service nobody registers in or watches.
    fn forget_if_idle(&mut self, service: &str) {
        if let Some(entry) = self.services.get(service)
            && entry.instances.is_empty()
            && entry.published.receiver_count() == 0
        {
            self.services.remove(service);
        }
    }

    fn service(&mut self, name: &str) -> &mut Service {
        self.services
            .entry(name.to_owned())
            .or_insert_with(|| Service {
                instances: BTreeMap::new(),
                version: 0,
                bytes: 0,
                published: watch::channel(Arc::new(Current::default())).0,
            })
    }
}

impl Service {
    /// Moves to `version`; watchers get the new set.
    fn changed(&mut self, version: u64) {
        self.version = version;
        if self.published.receiver_count() > 0 {
            self.publish();
        }
    }

    fn publish(&self) {
        self.published.send_replace(Arc::new(Current {
            version: self.version,
            endpoints: self
                .instances
                .values()
                .map(|instance| instance.endpoint.clone())
                .collect(),
        }));
    }

    /// A receiver of the set, current as of now.
    fn subscribe(&self) -> watch::Receiver<Arc<Current>> {
        if self.published.borrow().version != self.version || self.version == 0 {
            self.publish();
        }
        self.published.subscribe()
    }
}

fn status(code: Code, message: impl Into<String>) -> Status {
    Status::new(code, message)
}

/// The caller's IP address, when the transport has one.
/// The caller's address as the per-peer bound counts it (see [`peer_group`]).
fn peer() -> Option<IpAddr> {
    let ip = prpc::context::current().and_then(|context| context.peer.map(|peer| peer.ip()))?;
    Some(peer_group(ip))
}

/// An IPv4 caller counts by its address; an IPv6 one by its /64, which one host is typically
/// given whole (an IPv4 address mapped into IPv6 counts as that IPv4 address).
fn peer_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into())
        }
        IpAddr::V6(v6) => IpAddr::V4(
            v6.to_ipv4_mapped()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        ),
        v4 => v4,
    }
}

/// A fresh 128-bit secret from the OS's generator, as hex.
fn token() -> Result<String, Status> {
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret).map_err(|error| {
        status(
            Code::Internal,
            format!("no randomness for a token: {error}"),
        )
    })?;
    Ok(secret.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Whether `given` is the token issued, in time that does not depend on where they differ.
fn same_token(issued: &str, given: &str) -> bool {
    issued.len() == given.len()
        && issued
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |differs, (a, b)| differs | (a ^ b))
            == 0
}

impl RegistryApi for Registry {
    async fn register(
        &self,
        service: String,
        endpoint: Endpoint,
        ttl_ms: u64,
        nonce: Option<String>,
    ) -> Result<Granted, Status> {
        let inner = &self.inner;
        let limits = &inner.limits;
        let ttl = limits.registration(&service, &endpoint, ttl_ms)?;
        if let Some(nonce) = &nonce {
            limits.name("nonce", nonce)?;
        }
        let peer = peer();
        let mut state = inner.lock();
        if let Some(held) = state
            .services
            .get_mut(&service)
            .and_then(|entry| entry.instances.get_mut(&endpoint.instance))
        {
            // The same registrant asking again (its first reply was lost): the same grant.
            if let (Some(given), Some(kept)) = (&nonce, &held.nonce)
                && same_token(kept, given)
                && *held.endpoint == endpoint
                && held.ttl == ttl
            {
                held.expires = Instant::now() + ttl;
                return Ok(Granted {
                    token: held.token.clone(),
                    ttl_ms: ttl.as_millis() as u64,
                });
            }
            return Err(status(
                Code::AlreadyExists,
                format!(
                    "instance {} of {service} is registered by someone else",
                    endpoint.instance
                ),
            ));
        }
        if !state.services.contains_key(&service) && state.services.len() >= limits.max_services {
            return Err(status(
                Code::ResourceExhausted,
                format!(
                    "the registry holds its limit of {} services",
                    limits.max_services
                ),
            ));
        }
        if state.instances >= limits.max_instances {
            return Err(status(
                Code::ResourceExhausted,
                format!(
                    "the registry holds its limit of {} instances",
                    limits.max_instances
                ),
            ));
        }
        if let Some(peer) = peer
            && state.per_peer.get(&peer).copied().unwrap_or(0) >= limits.max_per_peer
        {
            return Err(status(
                Code::ResourceExhausted,
                format!(
                    "{peer} holds its limit of {} registrations",
                    limits.max_per_peer
                ),
            ));
        }
        let bytes = crate::limits::weight_in_bytes(&service, &endpoint);
        let (held, held_bytes) = state
            .services
            .get(&service)
            .map_or((0, 0), |entry| (entry.instances.len(), entry.bytes));
        if held_bytes + bytes > limits.max_service_bytes {
            return Err(status(
                Code::ResourceExhausted,
                format!(
                    "{service}'s endpoints would take over {} bytes",
                    limits.max_service_bytes
                ),
            ));
        }
        if state.bytes + bytes > limits.max_total_bytes {
            return Err(status(
                Code::ResourceExhausted,
                format!(
                    "the registry's endpoints would take over {} bytes",
                    limits.max_total_bytes
                ),
            ));
        }
        if held >= limits.max_per_service {
            return Err(status(
                Code::ResourceExhausted,
                format!(
                    "{service} holds its limit of {} instances",
                    limits.max_per_service
                ),
            ));
        }
        let token = token()?;
        state.generation += 1;
        let generation = state.generation;
        state.version += 1;
        let version = state.version;
        state.instances += 1;
        state.bytes += bytes;
        if let Some(peer) = peer {
            *state.per_peer.entry(peer).or_default() += 1;
        }
        let expires = Instant::now() + ttl;
        let instance = endpoint.instance.clone();
        let expiry = inner.arm(&service, &instance, generation, expires);
        let entry = state.service(&service);
        entry.instances.insert(
            instance.clone(),
            Instance {
                endpoint: Arc::new(endpoint),
                token: token.clone(),
                ttl,
                expires,
                peer,
                generation,
                bytes,
                expiry,
                nonce,
            },
        );
        entry.bytes += bytes;
        entry.changed(version);
        drop(state);
        tracing::debug!(%service, %instance, ?ttl, "registered");
        Ok(Granted {
            token,
            ttl_ms: ttl.as_millis() as u64,
        })
    }

    async fn heartbeat(
        &self,
        service: String,
        instance: String,
        token: String,
    ) -> Result<Granted, Status> {
        let mut state = self.inner.lock();
        let held = state
            .services
            .get_mut(&service)
            .and_then(|entry| entry.instances.get_mut(&instance))
            .ok_or_else(|| unknown(&service, &instance))?;
        if !same_token(&held.token, &token) {
            return Err(wrong_token(&service, &instance));
        }
        held.expires = Instant::now() + held.ttl;
        Ok(Granted {
            token,
            ttl_ms: held.ttl.as_millis() as u64,
        })
    }

    async fn deregister(
        &self,
        service: String,
        instance: String,
        token: String,
    ) -> Result<(), Status> {
        let mut state = self.inner.lock();
        let held = state
            .services
            .get(&service)
            .and_then(|entry| entry.instances.get(&instance))
            .ok_or_else(|| unknown(&service, &instance))?;
        if !same_token(&held.token, &token) {
            return Err(wrong_token(&service, &instance));
        }
        state.remove(&service, &instance);
        tracing::debug!(%service, %instance, "deregistered");
        Ok(())
    }

    async fn list(&self, service: String) -> Result<ServiceSet, Status> {
        self.inner.limits.name("service name", &service)?;
        let state = self.inner.lock();
        Ok(state
            .services
            .get(&service)
            .map_or_else(ServiceSet::default, |entry| ServiceSet {
                version: entry.version,
                endpoints: entry
                    .instances
                    .values()
                    .map(|instance| Endpoint::clone(&instance.endpoint))
                    .collect(),
            }))
    }

    async fn services(&self) -> Result<Vec<ServiceSummary>, Status> {
        let state = self.inner.lock();
        let mut services: Vec<ServiceSummary> = state
            .services
            .iter()
            .filter(|(_, entry)| !entry.instances.is_empty())
            .map(|(name, entry)| ServiceSummary {
                name: name.clone(),
                instances: entry.instances.len() as u64,
                version: entry.version,
            })
            .collect();
        services.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(services)
    }

    async fn watch(&self, service: String) -> Result<Streaming<WatchEvent>, Status> {
        let inner = &self.inner;
        inner.limits.name("service name", &service)?;
        let watchers = inner.watchers.fetch_add(1, Ordering::Relaxed);
        let seat = Seat {
            registry: self.clone(),
            service: service.clone(),
        };
        if watchers >= inner.limits.max_watchers {
            return Err(status(
                Code::ResourceExhausted,
                format!(
                    "the registry holds its limit of {} watches",
                    inner.limits.max_watchers
                ),
            ));
        }
        let receiver = inner.lock().service(&service).subscribe();
        let ready_at = *inner
            .ready_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(Streaming::new(follow(receiver, ready_at, seat)))
    }
}

/// One open watch, counted while it lives.
struct Seat {
    registry: Registry,
    service: String,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let inner = &self.registry.inner;
        inner.watchers.fetch_sub(1, Ordering::Relaxed);
        // The receiver is dropped before the seat (see `Follow`), so an unwatched, empty
        // service can go.
        inner.lock().forget_if_idle(&self.service);
    }
}

/// What a watch's stream carries from one event to the next.
struct Follow {
    // Field order: the receiver drops before the seat.
    receiver: watch::Receiver<Arc<Current>>,
    last: Option<Arc<Current>>,
    _seat: Seat,
}

/// The events of one watch: the whole set, then the differences between the set it last
/// sent and the newest one, whenever the stream has room for another.
fn follow(
    receiver: watch::Receiver<Arc<Current>>,
    ready_at: Instant,
    seat: Seat,
) -> impl futures_util::Stream<Item = WatchEvent> + Send + 'static {
    let state = Follow {
        receiver,
        last: None,
        _seat: seat,
    };
    futures_util::stream::unfold(state, move |mut state| async move {
        loop {
            let Some(last) = &state.last else {
                tokio::time::sleep_until(ready_at).await;
                let current = state.receiver.borrow_and_update().clone();
                let event = WatchEvent {
                    version: current.version,
                    reset: true,
                    upsert: current
                        .endpoints
                        .iter()
                        .map(|e| Endpoint::clone(e))
                        .collect(),
                    remove: Vec::new(),
                };
                state.last = Some(current);
                return Some((event, state));
            };
            let last = last.clone();
            // The registry going away ends the watch; the client watches again elsewhere.
            state.receiver.changed().await.ok()?;
            let current = state.receiver.borrow_and_update().clone();
            let event = difference(&last, &current);
            state.last = Some(current);
            if !event.upsert.is_empty() || !event.remove.is_empty() {
                return Some((event, state));
            }
        }
    })
}

/// The event that takes a watcher from `old` to `new` (both sorted by instance id).
fn difference(old: &Current, new: &Current) -> WatchEvent {
    let mut event = WatchEvent {
        version: new.version,
        ..WatchEvent::default()
    };
    let (mut a, mut b) = (
        old.endpoints.iter().peekable(),
        new.endpoints.iter().peekable(),
    );
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(gone), None) => {
                event.remove.push(gone.instance.clone());
                a.next();
            }
            (None, Some(added)) => {
                event.upsert.push(Endpoint::clone(added));
                b.next();
            }
            (Some(x), Some(y)) => match x.instance.cmp(&y.instance) {
                std::cmp::Ordering::Less => {
                    event.remove.push(x.instance.clone());
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    event.upsert.push(Endpoint::clone(y));
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if !Arc::ptr_eq(x, y) && x != y {
                        event.upsert.push(Endpoint::clone(y));
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
    // A change that touches most of the set goes as the whole set.
    if event.upsert.len() + event.remove.len() > new.endpoints.len().max(8) {
        event.reset = true;
        event.upsert = new.endpoints.iter().map(|e| Endpoint::clone(e)).collect();
        event.remove.clear();
    }
    event
}

fn unknown(service: &str, instance: &str) -> Status {
    status(
        Code::NotFound,
        format!(
            "no instance {instance} of {service} is registered (it expired, or the registry restarted): register again"
        ),
    )
}

fn wrong_token(service: &str, instance: &str) -> Status {
    status(
        Code::PermissionDenied,
        format!("the token is not the one issued for instance {instance} of {service}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_peer_counts_by_its_slash_64() {
        let group = |text: &str| peer_group(text.parse().unwrap()).to_string();
        assert_eq!(group("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(group("2001:db8:1:2::1"), group("2001:db8:1:2:ffff::9"));
        assert_ne!(group("2001:db8:1:2::1"), group("2001:db8:1:3::1"));
        assert_eq!(group("::ffff:10.0.0.7"), "10.0.0.7");
        assert_eq!(group("10.0.0.7"), "10.0.0.7");
    }

    fn current(version: u64, instances: &[(&str, u32)]) -> Current {
        Current {
            version,
            endpoints: instances
                .iter()
                .map(|(id, weight)| {
                    Arc::new(
                        Endpoint::new("127.0.0.1:7000")
                            .unwrap()
                            .instance(*id)
                            .weight(*weight),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_difference_names_what_was_added_changed_and_removed() {
        let old = current(
            1,
            &[
                ("a", 1),
                ("b", 1),
                ("c", 1),
                ("d", 1),
                ("e", 1),
                ("f", 1),
                ("g", 1),
                ("h", 1),
                ("i", 1),
            ],
        );
        let new = current(
            2,
            &[
                ("a", 1),
                ("b", 2),
                ("d", 1),
                ("e", 1),
                ("f", 1),
                ("g", 1),
                ("h", 1),
                ("i", 1),
                ("j", 1),
            ],
        );
        let event = difference(&old, &new);
        assert_eq!(event.version, 2);
        assert!(!event.reset);
        let upserted: Vec<_> = event
            .upsert
            .iter()
            .map(|e| (e.instance.as_str(), e.weight))
            .collect();
        assert_eq!(upserted, [("b", 2), ("j", 1)]);
        assert_eq!(event.remove, ["c"]);
    }

    /// A registration withdrawn before its TTL leaves no timer behind: otherwise registering
    /// and deregistering in a loop with a long TTL would pile timers up for up to `max_ttl`,
    /// past every bound on what the registry holds.
    #[tokio::test]
    async fn a_withdrawn_registration_leaves_no_timer_behind() {
        let registry = Registry::default();
        for round in 0..100 {
            let endpoint = Endpoint::new("127.0.0.1:9")
                .unwrap()
                .instance(format!("i{round}"));
            let granted = registry
                .register("svc".into(), endpoint, 3_600_000, None)
                .await
                .unwrap();
            registry
                .deregister("svc".into(), format!("i{round}"), granted.token)
                .await
                .unwrap();
        }
        let kept = Endpoint::new("127.0.0.1:9").unwrap().instance("kept");
        registry
            .register("svc".into(), kept, 3_600_000, None)
            .await
            .unwrap();
        assert_eq!(registry.instances(), 1);
        assert_eq!(registry.inner.timer.pending_timers(), 1);
    }

    /// The expiry check re-armed after a heartbeat is the registration's own: it still
    /// removes the registration once the renewed TTL runs out.
    #[tokio::test(start_paused = true)]
    async fn a_renewed_registration_expires_at_its_renewed_ttl() {
        let registry = Registry::default();
        let endpoint = Endpoint::new("127.0.0.1:9").unwrap().instance("one");
        let granted = registry
            .register("svc".into(), endpoint, 1_000, None)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        registry
            .heartbeat("svc".into(), "one".into(), granted.token)
            .await
            .unwrap();
        // The first check (at 1 s) finds the heartbeat and checks again at 1.6 s.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(registry.instances(), 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(registry.instances(), 0);
        assert_eq!(registry.inner.timer.pending_timers(), 0);
    }

    #[test]
    fn a_sweeping_difference_is_the_whole_set() {
        let old = current(1, &[("a", 1)]);
        let new = current(
            5,
            &[
                ("b", 1),
                ("c", 1),
                ("d", 1),
                ("e", 1),
                ("f", 1),
                ("g", 1),
                ("h", 1),
                ("i", 1),
                ("j", 1),
            ],
        );
        let event = difference(&old, &new);
        assert!(event.reset);
        assert_eq!(event.upsert.len(), 9);
        assert!(event.remove.is_empty());
    }
}
