//! What every connection of one server reads: its services and settings, its handler stack,
//! its timing wheel and its shutdown signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::dispatch::Services;
use super::tasks::Tasks;
use crate::health::HealthReporter;
use crate::idempotency::Store;
use crate::stats::ServerStats;
use crate::stream::FlowConfig;
use crate::timer::Timer;

/// The limits and sizes a server's builder set.
#[derive(Debug, Clone)]
pub(super) struct ServerConfig {
    pub(super) max_connections: usize,
    pub(super) max_in_flight: usize,
    pub(super) max_frame_size: u32,
    pub(super) idle_timeout: Duration,
    pub(super) shutdown_grace: Duration,
    pub(super) compression_threshold: usize,
    pub(super) max_concurrent_streams: usize,
    /// Bytes of large frames all connections may hold at once (see `budget`).
    pub(super) memory_budget: usize,
    /// How long a partial frame may go without a byte before its connection is closed.
    pub(super) frame_progress_timeout: Duration,
    pub(super) flow: FlowConfig,
    /// Whether calls and connections are counted (see [`crate::stats`]).
    pub(super) stats: bool,
}

/// What every connection of a server reads.
pub(super) struct Shared<H> {
    pub(super) services: Services,
    pub(super) config: ServerConfig,
    /// The layers and, at their bottom, the services.
    pub(super) handler: H,
    /// Call deadlines and idle checks of every connection.
    pub(super) timer: Timer,
    /// Graceful shutdown: asked for, then begun.
    pub(super) shutdown: std::sync::Arc<Shutdown>,
    /// What the health service answers.
    pub(super) health: HealthReporter,
    /// The server's numbers (empty when counting is off).
    pub(super) stats: std::sync::Arc<ServerStats>,
    /// The server's registrations and their state.
    pub(super) registrations: super::registration::Board,
    /// Bytes of large frames held across the server's connections.
    pub(super) budget: super::budget::MemoryBudget,
    /// The idempotency store, for its size in the stats.
    pub(super) store: std::sync::Arc<dyn Store>,
    /// The dedupe layer's writes that outlive their calls: serving ends after them.
    pub(super) settling: Tasks,
    /// Deduplicated calls still running after their connection ended: serving ends after
    /// them (stopped at the end of the shutdown grace).
    pub(super) lingering: Tasks,
    /// Bounds one store operation (and so the wait for `settling`: see
    /// `dedupe::background_bound`).
    pub(super) store_timeout: Duration,
}

/// A server's graceful shutdown in steps: `requested` (by a [`ShutdownHandle`] or the
/// serve call's signal), then `drain` (every connection sends goaway and finishes its calls),
/// then `stop` (the grace is over: the calls still running are being stopped). A server that
/// registered itself withdraws its registrations between the first two, so clients stop
/// sending before it stops answering; `deferred` says so.
///
/// [`ShutdownHandle`]: super::ShutdownHandle
#[derive(Debug, Default)]
pub(super) struct Shutdown {
    pub(super) requested: CancellationToken,
    pub(super) drain: CancellationToken,
    /// Cancelled by whoever stops calls at the end of the grace, before it stops them: a
    /// deduplicated call stopped then leaves its outcome unknown, where one its client
    /// cancelled during the grace records `cancelled`.
    pub(super) stop: CancellationToken,
    pub(super) deferred: AtomicBool,
}

impl Shutdown {
    /// Asks for shutdown; drains at once unless the accept loop withdraws registrations first.
    pub(super) fn request(&self) {
        self.requested.cancel();
        if !self.deferred.load(Ordering::Acquire) {
            self.drain.cancel();
        }
    }
}
