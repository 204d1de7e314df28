use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::dedupe::Dedupe;
use super::dispatch::Services;
use super::{Bound, Router, Server, Shared};
use crate::compress::DEFAULT_COMPRESSION_THRESHOLD;
use crate::idempotency::{self, FailMode, MemoryStore, Store};
use crate::service::Service;
use crate::timer::Timer;
use crate::transport::{Address, IntoAddress};
use crate::wire::{DEFAULT_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE};

/// Adds services and sets limits; [`bind`](Builder::bind) makes the [`Server`], [`build`](Builder::build)
/// a [`Router`] for connections of any transport.
///
/// Defaults: 10,000 connections, 4,096 in-flight calls per connection (clients send at most
/// 1,024 by default; the rest is headroom for attempts a retrying client stopped waiting for), 16 MiB frames, idle
/// connections closed after 5 minutes without a frame, 30 s of grace on shutdown.
#[must_use]
pub struct Builder {
    services: Services,
    config: ServerConfig,
    store: Option<Arc<dyn Store>>,
    idempotency_ttl: Duration,
    fail_mode: FailMode,
    store_timeout: Duration,
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
                max_in_flight: 4096,
                max_frame_size: DEFAULT_MAX_FRAME_SIZE,
                idle_timeout: Duration::from_secs(300),
                shutdown_grace: Duration::from_secs(30),
                compression_threshold: DEFAULT_COMPRESSION_THRESHOLD,
            },
            store: None,
            idempotency_ttl: idempotency::DEFAULT_TTL,
            fail_mode: FailMode::default(),
            store_timeout: Duration::from_secs(1),
        }
    }

    /// Where calls marked for dedupe are tracked (default: a [`MemoryStore`] of this server).
    /// Servers behind one balancer share a store such as
    /// [`RedisStore`](crate::idempotency::RedisStore) so that a retry landing on another
    /// server still runs once.
    pub fn idempotency_store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// How long a finished call's reply is kept for its retries (default 2 minutes).
    pub fn idempotency_ttl(mut self, ttl: Duration) -> Self {
        self.idempotency_ttl = ttl;
        self
    }

    /// What to do when the store fails or does not answer within `timeout` (or the call's
    /// deadline, if sooner): refuse the call `unavailable` ([`FailMode::Closed`], the
    /// default) or run it without dedupe ([`FailMode::Open`]).
    pub fn idempotency_failure(mut self, fail_mode: FailMode, timeout: Duration) -> Self {
        self.fail_mode = fail_mode;
        self.store_timeout = timeout;
        self
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
        self.config.max_frame_size = bytes.max(MIN_MAX_FRAME_SIZE);
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

    /// The server without a socket: a [`Router`] that serves the streams it is given.
    pub fn build(mut self) -> Router {
        self.services.add_reflection();
        let timer = Timer::default();
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryStore::new(timer.clone())));
        let dedupe = Dedupe {
            store,
            timer: timer.clone(),
            ttl: self.idempotency_ttl,
            fail_mode: self.fail_mode,
            store_timeout: self.store_timeout,
            max_frame_size: self.config.max_frame_size,
        };
        Router {
            shared: Arc::new(Shared {
                services: self.services,
                config: self.config,
                dedupe,
                timer,
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Binds the listening socket: `host:port` or `tcp://host:port` for TCP, `unix:///path`
    /// for a Unix domain socket (the path must not exist yet).
    pub async fn bind(self, addr: impl IntoAddress) -> io::Result<Server> {
        let address = addr
            .into_address()
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        let (listener, local_addr) = match &address {
            Address::Tcp { host, port } => {
                let listener = tokio::net::TcpListener::bind((host.as_str(), *port)).await?;
                let local_addr = listener.local_addr()?.into();
                (Bound::Tcp(listener), local_addr)
            }
            #[cfg(unix)]
            Address::Unix(path) => (
                Bound::Unix(tokio::net::UnixListener::bind(path)?),
                address.clone(),
            ),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "a server cannot bind {address} (serve a {} listener with Router::serve_with_listener)",
                        address.scheme()
                    ),
                ));
            }
        };
        Ok(Server {
            router: self.build(),
            listener,
            local_addr,
        })
    }
}
