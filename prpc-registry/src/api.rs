//! The registry's service, `prpc.Registry`, and its messages: what goes on the wire (see
//! `docs/REGISTRY.md` for the same in language-neutral terms).

use prpc::discovery::Endpoint;
use serde::{Deserialize, Serialize};

/// The registry as a prpc service (`prpc.Registry`).
///
/// Servers call `register` once, then `heartbeat` within the TTL, and `deregister` when they
/// stop; clients call `list` or follow `watch`. Every method answers a refusal with a status:
/// `invalid_argument` for a malformed registration, `not_found` for an instance the registry
/// does not know (expired, or the registry restarted: register again), `permission_denied`
/// for a wrong token, `already_exists` for an instance id another registrant holds, and
/// `resource_exhausted` when a bound is reached (see [`Limits`](crate::Limits)).
///
/// ```
/// use prpc_registry::{Registry, RegistryApiClient};
/// use prpc::discovery::Endpoint;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = prpc::Server::builder()
///     .add_service(Registry::default().service())
///     .bind("127.0.0.1:0")
///     .await?;
/// let address = server.local_addr();
/// tokio::spawn(server.serve());
///
/// let api = RegistryApiClient::connect(address).await?;
/// let endpoint = Endpoint::new("10.0.0.7:7000")?;
/// let granted = api.register("math.Arith".into(), endpoint, 10_000, None).await?;
/// api.heartbeat("math.Arith".into(), "tcp://10.0.0.7:7000".into(), granted.token.clone()).await?;
/// assert_eq!(api.list("math.Arith".into()).await?.endpoints.len(), 1);
/// # Ok(())
/// # }
/// ```
#[prpc::service(name = "prpc.Registry")]
pub trait RegistryApi {
    /// Registers `endpoint` as an instance of `service` for `ttl_ms` milliseconds without a
    /// heartbeat; the reply's token renews and withdraws it. A live instance id is not
    /// registered twice: the second attempt is `already_exists` until the first lapses at its
    /// TTL or its holder deregisters it, unless it carries the same `nonce` (a secret the
    /// registrant chose: up to 255 bytes, no whitespace) with the same endpoint and TTL: then it is the
    /// registrant asking again after a lost reply, and gets the same grant.
    async fn register(
        &self,
        service: String,
        endpoint: Endpoint,
        ttl_ms: u64,
        nonce: Option<String>,
    ) -> Result<Granted, prpc::Status>;

    /// Renews a registration for another TTL. `not_found` if the registry does not know it
    /// (register again), `permission_denied` if the token is not the one issued.
    async fn heartbeat(
        &self,
        service: String,
        instance: String,
        token: String,
    ) -> Result<Granted, prpc::Status>;

    /// Withdraws a registration: watchers see it go at once.
    async fn deregister(
        &self,
        service: String,
        instance: String,
        token: String,
    ) -> Result<(), prpc::Status>;

    /// The current endpoints of `service` (empty if it has none).
    async fn list(&self, service: String) -> Result<ServiceSet, prpc::Status>;

    /// Every service that has instances, with how many.
    async fn services(&self) -> Result<Vec<ServiceSummary>, prpc::Status>;

    /// Follows `service`: the first event is the whole set (`reset`), each later one the
    /// changes since the one before. A watcher that reads slowly gets the changes merged into
    /// fewer events (never more than the registry holds for it: its last set), not a queue.
    async fn watch(&self, service: String) -> Result<prpc::Streaming<WatchEvent>, prpc::Status>;
}

/// What a registration or heartbeat was granted (see [`RegistryApi`]'s example).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granted {
    /// The secret that renews and withdraws the registration; keep it.
    pub token: String,
    /// How long the registration lives without another heartbeat, in milliseconds.
    pub ttl_ms: u64,
}

/// A service's endpoints at one version: what `list` answers (see [`RegistryApi`]'s example).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceSet {
    /// Raised by every change to the service's set (it starts again from 1 when the registry
    /// restarts).
    pub version: u64,
    /// The endpoints, sorted by instance id.
    pub endpoints: Vec<Endpoint>,
}

/// One service the registry knows: what `services` answers.
///
/// ```
/// use prpc_registry::ServiceSummary;
///
/// let json = r#"{"name":"math.Arith","instances":3,"version":17}"#;
/// let summary: ServiceSummary = serde_json::from_str(json)?;
/// assert_eq!(summary.instances, 3);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSummary {
    /// Its name.
    pub name: String,
    /// How many instances are registered.
    pub instances: u64,
    /// The version of its set.
    pub version: u64,
}

/// One event of a watch. To hold the set, apply each in order: on `reset` clear it, then
/// remove every id in `remove`, then insert or replace every endpoint of `upsert`.
///
/// ```
/// use std::collections::BTreeMap;
/// use prpc_registry::WatchEvent;
///
/// let first: WatchEvent = serde_json::from_str(
///     r#"{"version":3,"reset":true,"upsert":[{"instance":"a","address":"tcp://10.0.0.7:7000"}],"remove":[]}"#,
/// )?;
/// let next: WatchEvent = serde_json::from_str(
///     r#"{"version":4,"reset":false,"upsert":[{"instance":"b","address":"tcp://10.0.0.8:7000","weight":2}],"remove":["a"]}"#,
/// )?;
/// let mut set = BTreeMap::new();
/// for event in [first, next] {
///     if event.reset {
///         set.clear();
///     }
///     for gone in &event.remove {
///         set.remove(gone);
///     }
///     for endpoint in event.upsert {
///         set.insert(endpoint.instance.clone(), endpoint);
///     }
/// }
/// assert_eq!(set.keys().collect::<Vec<_>>(), ["b"]);
/// assert_eq!(set["b"].weight, 2);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WatchEvent {
    /// The version of the set after this event.
    pub version: u64,
    /// Whether `upsert` is the whole set (drop what you held) rather than changes.
    pub reset: bool,
    /// Endpoints added or changed.
    pub upsert: Vec<Endpoint>,
    /// Instance ids removed.
    pub remove: Vec<String>,
}
