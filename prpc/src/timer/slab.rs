//! Storage for pending timers: a slab whose slots double as nodes of intrusive doubly-linked
//! lists.
//!
//! Every slot has `prev`/`next` links. An occupied slot sits on the list of the wheel bucket
//! that holds it; a vacant slot sits on the free list. Both lists are threaded through the
//! same links, so linking, unlinking and freeing are O(1) and allocate nothing.
//!
//! Memory goes back when timers go. Slots live in fixed-size chunks, so growing never copies
//! and a chunk that empties can be freed. The last slot in use is always occupied (vacant
//! slots at the end are cut off as soon as they appear), and [`Slab::release`] frees the
//! chunks past the end but one spare, which absorbs a workload that hovers at a chunk
//! boundary. A slab that held a million timers and then lost them all is back at its one
//! initial chunk.
//!
//! Keys carry a stamp, unique over the slab's whole life, so a key whose timer fired or was
//! cancelled never matches the slot's next occupant, even after the slot was cut off and
//! created again.

/// "No slot": the end of a list.
pub(super) const NIL: u32 = u32::MAX;

/// Slots per chunk (a power of two). With the wheel's 56-byte entries a chunk is 14 KiB,
/// small enough for the allocator to recycle without the kernel.
const CHUNK_SHIFT: u32 = 8;
const CHUNK: usize = 1 << CHUNK_SHIFT;

/// Names one occupant of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    stamp: u64,
}

impl Key {
    /// The slot this key points at.
    pub(super) fn index(self) -> u32 {
        self.index
    }
}

/// The ends of an intrusive list of slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct List {
    head: u32,
    tail: u32,
}

impl List {
    pub(super) const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };

    pub(super) fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

#[derive(Debug)]
struct Slot<T> {
    /// Stamp of the occupant; 0 when vacant.
    stamp: u64,
    prev: u32,
    next: u32,
    value: Option<T>,
}

impl<T> Slot<T> {
    const VACANT: Slot<T> = Slot {
        stamp: 0,
        prev: NIL,
        next: NIL,
        value: None,
    };
}

type Chunk<T> = Box<[Slot<T>; CHUNK]>;

fn new_chunk<T>() -> Chunk<T> {
    let slots: Box<[Slot<T>]> = (0..CHUNK).map(|_| Slot::VACANT).collect();
    match slots.try_into() {
        Ok(chunk) => chunk,
        Err(_) => unreachable!("made exactly CHUNK slots"),
    }
}

/// A slab of `T` with generation-checked keys and intrusive lists.
#[derive(Debug)]
pub(super) struct Slab<T> {
    /// Slot `i` is `chunks[i / CHUNK][i % CHUNK]`.
    chunks: Vec<Chunk<T>>,
    /// One past the last occupied slot; slots from here on are vacant and on no list.
    end: usize,
    free: List,
    len: usize,
    next_stamp: u64,
}

impl<T> Slab<T> {
    pub(super) fn new() -> Self {
        Slab {
            chunks: vec![new_chunk()],
            end: 0,
            free: List::EMPTY,
            len: 0,
            next_stamp: 1,
        }
    }

