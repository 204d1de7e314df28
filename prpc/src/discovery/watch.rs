//! What a consumer of discovery holds ([`Watch`], [`Snapshot`], [`SourceStats`]) and what a
//! source feeds it through ([`Publisher`]).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::watch;

use super::Endpoint;

/// The endpoints of one service at one moment, as its source last knew them.
///
/// Snapshots of one [`Watch`] are numbered from 1 in the order they were published (0 is the
/// empty snapshot before the source first answered); a new number always means a different
/// set. Endpoints are sorted by instance id, each instance once.
///
/// ```
/// use prpc::discovery::{Endpoint, Publisher};
///
/// let (publisher, watch) = Publisher::new("static", "math.Arith");
/// publisher.publish(vec![Endpoint::new("10.0.0.8:7000")?, Endpoint::new("10.0.0.7:7000")?]);
/// let snapshot = watch.current();
/// assert_eq!((snapshot.version, snapshot.len()), (1, 2));
/// assert_eq!(snapshot.endpoints[0].instance, "tcp://10.0.0.7:7000"); // sorted
/// assert!(snapshot.get("tcp://10.0.0.8:7000").is_some());
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Snapshot {
    /// This snapshot's number.
    pub version: u64,
    /// The endpoints, sorted by [`instance`](Endpoint::instance).
    pub endpoints: Vec<Endpoint>,
}

impl Snapshot {
    /// The endpoint with this instance id.
    pub fn get(&self, instance: &str) -> Option<&Endpoint> {
        self.endpoints
            .binary_search_by(|endpoint| endpoint.instance.as_str().cmp(instance))
            .ok()
            .map(|at| &self.endpoints[at])
    }

    /// Whether the snapshot holds no endpoint.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// How many endpoints it holds.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }
}

/// How a discovery source is doing: what [`Watch::stats`] reports and the debug page shows.
///
/// ```
/// use prpc::discovery::Publisher;
///
/// let (publisher, watch) = Publisher::new("registry", "math.Arith");
/// publisher.failed("connection refused");
/// let stats = watch.stats();
/// assert!(!stats.healthy);
/// assert_eq!(stats.last_error.as_deref(), Some("connection refused"));
/// assert_eq!((stats.source, stats.failures), ("registry", 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceStats {
    /// The kind of source (`static`, `dns`, `registry`, `etcd`).
    pub source: &'static str,
    /// The service watched.
    pub service: String,
    /// The version of the current snapshot.
    pub version: u64,
    /// How many endpoints it holds.
    pub endpoints: usize,
    /// Whether the last attempt to reach the source succeeded. While it is `false` the
    /// snapshot is the last one known, kept rather than emptied.
    pub healthy: bool,
    /// The last error the source reported, if it is failing now.
    pub last_error: Option<String>,
    /// When the current snapshot was published.
    pub last_change: Option<SystemTime>,
    /// Since when the source has been failing, if it is.
    pub failing_since: Option<SystemTime>,
    /// How many times the source failed in all.
    pub failures: u64,
    /// How many times it came back after failing (each time the set was read afresh).
    pub resyncs: u64,
}

/// A consumer's view of one service's endpoints: the current [`Snapshot`], a way to wait for
/// the next, and the source's [`SourceStats`].
///
/// Clones share the source; the source keeps watching while any clone (or a receiver taken
/// from one) lives, and stops when the last is dropped.
///
/// ```
/// use prpc::discovery::{Discover, Endpoint, StaticDiscover};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fixed = StaticDiscover::new([Endpoint::new("10.0.0.7:7000")?]);
/// let mut watch = fixed.watch("math.Arith");
/// let snapshot = watch.ready().await?;
/// assert_eq!(snapshot.endpoints.len(), 1);
/// assert!(watch.stats().healthy);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Watch {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    stats: Arc<Mutex<SourceStats>>,
}

/// The source of a [`Watch`] stopped for good (it was dropped, or ended).
///
/// ```
/// use prpc::discovery::{Publisher, SourceStopped};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (publisher, mut watch) = Publisher::new("static", "math.Arith");
/// drop(publisher);
/// assert_eq!(watch.changed().await.unwrap_err(), SourceStopped);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceStopped;

impl std::fmt::Display for SourceStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the discovery source stopped")
    }
}

impl std::error::Error for SourceStopped {}

impl Watch {
    /// The current snapshot (version 0 and empty until the source first answers).
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// The first snapshot the source published: at once if it already has, else when it does.
    /// A source that cannot be reached publishes nothing, so bound the wait with a timeout.
    pub async fn ready(&mut self) -> Result<Arc<Snapshot>, SourceStopped> {
        let snapshot = self
            .snapshots
            .wait_for(|snapshot| snapshot.version > 0)
            .await
            .map_err(|_| SourceStopped)?;
        Ok(snapshot.clone())
    }

    /// Waits for a snapshot newer than the last one this watch returned or saw, and returns
    /// it. Snapshots published in between are skipped: a watcher always gets the newest.
    pub async fn changed(&mut self) -> Result<Arc<Snapshot>, SourceStopped> {
        self.snapshots.changed().await.map_err(|_| SourceStopped)?;
        Ok(self.snapshots.borrow_and_update().clone())
    }

    /// How the source is doing.
    pub fn stats(&self) -> SourceStats {
        lock(&self.stats).clone()
    }

