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
    /// Whether a dial ever failed (else `backoff` is not looked at).
    ever_failed: std::sync::atomic::AtomicBool,
    /// Calls sent to it, and the count the idle sweep last saw: a call costs one increment,
    /// not a clock read.
    uses: AtomicU64,
    seen_uses: AtomicU64,
    /// Sweeps in a row that found no new call.
    quiet_sweeps: std::sync::atomic::AtomicU32,
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
            ever_failed: Default::default(),
            uses: AtomicU64::new(0),
            seen_uses: AtomicU64::new(0),
            quiet_sweeps: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Whether a dial to it failed lately, so that calls should go elsewhere for now (a
    /// member that never failed answers without a lock or a clock read).
    pub(super) fn backing_off(&self) -> bool {
        if !self.ever_failed.load(Ordering::Relaxed) {
            return false;
        }
        let backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        backoff.until.is_some_and(|until| Instant::now() < until)
    }

    /// Notes that a call went out.
    pub(super) fn used(&self) {
        self.uses.fetch_add(1, Ordering::Relaxed);
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
        self.ever_failed.store(true, Ordering::Relaxed);
        let mut state = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        state.failures = state.failures.saturating_add(1);
        state.until = Some(Instant::now() + backoff(state.failures));
    }

    /// Called by the idle sweep, every half idle timeout: closes its connection if no call
    /// went out to it since the sweep before last (so after between one and one and a half
    /// idle timeouts without a call; calls in flight hold the link, so they finish); the
    /// next call dials again.
    pub(super) fn close_if_idle(&self) -> bool {
        let uses = self.uses.load(Ordering::Relaxed);
        if self.seen_uses.swap(uses, Ordering::Relaxed) != uses {
            self.quiet_sweeps.store(0, Ordering::Relaxed);
            return false;
        }
        if self.quiet_sweeps.fetch_add(1, Ordering::Relaxed) < 1 {
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
    /// Attempts sent to it since it joined (retries and backup requests included).
    pub calls: u64,
    /// Its circuit breaker.
    pub breaker: BreakerStats,
}

impl Member {
    pub(super) fn stats(&self) -> EndpointStats {
        EndpointStats {
            endpoint: self.endpoint.clone(),
            connected: self.current().is_some_and(|link| link.is_open()),
            backing_off: self.backing_off(),
            in_flight: self.load.as_ref().map(|load| load.in_flight()),
            calls: self.uses.load(Ordering::Relaxed),
            breaker: self.breaker.stats(),
        }
    }
}

/// The members in the order the balancer was last given their endpoints.
#[derive(Default)]
pub(super) struct View {
    pub(super) members: Vec<Arc<Member>>,
}
