use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use tokio::sync::watch;

use super::{Begin, Key, Store, StoreError, StoreFuture};
use crate::timer::{Timer, TimerHandle};

/// The default store: one server's memory, entries expiring on prpc's timing wheel.
///
/// Dedupes retries that come back to the same server (a single server, or a balancer with
/// sticky routing). For several servers, use a shared store such as `RedisStore`.
///
/// Memory is bounded: at most [`DEFAULT_MAX_ENTRIES`] calls and [`DEFAULT_MAX_BYTES`] of
/// stored replies by default ([`MemoryStore::with_limits`]). Past either limit the store
/// reports an error, and the server's [`FailMode`](super::FailMode) decides: a new call is
/// refused (`unavailable`, the default) or run without dedupe; a finished call whose reply
/// does not fit has a `data_loss` status stored for its retries instead (the default) or its
/// claim released, so that a retry runs it again.
pub struct MemoryStore {
    entries: Arc<DashMap<Key, Entry>>,
    /// Bytes of stored replies, shared with the expiry callbacks.
    stored_bytes: Arc<AtomicUsize>,
    /// Numbers entries, so that an expiry never removes a newer entry under its key.
    next_generation: AtomicU64,
    max_entries: usize,
    max_bytes: usize,
    timer: Timer,
}

/// Calls a [`MemoryStore`] tracks at most, unless set otherwise.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;
/// Bytes of replies a [`MemoryStore`] keeps at most, unless set otherwise (256 MiB).
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024 * 1024;

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
    /// A store whose expiries run on `timer`, with the default limits.
    pub fn new(timer: Timer) -> Self {
        MemoryStore::with_limits(timer, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES)
    }

    /// A store that tracks at most `max_entries` calls and keeps at most `max_bytes` of
    /// replies.
    pub fn with_limits(timer: Timer, max_entries: usize, max_bytes: usize) -> Self {
        MemoryStore {
            entries: Arc::new(DashMap::new()),
            stored_bytes: Arc::new(AtomicUsize::new(0)),
            next_generation: AtomicU64::new(0),
            max_entries,
            max_bytes,
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
        let stored_bytes = self.stored_bytes.clone();
        let key = key.clone();
        self.timer.schedule(ttl, move || {
            let Some(entries) = entries.upgrade() else {
                return;
            };
            if let Some((_, entry)) =
                entries.remove_if(&key, |_, entry| entry.generation == generation)
                && let State::Done(reply) = entry.state
            {
                stored_bytes.fetch_sub(reply.len(), Ordering::Relaxed);
            }
        })
    }
}

impl Store for MemoryStore {
    fn entries(&self) -> Option<usize> {
        Some(self.entries.len())
    }

    fn begin<'a>(&'a self, key: &'a Key, ttl: Duration) -> StoreFuture<'a, Begin> {
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(key) {
            let full = StoreError(format!(
                "the memory store holds its limit of {} calls",
                self.max_entries
            ));
            return Box::pin(async move { Err(full) });
        }
        let found = match self.entries.entry(key.clone()) {
            MapEntry::Occupied(entry) => match &entry.get().state {
                State::Running(_) => Begin::InProgress,
                State::Done(reply) => Begin::Done(reply.clone()),
            },
            MapEntry::Vacant(vacant) => {
                let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
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
        let size = reply.len();
        if self.stored_bytes.fetch_add(size, Ordering::Relaxed) + size > self.max_bytes {
            self.stored_bytes.fetch_sub(size, Ordering::Relaxed);
            // The claim stays: the server decides what the call's other attempts get instead
            // (a smaller reply standing for this one, or the claim released).
            let full = StoreError(format!(
                "the memory store holds its limit of {} bytes of replies",
                self.max_bytes
            ));
            return Box::pin(async move { Err(full) });
        }
        if let Some(mut entry) = self.entries.get_mut(key) {
            let generation = entry.generation;
            entry._expiry = self.expiry(key, generation, ttl);
            let previous = std::mem::replace(&mut entry.state, State::Done(reply.clone()));
            match previous {
                State::Running(waiters) => {
                    waiters.send_replace(Some(reply));
                }
                State::Done(replaced) => {
                    self.stored_bytes
                        .fetch_sub(replaced.len(), Ordering::Relaxed);
                }
            }
        } else {
            // The claim expired meanwhile: nothing holds the bytes.
            self.stored_bytes.fetch_sub(size, Ordering::Relaxed);
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
        store
            .finish(&key, Bytes::from_static(b"reply"), TTL)
            .await
            .unwrap();
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

    #[tokio::test]
    async fn limits_bound_the_memory_held() {
        let store = MemoryStore::with_limits(Timer::default(), 2, 10);
        let (first, second, third) = (
            Key::new("s", "m", 1),
            Key::new("s", "m", 2),
            Key::new("s", "m", 3),
        );
        assert_eq!(store.begin(&first, TTL).await.unwrap(), Begin::New);
        assert_eq!(store.begin(&second, TTL).await.unwrap(), Begin::New);
        let error = store.begin(&third, TTL).await.unwrap_err();
        assert!(error.to_string().contains("limit of 2 calls"), "{error}");
        // A key already held still answers.
        assert_eq!(store.begin(&first, TTL).await.unwrap(), Begin::InProgress);

        store
            .finish(&first, Bytes::from_static(b"12345678"), TTL)
            .await
            .unwrap();
        let error = store
            .finish(&second, Bytes::from_static(b"12345"), TTL)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("limit of 10 bytes"), "{error}");
        // The claim whose reply did not fit stays, and a reply that fits may still stand for
        // it (the server decides); its waiters get that one.
        assert_eq!(store.begin(&second, TTL).await.unwrap(), Begin::InProgress);
        let waiting = store.wait(&second);
        store
            .finish(&second, Bytes::from_static(b"12"), TTL)
            .await
            .unwrap();
        assert_eq!(waiting.await.unwrap(), Some(Bytes::from_static(b"12")));
        assert_eq!(store.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_ttl() {
        let store = MemoryStore::new(Timer::default());
        let key = Key::new("s", "m", 3);
        store.begin(&key, Duration::from_millis(100)).await.unwrap();
        store
            .finish(&key, Bytes::from_static(b"r"), Duration::from_millis(100))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.len(), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(store.is_empty());
        assert_eq!(store.begin(&key, TTL).await.unwrap(), Begin::New);
    }
}