    /// The underlying receiver, for `tokio::select!` and `tokio_stream::wrappers::WatchStream`.
    pub fn receiver(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One lock at a time: a publisher takes the stats' lock, then the channel's.
        let current = self.current();
        f.debug_struct("Watch")
            .field("current", &current)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The feeding end of [`Watch`]es: what a [`Discover`](super::Discover) implementation holds
/// for each service it watches.
///
/// A source calls [`publish`](Publisher::publish) with the whole endpoint set each time it
/// learns it (a new version goes out only when the set differs), and
/// [`failed`](Publisher::failed) when it cannot reach its backend: the set is kept, never
/// emptied, the failure is logged once and shows in the stats until the next `publish`.
///
/// ```
/// use prpc::discovery::{Endpoint, Publisher};
///
/// # fn main() -> Result<(), prpc::transport::AddressError> {
/// let (publisher, watch) = Publisher::new("static", "math.Arith");
/// publisher.publish(vec![Endpoint::new("10.0.0.7:7000")?]);
/// publisher.failed("registry unreachable");
/// assert_eq!(watch.current().endpoints.len(), 1); // the last known set stays
/// assert!(!watch.stats().healthy);
/// publisher.publish(vec![Endpoint::new("10.0.0.7:7000")?]);
/// assert_eq!(watch.current().version, 1); // the same set: no new version
/// assert!(watch.stats().healthy);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Publisher {
    snapshots: watch::Sender<Arc<Snapshot>>,
    stats: Arc<Mutex<SourceStats>>,
}

impl Publisher {
    /// A publisher for `service` from a source of this kind, and the first watch on it.
    pub fn new(source: &'static str, service: impl Into<String>) -> (Publisher, Watch) {
        let (snapshots, receiver) = watch::channel(Arc::new(Snapshot::default()));
        let stats = Arc::new(Mutex::new(SourceStats {
            source,
            service: service.into(),
            version: 0,
            endpoints: 0,
            healthy: true,
            last_error: None,
            last_change: None,
            failing_since: None,
            failures: 0,
            resyncs: 0,
        }));
        let watch = Watch {
            snapshots: receiver,
            stats: stats.clone(),
        };
        (Publisher { snapshots, stats }, watch)
    }

    /// Another watch on the same service. Like the first, it has seen no snapshot yet: its
    /// first [`changed`](Watch::changed) returns the current one if the source has published.
    pub fn subscribe(&self) -> Watch {
        let mut snapshots = self.snapshots.subscribe();
        // A new receiver counts the current value as seen; a watch made after the source's
        // first answer would otherwise wait in `changed` for the next change, however long.
        if snapshots.borrow().version > 0 {
            snapshots.mark_changed();
        }
        Watch {
            snapshots,
            stats: self.stats.clone(),
        }
    }

    /// Publishes the whole current set: sorted by instance id, one endpoint per instance (the
    /// last given wins). Marks the source healthy. Returns whether a new version went out.
    pub fn publish(&self, mut endpoints: Vec<Endpoint>) -> bool {
        endpoints.reverse();
        endpoints.sort_by(|a, b| a.instance.cmp(&b.instance));
        endpoints.dedup_by(|later, earlier| later.instance == earlier.instance);
        let mut stats = lock(&self.stats);
        if !stats.healthy {
            stats.healthy = true;
            stats.last_error = None;
            stats.failing_since = None;
            stats.resyncs += 1;
            tracing::info!(source = stats.source, service = %stats.service, "discovery source is back");
        }
        let mut published = false;
        self.snapshots.send_if_modified(|current| {
            if current.version > 0 && current.endpoints == endpoints {
                return false;
            }
            let version = current.version + 1;
            *current = Arc::new(Snapshot {
                version,
                endpoints: std::mem::take(&mut endpoints),
            });
            stats.version = version;
            stats.endpoints = current.endpoints.len();
            stats.last_change = Some(SystemTime::now());
            published = true;
            true
        });
        published
    }

    /// Records that the source could not be reached or answered wrongly. The current set is
    /// kept; the first failure after a success is logged as a warning, repeats at debug level.
    pub fn failed(&self, error: impl fmt::Display) {
        let mut stats = lock(&self.stats);
        let error = error.to_string();
        stats.failures += 1;
        if stats.healthy {
            stats.healthy = false;
            stats.failing_since = Some(SystemTime::now());
            tracing::warn!(
                source = stats.source,
                service = %stats.service,
                endpoints = stats.endpoints,
                %error,
                "discovery source failed; keeping the last known endpoints"
            );
        } else {
            tracing::debug!(source = stats.source, service = %stats.service, %error, "discovery source still failing");
        }
        stats.last_error = Some(error);
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Whether every watch (and receiver) on this service is gone: the source may stop.
    pub fn is_closed(&self) -> bool {
        self.snapshots.is_closed()
    }

    /// Waits until every watch on this service is gone.
    pub async fn closed(&self) {
        self.snapshots.closed().await
    }
}

fn lock(stats: &Mutex<SourceStats>) -> MutexGuard<'_, SourceStats> {
    stats
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Every watch's first `changed` gives the current set, whether it was made before the
    /// source's first answer or after it.
    #[tokio::test]
    async fn a_later_watch_gets_the_current_set_from_changed() {
        let (publisher, mut first) = Publisher::new("test", "svc");
        publisher.publish(vec![Endpoint::new("10.0.0.1:7000").unwrap()]);
        let mut later = publisher.subscribe();
        for watch in [&mut first, &mut later] {
            let snapshot = tokio::time::timeout(Duration::from_secs(5), watch.changed())
                .await
                .expect("changed waited for a change although a set was there")
                .unwrap();
            assert_eq!(snapshot.version, 1);
        }
        // Before the first answer, a later watch waits like the first.
        let (publisher, _first) = Publisher::new("test", "svc");
        let mut early = publisher.subscribe();
        assert!(
            tokio::time::timeout(Duration::from_millis(10), early.changed())
                .await
                .is_err()
        );
    }
}
