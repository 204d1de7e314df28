//! prpc's hierarchical timing wheel: many cheap timers driven by one task.
//!
//! A [`Timer`] keeps its timers in a hierarchical timing wheel: a wheel of `slots` buckets of
//! one `tick` each, and coarser overflow wheels (each bucket as long as the whole finer
//! wheel) created when a timer needs them. Buckets that hold timers sit in a min-heap by
//! expiration, so the driver task sleeps until the next due bucket instead of ticking through
//! empty ones; this is the design of Kafka's timing wheel.
//!
//! - Scheduling and cancelling are O(1) and lock one mutex briefly. A cancelled timer is
//!   gone at once, its slot free for the next timer: timers live in a slab whose slots are
//!   linked into per-bucket lists, so no tombstone stays behind. Memory the slab no longer
//!   needs goes back to the allocator on the driver's next pass, off the caller's path.
//! - Timers fire in deadline order, never before their deadline, and within one tick after
//!   it (plus the time the driver task takes to be scheduled; tokio's own timer, which the
//!   driver sleeps on, has a resolution of one millisecond).
//! - The driver sleeps with [`tokio::time`], so tokio's paused test clock drives it too.
//!
//! Two kinds of timer:
//!
//! - [`Timer::sleep`] / [`Timer::sleep_until`]: a future, like [`tokio::time::sleep`], for
//!   call deadlines and retry backoff. Dropping it cancels the timer.
//! - [`Timer::schedule`] / [`Timer::schedule_at`]: runs a callback on the driver task, for
//!   idle checks and expiry. Dropping the returned [`TimerHandle`] cancels the timer;
//!   [`TimerHandle::detach`] lets it fire regardless.
//!
//! ```
//! use std::time::Duration;
//! use prpc::timer::Timer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let timer = Timer::default(); // 1 ms ticks, 512 slots
//! timer.sleep(Duration::from_millis(5)).await;
//!
//! let (done, fired) = tokio::sync::oneshot::channel();
//! timer
//!     .schedule(Duration::from_millis(20), move || {
//!         let _ = done.send(());
//!     })
//!     .detach();
//! fired.await.unwrap();
//!
//! let idle_check = timer.schedule(Duration::from_secs(30), || unreachable!());
//! assert!(idle_check.cancel());
//! # }
//! ```
//!
//! The driver task ends when the last clone of the [`Timer`] is dropped or
//! [`Timer::shutdown`] is called. Callbacks still pending then are dropped without running;
//! pending [`Sleep`]s carry on with tokio's timer, so they still complete at their deadline.

mod slab;
mod sleep;
mod wheel;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use slab::Key;
pub use sleep::Sleep;
use wheel::{Expired, Wheel};

/// How far off a deadline that would overflow [`Instant`] is put (as tokio does).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// A handle to a timing wheel and its driver task. Clones share the wheel.
///
/// See the [module docs](self) for the design and an example.
#[derive(Clone)]
pub struct Timer {
    owner: Arc<Owner>,
}

/// Shuts the wheel down when the last [`Timer`] clone goes.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

/// What a timer does when it fires.
enum Action {
    /// Wake a [`Sleep`].
    Wake(Waker),
    /// Run a callback on the driver task.
    Call(Box<dyn FnOnce() + Send>),
}

/// State shared by the timer handles, the futures and the driver task.
struct Shared {
    state: Mutex<State>,
    /// Wakes the driver when a timer is due earlier than it planned to wake, or on shutdown.
    driver: Notify,
    start: Instant,
    tick: Duration,
}

struct State {
    wheel: Wheel<Action>,
    /// The tick the driver sleeps until; `u64::MAX` when it waits for a notification only.
    wake_at: u64,
    /// The driver has been asked to give back memory the wheel no longer uses.
    release_requested: bool,
    shutdown: bool,
}

