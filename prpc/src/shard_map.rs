//! A concurrent hash map in shards, each a `HashMap` behind its own mutex: what the dedupe
//! layer and the memory idempotency store need of one (an entry per call in flight, touched a
//! few times per call, never held across an `.await`), written here rather than built from a
//! crate with its own lock and hash table stack (dashmap brought seven crates).
//!
//! A key's shard comes from its hash, so calls on different keys rarely wait for each other.
//! The guards ([`Ref`], [`RefMut`], the entries) hold their shard's lock: drop them before
//! touching the map again from the same thread, as with any mutex.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The map: `shards.len()` is a power of two.
pub(crate) struct ShardMap<K, V> {
    shards: Box<[Mutex<HashMap<K, V>>]>,
    hasher: RandomState,
}

impl<K: Hash + Eq, V> ShardMap<K, V> {
    /// An empty map with four shards per thread the machine runs at once (at least 4).
    pub(crate) fn new() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let shards = (threads * 4).clamp(4, 1024).next_power_of_two();
        ShardMap {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, HashMap<K, V>> {
        let hash = self.hasher.hash_one(key);
        // The high bits: the table inside a shard uses the low ones of its own hash.
        let index = (hash >> 32) as usize & (self.shards.len() - 1);
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of keys (each shard locked in turn: a moment's view).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether no key is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` is held.
    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.shard(key).contains_key(key)
    }

    /// `key`'s value, its shard locked while the guard lives.
    pub(crate) fn get(&self, key: &K) -> Option<Ref<'_, K, V>>
    where
        K: Clone,
    {
        let shard = self.shard(key);
        shard.contains_key(key).then(|| Ref {
            shard,
            key: key.clone(),
        })
    }

    /// `key`'s value to change, its shard locked while the guard lives.
    pub(crate) fn get_mut(&self, key: &K) -> Option<RefMut<'_, K, V>>
    where
        K: Clone,
    {
        self.get(key).map(|found| RefMut(found))
    }

    /// `key`'s place in the map, held or not, its shard locked while the entry lives.
    pub(crate) fn entry(&self, key: K) -> Entry<'_, K, V> {
        let shard = self.shard(&key);
        let held = shard.contains_key(&key);
        let found = Ref { shard, key };
        if held {
            Entry::Occupied(OccupiedEntry(found))
        } else {
            Entry::Vacant(VacantEntry(found))
        }
    }

    /// Removes `key`, returning what it held.
    pub(crate) fn remove(&self, key: &K) -> Option<(K, V)> {
        self.shard(key).remove_entry(key)
    }

    /// Removes `key` if `keep` says so of it and its value, under one lock.
    pub(crate) fn remove_if(&self, key: &K, remove: impl FnOnce(&K, &V) -> bool) -> Option<(K, V)> {
        let mut shard = self.shard(key);
        let (held, value) = shard.get_key_value(key)?;
        if remove(held, value) {
            shard.remove_entry(key)
        } else {
            None
        }
    }
}

impl<K: Hash + Eq, V> Default for ShardMap<K, V> {
    fn default() -> Self {
        ShardMap::new()
    }
}

impl<K, V> std::fmt::Debug for ShardMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardMap")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// A held key's value; its shard stays locked while this lives.
pub(crate) struct Ref<'a, K, V> {
    shard: MutexGuard<'a, HashMap<K, V>>,
    key: K,
}

impl<K: Hash + Eq, V> Deref for Ref<'_, K, V> {
    type Target = V;

    fn deref(&self) -> &V {
        // Built only for a key found under this very lock, which no one else can take away.
        match self.shard.get(&self.key) {
            Some(value) => value,
            None => unreachable!("a ShardMap guard's key left its locked shard"),
        }
    }
}

/// A held key's value to change; its shard stays locked while this lives.
pub(crate) struct RefMut<'a, K, V>(Ref<'a, K, V>);

impl<K: Hash + Eq, V> Deref for RefMut<'_, K, V> {
    type Target = V;

    fn deref(&self) -> &V {
        &self.0
    }
}

impl<K: Hash + Eq, V> DerefMut for RefMut<'_, K, V> {
    fn deref_mut(&mut self) -> &mut V {
        let Ref { shard, key } = &mut self.0;
        match shard.get_mut(key) {
            Some(value) => value,
            None => unreachable!("a ShardMap guard's key left its locked shard"),
        }
    }
}

/// A key's place in a [`ShardMap`]: held or not.
pub(crate) enum Entry<'a, K, V> {
    /// The key is held.
    Occupied(OccupiedEntry<'a, K, V>),
    /// The key is not held.
    Vacant(VacantEntry<'a, K, V>),
}

/// A held key, its shard locked.
pub(crate) struct OccupiedEntry<'a, K, V>(Ref<'a, K, V>);

impl<K: Hash + Eq, V> OccupiedEntry<'_, K, V> {
    /// The key's value.
    pub(crate) fn get(&self) -> &V {
        &self.0
    }
}

/// A key not held, its shard locked so that no one else inserts it meanwhile.
pub(crate) struct VacantEntry<'a, K, V>(Ref<'a, K, V>);

impl<'a, K: Hash + Eq, V> VacantEntry<'a, K, V> {
    /// Inserts the key with `value`.
    pub(crate) fn insert(self, value: V) -> RefMut<'a, K, V>
    where
        K: Clone,
    {
        let Ref { mut shard, key } = self.0;
        shard.insert(key.clone(), value);
        RefMut(Ref { shard, key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn entries_get_and_remove_as_a_map_does() {
        let map = ShardMap::new();
        assert!(map.is_empty());
        match map.entry("a".to_owned()) {
            Entry::Vacant(vacant) => *vacant.insert(1) += 1,
            Entry::Occupied(_) => panic!("empty map"),
        }
        match map.entry("a".to_owned()) {
            Entry::Occupied(held) => assert_eq!(*held.get(), 2),
            Entry::Vacant(_) => panic!("inserted"),
        }
        *map.get_mut(&"a".to_owned()).unwrap() = 5;
        assert_eq!(*map.get(&"a".to_owned()).unwrap(), 5);
        assert!(map.get(&"b".to_owned()).is_none());
        assert!(map.contains_key(&"a".to_owned()));
        assert_eq!(map.remove_if(&"a".to_owned(), |_, value| *value == 4), None);
        assert_eq!(
            map.remove_if(&"a".to_owned(), |_, value| *value == 5),
            Some(("a".to_owned(), 5))
        );
        assert_eq!(map.remove(&"a".to_owned()), None);
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn threads_inserting_distinct_keys_lose_none() {
        let map = Arc::new(ShardMap::new());
        let threads: Vec<_> = (0..4u64)
            .map(|thread| {
                let map = map.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000u64 {
                        let key = thread * 1_000_000 + i;
                        match map.entry(key) {
                            Entry::Vacant(vacant) => {
                                vacant.insert(i);
                            }
                            Entry::Occupied(_) => panic!("{key} inserted twice"),
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(map.len(), 8_000);
        assert_eq!(*map.get(&3_001_999).unwrap(), 1_999);
    }
}
