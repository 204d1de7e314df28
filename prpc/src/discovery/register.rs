//! The server side of discovery: [`Register`] (what a registry offers) and [`Registered`]
//! (one registration kept alive by heartbeats until it is withdrawn).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Endpoint;

/// What a server asks a registry to publish: one endpoint of one service, for as long as it
/// renews within `ttl`.
///
/// ```
/// use std::time::Duration;
/// use prpc::discovery::{Endpoint, Registration};
///
/// let registration = Registration::new(
///     "math.Arith",
///     Endpoint::new("10.0.0.7:7000")?.weight(2),
///     Duration::from_secs(10),
/// );
/// assert_eq!(registration.endpoint.weight, 2);
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registration {
    /// The service's name, as clients ask for it (`math.Arith`).
    pub service: String,
    /// The instance.
    pub endpoint: Endpoint,
    /// How long the registry keeps it without a renewal.
    pub ttl: Duration,
}

impl Registration {
    /// `endpoint` as an instance of `service`, kept `ttl` without a renewal.
    pub fn new(service: impl Into<String>, endpoint: Endpoint, ttl: Duration) -> Self {
        Registration {
            service: service.into(),
            endpoint,
            ttl,
        }
    }
}

/// Proof of a registration the registry accepted: what renewing or withdrawing it takes.
///
/// ```
/// use std::time::Duration;
/// use prpc::discovery::Lease;
///
/// // What a registry's `register` returns: its id for the registration, and the TTL granted.
/// let lease = Lease::new("3f2a9c01b7d2", Duration::from_secs(10));
/// assert_eq!(lease.ttl, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The registry's id for it (a token for the built-in registry, a lease id for etcd):
    /// only its holder may renew or withdraw the registration.
    pub id: String,
    /// The TTL the registry granted (it may differ from the one asked for).
    pub ttl: Duration,
}

impl Lease {
    /// A lease with this id and TTL.
    pub fn new(id: impl Into<String>, ttl: Duration) -> Self {
        Lease { id: id.into(), ttl }
    }
}

/// Why a registry did not do what it was asked. [`Registered`] registers again after
/// `Expired`, and retries after the others (`Refused` from scratch, `Unavailable` with the
/// lease it holds).
///
/// ```
/// use prpc::discovery::RegisterError;
///
/// let error = RegisterError::Unavailable("connection refused".into());
/// assert_eq!(error.to_string(), "the registry is unavailable: connection refused");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// The registration is gone (expired, or the registry restarted): register again.
    Expired,
    /// The registry refused it for good (bad input, a wrong token, a bound reached).
    Refused(String),
    /// The registry could not be reached or did not answer: try again later.
    Unavailable(String),
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::Expired => f.write_str(
                "the registration is unknown to the registry (expired, or the registry restarted)",
            ),
            RegisterError::Refused(reason) => write!(f, "the registry refused: {reason}"),
            RegisterError::Unavailable(reason) => {
                write!(f, "the registry is unavailable: {reason}")
            }
        }
    }
}

impl std::error::Error for RegisterError {}

/// The future a [`Register`] method returns.
pub type RegisterFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, RegisterError>> + Send + 'a>>;

