//! The [`Sleep`] future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::time::Instant;

use super::slab::Key;
use super::{Action, Shared};

/// A future that completes once its deadline has passed; made by [`Timer::sleep`] and
/// [`Timer::sleep_until`].
///
/// The timer is put in the wheel when the future is first polled, and taken out when the
/// future is dropped or [reset](Sleep::reset). If the [`Timer`] is shut down meanwhile, the
/// future waits on tokio's timer instead, so it still completes at its deadline.
///
/// [`Timer`]: super::Timer
/// [`Timer::sleep`]: super::Timer::sleep
/// [`Timer::sleep_until`]: super::Timer::sleep_until
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Sleep {
    shared: Arc<Shared>,
    deadline: Instant,
    state: State,
}

enum State {
    /// Not in the wheel: not polled since it was made or reset.
    Idle,
    /// In the wheel under this key; the key stops matching once the timer fired.
    Waiting(Key),
    /// The wheel was shut down; tokio's timer took over.
    Fallback(Pin<Box<tokio::time::Sleep>>),
    Elapsed,
}

impl Sleep {
    /// A sleep until `deadline`; `elapsed` if the caller knows it has passed.
    pub(super) fn new(shared: Arc<Shared>, deadline: Instant, elapsed: bool) -> Sleep {
        Sleep {
            shared,
            deadline,
            state: if elapsed { State::Elapsed } else { State::Idle },
        }
    }

    /// When the future completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        match &self.state {
            State::Elapsed => true,
            State::Waiting(key) => {
                let state = self.shared.lock();
                if state.shutdown {
                    // Its entry went with the wheel, not because it fired: the deadline alone
                    // says (as the fallback the next poll moves to will).
                    Instant::now() >= self.deadline
                } else {
                    !state.wheel.contains(*key)
                }
            }
            State::Idle | State::Fallback(_) => Instant::now() >= self.deadline,
        }
    }

    /// Moves the deadline, whether or not the future has completed, so that one `Sleep` can
    /// serve a whole retry loop. A future that was waiting keeps waiting, under the new
    /// deadline, without being polled again.
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Waiting(key) => {
                let Some(Action::Wake(waker)) = self.shared.remove(key) else {
                    // It fired: the task has been woken and will poll again.
                    return;
                };
                match self.shared.insert(deadline, Action::Wake(waker)) {
                    Ok(key) => self.state = State::Waiting(key),
                    Err(action) => {
                        // Shut down: the next poll moves to tokio's timer.
                        if let Action::Wake(waker) = action {
                            waker.wake();
                        }
                    }
                }
            }
            State::Fallback(mut sleep) => {
                sleep.as_mut().reset(deadline);
                self.state = State::Fallback(sleep);
            }
            State::Idle | State::Elapsed => {}
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Take part in tokio's cooperative scheduling, as tokio's own sleep does, so that a
        // loop over always-ready sleeps still yields to other tasks.
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        let ready = self.get_mut().poll_deadline(cx);
        if ready.is_ready() {
            coop.made_progress();
        }
        ready
    }
}

impl Sleep {
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match &mut self.state {
                State::Elapsed => return Poll::Ready(()),
                State::Fallback(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    self.state = State::Elapsed;
                    return Poll::Ready(());
                }
                State::Idle => {
                    // No clock read here: a deadline that has passed goes into the bucket
                    // that is due now, and the driver wakes the task straight away.
                    match self
                        .shared
                        .insert(self.deadline, Action::Wake(cx.waker().clone()))
                    {
                        Ok(key) => {
                            self.state = State::Waiting(key);
                            return Poll::Pending;
                        }
                        Err(_) => self.fall_back(),
                    }
                }
                State::Waiting(key) => {
                    let mut state = self.shared.lock();
                    if state.shutdown {
                        drop(state);
                        self.fall_back();
                        continue;
                    }
                    let Some(action) = state.wheel.get_mut(*key) else {
                        drop(state);
                        self.state = State::Elapsed;
                        return Poll::Ready(());
                    };
                    let Action::Wake(waker) = action else {
                        unreachable!("a sleep's key names a callback");
                    };
                    if waker.will_wake(cx.waker()) {
                        return Poll::Pending;
                    }
                    let old = std::mem::replace(waker, cx.waker().clone());
                    drop(state);
                    drop(old);
                    return Poll::Pending;
                }
            }
        }
    }

    fn fall_back(&mut self) {
        self.state = State::Fallback(Box::pin(tokio::time::sleep_until(self.deadline)));
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let State::Waiting(key) = self.state {
            self.shared.remove(key);
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("elapsed", &matches!(self.state, State::Elapsed))
            .finish()
    }
}
