//! [`Cluster`], a channel to a service rather than an address, and its [`Builder`]: the
//! retry layer over the balanced channel ([`balanced`](super::balanced)), with the fail modes
//! that send a call to more than one endpoint at once ([`hedge`](super::hedge),
//! [`broadcast`](super::broadcast)) dispatched here.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::balanced::{self, Balanced, Shared};
use super::breaker::BreakerConfig;
use super::broadcast;
use super::fail_mode::FailMode;
use super::hedge::{self, Latencies};
use super::members::{EndpointStats, View};
use super::stats::ClusterSnapshot;
use crate::balance::Algorithm;
use crate::call::{Call, CallOptions, Reply};
use crate::channel::Channel;
use crate::client::{self, Retry};
use crate::discovery::{Discover, Endpoint, Snapshot, Watch};
use crate::error::Error;
use crate::rate::{Bucket, Rate};
use crate::retry::{RetryBudget, RetryPolicy};
use crate::timer::Timer;

/// A client of a service: calls go to the endpoints discovery lists for it, one picked per
/// attempt by a balancer, each over a multiplexed connection of its own (opened on the first
/// call that needs it, reopened with backoff, closed when idle or when the endpoint leaves
/// the set, once its calls in flight have finished).
///
/// It is a [`Channel`], so generated clients run over it unchanged:
/// `ArithClient::new(cluster)`. Retries follow prpc's rules ([`retry`](crate::retry)): by
/// default only idempotent methods are retried, each retry on another endpoint
/// ([`FailMode::Failover`]). An endpoint that cannot be dialed is passed over at once (the
/// call was not sent, so trying another is always safe) and left alone for a backoff.
///
/// ```
/// use prpc::cluster::Cluster;
/// use prpc::discovery::StaticDiscover;
///
/// #[prpc::service]
/// pub trait Hello {
///     #[prpc(idempotent)]
///     async fn hello(&self) -> String;
/// }
/// struct World;
/// impl Hello for World {
///     async fn hello(&self) -> String { "world".into() }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut addresses = Vec::new();
/// for _ in 0..3 {
///     let server = prpc::Server::builder().add_service(HelloServer::new(World)).bind("127.0.0.1:0").await?;
///     addresses.push(server.local_addr());
///     tokio::spawn(server.serve());
/// }
/// let discovery = StaticDiscover::from_addresses(addresses)?;
/// let cluster = Cluster::builder().balance("round_robin".parse()?).build(&discovery, "Hello");
/// let hello = HelloClient::new(cluster);
/// for _ in 0..6 {
///     assert_eq!(hello.hello().await?, "world");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Cluster {
    stack: Retry<Balanced>,
    /// What [`FailMode::Backup`] knows: a fixed delay, else each method's latencies.
    backup: Arc<Backup>,
}

struct Backup {
    delay: Option<Duration>,
    latencies: Latencies,
}

/// Settings of a [`Cluster`]. Defaults: power of two choices (`p2c`), failover, connections
/// closed after 5 minutes without a call, and a [`client::Builder`]'s defaults for each
/// connection.
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    algorithm: Algorithm,
    fail_mode: FailMode,
    method_fail_modes: HashMap<String, FailMode>,
    idle_timeout: Duration,
    breaker: BreakerConfig,
    /// The retry budget's ratio, reserve and floor; each cluster built gets a budget of its
    /// own.
    budget: Option<(f64, u32, u32)>,
    hedge_delay: Option<Duration>,
    rate_limit: Option<Rate>,
    client: client::Builder,
}

impl Cluster {
    /// A builder.
    pub fn builder() -> Builder {
        Builder {
            algorithm: Algorithm::P2c,
            fail_mode: FailMode::default(),
            method_fail_modes: HashMap::new(),
            idle_timeout: Duration::from_secs(300),
            breaker: BreakerConfig::default(),
            budget: Some((0.2, 100, 10)),
            hedge_delay: None,
            rate_limit: None,
            client: crate::Client::builder(),
        }
    }

    /// The endpoints the cluster picks from now.
    pub fn endpoints(&self) -> Arc<Snapshot> {
        self.stack.inner().shared.watch.current()
    }

