//! A server's registrations with registries ([`Builder::register`](super::Builder::register)):
//! made when it starts serving, withdrawn when it shuts down, before it drains.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::discovery::{Endpoint, Register, Registered, Registration, RegistrationState};
use crate::health::{HealthReporter, ServingStatus};
use crate::transport::Address;

/// The default TTL of a server's registrations.
pub(super) const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// What the builder was asked to register.
#[derive(Default)]
pub(super) struct Registrations {
    pub(super) wanted: Vec<Wanted>,
    pub(super) advertise: Option<Address>,
    pub(super) ttl: Option<Duration>,
}

pub(super) struct Wanted {
    pub(super) registry: Arc<dyn Register>,
    pub(super) service: String,
    pub(super) weight: u32,
    pub(super) tags: BTreeMap<String, String>,
}

impl Registrations {
    /// Whether the server registers anywhere.
    pub(super) fn any(&self) -> bool {
        !self.wanted.is_empty()
    }

    /// Starts keeping every registration of a server bound at `local`, each while its
    /// service is serving by `health`.
    pub(super) fn start(
        self,
        local: &Address,
        health: &HealthReporter,
        board: &Board,
    ) -> Vec<Kept> {
        if self.wanted.is_empty() {
            return Vec::new();
        }
        let address = self.advertise.unwrap_or_else(|| advertised(local));
        // A new id per process: a restarted server never collides with the registration its
        // previous life left to lapse.
        let instance = format!("{address}#{:012x}", fastrand::u64(..) >> 16);
        let ttl = self.ttl.unwrap_or(DEFAULT_TTL);
        self.wanted
            .into_iter()
            .map(|wanted| {
                let mut tags = wanted.tags;
                let zone = tags.remove("zone");
                let endpoint = Endpoint {
                    instance: instance.clone(),
                    address: address.clone(),
                    weight: wanted.weight,
                    zone,
                    tags,
                };
                let registration = Registration::new(wanted.service, endpoint, ttl);
                let slot = board.add(registration.clone());
                Kept::start(wanted.registry, registration, health.clone(), slot)
            })
            .collect()
    }
}

/// One registration of a server, made while its service serves (by the server's health)
/// and withdrawn while it does not, until [`withdraw`].
pub(super) struct Kept {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Kept {
    fn start(
        registry: Arc<dyn Register>,
        registration: Registration,
        health: HealthReporter,
        slot: Slot,
    ) -> Self {
        let stop = CancellationToken::new();
        let task = crate::task::spawn(follow_health(
            registry,
            registration,
            health,
            stop.clone(),
            slot,
        ));
        Kept { stop, task }
    }
}

/// A server's registrations and where each stands, for
/// [`Router::registrations`](super::Router::registrations).
#[derive(Debug, Default, Clone)]
pub(super) struct Board(Arc<Mutex<Vec<Entry>>>);

#[derive(Debug)]
struct Entry {
    registration: Registration,
    /// The state of the registration kept now; `None` while it is withdrawn because its
    /// service is not serving.
    state: Option<watch::Receiver<RegistrationState>>,
}

/// One registration's place on its server's [`Board`].
#[derive(Debug)]
struct Slot {
    board: Board,
    index: usize,
}

impl Slot {
    fn set(&self, state: Option<watch::Receiver<RegistrationState>>) {
        let mut entries = self.board.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries[self.index].state = state;
    }
}

impl Board {
    fn add(&self, registration: Registration) -> Slot {
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries.push(Entry {
            registration,
            state: None,
        });
        Slot {
            board: self.clone(),
            index: entries.len() - 1,
        }
    }

    /// Every registration and its state now.
    pub(super) fn read(&self) -> Vec<RegistrationView> {
        let entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .map(|entry| RegistrationView {
                registration: entry.registration.clone(),
                serving: entry.state.is_some(),
                state: entry
                    .state
                    .as_ref()
                    .map_or(RegistrationState::Deregistered, |state| {
                        state.borrow().clone()
                    }),
            })
            .collect()
    }
}

/// One of a server's registrations, as [`Router::registrations`](super::Router::registrations)
/// reads it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegistrationView {
    /// The service, endpoint and TTL registered.
    pub registration: Registration,
    /// Where it stands with its registry.
    pub state: RegistrationState,
    /// Whether its service is serving; while it is not, the registration is withdrawn.
    pub serving: bool,
}

/// Registers while the service serves, deregisters while it does not, until `stop`.
async fn follow_health(
    registry: Arc<dyn Register>,
    registration: Registration,
    health: HealthReporter,
    stop: CancellationToken,
    slot: Slot,
) {
    let mut changes = health.subscribe();
    // A name the server does not serve itself (a registration under another name) follows
    // the server's own health.
    let serving = |health: &HealthReporter| {
        let status = health
            .status(&registration.service)
            .or_else(|| health.status(""));
        status == Some(ServingStatus::Serving)
    };
    loop {
        changes.borrow_and_update();
        if serving(&health) {
            let registered = Registered::start(registry.clone(), registration.clone());
            slot.set(Some(registered.watch_state()));
            loop {
                tokio::select! {
                    () = stop.cancelled() => {
                        registered.deregister().await;
                        return;
                    }
                    changed = changes.changed() => {
                        if changed.is_err() || !serving(&health) {
                            break;
                        }
                    }
                }
            }
            tracing::info!(
                service = %registration.service,
                "the service is not serving: withdrawing its registration"
            );
            registered.deregister().await;
            slot.set(None);
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Withdraws every registration, together, and waits for the registries' answers (each
/// bounded; see [`Registered::deregister`]).
pub(super) async fn withdraw(kept: Vec<Kept>) {
    for kept in &kept {
        kept.stop.cancel();
    }
    for kept in kept {
        let _ = kept.task.await;
    }
}

/// The address clients should dial: the bound one, with an unspecified IP (`0.0.0.0`, `::`)
/// replaced by the address this host reaches others from (or loopback when it has no route).
fn advertised(local: &Address) -> Address {
    let (Address::Tcp { host, port } | Address::Tls { host, port }) = local else {
        return local.clone();
    };
    let Ok(ip) = host.parse::<IpAddr>() else {
        return local.clone();
    };
    if !ip.is_unspecified() {
        return local.clone();
    }
    let outbound = outbound_ip(ip);
    if outbound.is_loopback() {
        tracing::warn!(
            %local,
            "this host has no route out, so the server registers a loopback address: other \
             hosts cannot reach it (set one with Builder::advertise)"
        );
    }
    let host = outbound.to_string();
    match local {
        Address::Tls { .. } => Address::tls(host, *port),
        _ => Address::tcp(host, *port),
    }
}

/// The source address of a route out (a UDP socket "connected" sends nothing).
fn outbound_ip(unspecified: IpAddr) -> IpAddr {
    let probe: SocketAddr = match unspecified {
        IpAddr::V4(_) => ([192, 0, 2, 1], 9).into(),
        IpAddr::V6(_) => (
            "2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap_or(std::net::Ipv6Addr::LOCALHOST),
            9,
        )
            .into(),
    };
    UdpSocket::bind((unspecified, 0))
        .and_then(|socket| {
            socket.connect(probe)?;
            socket.local_addr()
        })
        .map(|addr| addr.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}
