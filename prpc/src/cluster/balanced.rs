//! [`Cluster`]: a channel to a service rather than an address. Discovery feeds it endpoints,
//! a balancer picks one per attempt, each endpoint has its own connection, and the retry
//! layer above sends a failed attempt again by the call's policy, elsewhere or to the same
//! endpoint as the [`FailMode`] says.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::{BreakerConfig, BreakerState};
use super::broadcast;
use super::hedge::{self, Latencies};
use super::members::{EndpointStats, Member, View};
use crate::balance::{Algorithm, BoxBalancer, Outcome, Pick};
use crate::call::{Call, CallOptions, Reply};
use crate::channel::Channel;
use crate::client::{self, Retry};
use crate::discovery::{Discover, Endpoint, Snapshot, Watch};
use crate::error::Error;
use crate::rate::{Bucket, Rate};
use crate::retry::{RETRY_AFTER_MS, RetryBudget, RetryPolicy};
use crate::status::{Code, Status};
use crate::timer::Timer;

/// The longest a call waits for a new cluster's discovery source to answer at all.
const FIRST_SNAPSHOT_WAIT: Duration = Duration::from_secs(10);

/// Where the retries of a call go (how many there are, and which calls are retried at all,
/// is the call's [`RetryPolicy`] under prpc's retry rules; see [`retry`](crate::retry)).
///
/// Names for configuration: `failfast`, `failover`, `failtry`, `backup`, `broadcast`, `fork`.
///
/// ```
/// use prpc::cluster::FailMode;
///
/// assert_eq!("failover".parse::<FailMode>()?, FailMode::Failover);
/// # Ok::<(), prpc::cluster::ParseFailModeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FailMode {
    /// No retries: a failed attempt is the call's answer (even for an idempotent method).
    Failfast,
    /// Each retry goes to an endpoint no earlier attempt of the call went to (while there is
    /// one; then to any).
    #[default]
    Failover,
    /// Each retry goes to the endpoint the first attempt went to (while it is in the set).
    Failtry,
    /// Backup requests (hedging): a call that may be sent again and has not answered within
    /// a delay (the method's observed p95 latency, or [`Builder::hedge_delay`]) is sent to a
    /// second endpoint under the same request id; the first success wins and the other is
    /// cancelled. Until a method has 20 calls behind it (and with no fixed delay) its calls
    /// go as with failover.
    Backup,
    /// Every endpoint gets the call (each as a call of its own: a fresh request id, no dedupe
    /// flag, no retries); the call fails if any fails, else answers one endpoint's reply.
    /// [`Cluster::broadcast`] returns every endpoint's result.
    Broadcast,
    /// Every endpoint gets the call, as with broadcast; the first success wins and the
    /// others are cancelled; the call fails only if all fail.
    Fork,
}

/// Text that names no [`FailMode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown fail mode \"{0}\" (expected failfast, failover, failtry, backup, broadcast or fork)"
)]
pub struct ParseFailModeError(String);

impl FromStr for FailMode {
    type Err = ParseFailModeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "failfast" => Ok(FailMode::Failfast),
            "failover" => Ok(FailMode::Failover),
            "failtry" => Ok(FailMode::Failtry),
            "backup" => Ok(FailMode::Backup),
            "broadcast" => Ok(FailMode::Broadcast),
            "fork" => Ok(FailMode::Fork),
            _ => Err(ParseFailModeError(text.to_owned())),
        }
    }
}

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
        let shared = Arc::new(Shared {
            service: service.to_owned(),
            watch: discover.watch(service),
            balancer: self.algorithm.build(),
            view: RwLock::new(Arc::new(View::default())),
            template: self.client,
            breaker: self.breaker,
            defaults,
            fail_mode: self.fail_mode,
            method_fail_modes: self.method_fail_modes,
            timer: timer.clone(),
            hedge_delay: self.hedge_delay,
            limiter: self
                .rate_limit
                .map(|rate| (Instant::now(), Bucket::new(rate))),
            latencies: Latencies::default(),
            epoch: Instant::now(),
            next_id: AtomicU64::new(1),
        });
        shared.refresh(&shared.watch.current());
        tokio::spawn(follow(
            Arc::downgrade(&shared),
            shared.watch.clone(),
            self.idle_timeout,
        ));
        let mut stack = Retry::new(Balanced { shared }, timer);
        if let Some((ratio, reserve, min_per_second)) = self.budget {
            stack = stack.with_budget(Arc::new(RetryBudget::new(ratio, reserve, min_per_second)));
        }
        Cluster { stack }
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
        let delay = shared.hedge_delay.or_else(|| shared.latencies.p95(&call));
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
            shared.latencies.record(method, started.elapsed());
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

