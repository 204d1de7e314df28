use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use crate::shard_map::Entry as MapEntry;
use crate::shard_map::ShardMap;
use tokio::sync::watch;

use super::{Begin, Claim, Fingerprint, Key, Outcome, Store, StoreError, StoreFuture, Token};
use crate::timer::{Timer, TimerHandle};

/// The default store: one server's memory, entries expiring on prpc's timing wheel.
///
/// Dedupes retries that come back to the same server (a single server, or a balancer with
/// sticky routing). For several servers, use a shared store such as `RedisStore`. Its state
/// begins with it ([`started_at`](Store::started_at)): a server restarted with a fresh memory
/// store answers retries of calls begun before it `outcome_unknown` for one TTL, failing closed.
///
/// Memory is bounded: at most [`DEFAULT_MAX_ENTRIES`] calls and [`DEFAULT_MAX_BYTES`] of
/// stored replies by default ([`MemoryStore::with_limits`]). Past either limit the store
/// reports an error, and the server's [`FailMode`](super::FailMode) decides: a new call is
/// refused (`unavailable`, the default) or run without dedupe; a finished call whose reply
/// does not fit is marked outcome unknown for its retries (the default) or its claim
/// released, so that a retry runs it again.
pub struct MemoryStore {
    entries: Arc<ShardMap<Key, Entry>>,
    /// Bytes of stored replies, shared with the expiry callbacks.
    stored_bytes: Arc<AtomicUsize>,
    /// Numbers entries, so that an expiry never removes a newer entry under its key.
    next_generation: AtomicU64,
    max_entries: usize,
    max_bytes: usize,
    timer: Timer,
    started_at: SystemTime,
}

/// How long before it was made a memory store says its state began (see
/// [`Store::started_at`]).
const STARTUP_ALLOWANCE: Duration = Duration::from_millis(20);

/// Calls a [`MemoryStore`] tracks at most, unless set otherwise.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;
/// Bytes of replies a [`MemoryStore`] keeps at most, unless set otherwise (256 MiB).
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024 * 1024;

struct Entry {
    state: State,
    token: Token,
    fingerprint: Fingerprint,
    /// Tells an expiry apart from a newer entry under the same key, or a newer expiry of
    /// this entry (every renewal and outcome takes a new one).
    generation: u64,
    expiry: TimerHandle,
}

enum State {
    /// Claimed; waiters watch for the outcome (`None` until it exists).
    Running(watch::Sender<Option<Outcome>>),
    Settled(Outcome),
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
            entries: Arc::new(ShardMap::new()),
            stored_bytes: Arc::new(AtomicUsize::new(0)),
            next_generation: AtomicU64::new(0),
            max_entries,
            max_bytes,
            timer,
            started_at: SystemTime::now(),
        }
    }

    /// Keys held (running or settled).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn expiry(&self, key: &Key, generation: u64, ttl: Duration) -> TimerHandle {
        let entries: Weak<ShardMap<Key, Entry>> = Arc::downgrade(&self.entries);
        let stored_bytes = self.stored_bytes.clone();
        let key = key.clone();
        self.timer.schedule(ttl, move || {
            let Some(entries) = entries.upgrade() else {
                return;
            };
            if let Some((_, entry)) =
                entries.remove_if(&key, |_, entry| entry.generation == generation)
                && let State::Settled(Outcome::Reply(reply)) = entry.state
            {
                stored_bytes.fetch_sub(reply.len(), Ordering::Relaxed);
            }
        })
    }

    /// Moves `entry`'s expiry to `ttl` from now, under a new generation: an earlier expiry
    /// that fired already (its callback waiting for the entry's lock) then finds another
    /// generation and leaves the entry alone.
    fn expire_later(&self, key: &Key, entry: &mut Entry, ttl: Duration) {
        entry.generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        entry.expiry = self.expiry(key, entry.generation, ttl);
    }

    /// Records `outcome` under `key` if `token` still holds it (see [`Store::settle`]).
    fn settle_now(
        &self,
        key: &Key,
        token: Token,
        outcome: Outcome,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let Some(mut entry) = self.entries.get_mut(key) else {
            return Ok(false);
        };
        let allowed = entry.token == token
            && match (&entry.state, &outcome) {
                (State::Running(_), _) => true,
                (State::Settled(Outcome::Unknown), Outcome::Reply(_)) => true,
                (State::Settled(_), _) => false,
            };
        if !allowed {
            return Ok(false);
        }
        if let Outcome::Reply(reply) = &outcome {
            let size = reply.len();
            if self.stored_bytes.fetch_add(size, Ordering::Relaxed) + size > self.max_bytes {
                self.stored_bytes.fetch_sub(size, Ordering::Relaxed);
                // The claim stays: the server decides what the call's other attempts get.
                return Err(StoreError(format!(
                    "the memory store holds its limit of {} bytes of replies",
                    self.max_bytes
                )));
            }
        }
        self.expire_later(key, &mut entry, ttl);
        if let State::Running(waiters) =
            std::mem::replace(&mut entry.state, State::Settled(outcome.clone()))
        {
            waiters.send_replace(Some(outcome));
        }
        Ok(true)
    }
}

