//! The server-wide memory budget.
//!
//! Each connection may hold one partial frame of up to `max_frame_size`, and every request it
//! has read and not answered yet, so without a bound across connections a few thousand slow
//! clients could make the server hold gigabytes. Two things are charged to the budget:
//!
//! - a frame larger than a connection's read buffer ([`LARGE_FRAME`] bytes), from the moment
//!   its prefix is read until it is handled (a request: until it is answered). The connection
//!   waits for its charge before reading on, so a full budget slows reads instead of growing
//!   memory;
//! - a smaller request that goes on as a task (its handler did not finish at once), from then
//!   until it is answered: its body and metadata and [`REQUEST_OVERHEAD`] for the task. It is
//!   already read, so its charge is taken at once, past the budget if need be; a connection
//!   that holds such requests reads no more while the budget is spent.
//!
//! A connection holding no request may always read what fits its read buffer: that is what
//! lets a small call through while slow senders or blocked handlers hold the whole budget, and
//! it bounds what is held to the budget plus one read buffer a connection.
//!
//! The budget is one atomic counter: a small request costs one add when it becomes a task and
//! one subtraction (and a load) when it is answered. Waiters (large frames, and connections
//! waiting for room) are woken by a [`Notify`] only while some are waiting.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Frames over this many bytes (prefix included) are charged to the budget from their prefix
/// on: the size of a connection's read buffer.
pub(super) const LARGE_FRAME: usize = 64 * 1024;

/// What a small request going on as a task is charged beyond its body and metadata: its task,
/// its entry among the connection's running calls, its decoded head.
pub(super) const REQUEST_OVERHEAD: usize = 512;

/// Bytes of frames and requests the server's connections may hold at once.
#[derive(Debug, Clone)]
pub(super) struct MemoryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    total: usize,
    held: AtomicUsize,
    /// Bytes wanted by large frames waiting for their charge: connections holding requests
    /// wait for them too, so that small charges cannot starve a large frame.
    wanted: AtomicUsize,
    /// Tasks waiting for a release; releases notify only when there are some.
    waiting: AtomicUsize,
    released: Notify,
}

/// Bytes held against the budget, given back when dropped.
#[derive(Debug)]
pub(super) struct Charge {
    inner: Arc<Inner>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.inner.give_back(self.bytes);
    }
}

impl Inner {
    fn give_back(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::SeqCst);
        // Pairs with `wait_until`'s increment then check: either this load sees the waiter or
        // the waiter's check sees the bytes given back.
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.released.notify_waiters();
        }
    }
}

impl MemoryBudget {
    pub(super) fn new(bytes: usize) -> Self {
        MemoryBudget {
            inner: Arc::new(Inner {
                total: bytes,
                held: AtomicUsize::new(0),
                wanted: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                released: Notify::new(),
            }),
        }
    }

    /// Bytes charged now (may pass the budget by what connections read while it had room).
    pub(super) fn held(&self) -> usize {
        self.inner.held.load(Ordering::Relaxed)
    }

    /// Waits until `bytes` fit in what is left of the budget, and holds them. The budget
    /// holds at least one frame of the largest size, so this much is always granted once the
    /// others give theirs back.
    pub(super) async fn charge(&self, bytes: usize) -> Charge {
        let inner = &self.inner;
        inner.wanted.fetch_add(bytes, Ordering::SeqCst);
        self.wait_until(|| {
            let mut held = inner.held.load(Ordering::SeqCst);
            loop {
                if held != 0 && held.saturating_add(bytes) > inner.total {
                    return false;
                }
                match inner.held.compare_exchange_weak(
                    held,
                    held + bytes,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ) {
                    Ok(_) => return true,
                    Err(now) => held = now,
                }
            }
        })
        .await;
        inner.wanted.fetch_sub(bytes, Ordering::SeqCst);
        Charge {
            inner: inner.clone(),
            bytes,
        }
    }

    /// Holds `bytes` at once, past the budget if need be (for what is already read); the
    /// caller gives them back with [`give_back`](Self::give_back).
    pub(super) fn take(&self, bytes: usize) {
        self.inner.held.fetch_add(bytes, Ordering::SeqCst);
    }

    /// Gives back bytes held by [`take`](Self::take).
    pub(super) fn give_back(&self, bytes: usize) {
        self.inner.give_back(bytes);
    }

    /// Waits until the budget has room for more than what it holds and what large frames
    /// wait for.
    pub(super) async fn room(&self) {
        let inner = &self.inner;
        let has_room = || {
            let held = inner.held.load(Ordering::SeqCst);
            held.saturating_add(inner.wanted.load(Ordering::SeqCst)) < inner.total
        };
        if has_room() {
            return;
        }
        self.wait_until(has_room).await;
    }

    /// Waits until `ready` says so, checking it again after each release.
    async fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        let inner = &self.inner;
        inner.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&inner.waiting);
        loop {
            let mut released = pin!(inner.released.notified());
            released.as_mut().enable();
            if ready() {
                return;
            }
            released.await;
        }
    }
}

/// One waiter counted while it waits (also when its future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_large_charge_waits_for_room_and_small_ones_are_taken_at_once() {
        // (A small running call's bytes are taken and given back by hand.)
        let budget = MemoryBudget::new(100);
        let first = budget.charge(60).await;
        budget.take(50);
        assert_eq!(budget.held(), 110);
        // No room for another large frame: it waits for the others to give theirs back.
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.charge(60).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "50 + 60 is past 100");
        budget.give_back(50);
        let second = waiting.await.unwrap();
        assert_eq!(budget.held(), 60);
        // Room: 60 of 100 held.
        budget.room().await;
        drop(second);
        assert_eq!(budget.held(), 0);
    }
}