/// The channel under the cluster's retry layer: one attempt, on the endpoint picked for it.
#[derive(Clone)]
pub(crate) struct Balanced {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    service: String,
    watch: Watch,
    balancer: BoxBalancer,
    /// The members, in the order the balancer was given them: swapped with the balancer's
    /// update under the write lock, so a pick's index always means the view read with it.
    pub(super) view: RwLock<Arc<View>>,
    pub(super) template: client::Builder,
    breaker: BreakerConfig,
    pub(super) defaults: CallOptions,
    fail_mode: FailMode,
    method_fail_modes: HashMap<String, FailMode>,
    pub(super) timer: Timer,
    /// With [`FailMode::Backup`]: a fixed delay, else each method's observed latencies.
    hedge_delay: Option<Duration>,
    latencies: Latencies,
    /// The client-side rate limit, and the time its bucket counts from.
    limiter: Option<(Instant, Bucket)>,
    pub(super) epoch: Instant,
    next_id: AtomicU64,
}

impl Shared {
    /// Takes a token of the client-side rate limit, if there is one.
    fn admit(&self) -> Result<(), Error> {
        let Some((origin, bucket)) = &self.limiter else {
            return Ok(());
        };
        let now = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        bucket.take(now).map_err(|wait| {
            let wait_ms = wait.div_ceil(1_000_000).max(1);
            let mut metadata = crate::wire::Metadata::new();
            metadata.insert(RETRY_AFTER_MS, wait_ms.to_string());
            Error::Status(
                Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "the client's rate limit for {} ({}) is exceeded; a call may go in {wait_ms} ms",
                        self.service, bucket.rate
                    ),
                )
                .with_metadata(metadata),
            )
        })
    }

    /// Waits for the discovery source's first answer, if it has not given one yet: a cluster
    /// made a moment ago has no endpoints, and its first calls should wait for them rather
    /// than fail. Bounded by the call's deadline and by [`FIRST_SNAPSHOT_WAIT`].
    async fn discovered(&self, call: &Call) {
        if self.watch.current().version > 0 {
            return;
        }
        let limit = call
            .time_left()
            .map_or(FIRST_SNAPSHOT_WAIT, |left| left.min(FIRST_SNAPSHOT_WAIT));
        let mut watch = self.watch.clone();
        if let Ok(Ok(snapshot)) = tokio::time::timeout(limit, watch.ready()).await {
            // The task that follows the source may not have taken it yet.
            let stale = self
                .view
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .members
                .len()
                != snapshot.len();
            if stale {
                self.refresh(&snapshot);
            }
        }
    }

    /// The fail mode of `call`'s method.
    fn fail_mode_of(&self, call: &Call) -> FailMode {
        if self.method_fail_modes.is_empty() {
            return self.fail_mode;
        }
        self.method_fail_modes
            .get(&*call.method)
            .copied()
            .unwrap_or(self.fail_mode)
    }

    pub(super) fn no_endpoint(&self) -> Error {
        let shared = self;
        let stats = shared.watch.stats();
        let why = match stats.last_error {
            Some(error) => format!(" (discovery: {error})"),
            None => String::new(),
        };
        Error::Status(Status::new(
            Code::Unavailable,
            format!("no endpoint of {} can take the call{why}", shared.service),
        ))
    }

    /// Takes a new set of endpoints: members that stay keep their connections and loads,
    /// new ones start without a connection, and those gone are dropped from the view (calls
    /// in flight on them hold their links, so they finish; the connection closes after).
    fn refresh(&self, snapshot: &Snapshot) {
        let mut view = self.view.write().unwrap_or_else(PoisonError::into_inner);
        self.balancer.update(&snapshot.endpoints);
        let members = snapshot
            .endpoints
            .iter()
            .enumerate()
            .map(|(index, endpoint)| {
                let kept = view
                    .members
                    .iter()
                    .find(|member| member.endpoint.instance == endpoint.instance);
                match kept {
                    Some(member) if member.endpoint == *endpoint => member.clone(),
                    _ => Arc::new(Member::new(
                        endpoint.clone(),
                        self.next_id.fetch_add(1, Ordering::Relaxed),
                        self.balancer.load(index),
                        &self.service,
                        &self.breaker,
                    )),
                }
            })
            .collect();
        *view = Arc::new(View { members });
    }

    /// The member for one attempt: not one the call's earlier attempts used (failover) or the
    /// one they used (failtry), not one passed over already in this attempt, not one whose
    /// breaker is open, not one backing off after a failed dial while another is there.
    fn pick(&self, call: &Call, passed: &[u64]) -> Option<Arc<Member>> {
        let tried = call
            .route
            .as_ref()
            .map(|route| route.tried())
            .unwrap_or_default();
        let view = self.view.read().unwrap_or_else(PoisonError::into_inner);
        let members = &view.members;
        if self.fail_mode_of(call) == FailMode::Failtry
            && let Some(first) = tried.first()
            && let Some(member) = members
                .iter()
                .find(|m| m.id == *first && !passed.contains(first))
        {
            return Some(member.clone());
        }
        let now = Instant::now();
        let key = call.options.hash_key;
        let pick = |skip: &dyn Fn(usize) -> bool| {
            let mut pick = Pick::new().skip(skip);
            if let Some(key) = key {
                pick = pick.key(key);
            }
            self.balancer
                .pick(&pick)
                .and_then(|index| members.get(index).cloned())
        };
        let open = |index: usize| members[index].breaker.state() == BreakerState::Open;
        let fresh = |index: usize| {
            let member = &members[index];
            passed.contains(&member.id)
                || tried.contains(&member.id)
                || member.backing_off(now)
                || open(index)
        };
        pick(&fresh)
            // Every endpoint was tried or is backing off: a retry may go to one tried before.
            .or_else(|| pick(&|index: usize| passed.contains(&members[index].id) || open(index)))
    }
}

