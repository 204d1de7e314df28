//! The registry's clients: [`RegistryClient`], a [`Register`] for servers and a [`Discover`]
//! for clients.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prpc::discovery::{
    Discover, Endpoint, Lease, Publisher, Publishers, Register, RegisterError, RegisterFuture,
    Registration, Watch,
};
use prpc::transport::{Address, AddressError, IntoAddress};
use prpc::{Code, Error};
use tokio::sync::Mutex;

use crate::api::{RegistryApiClient, WatchEvent};

/// How long a registry call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of one built-in registry: give it to a server builder's
/// [`register`](prpc::server::Builder::register) to register there, or
/// [`watch`](Discover::watch) a service's endpoints through it.
///
/// It connects when first used and again whenever the registry is lost, so it can be made
/// before the registry is up. Clones share one connection.
///
/// ```no_run
/// use prpc::discovery::Discover;
/// use prpc_registry::RegistryClient;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = RegistryClient::new("10.0.0.2:7700")?;
///
/// // A server registers itself (and withdraws before it drains on shutdown):
/// let server = prpc::Server::builder()
///     // .add_service(ArithServer::new(Calculator))
///     .register(registry.clone(), "math.Arith", 1, [("zone", "eu-west-1a")])
///     .bind("0.0.0.0:7000")
///     .await?;
/// tokio::spawn(server.serve());
///
/// // A client follows the service's endpoints:
/// let mut watch = registry.watch("math.Arith");
/// let snapshot = watch.ready().await?;
/// println!("{} servers", snapshot.endpoints.len());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    address: Address,
    /// Sent with every registration, so that one repeated after a lost reply gets the grant
    /// the first made (see `RegistryApi::register`).
    nonce: String,
    api: Mutex<Option<RegistryApiClient>>,
    publishers: Publishers,
}

impl RegistryClient {
    /// A client of the registry at `address` (it connects when first used).
    pub fn new(address: impl IntoAddress) -> Result<Self, AddressError> {
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                address: address.into_address()?,
                nonce: nonce(),
                api: Mutex::new(None),
                publishers: Publishers::new("registry"),
            }),
        })
    }

    /// The registry's address.
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// The typed client of the registry's service, connected (for `list`, `services` and
    /// the raw calls).
    pub async fn api(&self) -> Result<RegistryApiClient, Error> {
        self.inner.api().await
    }
}

impl Inner {
    async fn api(&self) -> Result<RegistryApiClient, Error> {
        let mut api = self.api.lock().await;
        if let Some(api) = &*api {
            return Ok(api.clone());
        }
        let client = prpc::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            // A registry that stops answering is found within seconds, not at TCP's timeout.
            .keepalive(Duration::from_secs(5), Duration::from_secs(5))
            .connect(self.address.clone())
            .await?;
        let client = RegistryApiClient::new(client);
        *api = Some(client.clone());
        Ok(client)
    }
}

/// A refusal the registrant cannot fix by trying again.
fn refused(error: &Error) -> bool {
    matches!(
        error.code(),
        Code::InvalidArgument
            | Code::PermissionDenied
            | Code::AlreadyExists
            | Code::ResourceExhausted
            | Code::Unimplemented
    ) && error.status().is_some()
}

fn register_error(error: Error) -> RegisterError {
    if error.status().is_some() && error.code() == Code::NotFound {
        RegisterError::Expired
    } else if refused(&error) {
        RegisterError::Refused(error.to_string())
    } else {
        RegisterError::Unavailable(error.to_string())
    }
}

impl Register for RegistryClient {
    fn register<'a>(&'a self, registration: &'a Registration) -> RegisterFuture<'a, Lease> {
        Box::pin(async move {
            let api = self.inner.api().await.map_err(register_error)?;
            let ttl_ms = registration.ttl.as_millis().min(u64::MAX as u128) as u64;
            let granted = api
                .with_timeout(CALL_TIMEOUT)
                .register(
                    registration.service.clone(),
                    registration.endpoint.clone(),
                    ttl_ms,
                    Some(self.inner.nonce.clone()),
                )
                .await
                .map_err(register_error)?;
            Ok(Lease::new(
                granted.token,
                Duration::from_millis(granted.ttl_ms),
            ))
        })
    }

    fn renew<'a>(
        &'a self,
        registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()> {
        Box::pin(async move {
            let api = self.inner.api().await.map_err(register_error)?;
            api.with_timeout(CALL_TIMEOUT)
                .heartbeat(
                    registration.service.clone(),
                    registration.endpoint.instance.clone(),
                    lease.id.clone(),
                )
                .await
                .map_err(register_error)?;
            Ok(())
        })
    }

    fn deregister<'a>(
        &'a self,
        registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()> {
        Box::pin(async move {
            let api = self.inner.api().await.map_err(register_error)?;
            api.with_timeout(CALL_TIMEOUT)
                .deregister(
                    registration.service.clone(),
                    registration.endpoint.instance.clone(),
                    lease.id.clone(),
                )
                .await
                .map_err(register_error)
        })
    }
}

impl Discover for RegistryClient {
    fn watch(&self, service: &str) -> Watch {
        self.inner.publishers.watch(service, |publisher| {
            let inner = self.inner.clone();
            let service = service.to_owned();
            tokio::spawn(async move {
                tokio::select! {
                    () = follow(&inner, &service, &publisher) => {}
                    () = publisher.closed() => {}
                }
            });
        })
    }
}

/// Follows `service` for as long as anyone watches it: watches the registry, and after each
/// loss waits (backing off, with jitter) and watches again. The registry's first event is
/// the whole set, so nothing that changed in between is missed.
async fn follow(inner: &Inner, service: &str, publisher: &Publisher) {
    let mut set = BTreeMap::new();
    let mut failures = 0u32;
    loop {
        let error = match watch_once(inner, service, publisher, &mut set, &mut failures).await {
            Ok(()) => "the registry ended the watch".to_owned(),
            Err(error) => error.to_string(),
        };
        publisher.failed(error);
        failures = failures.saturating_add(1);
        let backoff = Duration::from_millis(25).saturating_mul(1 << failures.min(7));
        tokio::time::sleep(backoff.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
    }
}

/// One watch, to its end.
async fn watch_once(
    inner: &Inner,
    service: &str,
    publisher: &Publisher,
    set: &mut BTreeMap<String, Endpoint>,
    failures: &mut u32,
) -> Result<(), Error> {
    let api = inner.api().await?;
    let mut events = api.watch(service.to_owned()).await?;
    while let Some(event) = events.message().await? {
        apply(set, event);
        publisher.publish(set.values().cloned().collect());
        *failures = 0;
    }
    Ok(())
}

fn apply(set: &mut BTreeMap<String, Endpoint>, event: WatchEvent) {
    if event.reset {
        set.clear();
    }
    for instance in event.remove {
        set.remove(&instance);
    }
    for endpoint in event.upsert {
        set.insert(endpoint.instance.clone(), endpoint);
    }
}

/// A fresh 128-bit secret, as hex (from the OS's generator; fastrand's if that fails, since
/// a nonce only saves a registration from a lost reply).
fn nonce() -> String {
    let mut secret = [0u8; 16];
    if getrandom::fill(&mut secret).is_err() {
        secret = fastrand::u128(..).to_le_bytes();
    }
    secret.iter().map(|byte| format!("{byte:02x}")).collect()
}
