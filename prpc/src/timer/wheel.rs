//! The hierarchical timing wheel itself: pure data, no clock, no tasks.
//!
//! Time is counted in ticks since the wheel's start. Level 0 has `slots` buckets of one tick
//! each; level `n` has `slots` buckets of `slots^n` ticks each, so it spans `slots^(n+1)`
//! ticks. A timer goes into the finest level whose span, counted from the wheel's current
//! tick, reaches its deadline; coarser levels are created the first time a timer needs them.
//!
//! A bucket holds the timers of exactly one expiration at a time: the first tick its range
//! covers. When a bucket gets its first timer it enters a min-heap keyed by that expiration,
//! so whoever drives the wheel sleeps until the next non-empty bucket instead of stepping
//! through empty ones (Kafka's timing-wheel design). When a bucket comes due, a level-0
//! bucket fires its timers and a coarser bucket hands its timers down to finer levels, now
//! that the clock has reached their range.
//!
//! Deadlines are rounded *up* to whole ticks, so a timer never fires before its deadline,
//! and fires at the first tick boundary at or after it.
//!
//! Cancelling unlinks the timer from its bucket and frees its slot. An emptied bucket keeps
//! its place in the heap until it comes due; the heap holds at most one entry per bucket, so
//! its size is bounded by the number of buckets, never by the number of timers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::slab::{Key, List, Slab};

/// Marks a bucket that is not in the heap.
const NOT_QUEUED: u64 = u64::MAX;

/// A pending timer.
#[derive(Debug)]
pub(super) struct Entry<A> {
    /// Nanoseconds since the wheel's start.
    deadline: u64,
    /// Which bucket's list holds it.
    bucket: u32,
    pub(super) action: A,
}

/// A timer whose deadline has passed.
#[derive(Debug)]
pub(super) struct Expired<A> {
    /// Nanoseconds since the wheel's start.
    pub(super) deadline: u64,
    /// Order of scheduling, to break ties between equal deadlines.
    pub(super) stamp: u64,
    pub(super) action: A,
}

#[derive(Debug)]
struct Bucket {
    timers: List,
    /// The expiration this bucket is queued in the heap with, or `NOT_QUEUED`.
    queued: u64,
}

/// Extent of one level, in ticks.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// Ticks per bucket are `1 << shift` (`slots^level`).
    shift: u32,
    /// Ticks the level covers (`slots^(level+1)`); `u64::MAX` for a level that covers all.
    interval: u64,
}

/// A hierarchical timing wheel holding timers whose payload is `A`.
#[derive(Debug)]
pub(super) struct Wheel<A> {
    timers: Slab<Entry<A>>,
    /// All levels' buckets, level after level.
    buckets: Vec<Bucket>,
    spans: Vec<Span>,
    /// Buckets per level are `1 << slot_bits`.
    slot_bits: u32,
    tick_nanos: u64,
    /// The tick up to which every bucket has been processed.
    current: u64,
    /// Non-empty buckets (and buckets emptied by cancellation) by expiration.
    queue: BinaryHeap<Reverse<(u64, u32)>>,
}

impl<A> Wheel<A> {
    /// A wheel of `slots` buckets per level (rounded up to a power of two), each
    /// `tick_nanos` long at level 0.
    pub(super) fn new(tick_nanos: u64, slots: usize) -> Self {
        assert!(tick_nanos > 0, "timer tick must be at least one nanosecond");
        assert!(
            (2..=1 << 16).contains(&slots),
            "a timer wheel has 2 to 65536 slots, not {slots}"
        );
        let mut wheel = Wheel {
            timers: Slab::new(),
            buckets: Vec::new(),
            spans: Vec::new(),
            slot_bits: slots.next_power_of_two().trailing_zeros(),
            tick_nanos,
            current: 0,
            queue: BinaryHeap::new(),
        };
        wheel.add_level();
        wheel
    }

    /// Buckets per level.
    pub(super) fn slots(&self) -> usize {
        1 << self.slot_bits
    }

    /// Length of a level-0 tick in nanoseconds.
    pub(super) fn tick_nanos(&self) -> u64 {
        self.tick_nanos
    }

    /// Number of pending timers.
    pub(super) fn len(&self) -> usize {
        self.timers.len()
    }