impl Channel for Balanced {
    fn default_options(&self) -> &CallOptions {
        &self.shared.defaults
    }

    fn call(&self, call: Call) -> impl Future<Output = Result<Reply, Error>> + Send {
        self.attempt(call)
    }
}

impl Balanced {
    /// One attempt of a call: on the picked endpoint, or on the next if it cannot be dialed.
    pub(super) async fn attempt(&self, mut call: Call) -> Result<Reply, Error> {
        let shared = &*self.shared;
        call.resolve(&shared.defaults);
        shared.discovered(&call).await;
        let mut passed = Vec::new();
        let mut last_error = None;
        loop {
            let Some(member) = shared.pick(&call, &passed) else {
                return Err(last_error.unwrap_or_else(|| self.shared.no_endpoint()));
            };
            passed.push(member.id);
            // Half-open, it lets a bounded number of trial calls through.
            let permit = match member.breaker.allow() {
                Ok(permit) => permit,
                Err(open) => {
                    last_error.get_or_insert_with(|| {
                        Error::Status(Status::new(
                            Code::Unavailable,
                            format!(
                                "the circuit breaker of {} is {:?}",
                                member.endpoint,
                                open.state()
                            ),
                        ))
                    });
                    continue;
                }
            };
            let link = match member.link(&shared.template, &shared.timer).await {
                Ok(link) => link,
                Err(error) => {
                    tracing::debug!(service = %shared.service, endpoint = %member.endpoint, %error, "endpoint cannot be dialed");
                    permit.failure();
                    last_error = Some(error);
                    continue;
                }
            };
            if let Some(route) = &call.route {
                route.went_to(member.id);
            }
            member.used(shared.epoch);
            let in_flight = member.load.as_ref().map(|load| load.start());
            let started = Instant::now();
            let result = link.call(call).await;
            let outcome = outcome(&result);
            if let Some(in_flight) = in_flight {
                in_flight.finish(started.elapsed(), outcome);
            }
            permit.record(outcome == Outcome::Success);
            if let Err(Error::Connect { .. } | Error::ConnectTimeout { .. }) = &result {
                member.failed_to_connect();
            }
            return result;
        }
    }
}

/// How a call went, for the load-aware balancers and the breaker: only what says the
/// endpoint is unwell counts as a failure (a transport failure, a timeout, `unavailable`),
/// not an application's answer nor a busy server's `resource_exhausted`.
fn outcome(result: &Result<Reply, Error>) -> Outcome {
    match result {
        Err(Error::Status(status)) if status.code() == Code::ResourceExhausted => Outcome::Success,
        Err(error) if RetryPolicy::is_retryable(error) => Outcome::Failure,
        _ => Outcome::Success,
    }
}

/// Follows the discovery source and closes idle connections, for as long as the cluster
/// lives.
async fn follow(shared: Weak<Shared>, mut watch: Watch, idle: Duration) {
    let sweep = (idle / 2).max(Duration::from_millis(10));
    // A source that stops leaves the cluster with the last set it had.
    let mut following = true;
    loop {
        tokio::select! {
            changed = watch.changed(), if following => {
                let Some(shared) = shared.upgrade() else { return };
                match changed {
                    Ok(snapshot) => shared.refresh(&snapshot),
                    Err(_) => following = false,
                }
            }
            () = tokio::time::sleep(sweep) => {
                let Some(shared) = shared.upgrade() else { return };
                let view = shared.view.read().unwrap_or_else(PoisonError::into_inner).clone();
                for member in &view.members {
                    if member.close_if_idle(shared.epoch, idle) {
                        tracing::debug!(service = %shared.service, endpoint = %member.endpoint, "closed an idle connection");
                    }
                }
            }
        }
    }
}