impl Timer {
    /// A wheel of `slots` buckets of `tick` each (overflow wheels extend it as needed), and
    /// its driver task, spawned on the current tokio runtime. `slots` is rounded up to a
    /// power of two.
    ///
    /// A shorter tick fires timers closer to their deadlines; more slots keep more timers in
    /// the finest wheel. Ticks below tokio's timer resolution of 1 ms bring nothing.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (one with the time driver enabled), if `tick` is zero, or if
    /// `slots` is not in `2..=65536`.
    pub fn new(tick: Duration, slots: usize) -> Timer {
        let tick_nanos = u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX);
        assert!(tick_nanos > 0, "timer tick must not be zero");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                wheel: Wheel::new(tick_nanos, slots),
                wake_at: u64::MAX,
                release_requested: false,
                shutdown: false,
            }),
            driver: Notify::new(),
            start: Instant::now(),
            tick,
        });
        crate::task::spawn(drive(DriverGuard(Arc::clone(&shared))));
        Timer {
            owner: Arc::new(Owner { shared }),
        }
    }

    /// Length of one bucket of the finest wheel.
    pub fn tick(&self) -> Duration {
        self.owner.shared.tick
    }

    /// Buckets per wheel.
    pub fn slots(&self) -> usize {
        self.owner.shared.lock().wheel.slots()
    }

    /// Runs `callback` on the driver task once `delay` has passed.
    ///
    /// The callback should be short: timers behind it wait until it returns (spawn a task for
    /// anything longer). A callback that panics is logged and does not stop the driver.
    ///
    /// Dropping the returned handle cancels the timer; [`TimerHandle::detach`] keeps it.
    /// After [`shutdown`](Timer::shutdown), the callback is dropped without running.
    pub fn schedule<F>(&self, delay: Duration, callback: F) -> TimerHandle
    where
        F: FnOnce() + Send + 'static,
    {
        self.schedule_at(deadline_after(delay), callback)
    }

    /// Runs `callback` on the driver task once `deadline` has passed. See
    /// [`schedule`](Timer::schedule).
    pub fn schedule_at<F>(&self, deadline: Instant, callback: F) -> TimerHandle
    where
        F: FnOnce() + Send + 'static,
    {
        let shared = &self.owner.shared;
        let timer = match shared.insert(deadline, Action::Call(Box::new(callback))) {
            Ok(key) => Some((Arc::clone(shared), key)),
            Err(_callback) => None,
        };
        TimerHandle { timer }
    }

    /// A future that completes once `delay` has passed. Dropping it cancels the timer.
    pub fn sleep(&self, delay: Duration) -> Sleep {
        let deadline = deadline_after(delay);
        Sleep::new(Arc::clone(&self.owner.shared), deadline, delay.is_zero())
    }

    /// A future that completes once `deadline` has passed. Dropping it cancels the timer.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep::new(Arc::clone(&self.owner.shared), deadline, false)
    }

    /// Stops the driver task. Pending callbacks are dropped without running, and no new ones
    /// are accepted; pending and new [`Sleep`]s fall back to tokio's timer. Dropping the last
    /// clone of the `Timer` does the same.
    pub fn shutdown(&self) {
        self.owner.shared.shutdown();
    }

    /// Whether the timer has been shut down.
    pub fn is_shutdown(&self) -> bool {
        self.owner.shared.lock().shutdown
    }

    /// Number of timers waiting to fire.
    pub fn pending_timers(&self) -> usize {
        self.owner.shared.lock().wheel.len()
    }

    /// Timer slots the wheel has memory for.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.owner.shared.lock().wheel.capacity()
    }
}

impl Default for Timer {
    /// A timer with 1 ms ticks and 512 slots per wheel: the finest wheel spans 512 ms, the
    /// next one 4.4 minutes, the next 37 hours.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    fn default() -> Self {
        Timer::new(Duration::from_millis(1), 512)
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.owner.shared.lock();
        f.debug_struct("Timer")
            .field("tick", &self.owner.shared.tick)
            .field("pending_timers", &state.wheel.len())
            .field("shutdown", &state.shutdown)
            .finish()
    }
}

/// A scheduled callback. Dropping the handle cancels it, unless it was
/// [detached](TimerHandle::detach).
#[must_use = "dropping a TimerHandle cancels the timer; call detach() to let it fire"]
pub struct TimerHandle {
    /// `None` once detached, or if the timer was shut down when this was scheduled.
    timer: Option<(Arc<Shared>, Key)>,
}

impl TimerHandle {
    /// Cancels the timer. Returns whether it was still pending (so the callback will never
    /// run); `false` if it already fired or the timer was shut down.
    pub fn cancel(mut self) -> bool {
        match self.timer.take() {
            Some((shared, key)) => shared.remove(key).is_some(),
            None => false,
        }
    }

    /// Lets the timer fire even though the handle is dropped.
    pub fn detach(mut self) {
        self.timer = None;
    }

    /// Whether the callback is still waiting to run.
    pub fn is_pending(&self) -> bool {
        match &self.timer {
            Some((shared, key)) => shared.lock().wheel.contains(*key),
            None => false,
        }
    }
}

