//! A circuit breaker with gobreaker's semantics: closed, open and half-open; tripped by
//! consecutive failures or by a failure ratio over a minimum number of calls; open for a
//! timeout; then a bounded number of trial calls decide between closing and opening again.
//!
//! The state sits behind one short mutex: [`Breaker::allow`] and completing its [`Permit`]
//! each hold it for a few comparisons and counter updates (no allocation, no call out), so the
//! lock is uncontended in practice and cheaper than the clock read beside it. Every change of
//! state and every new counting interval starts a new generation; a permit remembers the
//! generation it was taken in, and its outcome is counted only if that generation is still
//! current, so a slow call started before the breaker opened cannot close it, nor a call from
//! a cleared interval count in the next one.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// The state of a [`Breaker`].
///
/// ```
/// use prpc::cluster::BreakerState;
/// assert_eq!(BreakerState::HalfOpen.to_string(), "half-open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls pass; outcomes are counted to decide whether to trip.
    Closed,
    /// Calls are refused until the open timeout passes.
    Open,
    /// A bounded number of trial calls pass; their outcomes close or reopen the breaker.
    HalfOpen,
}

impl BreakerState {
    /// The state's name: `closed`, `open` or `half-open`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a [`Breaker`] trips and how it recovers.
///
/// Defaults (Hystrix's figures, which gobreaker leaves to its user): trip on 5 consecutive
/// failures, or on half the calls failing once 20 have finished within a 10 s counting
/// interval; stay open 5 s; then let 1 trial call through, closing when it succeeds.
///
/// ```
/// use std::time::Duration;
/// use prpc::cluster::{Breaker, BreakerConfig};
///
/// let config = BreakerConfig::default()
///     .consecutive_failures(3)
///     .failure_ratio(0.25, 40)
///     .interval(Duration::from_secs(30))
///     .open_timeout(Duration::from_secs(2))
///     .half_open_calls(5)
///     .on_state_change(|change| {
///         eprintln!("breaker {} -> {}", change.from, change.to);
///     });
/// let breaker = Breaker::new(config);
/// ```
#[derive(Clone)]
#[must_use]
pub struct BreakerConfig {
    consecutive_failures: u32,
    /// The failure ratio that trips the breaker, and the finished calls it needs first.
    failure_ratio: Option<(f64, u64)>,
    interval: Duration,
    open_timeout: Duration,
    half_open_calls: u32,
    on_state_change: Option<Hook>,
}

/// What [`BreakerConfig::on_state_change`] calls.
type Hook = Arc<dyn Fn(&StateChange) + Send + Sync>;

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            failure_ratio: Some((0.5, 20)),
            interval: Duration::from_secs(10),
            open_timeout: Duration::from_secs(5),
            half_open_calls: 1,
            on_state_change: None,
        }
    }
}

impl fmt::Debug for BreakerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerConfig")
            .field("consecutive_failures", &self.consecutive_failures)
            .field("failure_ratio", &self.failure_ratio)
            .field("interval", &self.interval)
            .field("open_timeout", &self.open_timeout)
            .field("half_open_calls", &self.half_open_calls)
            .field("on_state_change", &self.on_state_change.is_some())
            .finish()
    }
}