    /// The watch on its discovery source (its stats say whether the source is healthy).
    pub fn watch(&self) -> &Watch {
        &self.stack.inner().shared.watch
    }

    /// Sends `call` to every endpoint at once, each as a call of its own (a fresh request id,
    /// no dedupe flag, no retries), and returns every endpoint's result, in the order of the
    /// endpoints. This is [`FailMode::Broadcast`] without folding the results into one.
    ///
    /// ```no_run
    /// # async fn example(cluster: prpc::cluster::Cluster) {
    /// let call = prpc::Call::new("Cache", "flush", prpc::Format::Json, bytes::Bytes::from_static(b"{}"));
    /// for (endpoint, result) in cluster.broadcast(call).await {
    ///     println!("{endpoint}: {}", if result.is_ok() { "flushed" } else { "failed" });
    /// }
    /// # }
    /// ```
    pub async fn broadcast(&self, call: Call) -> Vec<(Endpoint, Result<Reply, Error>)> {
        broadcast::every(&self.stack.inner().shared, call).await
    }

    /// Its numbers now: endpoints, discovery, attempts, retries, backup requests.
    pub fn snapshot(&self) -> ClusterSnapshot {
        super::stats::snapshot(&self.stack.inner().shared)
    }

    /// What it knows of each endpoint now: connection, backoff, load, circuit breaker.
    pub fn endpoint_stats(&self) -> Vec<EndpointStats> {
        let shared = &self.stack.inner().shared;
        let view = shared
            .view
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        view.members.iter().map(|member| member.stats()).collect()
    }
}

impl Builder {
    /// The balancing algorithm.
    pub fn balance(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Where retries go.
    pub fn fail_mode(mut self, fail_mode: FailMode) -> Self {
        self.fail_mode = fail_mode;
        self
    }

    /// Where retries of one method's calls go, over the cluster's [`fail_mode`](Self::fail_mode)
    /// (a method by its wire name: `"add"`, or `#[prpc(name = ...)]`'s).
    ///
    /// ```
    /// use prpc::cluster::{Cluster, FailMode};
    ///
    /// let builder = Cluster::builder()
    ///     .fail_mode(FailMode::Failover)
    ///     .method_fail_mode("invalidate", FailMode::Broadcast)
    ///     .method_fail_mode("charge", FailMode::Failfast);
    /// ```
    pub fn method_fail_mode(mut self, method: impl Into<String>, fail_mode: FailMode) -> Self {
        self.method_fail_modes.insert(method.into(), fail_mode);
        self
    }

    /// Each endpoint's circuit breaker ([`BreakerConfig::default`] unless set): while it is
    /// open the endpoint takes no call. Transport failures, timeouts and `unavailable`
    /// answers count as failures; application errors and other statuses (a `resource_exhausted`
    /// from a busy server included) do not. State changes are logged as warnings, then passed
    /// to the configuration's own hook.
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// The [`RetryBudget`] every call's retries share (see there; by default retries up to
    /// 20 % of calls, 10 a second at least, a reserve of 100), so that failover does not
    /// multiply the load on a failing service.
    pub fn retry_budget(mut self, ratio: f64, reserve: u32, min_per_second: u32) -> Self {
        self.budget = Some((ratio, reserve, min_per_second));
        self
    }

    /// With [`FailMode::Backup`], send the backup request after this delay rather than after
    /// the method's observed p95 latency.
    pub fn hedge_delay(mut self, delay: Duration) -> Self {
        self.hedge_delay = Some(delay);
        self
    }

    /// Limits the calls this cluster sends to `rate` (a token bucket shared by every clone):
    /// a call over it fails at once with `resource_exhausted`, the wait until the next token
    /// in its metadata under [`RETRY_AFTER_MS`](crate::retry::RETRY_AFTER_MS), without
    /// reaching any server.
    ///
    /// ```
    /// use prpc::cluster::Cluster;
    /// use prpc::rate::Rate;
    ///
    /// let builder = Cluster::builder().rate_limit(Rate::per_second(500).burst(50));
    /// ```
    pub fn rate_limit(mut self, rate: Rate) -> Self {
        self.rate_limit = Some(rate);
        self
    }

    /// No retry budget: every call is retried as its policy says, however many fail.
    pub fn without_retry_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// Closes an endpoint's connection after this long without a call (5 minutes by default).
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// The settings of every endpoint's connection, and the calls' default options (format,
    /// timeout, retry policy, TLS).
    pub fn client(mut self, client: client::Builder) -> Self {
        self.client = client;
        self
    }

    /// A cluster calling `service`, with the endpoints `discover` lists for it. Call it in a
    /// tokio runtime: the cluster follows the source on a task of its own, which ends when
    /// the last clone of the cluster is dropped.
    pub fn build(self, discover: &dyn Discover, service: &str) -> Cluster {
        let timer = Timer::default();
        let defaults = self.client.defaults().clone();
        let shared = Shared {
            service: service.to_owned(),
            watch: discover.watch(service),
            balancer: self.algorithm.build(),
            algorithm: self.algorithm,
            view: RwLock::new(Arc::new(View::default())),
            template: self.client,
            breaker: self.breaker,
            defaults,
            fail_mode: self.fail_mode,
            method_fail_modes: self.method_fail_modes,
            timer: timer.clone(),
            limiter: self
                .rate_limit
                .map(|rate| (Instant::now(), Bucket::new(rate))),
            next_id: AtomicU64::new(1),
            known: Default::default(),
            counters: Default::default(),
        };
        let balanced = balanced::start(shared, self.idle_timeout);
        super::stats::register(&balanced.shared);
        let mut stack = Retry::new(balanced, timer);
        if let Some((ratio, reserve, min_per_second)) = self.budget {
            stack = stack.with_budget(Arc::new(RetryBudget::new(ratio, reserve, min_per_second)));
        }
        Cluster {
            stack,
            backup: Arc::new(Backup {
                delay: self.hedge_delay,
                latencies: Latencies::default(),
            }),
        }
    }
}

impl Channel for Cluster {
    fn default_options(&self) -> &CallOptions {
        self.stack.default_options()
    }

