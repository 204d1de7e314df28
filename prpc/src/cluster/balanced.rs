//! The balanced channel under a cluster's retry layer: discovery's endpoints as members, one
//! picked per attempt by the balancer (as the [`FailMode`] says for retries), each over its
//! own connection; and the task that follows discovery and closes idle connections.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::BreakerConfig;
use super::fail_mode::FailMode;
use super::members::{Member, View};
use crate::balance::{BoxBalancer, Outcome, Pick};
use crate::call::{Call, CallOptions, Reply};
use crate::channel::Channel;
use crate::client;
use crate::discovery::{Snapshot, Watch};
use crate::error::Error;
use crate::rate::Bucket;
use crate::retry::{RETRY_AFTER_MS, RetryPolicy};
use crate::status::{Code, Status};
use crate::timer::Timer;

/// The longest a call waits for a new cluster's discovery source to answer at all.
const FIRST_SNAPSHOT_WAIT: Duration = Duration::from_secs(10);

/// Starts a balanced channel over `shared`: takes the source's current set and follows it on
/// a task of its own, which ends when the last clone is dropped.
pub(super) fn start(shared: Shared, idle: Duration) -> Balanced {
    let shared = Arc::new(shared);
    shared.refresh(&shared.watch.current());
    crate::task::spawn(follow(Arc::downgrade(&shared), shared.watch.clone(), idle));
    Balanced { shared }
}

/// The channel under the cluster's retry layer: one attempt, on the endpoint picked for it.
#[derive(Clone)]
pub(crate) struct Balanced {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) service: String,
    pub(super) watch: Watch,
    pub(super) balancer: BoxBalancer,
    pub(super) algorithm: crate::balance::Algorithm,
    /// The members, in the order the balancer was given them: swapped with the balancer's
    /// update under the write lock, so a pick's index always means the view read with it.
    pub(super) view: RwLock<Arc<View>>,
    pub(super) template: client::Builder,
    pub(super) breaker: BreakerConfig,
    pub(super) defaults: CallOptions,
    pub(super) fail_mode: FailMode,
    pub(super) method_fail_modes: HashMap<String, FailMode>,
    pub(super) timer: Timer,
    /// The client-side rate limit, and the time its bucket counts from.
    pub(super) limiter: Option<(Instant, Bucket)>,
    pub(super) next_id: AtomicU64,
    /// Whether the source has answered once (then calls need not wait for it).
    pub(super) known: std::sync::atomic::AtomicBool,
    /// What the cluster sent, for its stats.
    pub(super) counters: Counters,
}

/// Attempts a cluster sent, for [`ClusterSnapshot`](super::ClusterSnapshot).
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Every attempt sent to an endpoint.
    pub(super) attempts: AtomicU64,
    /// Attempts after a call's first (failover, failtry, backups).
    pub(super) retries: AtomicU64,
    /// Backup requests sent ([`FailMode::Backup`]).
    pub(super) hedges: AtomicU64,
}

impl Shared {
    /// Takes a token of the client-side rate limit, if there is one.
    pub(super) fn admit(&self) -> Result<(), Error> {
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
        if self.known.load(Ordering::Relaxed) || self.watch.current().version > 0 {
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
    pub(super) fn fail_mode_of(&self, call: &Call) -> FailMode {
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
        if snapshot.version > 0 {
            self.known.store(true, Ordering::Relaxed);
        }
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
        // An open breaker is found by the attempt (`allow`), which then picks again: asking
        // here too would cost every call a lock and a clock read.
        let fresh = |index: usize| {
            let member = &members[index];
            passed.contains(&member.id) || tried.contains(&member.id) || member.backing_off()
        };
        pick(&fresh)
            // Every endpoint was tried or is backing off: a retry may go to one tried before.
            .or_else(|| pick(&|index: usize| passed.contains(&members[index].id)))
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
        // The endpoints this attempt passed over: one, almost always.
        let mut passed: smallvec::SmallVec<[u64; 4]> = smallvec::SmallVec::new();
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
            member.used();
            shared.counters.attempts.fetch_add(1, Ordering::Relaxed);
            if call.attempt > 0 {
                shared.counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            // The clock is read only for a balancer that weighs latency.
            let in_flight = member
                .load
                .as_ref()
                .map(|load| (load.start(), Instant::now()));
            let result = link.call(call).await;
            let outcome = outcome(&result);
            if let Some((in_flight, started)) = in_flight {
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
                    if member.close_if_idle() {
                        tracing::debug!(service = %shared.service, endpoint = %member.endpoint, "closed an idle connection");
                    }
                }
            }
        }
    }
}