impl BreakerConfig {
    /// Trips when this many calls in a row fail while closed (0: never on a run alone).
    pub fn consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive_failures = failures;
        self
    }

    /// Trips when at least `ratio` (clamped to 0..=1) of the calls finished in the current
    /// counting interval failed, once at least `min_calls` (at least 1) have finished in it.
    pub fn failure_ratio(mut self, ratio: f64, min_calls: u32) -> Self {
        let ratio = if ratio.is_nan() {
            1.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        self.failure_ratio = Some((ratio, u64::from(min_calls.max(1))));
        self
    }

    /// Trips on consecutive failures alone.
    pub fn without_failure_ratio(mut self) -> Self {
        self.failure_ratio = None;
        self
    }

    /// How often a closed breaker clears its counts (and starts a new generation), so that
    /// the ratio reflects recent calls. [`Duration::ZERO`] never clears them: the counts then
    /// run from the moment the breaker last closed.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How long the breaker stays open before it lets trial calls through.
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
        self
    }

    /// Trial calls let through while half-open (at least 1): the breaker closes once this
    /// many succeeded, and opens again on the first that fails. A trial whose permit is
    /// dropped unfinished frees its place for another.
    pub fn half_open_calls(mut self, calls: u32) -> Self {
        self.half_open_calls = calls.max(1);
        self
    }

    /// Called on every change of state, after the change and outside the breaker's lock (so
    /// it may call the breaker). Keep it short: it runs on the caller's thread, inside
    /// [`Breaker::allow`] or a permit's completion. Changes made by two threads at nearly
    /// the same moment may reach it in either order; their
    /// [`generation`](BreakerStats::generation)s give the true one.
    pub fn on_state_change(mut self, hook: impl Fn(&StateChange) + Send + Sync + 'static) -> Self {
        self.on_state_change = Some(Arc::new(hook));
        self
    }

    /// This configuration with `first` run before the hook it has (if any): how a balanced
    /// client logs each endpoint's changes and still calls the user's hook.
    pub(crate) fn also_on_state_change(
        mut self,
        first: impl Fn(&StateChange) + Send + Sync + 'static,
    ) -> Self {
        let then = self.on_state_change.take();
        self.on_state_change = Some(Arc::new(move |change: &StateChange| {
            first(change);
            if let Some(then) = &then {
                then(change);
            }
        }));
        self
    }
}

/// A change of a breaker's state, as [`BreakerConfig::on_state_change`] sees it.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use prpc::cluster::{Breaker, BreakerConfig, BreakerState, StateChange};
///
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let seen = log.clone();
/// let breaker = Breaker::new(
///     BreakerConfig::default()
///         .consecutive_failures(1)
///         .on_state_change(move |change: &StateChange| seen.lock().unwrap().push((change.from, change.to))),
/// );
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// breaker.allow().unwrap().failure();
/// # });
/// assert_eq!(*log.lock().unwrap(), [(BreakerState::Closed, BreakerState::Open)]);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StateChange {
    /// The state left.
    pub from: BreakerState,
    /// The state entered.
    pub to: BreakerState,
    /// The breaker right after the change (its counts cleared for the new state).
    pub stats: BreakerStats,
}

/// What a [`Breaker`] has seen: its state, the counts that decide its next change, and
/// totals since it was made.
///
/// ```
/// use prpc::cluster::{Breaker, BreakerConfig, BreakerState};
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let breaker = Breaker::new(BreakerConfig::default());
/// breaker.allow().unwrap().success();
/// breaker.allow().unwrap().failure();
/// let stats = breaker.stats();
/// assert_eq!(stats.state, BreakerState::Closed);
/// assert_eq!((stats.calls, stats.failures, stats.consecutive_failures), (2, 1, 1));
/// assert_eq!((stats.total_successes, stats.total_failures), (1, 1));
/// # });
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BreakerStats {
    /// The current state.
    pub state: BreakerState,
    /// Changes of state and cleared counting intervals so far.
    pub generation: u64,
    /// When the current state was entered (the breaker's creation for its first state).
    pub since: Instant,
    /// While open: when trial calls may start.
    pub open_until: Option<Instant>,
    /// Calls finished in this generation (counting interval while closed, the trials while
    /// half-open).
    pub calls: u64,
    /// Of those, the failures.
    pub failures: u64,
    /// Failures in a row, in this generation.
    pub consecutive_failures: u32,
    /// Successes in a row, in this generation.
    pub consecutive_successes: u32,
    /// Trial calls in flight while half-open.
    pub trials_in_flight: u32,
    /// Successes reported since the breaker was made, including those of earlier
    /// generations (which decided nothing).
    pub total_successes: u64,
    /// Failures reported since the breaker was made, likewise.
    pub total_failures: u64,
    /// Calls refused by [`Breaker::allow`].
    pub total_rejected: u64,
    /// Times the breaker opened.
    pub trips: u64,
}

