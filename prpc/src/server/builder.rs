use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::budget::MemoryBudget;
use super::deadline::Deadline;
use super::dedupe::{Dedupe, DedupeSettings};
use super::dispatch::Services;
use super::handler::{Dispatch, Handler};
use super::listen;
use super::registration::{Registrations, Wanted};
use super::shared::{ServerConfig, Shared, Shutdown};
use super::stats::Stats;
use super::tasks::Tasks;
use super::{Router, Server};
use crate::compress::DEFAULT_COMPRESSION_THRESHOLD;
use crate::discovery::Register;
use crate::health::{self, HealthReporter};
use crate::idempotency::{self, FailMode, MemoryStore, Store};
use crate::layer::{Identity, Layer, Stack};
use crate::reflection;
use crate::service::Service;
use crate::stats::ServerStats;
use crate::stream::FlowConfig;
use crate::timer::Timer;
#[cfg(feature = "tls")]
use crate::transport::tls::ServerTls;
use crate::transport::{AddressError, IntoAddress};
use crate::wire::{DEFAULT_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE, PREFIX_LEN};

/// The default [`Builder::memory_budget`]: 256 MiB.
const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

/// Adds services and sets limits; [`bind`](Builder::bind) makes the [`Server`], [`build`](Builder::build)
/// a [`Router`] for connections of any transport.
///
/// Defaults: 10,000 connections, 4,096 in-flight calls per connection (clients send at most
/// 1,024 by default; the rest is headroom for attempts a retrying client stopped waiting for), 16 MiB frames, idle
/// connections closed after 5 minutes without a frame, 30 s of grace on shutdown, 256 MiB of
/// large frames held across connections, 30 s for a partial frame to make progress.
#[must_use]
pub struct Builder<L = Identity> {
    services: Services,
    /// The user's layers, outermost first (`layer` puts each new one inside the others).
    layer: L,
    /// What a `tls://` address is served with (read by `bind` only).
    #[cfg(feature = "tls")]
    tls: Option<ServerTls>,
    config: ServerConfig,
    store: Option<Arc<dyn Store>>,
    idempotency_ttl: Duration,
    fail_mode: FailMode,
    store_timeout: Duration,
    registrations: Registrations,
}

impl Builder {
    pub(super) fn new() -> Self {
        Builder {
            services: Services::default(),
            layer: Identity,
            config: ServerConfig {
                max_connections: 10_000,
                max_in_flight: 4096,
                max_frame_size: DEFAULT_MAX_FRAME_SIZE,
                idle_timeout: Duration::from_secs(300),
                shutdown_grace: Duration::from_secs(30),
                compression_threshold: DEFAULT_COMPRESSION_THRESHOLD,
                max_concurrent_streams: 1024,
                memory_budget: DEFAULT_MEMORY_BUDGET,
                frame_progress_timeout: Duration::from_secs(30),
                flow: FlowConfig::default(),
                stats: true,
            },
            #[cfg(feature = "tls")]
            tls: None,
            store: None,
            idempotency_ttl: idempotency::DEFAULT_TTL,
            fail_mode: FailMode::default(),
            store_timeout: Duration::from_secs(1),
            registrations: Registrations::default(),
        }
    }
}

