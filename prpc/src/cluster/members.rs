//! A balanced channel's endpoints as it holds them: one [`Member`] per endpoint, each with
//! its connection (opened on the first call, reopened with backoff) and its load, and the
//! [`View`] of them that picks index into.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::{Breaker, BreakerConfig, BreakerStats};
use crate::balance::Load;
use crate::client::{self, Link};
use crate::discovery::Endpoint;
use crate::error::Error;
use crate::timer::Timer;

/// One endpoint of a balanced channel.
pub(super) struct Member {
    pub(super) endpoint: Endpoint,
    /// Unique among the members a channel ever had: what a call's route records.
    pub(super) id: u64,
    /// The balancer's load for it, when the algorithm keeps one.
    pub(super) load: Option<Arc<Load>>,
    /// Stops calls to it while it keeps failing.
    pub(super) breaker: Breaker,
    link: Mutex<Option<Link>>,
    /// One dial at a time; calls that lose the race use the winner's link.
    dialing: tokio::sync::Mutex<()>,
    /// Failed dials in a row, and when the next may be tried.
    backoff: Mutex<Backoff>,
    /// When a call last went out to it, in milliseconds since the channel's epoch.
    last_used: AtomicU64,
}

#[derive(Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

/// How long an endpoint that failed to connect `failures` times in a row is left alone: 100
/// ms doubling to 10 s, jittered by up to half.
fn backoff(failures: u32) -> Duration {
    let nominal = Duration::from_millis(100).saturating_mul(1 << failures.saturating_sub(1).min(7));
    nominal
        .min(Duration::from_secs(10))
        .mul_f64(0.5 + fastrand::f64() / 2.0)
}

impl Member {
    pub(super) fn new(
        endpoint: Endpoint,
        id: u64,
        load: Option<Arc<Load>>,
        service: &str,
        breaker: &BreakerConfig,
    ) -> Self {
        let (service, name) = (service.to_owned(), endpoint.to_string());
        let breaker = breaker.clone().also_on_state_change(move |change| {
            tracing::warn!(
                %service,
                endpoint = %name,
                from = ?change.from,
                to = ?change.to,
                failures = change.stats.total_failures,
                "circuit breaker changed state"
            );
        });
        Member {
            endpoint,
            id,
            load,
            breaker: Breaker::new(breaker),
            link: Mutex::new(None),
            dialing: tokio::sync::Mutex::new(()),
            backoff: Mutex::new(Backoff::default()),
            last_used: AtomicU64::new(0),
        }
    }

    /// Whether a dial to it failed lately, so that calls should go elsewhere for now.
    pub(super) fn backing_off(&self, now: Instant) -> bool {
        let backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        backoff.until.is_some_and(|until| now < until)
    }

    /// Notes that a call went out now.
    pub(super) fn used(&self, epoch: Instant) {
        let at = epoch.elapsed().as_millis() as u64;
        self.last_used.store(at, Ordering::Relaxed);
    }

    /// The link to it, dialed now if there is none (or the last one could not reconnect).
    pub(super) async fn link(
        &self,
        template: &client::Builder,
        timer: &Timer,
    ) -> Result<Link, Error> {
        if let Some(link) = self.current() {
            return Ok(link);
        }
        let _dialing = self.dialing.lock().await;
        if let Some(link) = self.current() {
            return Ok(link);
        }
        let dialed = template
            .clone()
            .with_timer(timer.clone())
            .connect(self.endpoint.address.clone())
            .await;
        match dialed {
            Ok(client) => {
                let link = client.link().clone();
                *self.link.lock().unwrap_or_else(PoisonError::into_inner) = Some(link.clone());
                *self.backoff.lock().unwrap_or_else(PoisonError::into_inner) = Backoff::default();
                Ok(link)
            }
            Err(error) => {
                self.failed_to_connect();
                Err(error)
            }
        }
    }

    fn current(&self) -> Option<Link> {
        self.link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A dial failed (ours, or the link's own reconnect): calls go elsewhere for a while.
    pub(super) fn failed_to_connect(&self) {
        let mut state = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        state.failures = state.failures.saturating_add(1);
        state.until = Some(Instant::now() + backoff(state.failures));
    }

    /// Closes its connection if no call went out to it for `idle` and none is in flight
    /// (calls hold the link while they run, so one in flight keeps the connection open
    /// anyway); the next call dials again.
    pub(super) fn close_if_idle(&self, epoch: Instant, idle: Duration) -> bool {
        let now = epoch.elapsed().as_millis() as u64;
        let last = self.last_used.load(Ordering::Relaxed);
        if now.saturating_sub(last) < idle.as_millis() as u64 {
            return false;
        }
        self.link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .is_some()
    }
}

/// What a balanced client knows of one endpoint ([`Cluster::endpoint_stats`]).
///
/// [`Cluster::endpoint_stats`]: super::Cluster::endpoint_stats
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EndpointStats {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Whether it has a connection now (it is dialed on demand and closed when idle).
    pub connected: bool,
    /// Whether a dial to it failed lately, so that calls go elsewhere for now.
    pub backing_off: bool,
    /// Calls in flight on it, when the balancer counts them (`least_active`, `p2c`).
    pub in_flight: Option<u64>,
    /// Its circuit breaker.
    pub breaker: BreakerStats,
}

impl Member {
    pub(super) fn stats(&self) -> EndpointStats {
        EndpointStats {
            endpoint: self.endpoint.clone(),
            connected: self.current().is_some_and(|link| link.is_open()),
            backing_off: self.backing_off(Instant::now()),
            in_flight: self.load.as_ref().map(|load| load.in_flight()),
            breaker: self.breaker.stats(),
        }
    }
}

/// The members in the order the balancer was last given their endpoints.
#[derive(Default)]
pub(super) struct View {
    pub(super) members: Vec<Arc<Member>>,
}