/// A call the breaker refused: it is open, or half-open with every trial place taken.
///
/// ```
/// use std::time::Duration;
/// use prpc::cluster::{Breaker, BreakerConfig, BreakerState};
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let breaker = Breaker::new(BreakerConfig::default().consecutive_failures(1));
/// breaker.allow().unwrap().failure();
/// let open = breaker.allow().unwrap_err();
/// assert_eq!(open.state(), BreakerState::Open);
/// assert_eq!(open.retry_after(), Some(Duration::from_secs(5)));
/// assert_eq!(open.to_string(), "circuit breaker is open; trial calls may start in 5s");
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Open {
    state: BreakerState,
    retry_after: Option<Duration>,
}

impl Open {
    /// [`BreakerState::Open`], or [`BreakerState::HalfOpen`] when the trial places are
    /// taken.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// While open, how long until trial calls may start; `None` when half-open (a place
    /// frees when a trial finishes).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for Open {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_after {
            Some(wait) => write!(
                f,
                "circuit breaker is open; trial calls may start in {wait:?}"
            ),
            None => f.write_str("circuit breaker is half-open and its trial calls are taken"),
        }
    }
}

impl std::error::Error for Open {}

/// A circuit breaker for one destination (the cluster keeps one per endpoint).
///
/// Ask [`allow`](Breaker::allow) before each call; it hands back a [`Permit`], to be completed
/// with [`success`](Permit::success) or [`failure`](Permit::failure) when the call ends, or an
/// [`Open`] refusal. Which outcomes are failures is the caller's choice: the cluster counts
/// transport errors (connect failures, lost connections, timeouts) and the statuses
/// `unavailable` and `deadline_exceeded`, not application errors, which say the endpoint is
/// healthy enough to answer.
///
/// Time is tokio's [`Instant`], so tests can drive a breaker on paused time.
///
/// ```
/// use std::time::Duration;
/// use prpc::cluster::{Breaker, BreakerConfig, BreakerState};
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let breaker = Breaker::new(
///     BreakerConfig::default()
///         .consecutive_failures(2)
///         .open_timeout(Duration::from_secs(1)),
/// );
/// for _ in 0..2 {
///     let permit = breaker.allow().unwrap();
///     // ... the call fails with a transport error:
///     permit.failure();
/// }
/// assert_eq!(breaker.state(), BreakerState::Open);
/// assert!(breaker.allow().is_err());
///
/// tokio::time::advance(Duration::from_secs(1)).await;
/// assert_eq!(breaker.state(), BreakerState::HalfOpen);
/// breaker.allow().unwrap().success();
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// # });
/// ```
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The breaker's state behind its lock.
#[derive(Debug)]
struct Inner {
    state: BreakerState,
    generation: u64,
    since: Instant,
    /// Closed: when the counting interval ends (`None`: never). Open: when it half-opens.
    expiry: Option<Instant>,
    counts: Counts,
    trials_in_flight: u32,
    total_successes: u64,
    total_failures: u64,
    total_rejected: u64,
    trips: u64,
}

/// The outcomes of one generation.
#[derive(Debug, Default)]
struct Counts {
    calls: u64,
    failures: u64,
    successes: u64,
    consecutive_failures: u32,
    consecutive_successes: u32,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Breaker {
        let now = Instant::now();
        let expiry = interval_end(&config, now);
        Breaker {
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                generation: 0,
                since: now,
                expiry,
                counts: Counts::default(),
                trials_in_flight: 0,
                total_successes: 0,
                total_failures: 0,
                total_rejected: 0,
                trips: 0,
            }),
            config,
        }
    }

    /// A permit for one call, or the refusal when the breaker is open (or half-open with
    /// every trial place taken).
    pub fn allow(&self) -> Result<Permit<'_>, Open> {
        let now = Instant::now();
        let mut inner = self.lock();
        let change = self.advance(&mut inner, now);
        let allowed = match inner.state {
            BreakerState::Closed => Ok(false),
            BreakerState::Open => Err(Open {
                state: BreakerState::Open,
                retry_after: inner.expiry.map(|at| at.saturating_duration_since(now)),
            }),
            BreakerState::HalfOpen => {
                let taken = u64::from(inner.trials_in_flight) + inner.counts.successes;
                if taken < u64::from(self.config.half_open_calls) {
                    inner.trials_in_flight += 1;
                    Ok(true)
                } else {
                    Err(Open {
                        state: BreakerState::HalfOpen,
                        retry_after: None,
                    })
                }
            }
        };
        if allowed.is_err() {
            inner.total_rejected += 1;
        }
        let generation = inner.generation;
        drop(inner);
        self.announce(change);
        allowed.map(|trial| Permit {
            breaker: self,
            generation,
            trial,
            finished: false,
        })
    }

    /// The current state (an open breaker whose timeout passed reads half-open).
    pub fn state(&self) -> BreakerState {
        let mut inner = self.lock();
        let change = self.advance(&mut inner, Instant::now());
        let state = inner.state;
        drop(inner);
        self.announce(change);
        state
    }

    /// The state, the current generation's counts and the totals.
    pub fn stats(&self) -> BreakerStats {
        let mut inner = self.lock();
        let change = self.advance(&mut inner, Instant::now());
        let stats = inner.stats();
        drop(inner);
        self.announce(change);
        stats
    }

    /// The configuration the breaker was made with.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state is a handful of counters, consistent after every update: a panic in
        // another thread (there is no user code under the lock) leaves nothing half done.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts the outcome of a call allowed in `generation`.
    fn finish(&self, generation: u64, trial: bool, success: bool) {
        let now = Instant::now();
        let mut inner = self.lock();
        if success {
            inner.total_successes += 1;
        } else {
            inner.total_failures += 1;
        }
        let mut change = self.advance(&mut inner, now);
        if inner.generation == generation {
            change = change.or_else(|| match (inner.state, success) {
                (BreakerState::Closed, true) => {
                    inner.counts.record(true);
                    None
                }
                (BreakerState::Closed, false) => {
                    inner.counts.record(false);
                    self.should_trip(&inner.counts)
                        .then(|| self.enter(&mut inner, BreakerState::Open, now))
                }
                (BreakerState::HalfOpen, true) => {
                    debug_assert!(trial, "a half-open generation allows only trials");
                    inner.trials_in_flight -= 1;
                    inner.counts.record(true);
                    (inner.counts.consecutive_successes >= self.config.half_open_calls)
                        .then(|| self.enter(&mut inner, BreakerState::Closed, now))
                }
                (BreakerState::HalfOpen, false) => {
                    Some(self.enter(&mut inner, BreakerState::Open, now))
                }
                // Open generations allow nothing.
                (BreakerState::Open, _) => None,
            });
        }
        drop(inner);
        self.announce(change);
    }

    /// A trial permit of `generation` dropped unfinished: its place goes to another trial.
    fn abandon(&self, generation: u64) {
        let mut inner = self.lock();
        if inner.generation == generation && inner.state == BreakerState::HalfOpen {
            inner.trials_in_flight -= 1;
        }
    }

    /// Moves on from a state whose time is up: a closed breaker's counting interval, an open
    /// breaker's timeout.
    fn advance(&self, inner: &mut Inner, now: Instant) -> Option<StateChange> {
        let expired = inner.expiry.is_some_and(|at| at <= now);
        match inner.state {
            BreakerState::Closed if expired => {
                inner.generation += 1;
                inner.counts = Counts::default();
                inner.expiry = interval_end(&self.config, now);
                None
            }
            BreakerState::Open if expired => Some(self.enter(inner, BreakerState::HalfOpen, now)),
            _ => None,
        }
    }

    /// Enters `state` as a new generation with cleared counts.
    fn enter(&self, inner: &mut Inner, state: BreakerState, now: Instant) -> StateChange {
        let from = inner.state;
        inner.state = state;
        inner.generation += 1;
        inner.since = now;
        inner.counts = Counts::default();
        inner.trials_in_flight = 0;
        inner.expiry = match state {
            BreakerState::Closed => interval_end(&self.config, now),
            BreakerState::Open => {
                inner.trips += 1;
                Some(now + self.config.open_timeout)
            }
            BreakerState::HalfOpen => None,
        };
        StateChange {
            from,
            to: state,
            stats: inner.stats(),
        }
    }

    fn should_trip(&self, counts: &Counts) -> bool {
        let consecutive = self.config.consecutive_failures;
        if consecutive > 0 && counts.consecutive_failures >= consecutive {
            return true;
        }
        self.config.failure_ratio.is_some_and(|(ratio, min_calls)| {
            counts.calls >= min_calls && counts.failures as f64 >= ratio * counts.calls as f64
        })
    }

    fn announce(&self, change: Option<StateChange>) {
        if let (Some(change), Some(hook)) = (change, &self.config.on_state_change) {
            hook(&change);
        }
    }
}