impl<L> Builder<L> {
    /// Adds a layer around the services (inside the layers added before it, so a call passes
    /// through them in the order they were added). Every server's own stack is limits, then
    /// dedupe, then deadline; your layers come after them, right before the service. See
    /// [`Handler`] for a layer that checks a bearer token.
    pub fn layer<Outer>(self, layer: Outer) -> Builder<Stack<Outer, L>> {
        Builder {
            services: self.services,
            layer: Stack::new(layer, self.layer),
            #[cfg(feature = "tls")]
            tls: self.tls,
            config: self.config,
            store: self.store,
            idempotency_ttl: self.idempotency_ttl,
            fail_mode: self.fail_mode,
            store_timeout: self.store_timeout,
            registrations: self.registrations,
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

    /// How long a deduplicated call's outcome is kept for its retries (default 2 minutes), and
    /// how long its claim lives past its last renewal: a running call's claim is renewed every
    /// third of this while its handler runs, however long that is. Retries must come within
    /// it (they do within any deadline shorter than it). A value past what the clock can add
    /// (`Duration::MAX`) is taken as "never" where a deadline is computed from it.
    pub fn idempotency_ttl(mut self, ttl: Duration) -> Self {
        self.idempotency_ttl = ttl;
        self
    }

    /// What to do when the store fails or does not answer within `timeout` (or the call's
    /// deadline, if sooner): refuse the call `unavailable` ([`FailMode::Closed`], the
    /// default) or run it without dedupe ([`FailMode::Open`]). `timeout` (default 1 s) bounds
    /// every store operation; a [`RedisStore`](crate::idempotency::RedisStore) made by
    /// `connect` has no timeout of its own under it. A `timeout` past what the clock can add
    /// (`Duration::MAX`) means no timeout.
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

    /// Streams open at once on one connection (default 1,024); one more is answered
    /// `resource_exhausted`. Counted apart from [`max_in_flight`](Builder::max_in_flight).
    pub fn max_concurrent_streams(mut self, max: usize) -> Self {
        self.config.max_concurrent_streams = max;
        self
    }

    /// Bytes of messages a client may have in flight and unread on one stream (default
    /// 4 MiB) and on all of a connection's streams together (default 16 MiB): a handler that
    /// stops reading its stream makes the client wait once these are full.
    pub fn stream_windows(mut self, stream: u32, connection: u32) -> Self {
        self.config.flow = FlowConfig {
            stream_window: stream.max(1),
            connection_window: connection.max(1),
        };
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

    /// Whether the server counts its calls and connections ([`crate::stats`]; on by
    /// default). Off, [`Router::stats`](super::Router::stats) reads empty and calls skip the
    /// counting (a few atomic operations and two clock reads each).
    pub fn stats(mut self, on: bool) -> Self {
        self.config.stats = on;
        self
    }

    /// How long in-flight calls may run after shutdown begins before they are stopped
    /// (default 30 s). A deduplicated call stopped there, also one still running after its
    /// connection ended, leaves its outcome unknown in the idempotency store, written before
    /// serving returns: its retries, here or on another server, are answered
    /// `outcome_unknown` and do not run it again. The server does not wait past the grace
    /// for such calls; it then waits for the store to take what it still has to write, at
    /// most ten store timeouts (see [`idempotency_failure`](Self::idempotency_failure)) when
    /// the store fails, so a deploy stays bounded by both.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// Bytes all the server's connections may hold at once in frames and unanswered requests.
    /// A large frame (over 64 KiB) is charged from when its prefix is read until it is handled
    /// (a request: until it is answered); a smaller request whose handler does not finish at
    /// once is charged its body and metadata plus 512 bytes until it is answered. Past the
    /// budget, connections wait before reading (backpressure) instead of allocating: one with
    /// a large frame to read, or with calls running. A connection with nothing running may
    /// still read what fits its read buffer, so a fresh client's small call goes through while
    /// the budget is full, and what is held stays within the budget plus one read a
    /// connection. Default 256 MiB; at least one frame of `max_frame_size` (a smaller budget
    /// is raised to it).
    ///
    /// ```
    /// let builder = prpc::Server::builder()
    ///     .memory_budget(64 << 20)
    ///     .frame_progress_timeout(std::time::Duration::from_secs(10));
    /// ```
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.config.memory_budget = bytes;
        self
    }

    /// A connection whose partial frame gets no byte for this long is answered like a
    /// protocol error (its calls read so far answered, then goaway `unavailable`) and closed,
    /// so that slow senders cannot hold the memory budget. Time spent waiting for the budget
    /// does not count. Default 30 s.
    pub fn frame_progress_timeout(mut self, timeout: Duration) -> Self {
        self.config.frame_progress_timeout = timeout;
        self
    }

    /// Replies smaller than this go uncompressed even when the call was compressed.
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.config.compression_threshold = bytes;
        self
    }

    /// The certificate, key and TLS settings a `tls://` address is served with (required to
    /// bind one; read when the server binds).
    ///
    /// ```no_run
    /// # async fn demo(service: impl prpc::Service) -> std::io::Result<()> {
    /// use prpc::transport::tls::ServerTls;
    ///
    /// let server = prpc::Server::builder()
    ///     .add_service(service)
    ///     .tls(ServerTls::from_pem_files("server.crt", "server.key"))
    ///     .bind("tls://0.0.0.0:7443")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The server without a socket: a [`Router`] that serves the streams it is given. Call it
    /// inside a tokio runtime (the server's timing wheel starts its task here).
    pub fn build(mut self) -> Router<Dedupe<Stats<Deadline<L::Service>>>>
    where
        L: Layer<Dispatch>,
        L::Service: Handler,
    {
        let shutdown = Arc::new(Shutdown::default());
        let mut known: HashSet<String> = self
            .services
            .iter()
            .map(|service| service.name().to_owned())
            .collect();
        known.extend([health::SERVICE.to_owned(), reflection::SERVICE.to_owned()]);
        let health = HealthReporter::new(known, shutdown.requested.clone());
        self.services.insert(Arc::new(health.service()));
        self.services.add_reflection();
        let timer = Timer::default();
        let settling = Tasks::new();
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryStore::new(timer.clone())));
        let dedupe = DedupeSettings {
            store: store.clone(),
            timer: timer.clone(),
            ttl: self.idempotency_ttl,
            fail_mode: self.fail_mode,
            store_timeout: self.store_timeout,
            max_frame_size: self.config.max_frame_size,
            compression_threshold: self.config.compression_threshold,
            shutdown: shutdown.stop.clone(),
            settling: settling.clone(),
            arrivals: Default::default(),
        };
        let named = self.services.named();
        let counted = named.iter().flat_map(|(name, service)| {
            service
                .methods()
                .into_iter()
                .map(move |method| (name.clone(), method))
        });
        let stats = Arc::new(if self.config.stats {
            // Calls to methods a service does not list count under empty names.
            ServerStats::new(counted.chain([(String::new(), String::new())]))
        } else {
            ServerStats::new([])
        });
        let counting = self
            .config
            .stats
            .then(|| (&*stats, named, self.services.slots()));
        let handler = Dedupe::new(
            Stats::new(
                Deadline::new(self.layer.layer(Dispatch), timer.clone()),
                counting,
            ),
            dedupe,
        );
        // The budget holds at least one frame of the largest size, or that frame could never
        // be read.
        let largest = PREFIX_LEN + self.config.max_frame_size as usize;
        self.config.memory_budget = self.config.memory_budget.max(largest);
        let budget = MemoryBudget::new(self.config.memory_budget);
        Router::new(Shared {
            services: self.services,
            config: self.config,
            handler,
            timer,
            shutdown,
            health,
            stats,
            registrations: Default::default(),
            budget,
            store,
            settling,
            lingering: Tasks::new(),
            store_timeout: self.store_timeout,
        })
    }

    /// Registers the server as an instance of `service` with `registry` when it starts
    /// serving ([`Server::serve`]), keeps the registration alive (renewed at a third of its
    /// TTL, made again if the registry loses it), and withdraws it when a graceful shutdown
    /// begins, before the connections drain, so clients stop choosing this server before it
    /// stops answering. Call it once per service name (or registry).
    ///
    /// The endpoint registered is the bound address (an unspecified IP such as `0.0.0.0`
    /// replaced by this host's outbound one; set another with
    /// [`advertise`](Builder::advertise)), with this `weight` and `tags`; a tag named `zone`
    /// becomes the endpoint's [`zone`](crate::discovery::Endpoint::zone). Each server process
    /// registers under a fresh instance id. Only a server made by [`bind`](Builder::bind)
    /// registers (a [`Router`] has no address of its own). The TTL is 10 seconds unless set with
    /// [`registration_ttl`](Builder::registration_ttl).
    ///
    /// The registration follows the server's [health](crate::health): it is withdrawn while the
    /// health of `service` (the name registered, so register a service under its wire name
    /// for its own health to count) or of the whole server (`""`) is not serving, and made
    /// again when it serves.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # async fn example(registry: Arc<dyn prpc::discovery::Register>) -> std::io::Result<()> {
    /// let server = prpc::Server::builder()
    ///     // .add_service(ArithServer::new(Calculator))
    ///     .register(registry, "math.Arith", 1, [("zone", "eu-west-1a"), ("version", "1.4")])
    ///     .bind("0.0.0.0:7000")
    ///     .await?;
    /// server.serve().await
    /// # }
    /// ```
    pub fn register<K, V>(
        mut self,
        registry: impl Register,
        service: impl Into<String>,
        weight: u32,
        tags: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.registrations.wanted.push(Wanted {
            registry: Arc::new(registry),
            service: service.into(),
            weight,
            tags: tags
                .into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        });
        self
    }

    /// The address registrations advertise, when it is not the bound one (behind NAT, in a
    /// container, a name rather than an IP).
    pub fn advertise(mut self, address: impl IntoAddress) -> Result<Self, AddressError> {
        self.registrations.advertise = Some(address.into_address()?);
        Ok(self)
    }

    /// How long a registry keeps this server's registrations without a renewal (10 seconds
    /// by default; renewals go at a third of it).
    pub fn registration_ttl(mut self, ttl: Duration) -> Self {
        self.registrations.ttl = Some(ttl);
        self
    }

    /// Binds the listening socket: `host:port` or `tcp://host:port` for TCP, `unix:///path`
    /// for a Unix domain socket (the path must not exist yet), `tls://host:port` for TLS over
    /// TCP (with the `tls` feature and the builder's `tls` settings).
    pub async fn bind(
        mut self,
        addr: impl IntoAddress,
    ) -> io::Result<Server<Dedupe<Stats<Deadline<L::Service>>>>>
    where
        L: Layer<Dispatch>,
        L::Service: Handler,
    {
        let address = addr
            .into_address()
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        // TLS settings on a server bound in plain text would be a silent downgrade.
        #[cfg(feature = "tls")]
        if self.tls.is_some() && !matches!(address, crate::transport::Address::Tls { .. }) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "binding {address}: the builder has TLS settings, so bind a tls:// address"
                ),
            ));
        }
        let (listener, local_addr) = listen::bind(
            &address,
            #[cfg(feature = "tls")]
            self.tls.as_ref(),
        )
        .await?;
        let registrations = std::mem::take(&mut self.registrations);
        Ok(Server::new(
            self.build(),
            listener,
            local_addr,
            registrations,
        ))
    }
}
