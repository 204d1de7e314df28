//! The client's `max_in_flight`: how many calls one connection has on the wire at once.
//!
//! A place is taken with one compare-and-swap when there is room, and given back with one
//! atomic subtraction (plus a wake-up only when a call is waiting), where a
//! `tokio::sync::Semaphore` takes a mutex on every release and an `Arc` clone per permit.
//! Waiting calls are woken in no particular order.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Why no place was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoPlace {
    /// Every place is taken.
    Full,
    /// The connection is closed.
    Closed,
}

pub(super) struct Admission {
    max: usize,
    taken: AtomicUsize,
    /// Calls waiting in [`Admission::take`]: a release wakes one only when there are some.
    waiting: AtomicUsize,
    room: Notify,
    closed: AtomicBool,
}

/// A place on the wire. Given back when dropped, unless [`Place::keep`] hands it to whoever
/// will [`Admission::release`] it.
#[must_use = "a place is given back when dropped"]
pub(super) struct Place<'a> {
    admission: &'a Admission,
    kept: bool,
}

impl Place<'_> {
    /// The place stays taken; the caller releases it later.
    pub(super) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.admission.release();
        }
    }
}

/// Counts a waiting call for as long as it waits (its future may be dropped mid-wait).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admission {
    pub(super) fn new(max: usize) -> Self {
        Admission {
            max,
            taken: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            room: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Takes a place if one is free now.
    pub(super) fn try_take(&self) -> Result<Place<'_>, NoPlace> {
        if self.closed.load(Ordering::Acquire) {
            return Err(NoPlace::Closed);
        }
        let mut taken = self.taken.load(Ordering::SeqCst);
        loop {
            if taken >= self.max {
                return Err(NoPlace::Full);
            }
            match self.taken.compare_exchange_weak(
                taken,
                taken + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    return Ok(Place {
                        admission: self,
                        kept: false,
                    });
                }
                Err(actual) => taken = actual,
            }
        }
    }

    /// Takes a place, waiting for one to be given back if need be.
    pub(super) async fn take(&self) -> Result<Place<'_>, NoPlace> {
        loop {
            match self.try_take() {
                Err(NoPlace::Full) => {}
                taken => return taken,
            }
            // Listen before counting ourselves and looking again: a release that comes after
            // the look sees the count and wakes a listener.
            let mut room = pin!(self.room.notified());
            room.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let _waiting = Waiting(&self.waiting);
            match self.try_take() {
                Err(NoPlace::Full) => room.await,
                taken => return taken,
            }
        }
    }

    /// Gives a place back.
    pub(super) fn release(&self) {
        self.taken.fetch_sub(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.room.notify_one();
        }
    }

    /// No more places: waiting calls and later ones get [`NoPlace::Closed`].
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn places_run_out_and_come_back() {
        let admission = Admission::new(2);
        let first = admission.try_take().unwrap();
        let second = admission.try_take().unwrap();
        assert_eq!(admission.try_take().err(), Some(NoPlace::Full));
        drop(first);
        let third = admission.try_take().unwrap();
        third.keep();
        drop(second);
        assert!(admission.try_take().is_ok());
        assert_eq!(admission.taken.load(Ordering::SeqCst), 1, "the kept place");
        admission.release();
        assert_eq!(admission.taken.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_calls_all_get_a_place_and_never_exceed_the_limit() {
        const MAX: usize = 3;
        let admission = Arc::new(Admission::new(MAX));
        let busy = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (admission, busy) = (admission.clone(), busy.clone());
                tokio::spawn(async move {
                    for _ in 0..50 {
                        let place = admission.take().await.unwrap();
                        let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= MAX, "{now} places taken of {MAX}");
                        tokio::task::yield_now().await;
                        busy.fetch_sub(1, Ordering::SeqCst);
                        drop(place);
                    }
                })
            })
            .collect();
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("a waiting call was never woken")
                .unwrap();
        }
        assert_eq!(admission.taken.load(Ordering::SeqCst), 0);
        assert_eq!(admission.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn closing_wakes_waiting_calls_and_refuses_new_ones() {
        let admission = Arc::new(Admission::new(1));
        admission.try_take().unwrap().keep();
        let waiting = tokio::spawn({
            let admission = admission.clone();
            async move { admission.take().await.err() }
        });
        for _ in 0..1_000 {
            if admission.waiting.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            admission.waiting.load(Ordering::SeqCst),
            1,
            "the call waits"
        );
        admission.close();
        assert_eq!(waiting.await.unwrap(), Some(NoPlace::Closed));
        assert_eq!(admission.try_take().err(), Some(NoPlace::Closed));
    }

    #[tokio::test]
    async fn a_wait_given_up_leaves_no_count_behind() {
        let admission = Admission::new(1);
        let held = admission.try_take().unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(20), admission.take()).await;
        assert!(gave_up.is_err());
        assert_eq!(admission.waiting.load(Ordering::SeqCst), 0);
        drop(held);
        assert!(admission.take().await.is_ok());
    }
}