    /// Timer slots the wheel has memory for.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.timers.capacity()
    }

    /// Whether memory awaits [`release_memory`](Wheel::release_memory).
    pub(super) fn has_unused_memory(&self) -> bool {
        self.timers.has_unused_chunks()
    }

    /// Gives back memory that timers no longer use. Cancelling and firing leave that to
    /// this call, so that they stay cheap.
    pub(super) fn release_memory(&mut self) {
        self.timers.release();
    }

    /// Number of levels created so far.
    #[cfg(test)]
    pub(super) fn levels(&self) -> usize {
        self.spans.len()
    }

    /// The earliest tick at which a bucket comes due (it may have been emptied by
    /// cancellation since).
    pub(super) fn next_expiration(&self) -> Option<u64> {
        self.queue
            .peek()
            .map(|Reverse((expiration, _))| *expiration)
    }

    /// Adds a timer due `deadline` nanoseconds after the wheel's start.
    ///
    /// Returns its key, and the expiration of the bucket it went into if that bucket was not
    /// queued yet: if that is earlier than the driver's next wake-up, the driver must be
    /// woken.
    pub(super) fn insert(&mut self, deadline: u64, action: A) -> (Key, Option<u64>) {
        let key = self.timers.insert(Entry {
            deadline,
            bucket: 0,
            action,
        });
        let queued = self.place(key.index(), deadline);
        (key, queued)
    }

    /// Cancels a timer: unlinks it and frees its slot. `None` if it already fired or was
    /// removed.
    pub(super) fn remove(&mut self, key: Key) -> Option<A> {
        let bucket = self.timers.get(key)?.bucket;
        let mut timers = self.buckets[bucket as usize].timers;
        self.timers.unlink(&mut timers, key.index());
        self.buckets[bucket as usize].timers = timers;
        Some(self.timers.remove_at(key.index()).action)
    }

    pub(super) fn contains(&self, key: Key) -> bool {
        self.timers.contains(key)
    }

    pub(super) fn get_mut(&mut self, key: Key) -> Option<&mut A> {
        self.timers.get_mut(key).map(|entry| &mut entry.action)
    }

    /// Processes every bucket due at or before `now` (a tick), appending the timers that
    /// fire to `expired` in deadline order.
    pub(super) fn advance(&mut self, now: u64, expired: &mut Vec<Expired<A>>) {
        let first = expired.len();
        while let Some(&Reverse((expiration, bucket))) = self.queue.peek() {
            if expiration > now {
                break;
            }
            self.queue.pop();
            let slot = &mut self.buckets[bucket as usize];
            if slot.queued != expiration {
                continue;
            }
            slot.queued = NOT_QUEUED;
            let mut timers = std::mem::replace(&mut slot.timers, List::EMPTY);
            // Buckets come out of the heap in expiration order, so the clock only moves on.
            self.current = self.current.max(expiration);
            let fires = bucket >> self.slot_bits == 0;
            while let Some(index) = self.timers.pop_front(&mut timers) {
                if fires {
                    let stamp = self.timers.stamp_at(index);
                    let entry = self.timers.remove_at(index);
                    expired.push(Expired {
                        deadline: entry.deadline,
                        stamp,
                        action: entry.action,
                    });
                } else {
                    let deadline = self.timers.at(index).deadline;
                    self.place(index, deadline);
                }
            }
        }
        // Every bucket up to `now` is processed, so the clock can move to `now`.
        self.current = self.current.max(now);
        expired[first..].sort_unstable_by_key(|timer| (timer.deadline, timer.stamp));
    }

    /// Removes every timer, giving back the memory that held them.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = A> + use<A> {
        for bucket in &mut self.buckets {
            bucket.timers = List::EMPTY;
            bucket.queued = NOT_QUEUED;
        }
        self.queue.clear();
        self.timers.drain().map(|entry| entry.action)
    }

    /// Links timer `index` into the bucket its deadline belongs to, relative to the current
    /// tick. Returns the bucket's expiration if the bucket was newly queued.
    fn place(&mut self, index: u32, deadline: u64) -> Option<u64> {
        // `NOT_QUEUED` is not an expiration; no clock gets near it (584 years in ns).
        let deadline_tick = deadline.div_ceil(self.tick_nanos).min(NOT_QUEUED - 1);
        // A deadline that has passed goes into the bucket of the current tick, which is
        // due: slot `current % slots` of level 0 is not used by any future tick.
        let due = deadline_tick.max(self.current);
        let mut level = 0;
        let (bucket, expiration) = loop {
            if level == self.spans.len() {
                self.add_level();
            }
            let Span { shift, interval } = self.spans[level];
            let level_current = self.current >> shift << shift;
            if interval == u64::MAX || due - level_current < interval {
                let virtual_tick = due >> shift;
                let slot = virtual_tick & ((1 << self.slot_bits) - 1);
                let bucket = ((level as u64) << self.slot_bits) + slot;
                break (bucket as u32, virtual_tick << shift);
            }
            level += 1;
        };
        self.timers.at_mut(index).bucket = bucket;
        let slot = &mut self.buckets[bucket as usize];
        let mut timers = slot.timers;
        self.timers.push_back(&mut timers, index);
        slot.timers = timers;
        if slot.queued == expiration {
            return None;
        }
        debug_assert_eq!(
            slot.queued, NOT_QUEUED,
            "bucket reused before it was processed"
        );
        slot.queued = expiration;
        self.queue.push(Reverse((expiration, bucket)));
        Some(expiration)
    }

    fn add_level(&mut self) {
        debug_assert!(
            self.spans
                .last()
                .is_none_or(|span| span.interval != u64::MAX),
            "the top level already spans every tick"
        );
        let shift = self.spans.len() as u32 * self.slot_bits;
        let interval = match shift + self.slot_bits {
            64.. => u64::MAX,
            bits => 1 << bits,
        };
        self.spans.push(Span { shift, interval });
        self.buckets
            .extend((0..1 << self.slot_bits).map(|_| Bucket {
                timers: List::EMPTY,
                queued: NOT_QUEUED,
            }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wheel ticking in nanoseconds, for readable arithmetic.
    fn wheel(slots: usize) -> Wheel<u64> {
        Wheel::new(1, slots)
    }

    /// Drives `wheel` bucket by bucket until `until`, recording (tick fired, deadline).
    fn run(wheel: &mut Wheel<u64>, until: u64) -> Vec<(u64, u64)> {
        let mut fired = Vec::new();
        let mut expired = Vec::new();
        while let Some(next) = wheel.next_expiration() {
            if next > until {
                break;
            }
            wheel.advance(next, &mut expired);
            fired.extend(expired.drain(..).map(|timer| (next, timer.action)));
        }
        fired
    }

    #[test]
    fn fires_each_timer_at_the_first_tick_at_or_after_its_deadline() {
        let mut wheel = Wheel::new(10, 8);
        for deadline in [0, 1, 9, 10, 11, 79, 80, 81, 640, 641, 5_000, 1_000_000] {
            wheel.insert(deadline, deadline);
        }
        let mut expired = Vec::new();
        let mut fired = Vec::new();
        while let Some(next) = wheel.next_expiration() {
            wheel.advance(next, &mut expired);
            fired.extend(expired.drain(..).map(|timer| (next * 10, timer.action)));
        }
        assert_eq!(wheel.len(), 0);
        let deadlines: Vec<_> = fired.iter().map(|(_, deadline)| *deadline).collect();
        assert_eq!(
            deadlines,
            [0, 1, 9, 10, 11, 79, 80, 81, 640, 641, 5_000, 1_000_000]
        );
        for (at, deadline) in fired {
            assert_eq!(at, deadline.div_ceil(10) * 10, "deadline {deadline}");
        }
    }

    #[test]
    fn overflow_levels_hand_timers_down_exactly() {
        let mut wheel = wheel(4);
        let deadlines = [
            3, 4, 5, 15, 16, 17, 63, 64, 65, 1_000, 4_095, 4_096, 123_456,
        ];
        for deadline in deadlines {
            wheel.insert(deadline, deadline);
        }
        assert!(wheel.levels() >= 8);
        let fired = run(&mut wheel, u64::MAX);
        assert_eq!(fired, deadlines.iter().map(|&d| (d, d)).collect::<Vec<_>>());
    }

    #[test]
    fn a_far_deadline_added_late_fires_on_time() {
        let mut wheel = wheel(4);
        let mut expired = Vec::new();
        // The clock moved on while the wheel was empty.
        wheel.advance(1_000, &mut expired);
        wheel.insert(1_003, 1);
        wheel.insert(1_100, 2);
        wheel.insert(999, 3); // already past: due now
        assert_eq!(wheel.next_expiration(), Some(1_000));
        assert_eq!(
            run(&mut wheel, u64::MAX),
            [(1_000, 3), (1_003, 1), (1_100, 2)]
        );
    }

    #[test]
    fn the_largest_deadlines_fit() {
        let mut wheel = wheel(512);
        wheel.insert(u64::MAX - 1, 1);
        wheel.insert(u64::MAX - 2, 2);
        assert_eq!(
            run(&mut wheel, u64::MAX),
            [(u64::MAX - 2, 2), (u64::MAX - 1, 1)]
        );
    }

    #[test]
    fn removed_timers_never_fire() {
        let mut wheel = wheel(8);
        let keys: Vec<_> = (0..1_000).map(|d| wheel.insert(d * 7, d).0).collect();
        for key in keys.iter().step_by(3) {
            assert!(wheel.remove(*key).is_some());
            assert!(wheel.remove(*key).is_none());
        }
        let fired: Vec<_> = run(&mut wheel, u64::MAX)
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        let expected: Vec<_> = (0..1_000).filter(|d| d % 3 != 0).collect();
        assert_eq!(fired, expected);
    }

    #[test]
    fn a_million_cancelled_timers_leave_memory_where_it_started() {
        let mut wheel = Wheel::new(1_000_000, 512);
        let start = wheel.capacity();
        // Spread over 3 hours so every level takes part.
        let keys: Vec<_> = (0..1_000_000u64)
            .map(|i| wheel.insert(i * 10_799_000_000 / 1_000_000 * 1_000, i).0)
            .collect();
        assert_eq!(wheel.len(), 1_000_000);
        assert!(wheel.capacity() >= 1_000_000);
        // Every other one, then the rest backwards.
        for key in keys.iter().step_by(2) {
            wheel.remove(*key);
        }
        for key in keys.iter().rev() {
            wheel.remove(*key);
        }
        assert_eq!(wheel.len(), 0);
        wheel.release_memory();
        assert_eq!(wheel.capacity(), start);
    }

    #[test]
    fn fired_timers_leave_memory_where_it_started() {
        let mut wheel = wheel(64);
        let start = wheel.capacity();
        for i in 0..100_000u64 {
            wheel.insert(i % 5_000, i);
        }
        assert_eq!(run(&mut wheel, u64::MAX).len(), 100_000);
        wheel.release_memory();
        assert_eq!(wheel.capacity(), start);
    }
}
