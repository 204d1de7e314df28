use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio_util::sync::CancellationToken;

use super::dispatch::Services;
use super::{Server, Shared};
use crate::Service;
use crate::compress::DEFAULT_COMPRESSION_THRESHOLD;
use crate::wire::DEFAULT_MAX_FRAME_SIZE;

/// Adds services and sets limits; [`bind`](Builder::bind) makes the [`Server`].
///
/// Defaults: 10,000 connections, 1,024 in-flight calls per connection, 16 MiB frames, idle
/// connections closed after 5 minutes without a frame, 30 s of grace on shutdown.
#[must_use]
pub struct Builder {
    services: Services,
    config: ServerConfig,
}

#[derive(Debug, Clone)]
pub(super) struct ServerConfig {
    pub(super) max_connections: usize,
    pub(super) max_in_flight: usize,
    pub(super) max_frame_size: u32,
    pub(super) idle_timeout: Duration,
    pub(super) shutdown_grace: Duration,
    pub(super) compression_threshold: usize,
}

impl Builder {
    pub(super) fn new() -> Self {
        Builder {
            services: Services::default(),
            config: ServerConfig {
                max_connections: 10_000,
                max_in_flight: 1024,
                max_frame_size: DEFAULT_MAX_FRAME_SIZE,
                idle_timeout: Duration::from_secs(300),
                shutdown_grace: Duration::from_secs(30),
                compression_threshold: DEFAULT_COMPRESSION_THRESHOLD,
            },
        }
    }

    /// Registers a service under its [`name`](Service::name). A later service with the same
    /// name replaces the earlier one.
    pub fn add_service(mut self, service: impl Service) -> Self {
        self.services.insert(Arc::new(service));
        self
    }

    /// Connections served at once; one more is sent a goaway (resource_exhausted) and closed.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.config.max_connections = max;
        self
    }

    /// Calls running at once on one connection; one more is answered resource_exhausted.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.config.max_in_flight = max;
        self
    }

    /// Largest frame accepted (a larger one closes the connection with a goaway), and the
    /// largest size a body may decompress to.
    pub fn max_frame_size(mut self, bytes: u32) -> Self {
        self.config.max_frame_size = bytes;
        self
    }

    /// A connection that sends no frame (call, ping, cancel) for this long is closed.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// How long in-flight calls may run after shutdown begins before they are stopped.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// Replies smaller than this go uncompressed even when the call was compressed.
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.config.compression_threshold = bytes;
        self
    }

    /// Binds the listening socket.
    pub async fn bind(mut self, addr: impl ToSocketAddrs) -> io::Result<Server> {
        self.services.add_reflection();
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(Server {
            listener,
            local_addr,
            shared: Arc::new(Shared {
                services: self.services,
                config: self.config,
                shutdown: CancellationToken::new(),
            }),
        })
    }
}