    /// Number of occupied slots.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Slots the slab has memory for.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    fn slot(&self, index: u32) -> &Slot<T> {
        &self.chunks[(index >> CHUNK_SHIFT) as usize][index as usize & (CHUNK - 1)]
    }

    fn slot_mut(&mut self, index: u32) -> &mut Slot<T> {
        &mut self.chunks[(index >> CHUNK_SHIFT) as usize][index as usize & (CHUNK - 1)]
    }

    /// Stores `value` in a free slot, linked on no list.
    ///
    /// # Panics
    ///
    /// If the slab already holds `u32::MAX` values.
    pub(super) fn insert(&mut self, value: T) -> Key {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.len += 1;
        let index = if self.free.is_empty() {
            let index = u32::try_from(self.end)
                .ok()
                .filter(|&index| index != NIL)
                .expect("timer wheel holds u32::MAX timers");
            if self.end == self.chunks.len() * CHUNK {
                self.chunks.push(new_chunk());
            }
            self.end += 1;
            index
        } else {
            let index = self.free.head;
            let mut free = self.free;
            self.unlink(&mut free, index);
            self.free = free;
            index
        };
        let slot = self.slot_mut(index);
        slot.stamp = stamp;
        slot.value = Some(value);
        Key { index, stamp }
    }

    /// Whether `key` still names an occupant.
    pub(super) fn contains(&self, key: Key) -> bool {
        (key.index as usize) < self.end && self.slot(key.index).stamp == key.stamp
    }

    pub(super) fn get(&self, key: Key) -> Option<&T> {
        if !self.contains(key) {
            return None;
        }
        self.slot(key.index).value.as_ref()
    }

    pub(super) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        if !self.contains(key) {
            return None;
        }
        self.slot_mut(key.index).value.as_mut()
    }

    /// The value in an occupied slot.
    pub(super) fn at(&self, index: u32) -> &T {
        self.slot(index).value.as_ref().expect("slot is occupied")
    }

    pub(super) fn at_mut(&mut self, index: u32) -> &mut T {
        self.slot_mut(index)
            .value
            .as_mut()
            .expect("slot is occupied")
    }

    /// The stamp of the occupant of an occupied slot.
    pub(super) fn stamp_at(&self, index: u32) -> u64 {
        self.slot(index).stamp
    }

    /// Empties an occupied slot that is linked on no list, and returns its value.
    pub(super) fn remove_at(&mut self, index: u32) -> T {
        let slot = self.slot_mut(index);
        debug_assert!(slot.stamp != 0, "removing a vacant slot");
        slot.stamp = 0;
        let value = slot.value.take().expect("slot is occupied");
        self.len -= 1;
        if self.len == 0 {
            // Every slot is vacant: forget the free list wholesale.
            self.free = List::EMPTY;
            self.end = 0;
        } else if index as usize + 1 == self.end {
            // Keep the last slot in use occupied: cut off the vacant slots this uncovers.
            self.end -= 1;
            while self.slot(self.end as u32 - 1).stamp == 0 {
                let last = self.end as u32 - 1;
                let mut free = self.free;
                self.unlink(&mut free, last);
                self.free = free;
                self.end -= 1;
            }
        } else {
            let mut free = self.free;
            self.push_front(&mut free, index);
            self.free = free;
        }
        value
    }

    /// Whether chunks past the end (but one spare) await [`release`](Slab::release).
    pub(super) fn has_unused_chunks(&self) -> bool {
        self.chunks.len() > self.end.div_ceil(CHUNK) + 1
    }

    /// Frees the chunks past the end but one. Not done on removal itself, which keeps
    /// removal cheap and free of allocator calls; the wheel's owner calls this soon after.
    pub(super) fn release(&mut self) {
        self.chunks.truncate(self.end.div_ceil(CHUNK) + 1);
    }

    /// Appends slot `index` to `list`.
    pub(super) fn push_back(&mut self, list: &mut List, index: u32) {
        let tail = list.tail;
        {
            let slot = self.slot_mut(index);
            slot.prev = tail;
            slot.next = NIL;
        }
        if tail == NIL {
            list.head = index;
        } else {
            self.slot_mut(tail).next = index;
        }
        list.tail = index;
    }

    /// Prepends slot `index` to `list`.
    fn push_front(&mut self, list: &mut List, index: u32) {
        let head = list.head;
        {
            let slot = self.slot_mut(index);
            slot.prev = NIL;
            slot.next = head;
        }
        if head == NIL {
            list.tail = index;
        } else {
            self.slot_mut(head).prev = index;
        }
        list.head = index;
    }

    /// Takes slot `index` off `list`, which must hold it.
    pub(super) fn unlink(&mut self, list: &mut List, index: u32) {
        let (prev, next) = {
            let slot = self.slot_mut(index);
            let links = (slot.prev, slot.next);
            slot.prev = NIL;
            slot.next = NIL;
            links
        };
        if prev == NIL {
            list.head = next;
        } else {
            self.slot_mut(prev).next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.slot_mut(next).prev = prev;
        }
    }

    /// Takes the first slot off `list`.
    pub(super) fn pop_front(&mut self, list: &mut List) -> Option<u32> {
        let head = list.head;
        if head == NIL {
            return None;
        }
        self.unlink(list, head);
        Some(head)
    }

    /// Empties every slot, in index order, and gives the memory back.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = T> + use<T> {
        // Stamps carry on: keys of drained values must not match later occupants.
        let chunks = std::mem::replace(&mut self.chunks, vec![new_chunk()]);
        self.end = 0;
        self.free = List::EMPTY;
        self.len = 0;
        chunks
            .into_iter()
            .flat_map(|chunk| chunk as Box<[Slot<T>]>)
            .filter_map(|slot| slot.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_removed_values_never_match_again() {
        let mut slab = Slab::new();
        let first = slab.insert("a");
        assert_eq!(slab.remove_at(first.index()), "a");
        let second = slab.insert("b");
        assert_eq!(first.index(), second.index());
        assert_eq!(slab.get(first), None);
        assert_eq!(slab.get(second), Some(&"b"));
    }

    #[test]
    fn lists_link_and_unlink_in_any_order() {
        let mut slab = Slab::new();
        let keys: Vec<_> = (0..5).map(|value| slab.insert(value)).collect();
        let mut list = List::EMPTY;
        for key in &keys {
            slab.push_back(&mut list, key.index());
        }
        slab.unlink(&mut list, keys[2].index());
        slab.unlink(&mut list, keys[0].index());
        slab.unlink(&mut list, keys[4].index());
        let mut order = Vec::new();
        while let Some(index) = slab.pop_front(&mut list) {
            order.push(*slab.at(index));
        }
        assert_eq!(order, [1, 3]);
        assert!(list.is_empty());
    }

    #[test]
    fn memory_returns_when_values_leave_in_any_order() {
        let mut slab = Slab::new();
        let start = slab.capacity();
        let keys: Vec<_> = (0..10_000u32).map(|value| slab.insert(value)).collect();
        assert!(slab.capacity() >= 10_000);
        // Middle first, then odd, then even: exercises the free list and the cut-off.
        let remove = |slab: &mut Slab<u32>, key: &Key| {
            if slab.contains(*key) {
                slab.remove_at(key.index());
            }
        };
        for key in keys.iter().skip(4_000).take(2_000) {
            remove(&mut slab, key);
        }
        for key in keys.iter().skip(1).step_by(2) {
            remove(&mut slab, key);
        }
        for key in &keys {
            remove(&mut slab, key);
        }
        assert_eq!(slab.len(), 0);
        assert!(slab.has_unused_chunks());
        slab.release();
        assert!(!slab.has_unused_chunks());
        assert_eq!(slab.capacity(), start);
        // The free list is consistent afterwards.
        let again: Vec<_> = (0..100u32).map(|value| slab.insert(value)).collect();
        assert!(again.iter().all(|key| slab.contains(*key)));
    }
}