impl Inner {
    fn stats(&self) -> BreakerStats {
        BreakerStats {
            state: self.state,
            generation: self.generation,
            since: self.since,
            open_until: (self.state == BreakerState::Open)
                .then_some(self.expiry)
                .flatten(),
            calls: self.counts.calls,
            failures: self.counts.failures,
            consecutive_failures: self.counts.consecutive_failures,
            consecutive_successes: self.counts.consecutive_successes,
            trials_in_flight: self.trials_in_flight,
            total_successes: self.total_successes,
            total_failures: self.total_failures,
            total_rejected: self.total_rejected,
            trips: self.trips,
        }
    }
}

impl Counts {
    fn record(&mut self, success: bool) {
        self.calls += 1;
        if success {
            self.successes += 1;
            self.consecutive_successes += 1;
            self.consecutive_failures = 0;
        } else {
            self.failures += 1;
            self.consecutive_failures += 1;
            self.consecutive_successes = 0;
        }
    }
}

/// The end of a counting interval starting at `now`.
fn interval_end(config: &BreakerConfig, now: Instant) -> Option<Instant> {
    (!config.interval.is_zero()).then(|| now + config.interval)
}

/// Leave to make one call through a [`Breaker`]; complete it with the call's outcome.
///
/// A permit dropped without [`success`](Permit::success) or [`failure`](Permit::failure)
/// counts as neither: a call its caller cancelled (a hedged attempt that lost, a caller that
/// gave up) says nothing of the endpoint's health. If it was a half-open trial, its place goes
/// to the next call. Outcomes of permits taken in an earlier generation (before the breaker
/// changed state or cleared its counts) are ignored, except in the totals.
///
/// ```
/// use prpc::cluster::{Breaker, BreakerConfig};
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let breaker = Breaker::new(BreakerConfig::default());
/// let permit = breaker.allow().unwrap();
/// let outcome: Result<u32, std::io::Error> = Ok(7);
/// permit.record(outcome.is_ok());
/// assert_eq!(breaker.stats().total_successes, 1);
/// # });
/// ```
#[must_use = "a permit dropped unfinished counts as neither success nor failure"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    generation: u64,
    /// Taken while half-open: it holds one of the trial places.
    trial: bool,
    finished: bool,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("generation", &self.generation)
            .field("trial", &self.trial)
            .finish()
    }
}

impl Permit<'_> {
    /// The call succeeded (or failed in a way that says the destination is healthy).
    pub fn success(self) {
        self.record(true);
    }

    /// The call failed in a way that counts against the destination.
    pub fn failure(self) {
        self.record(false);
    }

    /// Completes the permit with `success` or a failure.
    pub fn record(mut self, success: bool) {
        self.finished = true;
        self.breaker.finish(self.generation, self.trial, success);
    }

    /// The generation the permit was taken in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the permit is one of a half-open breaker's trial calls.
    pub fn is_trial(&self) -> bool {
        self.trial
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.finished && self.trial {
            self.breaker.abandon(self.generation);
        }
    }
}