    async fn call(&self, mut call: Call) -> Result<Reply, Error> {
        let shared = &self.stack.inner().shared;
        shared.admit()?;
        let mode = shared.fail_mode_of(&call);
        if mode == FailMode::Failfast && call.options.retry.is_none() {
            // Not even an idempotent method's default retries; a policy set on the call wins.
            call.options.retry = Some(RetryPolicy::never());
        }
        match mode {
            FailMode::Backup => Box::pin(self.call_with_backup(call)).await,
            FailMode::Broadcast => Box::pin(broadcast::broadcast(shared, call)).await,
            FailMode::Fork => Box::pin(broadcast::fork(shared, call)).await,
            _ => self.stack.call(call).await,
        }
    }
}

impl Cluster {
    /// A call under [`FailMode::Backup`]: hedged when it may be sent again and its delay is
    /// known; its latency recorded for the method's p95.
    async fn call_with_backup(&self, mut call: Call) -> Result<Reply, Error> {
        let balanced = self.stack.inner();
        let shared = &balanced.shared;
        let policy = self.stack.plan(&mut call);
        let delay = self
            .backup
            .delay
            .or_else(|| self.backup.latencies.p95(&call));
        let started = Instant::now();
        let method = (call.service.clone(), call.method.clone());
        let result = match (policy, delay) {
            (Some(_), Some(delay)) => {
                let budget = self.stack.budget();
                hedge::hedged(balanced, budget, &shared.timer, call, delay).await
            }
            (Some(policy), None) => self.stack.retrying(call, policy).await,
            (None, _) => balanced.call(call).await,
        };
        if result.is_ok() {
            self.backup.latencies.record(method, started.elapsed());
        }
        result
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.stack.inner().shared;
        f.debug_struct("Cluster")
            .field("service", &shared.service)
            .field("endpoints", &shared.watch.current().len())
            .field("fail_mode", &shared.fail_mode)
            .finish_non_exhaustive()
    }
}
