use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use tokio::sync::watch;

use super::{Begin, Key, Store, StoreFuture};
use crate::timer::{Timer, TimerHandle};

/// The default store: one server's memory, entries expiring on prpc's timing wheel.
///
/// Dedupes retries that come back to the same server (a single server, or a balancer with
/// sticky routing). For several servers, use a shared store such as `RedisStore`.
pub struct MemoryStore {
    entries: Arc<DashMap<Key, Entry>>,
    timer: Timer,
}

struct Entry {
    state: State,
    /// Tells an expiry apart from a newer entry under the same key.
    generation: u64,
    _expiry: TimerHandle,
}

enum State {
    /// Claimed; waiters watch for the reply (`None` until it exists).
    Running(watch::Sender<Option<Bytes>>),
    Done(Bytes),
}

impl MemoryStore {
    /// A store whose expiries run on `timer`.
    pub fn new(timer: Timer) -> Self {
        MemoryStore {
            entries: Arc::new(DashMap::new()),
            timer,
        }
    }

    /// Keys held (running or done).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn expiry(&self, key: &Key, generation: u64, ttl: Duration) -> TimerHandle {
        let entries: Weak<DashMap<Key, Entry>> = Arc::downgrade(&self.entries);
        let key = key.clone();
        self.timer.schedule(ttl, move || {
            if let Some(entries) = entries.upgrade() {
                entries.remove_if(&key, |_, entry| entry.generation == generation);
            }
        })
    }
}

impl Store for MemoryStore {
    fn begin<'a>(&'a self, key: &'a Key, ttl: Duration) -> StoreFuture<'a, Begin> {
        let found = match self.entries.entry(key.clone()) {
            MapEntry::Occupied(entry) => match &entry.get().state {
                State::Running(_) => Begin::InProgress,
                State::Done(reply) => Begin::Done(reply.clone()),
            },
            MapEntry::Vacant(vacant) => {
                let generation = crate::id::next_id();
                let expiry = self.expiry(key, generation, ttl);
                vacant.insert(Entry {
                    state: State::Running(watch::channel(None).0),
                    generation,
                    _expiry: expiry,
                });
                Begin::New
            }
        };
        Box::pin(async move { Ok(found) })
    }

    fn finish<'a>(&'a self, key: &'a Key, reply: Bytes, ttl: Duration) -> StoreFuture<'a, ()> {
        if let Some(mut entry) = self.entries.get_mut(key) {
            let generation = entry.generation;
            entry._expiry = self.expiry(key, generation, ttl);
            let previous = std::mem::replace(&mut entry.state, State::Done(reply.clone()));
            if let State::Running(waiters) = previous {
                waiters.send_replace(Some(reply));
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn release<'a>(&'a self, key: &'a Key) -> StoreFuture<'a, ()> {
        // Dropping the entry drops its sender, which wakes waiters with "released".
        self.entries
            .remove_if(key, |_, entry| matches!(entry.state, State::Running(_)));
        Box::pin(async { Ok(()) })
    }

    fn wait<'a>(&'a self, key: &'a Key) -> StoreFuture<'a, Option<Bytes>> {
        let watching = self.entries.get(key).map(|entry| match &entry.state {
            State::Running(waiters) => Err(waiters.subscribe()),
            State::Done(reply) => Ok(reply.clone()),
        });
        Box::pin(async move {
            match watching {
                None => Ok(None),
                Some(Ok(reply)) => Ok(Some(reply)),
                Some(Err(mut receiver)) => {
                    let reply = receiver.wait_for(Option::is_some).await;
                    Ok(reply.ok().and_then(|reply| reply.clone()))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn one_begin_wins_and_later_ones_see_the_reply() {
        let store = MemoryStore::new(Timer::default());
        let key = Key::new("s", "m", 1);
        assert_eq!(store.begin(&key, TTL).await.unwrap(), Begin::New);
        assert_eq!(store.begin(&key, TTL).await.unwrap(), Begin::InProgress);
        let waiting = store.wait(&key);
        store.finish(&key, Bytes::from_static(b"reply"), TTL).await.unwrap();
        assert_eq!(waiting.await.unwrap(), Some(Bytes::from_static(b"reply")));
        assert_eq!(
            store.begin(&key, TTL).await.unwrap(),
            Begin::Done(Bytes::from_static(b"reply"))
        );
    }

    #[tokio::test]
    async fn a_released_claim_can_be_taken_again_and_wakes_waiters() {
        let store = MemoryStore::new(Timer::default());
        let key = Key::new("s", "m", 2);
        assert_eq!(store.begin(&key, TTL).await.unwrap(), Begin::New);
        let waiting = store.wait(&key);
        store.release(&key).await.unwrap();
        assert_eq!(waiting.await.unwrap(), None);
        assert_eq!(store.begin(&key, TTL).await.unwrap(), Begin::New);
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_ttl() {
        let store = MemoryStore::new(Timer::default());
        let key = Key::new("s", "m", 3);
        store.begin(&key, Duration::from_millis(100)).await.unwrap();
        store.finish(&key, Bytes::from_static(b"r"), Duration::from_millis(100)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.len(), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(store.is_empty());
        assert_eq!(store.begin(&key, TTL).await.unwrap(), Begin::New);
    }
}