/// A registry a server registers with: the built-in one (`prpc-registry`), etcd
/// (`prpc-etcd`), or your own.
///
/// Implement the three calls; [`Registered::start`] (and the server builder's
/// [`register`](crate::server::Builder::register)) drives them: registering, renewing at a
/// third of the lease's TTL, registering again after [`RegisterError::Expired`], and
/// deregistering when the server shuts down.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use prpc::discovery::{Lease, Register, RegisterError, RegisterFuture, Registration};
///
/// /// A registry in a map (a real one is across the network).
/// #[derive(Default)]
/// struct InMemory(Mutex<HashMap<String, Registration>>);
///
/// impl Register for InMemory {
///     fn register<'a>(&'a self, registration: &'a Registration) -> RegisterFuture<'a, Lease> {
///         Box::pin(async move {
///             let id = registration.endpoint.instance.clone();
///             self.0.lock().unwrap().insert(id.clone(), registration.clone());
///             Ok(Lease::new(id, registration.ttl))
///         })
///     }
///
///     fn renew<'a>(&'a self, _: &'a Registration, lease: &'a Lease) -> RegisterFuture<'a, ()> {
///         Box::pin(async move {
///             match self.0.lock().unwrap().contains_key(&lease.id) {
///                 true => Ok(()),
///                 false => Err(RegisterError::Expired),
///             }
///         })
///     }
///
///     fn deregister<'a>(&'a self, _: &'a Registration, lease: &'a Lease) -> RegisterFuture<'a, ()> {
///         Box::pin(async move {
///             self.0.lock().unwrap().remove(&lease.id);
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait Register: Send + Sync + 'static {
    /// Registers, returning the lease to renew.
    fn register<'a>(&'a self, registration: &'a Registration) -> RegisterFuture<'a, Lease>;

    /// Renews the lease; [`RegisterError::Expired`] if the registry no longer knows it.
    fn renew<'a>(
        &'a self,
        registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()>;

    /// Withdraws the registration: clients stop seeing it at once.
    fn deregister<'a>(
        &'a self,
        registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()>;
}

impl<R: Register + ?Sized> Register for Arc<R> {
    fn register<'a>(&'a self, registration: &'a Registration) -> RegisterFuture<'a, Lease> {
        (**self).register(registration)
    }

    fn renew<'a>(
        &'a self,
        registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()> {
        (**self).renew(registration, lease)
    }

    fn deregister<'a>(
        &'a self,
        registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()> {
        (**self).deregister(registration, lease)
    }
}

/// Where a kept registration stands ([`Registered::state`]).
///
/// ```
/// use prpc::discovery::{RegisterError, RegistrationState};
///
/// let state = RegistrationState::Failing(RegisterError::Unavailable("timed out".into()));
/// assert!(matches!(state, RegistrationState::Failing(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationState {
    /// Not registered yet (or again, after the registry lost it).
    Pending,
    /// Registered; renewals are on time.
    Registered,
    /// The last attempt failed with this error; it is being retried.
    Failing(RegisterError),
    /// Withdrawn (or given up when the [`Registered`] was dropped).
    Deregistered,
}

/// One registration kept alive: registered at once and again whenever the registry loses it,
/// renewed at a third of its TTL, withdrawn by [`deregister`](Registered::deregister) or
/// when dropped.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use prpc::discovery::{Endpoint, Register, Registered, Registration};
///
/// # async fn example(registry: Arc<dyn Register>) -> Result<(), Box<dyn std::error::Error>> {
/// let registration = Registration::new(
///     "math.Arith",
///     Endpoint::new("10.0.0.7:7000")?.weight(2),
///     Duration::from_secs(10),
/// );
/// let mut registered = Registered::start(registry, registration);
/// registered.wait_registered().await;
/// // ... serve ...
/// registered.deregister().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Registered {
    stop: CancellationToken,
    state: watch::Receiver<RegistrationState>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Registered {
    /// Starts keeping `registration` with `registry` on a task of its own.
    pub fn start(registry: Arc<dyn Register>, registration: Registration) -> Self {
        let stop = CancellationToken::new();
        let (state, receiver) = watch::channel(RegistrationState::Pending);
        let task = crate::task::spawn(keep(registry, registration, stop.clone(), state));
        Registered {
            stop,
            state: receiver,
            task: Some(task),
        }
    }

    /// Where it stands.
    pub fn state(&self) -> RegistrationState {
        self.state.borrow().clone()
    }

    /// Where it stands, now and as it changes.
    pub fn watch_state(&self) -> watch::Receiver<RegistrationState> {
        self.state.clone()
    }

    /// Waits until the registry has accepted it (at once if it has).
    pub async fn wait_registered(&mut self) {
        let _ = self
            .state
            .wait_for(|state| {
                matches!(
                    state,
                    RegistrationState::Registered | RegistrationState::Deregistered
                )
            })
            .await;
    }

    /// Withdraws the registration and waits until the registry confirmed it, or it was never
    /// registered. Each step is bounded by 5 seconds: a registration in flight is let finish
    /// (so that it is withdrawn rather than left to lapse), then the withdrawal is sent, so
    /// this takes 10 seconds at the very most.
    pub async fn deregister(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        // The task withdraws the registration on its own once stopped.
        self.stop.cancel();
    }
}

