//! What every connection of one server reads: its services and settings, its handler stack,
//! its timing wheel and its shutdown signal.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::dispatch::Services;
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
    pub(super) flow: FlowConfig,
}

/// What every connection of a server reads.
pub(super) struct Shared<H> {
    pub(super) services: Services,
    pub(super) config: ServerConfig,
    /// The layers and, at their bottom, the services.
    pub(super) handler: H,
    /// Call deadlines and idle checks of every connection.
    pub(super) timer: Timer,
    /// Cancelled to begin graceful shutdown.
    pub(super) shutdown: CancellationToken,
}
