//! Storage for pending timers: a slab whose slots double as nodes of intrusive doubly-linked
//! lists.
//!
//! Every slot has `prev`/`next` links. An occupied slot sits on the list of the wheel bucket
//! that holds it; a vacant slot sits on the free list. Both lists are threaded through the
//! same links, so linking, unlinking and freeing are O(1) and allocate nothing.
//!
//! Memory goes back when timers go: the last slot of the vector is always occupied (vacant
//! slots at the end are cut off as soon as they appear), and the vector's capacity is halved
//! whenever it is mostly unused. A slab that held a million timers and then lost them all is
//! back at its initial capacity.
//!
//! Keys carry a stamp, unique over the slab's whole life, so a key whose timer fired or was
//! cancelled never matches the slot's next occupant, even after the slot was cut off and
//! created again.

/// "No slot": the end of a list.
pub(super) const NIL: u32 = u32::MAX;

/// Capacity a slab starts with and never shrinks below.
pub(super) const MIN_CAPACITY: usize = 64;

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

/// A slab of `T` with generation-checked keys and intrusive lists.
#[derive(Debug)]
pub(super) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: List,
    len: usize,
    next_stamp: u64,
}

impl<T> Slab<T> {
    pub(super) fn new() -> Self {
        Slab {
            slots: Vec::with_capacity(MIN_CAPACITY),
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
        self.slots.capacity()
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
            let index = u32::try_from(self.slots.len())
                .ok()
                .filter(|&index| index != NIL)
                .expect("timer wheel holds u32::MAX timers");
            self.slots.push(Slot {
                stamp,
                prev: NIL,
                next: NIL,
                value: Some(value),
            });
            index
        } else {
            let index = self.free.head;
            let mut free = self.free;
            self.unlink(&mut free, index);
            self.free = free;
            let slot = &mut self.slots[index as usize];
            slot.stamp = stamp;
            slot.value = Some(value);
            index
        };
        Key { index, stamp }
    }

    /// Whether `key` still names an occupant.
    pub(super) fn contains(&self, key: Key) -> bool {
        self.slots
            .get(key.index as usize)
            .is_some_and(|slot| slot.stamp == key.stamp)
    }

    pub(super) fn get(&self, key: Key) -> Option<&T> {
        if !self.contains(key) {
            return None;
        }
        self.slots[key.index as usize].value.as_ref()
    }

    pub(super) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        if !self.contains(key) {
            return None;
        }
        self.slots[key.index as usize].value.as_mut()
    }

    /// The value in an occupied slot.
    pub(super) fn at(&self, index: u32) -> &T {
        self.slots[index as usize]
            .value
            .as_ref()
            .expect("slot is occupied")
    }

    pub(super) fn at_mut(&mut self, index: u32) -> &mut T {
        self.slots[index as usize]
            .value
            .as_mut()
            .expect("slot is occupied")
    }

    /// The stamp of the occupant of an occupied slot.
    pub(super) fn stamp_at(&self, index: u32) -> u64 {
        self.slots[index as usize].stamp
    }

    /// Empties an occupied slot that is linked on no list, and returns its value.
    pub(super) fn remove_at(&mut self, index: u32) -> T {
        let slot = &mut self.slots[index as usize];
        debug_assert!(slot.stamp != 0, "removing a vacant slot");
        slot.stamp = 0;
        let value = slot.value.take().expect("slot is occupied");
        self.len -= 1;
        if index as usize + 1 == self.slots.len() {
            self.slots.pop();
            // Keep the last slot occupied: cut off the vacant slots this uncovered.
            while self.slots.last().is_some_and(|slot| slot.stamp == 0) {
                let last = (self.slots.len() - 1) as u32;
                let mut free = self.free;
                self.unlink(&mut free, last);
                self.free = free;
                self.slots.pop();
            }
            self.shrink();
        } else {
            let mut free = self.free;
            self.push_front(&mut free, index);
            self.free = free;
        }
        value
    }

    /// Halves the capacity when less than a quarter of it is used (vacant slots in the middle
    /// count as used: they cannot move, since keys point at them).
    fn shrink(&mut self) {
        let capacity = self.slots.capacity();
        if capacity > MIN_CAPACITY && self.slots.len() * 4 <= capacity {
            self.slots
                .shrink_to((self.slots.len() * 2).max(MIN_CAPACITY));
        }
    }

    /// Appends slot `index` to `list`.
    pub(super) fn push_back(&mut self, list: &mut List, index: u32) {
        let tail = list.tail;
        {
            let slot = &mut self.slots[index as usize];
            slot.prev = tail;
            slot.next = NIL;
        }
        if tail == NIL {
            list.head = index;
        } else {
            self.slots[tail as usize].next = index;
        }
        list.tail = index;
    }

    /// Prepends slot `index` to `list`.
    fn push_front(&mut self, list: &mut List, index: u32) {
        let head = list.head;
        {
            let slot = &mut self.slots[index as usize];
            slot.prev = NIL;
            slot.next = head;
        }
        if head == NIL {
            list.tail = index;
        } else {
            self.slots[head as usize].prev = index;
        }
        list.head = index;
    }

    /// Takes slot `index` off `list`, which must hold it.
    pub(super) fn unlink(&mut self, list: &mut List, index: u32) {
        let (prev, next) = {
            let slot = &mut self.slots[index as usize];
            let links = (slot.prev, slot.next);
            slot.prev = NIL;
            slot.next = NIL;
            links
        };
        if prev == NIL {
            list.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
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
        let slots = std::mem::replace(&mut self.slots, Vec::with_capacity(MIN_CAPACITY));
        self.free = List::EMPTY;
        self.len = 0;
        slots.into_iter().filter_map(|slot| slot.value)
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
        assert_eq!(slab.capacity(), start);
        // The free list is consistent afterwards.
        let again: Vec<_> = (0..100u32).map(|value| slab.insert(value)).collect();
        assert!(again.iter().all(|key| slab.contains(*key)));
    }
}