/// How long a deregistration may take before a shutdown goes on without it.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(5);

async fn keep(
    registry: Arc<dyn Register>,
    registration: Registration,
    stop: CancellationToken,
    state: watch::Sender<RegistrationState>,
) {
    let mut lease: Option<Lease> = None;
    let mut failures = 0u32;
    loop {
        let held = lease.clone();
        let attempt = async {
            match &held {
                None => registry.register(&registration).await.map(Some),
                Some(held) => registry.renew(&registration, held).await.map(|()| None),
            }
        };
        tokio::pin!(attempt);
        let outcome = tokio::select! {
            outcome = &mut attempt => outcome,
            () = stop.cancelled() => {
                if held.is_none() {
                    // A registration in flight may already be in the registry: let it finish,
                    // so that it is withdrawn below rather than left to lapse at its TTL.
                    if let Ok(Ok(Some(granted))) =
                        tokio::time::timeout(DEREGISTER_TIMEOUT, attempt).await
                    {
                        lease = Some(granted);
                    }
                }
                break;
            }
        };
        let wait = match outcome {
            Ok(granted) => {
                if let Some(granted) = granted {
                    tracing::info!(service = %registration.service, endpoint = %registration.endpoint, "registered");
                    lease = Some(granted);
                }
                failures = 0;
                state.send_replace(RegistrationState::Registered);
                renew_interval(lease.as_ref().map_or(registration.ttl, |l| l.ttl))
            }
            Err(RegisterError::Expired) => {
                tracing::info!(service = %registration.service, endpoint = %registration.endpoint, "the registry lost the registration; registering again");
                lease = None;
                state.send_replace(RegistrationState::Pending);
                Duration::ZERO
            }
            Err(error) => {
                failures += 1;
                if matches!(error, RegisterError::Refused(_)) {
                    // A renewal refused (a token the registry no longer honours): start over.
                    lease = None;
                }
                if failures == 1 {
                    tracing::warn!(service = %registration.service, endpoint = %registration.endpoint, %error, "registration failed; retrying");
                }
                state.send_replace(RegistrationState::Failing(error));
                retry_interval(registration.ttl, failures)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => break,
        }
    }
    if let Some(lease) = lease {
        match tokio::time::timeout(
            DEREGISTER_TIMEOUT,
            registry.deregister(&registration, &lease),
        )
        .await
        {
            Ok(Ok(())) | Ok(Err(RegisterError::Expired)) => {
                tracing::info!(service = %registration.service, endpoint = %registration.endpoint, "deregistered")
            }
            Ok(Err(error)) => {
                tracing::warn!(service = %registration.service, %error, "deregistration failed; the registration lapses at its TTL")
            }
            Err(_) => {
                tracing::warn!(service = %registration.service, "deregistration timed out; the registration lapses at its TTL")
            }
        }
    }
    state.send_replace(RegistrationState::Deregistered);
}

/// Renewals go at a third of the TTL, so two may be lost before the registration lapses.
fn renew_interval(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(1))
}

/// After a failure: quickly at first, backing off to the renewal interval (a registration
/// that fails to renew for its TTL lapses whatever the interval).
fn retry_interval(ttl: Duration, failures: u32) -> Duration {
    let backoff = Duration::from_millis(50).saturating_mul(1 << failures.min(10));
    let jitter = 0.5 + fastrand::f64() / 2.0;
    backoff.min(renew_interval(ttl)).mul_f64(jitter)
}