impl Drop for TimerHandle {
    fn drop(&mut self) {
        if let Some((shared, key)) = self.timer.take() {
            shared.remove(key);
        }
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("detached", &self.timer.is_none())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under the lock, so a poisoned lock still holds a sound wheel.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Nanoseconds from the wheel's start to `instant` (0 if before it).
    fn offset(&self, instant: Instant) -> u64 {
        let since_start = instant.saturating_duration_since(self.start).as_nanos();
        u64::try_from(since_start).unwrap_or(u64::MAX)
    }

    /// When tick `tick` begins.
    fn instant_of(&self, tick: u64) -> Instant {
        let tick_nanos = u64::try_from(self.tick.as_nanos()).unwrap_or(u64::MAX);
        let offset = Duration::from_nanos(tick.saturating_mul(tick_nanos));
        self.start
            .checked_add(offset)
            .unwrap_or_else(|| Instant::now() + FAR_FUTURE)
    }

    /// Adds a timer; gives the action back if the wheel is shut down.
    fn insert(&self, deadline: Instant, action: Action) -> Result<Key, Action> {
        let deadline = self.offset(deadline);
        let mut state = self.lock();
        if state.shutdown {
            return Err(action);
        }
        let (key, queued) = state.wheel.insert(deadline, action);
        let wake_driver = queued.is_some_and(|expiration| expiration < state.wake_at);
        if let Some(expiration) = queued.filter(|_| wake_driver) {
            state.wake_at = expiration;
        }
        drop(state);
        if wake_driver {
            self.driver.notify_one();
        }
        Ok(key)
    }

    /// Removes a timer, if it is still pending. The caller drops the action, outside the
    /// lock: a callback's captures may use the timer when dropped.
    ///
    /// The timer's slot is free for reuse at once; memory that is no longer needed at all is
    /// given back by the driver, which this asks to do so, keeping allocator calls off the
    /// caller's path.
    fn remove(&self, key: Key) -> Option<Action> {
        let mut state = self.lock();
        let action = state.wheel.remove(key);
        let release = !state.release_requested && state.wheel.has_unused_memory();
        state.release_requested |= release;
        drop(state);
        if release {
            self.driver.notify_one();
        }
        action
    }

    /// Empties the wheel and stops the driver. Idempotent.
    fn shutdown(&self) {
        let actions: Vec<Action> = {
            let mut state = self.lock();
            if state.shutdown {
                return;
            }
            state.shutdown = true;
            state.wheel.drain().collect()
        };
        self.driver.notify_one();
        for action in actions {
            if let Action::Wake(waker) = action {
                // The sleep re-polls, finds the wheel shut down and moves to tokio's timer.
                waker.wake();
            }
        }
    }
}

/// `now + delay`, or far in the future if that overflows.
pub(crate) fn deadline_after(delay: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(delay).unwrap_or_else(|| now + FAR_FUTURE)
}

/// Shuts the wheel down if the driver task goes away, even when the runtime drops it
/// mid-flight, so that sleeps fall back to tokio's timer instead of hanging.
struct DriverGuard(Arc<Shared>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// The driver task: fires due buckets, then sleeps until the next one or until woken.
async fn drive(guard: DriverGuard) {
    let shared = &*guard.0;
    let mut expired: Vec<Expired<Action>> = Vec::new();
    let sleep = tokio::time::sleep_until(shared.start);
    tokio::pin!(sleep);
    loop {
        let now = shared.offset(Instant::now());
        let next = {
            let mut state = shared.lock();
            if state.shutdown {
                return;
            }
            let now_tick = now / state.wheel.tick_nanos();
            state.wheel.advance(now_tick, &mut expired);
            state.wheel.release_memory();
            state.release_requested = false;
            let next = state.wheel.next_expiration();
            state.wake_at = next.unwrap_or(u64::MAX);
            next
        };
        for timer in expired.drain(..) {
            match timer.action {
                Action::Wake(waker) => waker.wake(),
                Action::Call(callback) => {
                    if catch_unwind(AssertUnwindSafe(callback)).is_err() {
                        tracing::error!("a timer callback panicked");
                    }
                }
            }
        }
        if expired.capacity() > 4096 {
            expired = Vec::new();
        }
        match next {
            Some(tick) => {
                sleep.as_mut().reset(shared.instant_of(tick));
                tokio::select! {
                    () = &mut sleep => {}
                    () = shared.driver.notified() => {}
                }
            }
            None => shared.driver.notified().await,
        }
    }
}

#[cfg(test)]
mod tests;
