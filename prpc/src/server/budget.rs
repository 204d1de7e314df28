//! The server-wide budget for large frames.
//!
//! Each connection may hold one partial frame of up to `max_frame_size`, and every request it
//! has read and not answered yet, so without a bound across connections a few thousand slow
//! clients could make the server hold gigabytes. A frame larger than a connection's read
//! buffer ([`LARGE_FRAME`] bytes) is charged to the budget from the moment its prefix is read
//! until it is handled (a request: until it is answered). A connection that cannot get its
//! charge waits before reading on, so a full budget slows reads instead of growing memory.
//! Smaller frames are not charged: they live in the connection's fixed read buffer, which is
//! what lets a small call through while slow senders hold the whole budget.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Frames over this many bytes (prefix included) are charged to the budget: the size of a
/// connection's read buffer.
pub(super) const LARGE_FRAME: usize = 64 * 1024;

/// Bytes of large frames the server's connections may hold at once.
#[derive(Debug, Clone)]
pub(super) struct MemoryBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// Bytes of one frame held against the budget, given back when dropped.
#[derive(Debug)]
pub(super) struct Charge {
    _permit: OwnedSemaphorePermit,
}

impl MemoryBudget {
    pub(super) fn new(bytes: usize) -> Self {
        let total = bytes.min(Semaphore::MAX_PERMITS);
        MemoryBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Bytes charged now.
    pub(super) fn held(&self) -> usize {
        self.total - self.bytes.available_permits()
    }

    /// Waits until `bytes` are free, and holds them.
    pub(super) async fn charge(&self, bytes: u32) -> Charge {
        let permit = self
            .bytes
            .clone()
            .acquire_many_owned(bytes)
            .await
            .expect("the budget's semaphore is never closed");
        Charge { _permit: permit }
    }
}