impl Store for MemoryStore {
    fn entries(&self) -> Option<usize> {
        Some(self.entries.len())
    }

    fn begin<'a>(&'a self, key: &'a Key, claim: Claim, ttl: Duration) -> StoreFuture<'a, Begin> {
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(key) {
            let full = StoreError(format!(
                "the memory store holds its limit of {} calls",
                self.max_entries
            ));
            return Box::pin(async move { Err(full) });
        }
        let found = match self.entries.entry(key.clone()) {
            MapEntry::Occupied(entry) => {
                let entry = entry.get();
                match &entry.state {
                    State::Running(_) => Begin::Running(entry.fingerprint),
                    State::Settled(outcome) => Begin::Settled(entry.fingerprint, outcome.clone()),
                }
            }
            MapEntry::Vacant(vacant) => {
                let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
                let expiry = self.expiry(key, generation, ttl);
                vacant.insert(Entry {
                    state: State::Running(watch::channel(None).0),
                    token: claim.token,
                    fingerprint: claim.fingerprint,
                    generation,
                    expiry,
                });
                Begin::New
            }
        };
        Box::pin(async move { Ok(found) })
    }

    fn settle<'a>(
        &'a self,
        key: &'a Key,
        claim: Claim,
        outcome: Outcome,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let settled = self.settle_now(key, claim.token, outcome, ttl);
        Box::pin(async move { settled })
    }

    fn renew<'a>(&'a self, key: &'a Key, token: Token, ttl: Duration) -> StoreFuture<'a, bool> {
        let renewed = match self.entries.get_mut(key) {
            Some(mut entry) if entry.token == token && matches!(entry.state, State::Running(_)) => {
                self.expire_later(key, &mut entry, ttl);
                true
            }
            _ => false,
        };
        Box::pin(async move { Ok(renewed) })
    }

    fn release<'a>(&'a self, key: &'a Key, token: Token) -> StoreFuture<'a, bool> {
        // Dropping the entry drops its sender, which wakes waiters with "released".
        let released = self
            .entries
            .remove_if(key, |_, entry| {
                entry.token == token && matches!(entry.state, State::Running(_))
            })
            .is_some();
        Box::pin(async move { Ok(released) })
    }

    fn wait<'a>(&'a self, key: &'a Key) -> StoreFuture<'a, Option<Outcome>> {
        let watching = self.entries.get(key).map(|entry| match &entry.state {
            State::Running(waiters) => Err(waiters.subscribe()),
            State::Settled(outcome) => Ok(outcome.clone()),
        });
        Box::pin(async move {
            match watching {
                None => Ok(None),
                Some(Ok(outcome)) => Ok(Some(outcome)),
                Some(Err(mut receiver)) => {
                    let outcome = receiver.wait_for(Option::is_some).await;
                    Ok(outcome.ok().and_then(|outcome| outcome.clone()))
                }
            }
        })
    }

    fn started_at(&self) -> StoreFuture<'_, Option<SystemTime>> {
        // A snowflake timestamp may lag its clock by a few milliseconds: a call sent just after
        // the store was made must not read as sent before it. No earlier process of this server
        // can have run a call in these last moments before this one made its store.
        let started_at = self.started_at - STARTUP_ALLOWANCE;
        Box::pin(async move { Ok(Some(started_at)) })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    fn claim() -> Claim {
        Claim {
            token: Token::random(),
            fingerprint: Fingerprint::of("s", "m", 0, b""),
        }
    }

    fn reply(bytes: &'static [u8]) -> Outcome {
        Outcome::Reply(Bytes::from_static(bytes))
    }

    #[tokio::test]
    async fn one_begin_wins_and_later_ones_see_the_outcome() {
        let store = MemoryStore::new(Timer::default());
        let key = Key::new("s", "m", 1);
        let first = claim();
        assert_eq!(store.begin(&key, first, TTL).await.unwrap(), Begin::New);
        assert_eq!(
            store.begin(&key, claim(), TTL).await.unwrap(),
            Begin::Running(first.fingerprint)
        );
        let waiting = store.wait(&key);
        assert!(
            store
                .settle(&key, first, reply(b"reply"), TTL)
                .await
                .unwrap()
        );
        assert_eq!(waiting.await.unwrap(), Some(reply(b"reply")));
        assert_eq!(
            store.begin(&key, claim(), TTL).await.unwrap(),
            Begin::Settled(first.fingerprint, reply(b"reply"))
        );
    }

    #[tokio::test]
    async fn writes_under_another_token_change_nothing() {
        let store = MemoryStore::new(Timer::default());
        let key = Key::new("s", "m", 9);
        let first = claim();
        store.begin(&key, first, TTL).await.unwrap();
        let stranger = Token::random();
        let late = Claim {
            token: stranger,
            ..first
        };
        assert!(!store.settle(&key, late, reply(b"late"), TTL).await.unwrap());
        assert!(!store.renew(&key, stranger, TTL).await.unwrap());
        assert!(!store.release(&key, stranger).await.unwrap());
        assert!(
            store
                .settle(&key, first, reply(b"mine"), TTL)
                .await
                .unwrap()
        );
        // A reply is final: not even its own token replaces or releases it.
        assert!(
            !store
                .settle(&key, first, Outcome::Unknown, TTL)
                .await
                .unwrap()
        );
        assert!(!store.release(&key, first.token).await.unwrap());
        assert_eq!(
            store.begin(&key, claim(), TTL).await.unwrap(),
            Begin::Settled(first.fingerprint, reply(b"mine"))
        );
    }

    #[tokio::test]
    async fn an_unknown_outcome_may_become_its_reply() {
        let store = MemoryStore::new(Timer::default());
        let key = Key::new("s", "m", 10);
        let first = claim();
        store.begin(&key, first, TTL).await.unwrap();
        assert!(
            store
                .settle(&key, first, Outcome::Unknown, TTL)
                .await
                .unwrap()
        );
        assert!(store.settle(&key, first, reply(b"r"), TTL).await.unwrap());
        assert_eq!(store.wait(&key).await.unwrap(), Some(reply(b"r")));
    }

    #[tokio::test]
    async fn a_released_claim_can_be_taken_again_and_wakes_waiters() {
        let store = MemoryStore::new(Timer::default());
        let key = Key::new("s", "m", 2);
        let first = claim();
        assert_eq!(store.begin(&key, first, TTL).await.unwrap(), Begin::New);
        let waiting = store.wait(&key);
        assert!(store.release(&key, first.token).await.unwrap());
        assert_eq!(waiting.await.unwrap(), None);
        assert_eq!(store.begin(&key, claim(), TTL).await.unwrap(), Begin::New);
    }

    #[tokio::test]
    async fn limits_bound_the_memory_held() {
        let store = MemoryStore::with_limits(Timer::default(), 2, 10);
        let (first, second, third) = (
            Key::new("s", "m", 1),
            Key::new("s", "m", 2),
            Key::new("s", "m", 3),
        );
        let (claim_first, claim_second) = (claim(), claim());
        assert_eq!(
            store.begin(&first, claim_first, TTL).await.unwrap(),
            Begin::New
        );
        assert_eq!(
            store.begin(&second, claim_second, TTL).await.unwrap(),
            Begin::New
        );
        let error = store.begin(&third, claim(), TTL).await.unwrap_err();
        assert!(error.to_string().contains("limit of 2 calls"), "{error}");
        // A key already held still answers.
        assert!(matches!(
            store.begin(&first, claim(), TTL).await.unwrap(),
            Begin::Running(_)
        ));

        store
            .settle(&first, claim_first, reply(b"12345678"), TTL)
            .await
            .unwrap();
        let error = store
            .settle(&second, claim_second, reply(b"12345"), TTL)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("limit of 10 bytes"), "{error}");
        // The claim whose reply did not fit stays; an unknown outcome stands for it.
        let waiting = store.wait(&second);
        assert!(
            store
                .settle(&second, claim_second, Outcome::Unknown, TTL)
                .await
                .unwrap()
        );
        assert_eq!(waiting.await.unwrap(), Some(Outcome::Unknown));
        assert_eq!(store.len(), 2);
    }

    /// An expiry that fired just as its entry was renewed (its callback waiting for the
    /// entry's lock, which the renewal holds) must not remove the renewed entry.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expiry_that_fires_during_a_renewal_spares_the_entry() {
        let store = MemoryStore::new(Timer::default());
        let key = Key::new("s", "m", 4);
        let first = claim();
        store
            .begin(&key, first, Duration::from_millis(10))
            .await
            .unwrap();
        {
            let mut entry = store.entries.get_mut(&key).unwrap();
            // The expiry fires meanwhile, on the other worker, and waits for this lock.
            std::thread::sleep(Duration::from_millis(200));
            store.expire_later(&key, &mut entry, TTL);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            store.len(),
            1,
            "a renewed entry was removed by its old expiry"
        );
        assert!(store.renew(&key, first.token, TTL).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_ttl_unless_renewed() {
        let store = MemoryStore::new(Timer::default());
        let key = Key::new("s", "m", 3);
        let first = claim();
        store
            .begin(&key, first, Duration::from_millis(100))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(
            store
                .renew(&key, first.token, Duration::from_millis(100))
                .await
                .unwrap()
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(store.len(), 1, "a renewed claim expired at its first ttl");
        store
            .settle(&key, first, reply(b"r"), Duration::from_millis(100))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.len(), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(store.is_empty());
        assert_eq!(store.begin(&key, claim(), TTL).await.unwrap(), Begin::New);
    }
}
