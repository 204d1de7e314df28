//! A client's settings, as its builder set them: read by the client, its connections and
//! their calls.

use std::time::Duration;

use crate::call::CallOptions;
use crate::stream::FlowConfig;

/// What [`Builder`](super::Builder) sets; every connection of a client shares a copy.
#[derive(Debug, Clone)]
pub(crate) struct ClientConfig {
    pub(super) defaults: CallOptions,
    pub(super) compression_threshold: usize,
    pub(super) max_frame_size: u32,
    pub(super) max_in_flight: usize,
    pub(super) keepalive_interval: Duration,
    pub(super) keepalive_timeout: Duration,
    pub(super) flow: FlowConfig,
}
