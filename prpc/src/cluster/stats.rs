//! What a balanced client knows, as read: per cluster its endpoints (connection, calls,
//! breaker), its discovery source, and the attempts, retries and backup requests it sent;
//! and every cluster alive in the process, for a debug page.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::balanced::Shared;
use super::fail_mode::FailMode;
use super::members::EndpointStats;
use crate::balance::Algorithm;
use crate::discovery::SourceStats;

/// One cluster's numbers: from [`Cluster::snapshot`](super::Cluster::snapshot), or for every
/// cluster of the process from [`clusters`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClusterSnapshot {
    /// The service it calls.
    pub service: String,
    /// Its balancer.
    pub algorithm: Algorithm,
    /// Its default fail mode.
    pub fail_mode: FailMode,
    /// Its endpoints, as the balancer last saw them.
    pub endpoints: Vec<EndpointStats>,
    /// Its discovery source: healthy or failing since when, version, resyncs.
    pub discovery: SourceStats,
    /// Attempts sent to endpoints.
    pub attempts: u64,
    /// Attempts after a call's first (failover, failtry, backup requests).
    pub retries: u64,
    /// Backup requests sent (fail mode `backup`).
    pub hedges: u64,
}

pub(super) fn snapshot(shared: &Shared) -> ClusterSnapshot {
    let view = shared
        .view
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    ClusterSnapshot {
        service: shared.service.clone(),
        algorithm: shared.algorithm,
        fail_mode: shared.fail_mode,
        endpoints: view.members.iter().map(|member| member.stats()).collect(),
        discovery: shared.watch.stats(),
        attempts: shared.counters.attempts.load(Ordering::Relaxed),
        retries: shared.counters.retries.load(Ordering::Relaxed),
        hedges: shared.counters.hedges.load(Ordering::Relaxed),
    }
}

/// Every cluster built in this process, while it lives.
static CLUSTERS: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

pub(super) fn register(shared: &Arc<Shared>) {
    let mut clusters = CLUSTERS.lock().unwrap_or_else(PoisonError::into_inner);
    clusters.retain(|cluster| cluster.strong_count() > 0);
    clusters.push(Arc::downgrade(shared));
}

/// The numbers of every [`Cluster`](super::Cluster) alive in this process, in the order they
/// were built: what a debug page shows of the process's clients.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use prpc::cluster::Cluster;
/// use prpc::discovery::StaticDiscover;
///
/// let discovery = StaticDiscover::from_addresses(["127.0.0.1:7000"]).unwrap();
/// let cluster = Cluster::builder().build(&discovery, "math.Arith");
/// let every = prpc::cluster::clusters();
/// assert!(every.iter().any(|snapshot| snapshot.service == "math.Arith"));
/// # drop(cluster);
/// # }
/// ```
pub fn clusters() -> Vec<ClusterSnapshot> {
    let alive: Vec<Arc<Shared>> = {
        let mut clusters = CLUSTERS.lock().unwrap_or_else(PoisonError::into_inner);
        clusters.retain(|cluster| cluster.strong_count() > 0);
        clusters.iter().filter_map(Weak::upgrade).collect()
    };
    alive.iter().map(|shared| snapshot(shared)).collect()
}
