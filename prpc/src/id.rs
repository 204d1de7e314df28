//! Snowflake ids: unique 64-bit ids, ordered by time, made without coordination.
//!
//! Every request carries one as its request id. An id is made of, from the most significant
//! bit down:
//!
//! | bits     | width | field                                                   |
//! |----------|-------|---------------------------------------------------------|
//! | 63       | 1     | always 0, so ids are positive as `i64` too              |
//! | 62..=22  | 41    | milliseconds since [`epoch`] (2026-01-01T00:00:00Z)     |
//! | 21..=12  | 10    | worker id, `0..=1023`, distinct per process in a fleet  |
//! | 11..=0   | 12    | sequence within the millisecond, `0..=4095`             |
//!
//! 41 bits of milliseconds last 69.7 years, until 2095-09-07T15:47:35.551Z. One generator
//! issues at most 4,096 ids per millisecond (4,096,000 per second); when a millisecond's ids
//! are used up, [`SnowflakeGenerator::next_id`] waits for the next millisecond.
//!
//! The millisecond comes from the kernel's coarse clock (on Linux: the time of the last timer
//! tick, read without touching the clock source, about 4 ns against 35 ns for the precise clock
//! on a VM), so a timestamp may lag the wall clock by under a tick (1 to 4 ms); the precise
//! clock is read only when a millisecond's ids run out.
//!
//! Ids from one generator strictly increase, even when the wall clock steps back (NTP, a VM
//! resumed): the generator then keeps issuing from the last millisecond it used and, once
//! that millisecond's 4,096 ids are used up, waits for the clock to tick and borrows the next
//! millisecond — so ids keep their pace of at most 4,096 per millisecond, stamped ahead of
//! the clock until it catches up. The first step back is logged as a warning.
//!
//! ```
//! let generator = prpc::id::SnowflakeGenerator::new(7)?;
//! let first = generator.next_id();
//! let second = generator.next_id();
//! assert!(second > first);
//!
//! let parts = prpc::id::decode(second);
//! assert_eq!(parts.worker_id, 7);
//! assert!(parts.timestamp() >= prpc::id::epoch());
//!
//! // The process-wide generator: worker id from set_worker_id or PRPC_WORKER_ID, else random.
//! let request_id = prpc::id::next_id();
//! # Ok::<(), prpc::id::IdError>(())
//! ```

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Milliseconds from the Unix epoch to prpc's epoch, 2026-01-01T00:00:00Z.
pub const EPOCH_UNIX_MS: u64 = 1_767_225_600_000;

/// prpc's epoch, 2026-01-01T00:00:00Z: timestamps in ids count milliseconds from here.
pub fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(EPOCH_UNIX_MS)
}

/// Bits of milliseconds in an id.
pub const TIMESTAMP_BITS: u32 = 41;
/// Bits of worker id in an id.
pub const WORKER_ID_BITS: u32 = 10;
/// Bits of sequence in an id.
pub const SEQUENCE_BITS: u32 = 12;

/// The largest worker id, 1023.
pub const MAX_WORKER_ID: u16 = (1 << WORKER_ID_BITS) - 1;
/// The largest timestamp an id can hold, in milliseconds since [`epoch`].
pub const MAX_TIMESTAMP_MS: u64 = (1 << TIMESTAMP_BITS) - 1;
const MAX_SEQUENCE: u64 = (1 << SEQUENCE_BITS) - 1;

/// The environment variable the process-wide generator reads its worker id from.
pub const WORKER_ID_ENV: &str = "PRPC_WORKER_ID";

/// Why a generator could not be made or configured.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// A worker id above [`MAX_WORKER_ID`].
    WorkerIdOutOfRange {
        /// The id asked for.
        worker_id: u64,
    },
    /// [`WORKER_ID_ENV`] holds something other than a worker id.
    InvalidWorkerIdEnv {
        /// The variable's value.
        value: String,
    },
    /// [`set_worker_id`] came after the process-wide generator was first used or set.
    AlreadyInitialized {
        /// The worker id it runs with.
        worker_id: u16,
    },
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::WorkerIdOutOfRange { worker_id } => {
                write!(f, "worker id {worker_id} is out of range (0..=1023)")
            }
            IdError::InvalidWorkerIdEnv { value } => write!(
                f,
                "{WORKER_ID_ENV}={value:?} is not a worker id (an integer in 0..=1023)"
            ),
            IdError::AlreadyInitialized { worker_id } => write!(
                f,
                "the default id generator already runs with worker id {worker_id}"
            ),
        }
    }
}

impl std::error::Error for IdError {}

/// Issues snowflake ids for one worker id; share one generator between threads (it is
/// lock-free).
#[derive(Debug)]
pub struct SnowflakeGenerator {
    worker_id: u16,
    /// The last id issued, as `milliseconds << SEQUENCE_BITS | sequence`.
    last: AtomicU64,
    warned_clock_back: AtomicBool,
}

impl SnowflakeGenerator {
    /// A generator for `worker_id`, which must be at most [`MAX_WORKER_ID`].
    pub fn new(worker_id: u16) -> Result<SnowflakeGenerator, IdError> {
        if worker_id > MAX_WORKER_ID {
            return Err(IdError::WorkerIdOutOfRange {
                worker_id: worker_id.into(),
            });
        }
        Ok(SnowflakeGenerator {
            worker_id,
            last: AtomicU64::new(0),
            warned_clock_back: AtomicBool::new(false),
        })
    }

    /// The worker id in every id this generator issues.
    pub fn worker_id(&self) -> u16 {
        self.worker_id
    }

    /// A new id, greater than every id this generator issued before.
    ///
    /// Waits for the next millisecond when this one's 4,096 ids are used up.
    ///
    /// # Panics
    ///
    /// After 2095-09-07T15:47:35.551Z, when timestamps no longer fit in 41 bits.
    pub fn next_id(&self) -> u64 {
        self.next_id_with(coarse_now_ms, now_ms)
    }

    /// [`next_id`](Self::next_id) with the clocks (milliseconds since [`epoch`]) injected:
    /// `coarse`, read for every id, may lag the wall clock a little (never lead it); `precise`
    /// is read only when a millisecond's ids run out.
    fn next_id_with(
        &self,
        mut coarse: impl FnMut() -> u64,
        mut precise: impl FnMut() -> u64,
    ) -> u64 {
        let mut last = self.last.load(Ordering::Relaxed);
        // The exhausted state this call has seen the clock tick through, if any.
        let mut waited_out = None;
        loop {
            let last_ms = last >> SEQUENCE_BITS;
            let now = coarse();
            let next = if now > last_ms {
                now << SEQUENCE_BITS
            } else if last & MAX_SEQUENCE < MAX_SEQUENCE {
                // The same millisecond, or a coarse reading behind the last one used.
                last + 1
            } else {
                // This millisecond's ids are used up: ask the precise clock whether the next
                // one has begun. It is read after loading `last`, and `last` holds a reading
                // of a clock that never leads it (or a borrowed millisecond), so a precise
                // reading behind it means the clock stepped back, not a stale reading.
                let now = precise();
                if now > last_ms {
                    now << SEQUENCE_BITS
                } else if waited_out == Some(last) {
                    // The clock ticked since this millisecond ran out but is still behind:
                    // borrow the next millisecond.
                    (last_ms + 1) << SEQUENCE_BITS
                } else {
                    if now < last_ms {
                        self.warn_clock_back(last_ms - now);
                    }
                    wait_for_tick(now, &mut precise);
                    waited_out = Some(last);
                    last = self.last.load(Ordering::Relaxed);
                    continue;
                }
            };
            assert!(
                next >> SEQUENCE_BITS <= MAX_TIMESTAMP_MS,
                "snowflake timestamps ran out of 41 bits (the clock is past 2095-09-07)"
            );
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return compose(next, self.worker_id),
                Err(actual) => last = actual,
            }
        }
    }

    fn warn_clock_back(&self, behind_ms: u64) {
        if !self.warned_clock_back.load(Ordering::Relaxed)
            && !self.warned_clock_back.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                behind_ms,
                worker_id = self.worker_id,
                "system clock stepped back; issuing snowflake ids ahead of it until it catches up \
                 (logged once)"
            );
        }
    }
}

/// The id for generator state `milliseconds << SEQUENCE_BITS | sequence`.
fn compose(state: u64, worker_id: u16) -> u64 {
    let timestamp_ms = state >> SEQUENCE_BITS;
    timestamp_ms << (WORKER_ID_BITS + SEQUENCE_BITS)
        | u64::from(worker_id) << SEQUENCE_BITS
        | state & MAX_SEQUENCE
}

/// Spins, then yields, until the clock reads something other than `now`.
fn wait_for_tick(now: u64, clock: &mut impl FnMut() -> u64) {
    let mut spins = 0u32;
    while clock() == now {
        if spins < 64 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Milliseconds since [`epoch`] by the kernel's coarse wall clock: the time of the last
/// timer tick, so it lags the wall clock by under a tick (1 to 4 ms) but costs no clock-source
/// read, which on a VM can be most of an id's cost.
/// Milliseconds since [`epoch`] by the kernel's coarse wall clock: the time of the last
/// timer tick, so it lags the wall clock by under a tick (1 to 4 ms) but costs no clock-source
/// read, which on a VM can be most of an id's cost.
fn coarse_now_ms() -> u64 {
    let since_unix_epoch = crate::clock::realtime_coarse();
    u64::try_from(since_unix_epoch.as_millis())
        .unwrap_or(u64::MAX)
        .saturating_sub(EPOCH_UNIX_MS)
}

/// Milliseconds since [`epoch`] by the wall clock (0 if the clock is before it).
fn now_ms() -> u64 {
    let since_unix_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    u64::try_from(since_unix_epoch.as_millis())
        .unwrap_or(u64::MAX)
        .saturating_sub(EPOCH_UNIX_MS)
}

/// The fields of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdParts {
    /// Milliseconds since [`epoch`].
    pub timestamp_ms: u64,
    /// The worker id of the generator that issued it.
    pub worker_id: u16,
    /// The sequence number within the millisecond.
    pub sequence: u16,
}

impl IdParts {
    /// The time the id was issued (to the millisecond; later if the generator was ahead of
    /// the clock, see the [module docs](self)).
    pub fn timestamp(&self) -> SystemTime {
        epoch() + Duration::from_millis(self.timestamp_ms)
    }
}

/// Splits an id into its fields. Bit 63, always 0 in a snowflake id, is ignored.
pub fn decode(id: u64) -> IdParts {
    IdParts {
        timestamp_ms: (id >> (WORKER_ID_BITS + SEQUENCE_BITS)) & MAX_TIMESTAMP_MS,
        worker_id: ((id >> SEQUENCE_BITS) & u64::from(MAX_WORKER_ID)) as u16,
        sequence: (id & MAX_SEQUENCE) as u16,
    }
}

static DEFAULT: OnceLock<SnowflakeGenerator> = OnceLock::new();

/// A new id from the process-wide generator. See [`default_generator`].
pub fn next_id() -> u64 {
    default_generator().next_id()
}

/// The process-wide generator.
///
/// Its worker id is the one given to [`set_worker_id`] before first use; otherwise it is read
/// from [`WORKER_ID_ENV`] (`PRPC_WORKER_ID`) on first use; otherwise it is drawn at random.
/// Request ids key the servers' dedupe of retried calls, so processes whose calls may reach
/// one shared idempotency store should each have their own worker id: assign them in a fleet
/// (a random one collides with another process's with probability 1/1024). An invalid
/// `PRPC_WORKER_ID` is logged as an error and a random worker id is used: check it at startup
/// with [`worker_id_from_env`] to fail instead.
pub fn default_generator() -> &'static SnowflakeGenerator {
    DEFAULT.get_or_init(|| {
        let configured = worker_id_from_env().unwrap_or_else(|error| {
            tracing::error!(%error, "using a random snowflake worker id");
            None
        });
        let worker_id = configured.unwrap_or_else(|| {
            let drawn = fastrand::u16(0..=MAX_WORKER_ID);
            tracing::debug!(
                worker_id = drawn,
                "no PRPC_WORKER_ID: drew a snowflake worker id"
            );
            drawn
        });
        SnowflakeGenerator::new(worker_id).expect("worker id is in range")
    })
}

/// Sets the process-wide generator's worker id. It must come before the generator's first
/// use; setting the worker id it already has is not an error.
pub fn set_worker_id(worker_id: u16) -> Result<(), IdError> {
    let generator = SnowflakeGenerator::new(worker_id)?;
    match DEFAULT.set(generator) {
        Ok(()) => Ok(()),
        Err(_) => {
            let current = default_generator().worker_id();
            if current == worker_id {
                Ok(())
            } else {
                Err(IdError::AlreadyInitialized { worker_id: current })
            }
        }
    }
}

/// The worker id in [`WORKER_ID_ENV`] (`PRPC_WORKER_ID`), if it is set.
pub fn worker_id_from_env() -> Result<Option<u16>, IdError> {
    match std::env::var_os(WORKER_ID_ENV) {
        None => Ok(None),
        Some(value) => match value.to_str() {
            Some(value) => parse_worker_id(value).map(Some),
            None => Err(IdError::InvalidWorkerIdEnv {
                value: value.to_string_lossy().into_owned(),
            }),
        },
    }
}

fn parse_worker_id(value: &str) -> Result<u16, IdError> {
    let invalid = || IdError::InvalidWorkerIdEnv {
        value: value.to_owned(),
    };
    let worker_id: u64 = value.trim().parse().map_err(|_| invalid())?;
    u16::try_from(worker_id)
        .ok()
        .filter(|&worker_id| worker_id <= MAX_WORKER_ID)
        .ok_or(IdError::WorkerIdOutOfRange { worker_id })
}

/// Hashes request ids for the runtime's maps of pending and running calls: the splitmix64
/// finalizer over the id mixed with a per-process random seed, a few cycles where SipHash
/// takes dozens. A server's map holds ids its peer chose; without the seed, a peer could pick
/// ids that all land in one bucket and make every lookup walk them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdHasher(u64);

/// Builds [`IdHasher`]s, all seeded with the process's seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdHashBuilder(u64);

impl Default for IdHashBuilder {
    fn default() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        IdHashBuilder(*SEED.get_or_init(|| fastrand::u64(..)))
    }
}

impl std::hash::BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.0)
    }
}

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = self.0.rotate_left(23) ^ value;
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use proptest::prelude::*;

    use super::*;

    /// A clock for tests: reads `now`, and moves one millisecond on every `tick_every` reads.
    struct FakeClock {
        now: Cell<u64>,
        reads: Cell<u64>,
        tick_every: u64,
    }

    impl FakeClock {
        fn new(now: u64, tick_every: u64) -> FakeClock {
            FakeClock {
                now: Cell::new(now),
                reads: Cell::new(0),
                tick_every,
            }
        }

        fn read(&self) -> u64 {
            self.reads.set(self.reads.get() + 1);
            if self.reads.get() % self.tick_every == 0 {
                self.now.set(self.now.get() + 1);
            }
            self.now.get()
        }
    }

    /// More than a kernel tick at any `CONFIG_HZ` (at least 100 Hz).
    const COARSE_LAG_MS: u64 = 10;

    #[test]
    fn the_coarse_clock_never_leads_the_precise_one_and_lags_it_by_under_a_tick() {
        for _ in 0..1_000 {
            // Bracketed by precise readings, so a preemption between them cannot fail it.
            let before = now_ms();
            let coarse = coarse_now_ms();
            let after = now_ms();
            assert!(coarse <= after, "coarse {coarse} ahead of precise {after}");
            assert!(
                coarse + COARSE_LAG_MS >= before,
                "coarse {coarse} lags precise {before} by more than {COARSE_LAG_MS} ms"
            );
        }
    }

    #[test]
    fn a_lagging_coarse_clock_moves_to_the_precise_one_when_a_millisecond_runs_out() {
        let generator = SnowflakeGenerator::new(4).unwrap();
        // The coarse clock is stuck 3 ms behind: 4,096 ids at its millisecond, then the
        // precise clock's, with no wait.
        let ids: Vec<_> = (0..5_000)
            .map(|_| generator.next_id_with(|| 97, || 100))
            .collect();
        let stamps: Vec<_> = ids.iter().map(|&id| decode(id).timestamp_ms).collect();
        assert!(stamps[..4_096].iter().all(|&stamp| stamp == 97));
        assert!(stamps[4_096..].iter().all(|&stamp| stamp == 100));
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn eight_threads_share_a_generator_without_duplicates() {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 1_000_000;
        let generator = SnowflakeGenerator::new(555).unwrap();
        let before = now_ms();
        let per_thread: Vec<Vec<u64>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..THREADS)
                .map(|_| scope.spawn(|| (0..PER_THREAD).map(|_| generator.next_id()).collect()))
                .collect();
            threads
                .into_iter()
                .map(|thread| thread.join().unwrap())
                .collect()
        });
        let after = now_ms();

        for ids in &per_thread {
            assert!(
                ids.windows(2).all(|pair| pair[0] < pair[1]),
                "not monotonic"
            );
            for &id in ids {
                assert!(id < 1 << 63);
                let parts = decode(id);
                assert_eq!(parts.worker_id, 555);
                // The coarse clock lags the precise one by under a kernel tick.
                assert!(
                    (before.saturating_sub(COARSE_LAG_MS)..=after).contains(&parts.timestamp_ms)
                );
            }
        }
        let mut all: Vec<u64> = per_thread.into_iter().flatten().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), THREADS * PER_THREAD, "duplicate ids");
    }

    #[test]
    fn sequence_exhaustion_rolls_over_to_the_next_millisecond() {
        let generator = SnowflakeGenerator::new(3).unwrap();
        // The clock ticks only after 10,000 reads, well after the sequence runs out.
        let clock = FakeClock::new(100, 10_000);
        let ids: Vec<_> = (0..4_097)
            .map(|_| generator.next_id_with(|| clock.read(), || clock.read()))
            .collect();
        let parts: Vec<_> = ids.iter().map(|&id| decode(id)).collect();
        for (sequence, part) in parts[..4_096].iter().enumerate() {
            assert_eq!(part.timestamp_ms, 100);
            assert_eq!(usize::from(part.sequence), sequence);
        }
        assert_eq!(parts[4_096].timestamp_ms, 101);
        assert_eq!(parts[4_096].sequence, 0);
        assert!(clock.reads.get() >= 10_000, "it waited for the clock");
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn a_clock_stepping_back_never_gives_a_smaller_or_repeated_id() {
        let generator = SnowflakeGenerator::new(9).unwrap();
        let clock = FakeClock::new(1_000, 1_000);
        let mut ids: Vec<_> = (0..10)
            .map(|_| generator.next_id_with(|| clock.read(), || clock.read()))
            .collect();
        // Back by half a second: ids stay at millisecond 1000, then borrow 1001, 1002...
        clock.now.set(500);
        ids.extend((0..10_000).map(|_| generator.next_id_with(|| clock.read(), || clock.read())));
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        let stamps: Vec<_> = ids.iter().map(|&id| decode(id).timestamp_ms).collect();
        assert!(stamps.iter().all(|&stamp| stamp >= 1_000));
        assert_eq!(
            stamps.iter().filter(|&&stamp| stamp == 1_000).count(),
            4_096
        );
        assert_eq!(
            stamps.iter().filter(|&&stamp| stamp == 1_001).count(),
            4_096
        );
        assert_eq!(*stamps.last().unwrap(), 1_002);
        assert!(clock.now.get() < 1_000, "the clock was still behind");

        // Once the clock is ahead again, ids follow it.
        clock.now.set(2_000);
        let id = generator.next_id_with(|| clock.read(), || clock.read());
        assert!(id > *ids.last().unwrap());
        assert_eq!(decode(id).timestamp_ms, 2_000);
        assert_eq!(decode(id).sequence, 0);
    }

    #[test]
    fn a_clock_before_the_epoch_counts_as_the_epoch() {
        let generator = SnowflakeGenerator::new(0).unwrap();
        let first = generator.next_id_with(|| 0, || 0);
        let second = generator.next_id_with(|| 0, || 0);
        assert!(second > first);
        assert_eq!(decode(second).timestamp_ms, 0);
    }

    #[test]
    fn worker_ids_above_1023_are_rejected() {
        assert_eq!(
            SnowflakeGenerator::new(1_024).unwrap_err(),
            IdError::WorkerIdOutOfRange { worker_id: 1_024 }
        );
        assert_eq!(SnowflakeGenerator::new(1_023).unwrap().worker_id(), 1_023);
    }

    #[test]
    fn worker_ids_parse_from_the_environment_format() {
        assert_eq!(parse_worker_id("17"), Ok(17));
        assert_eq!(parse_worker_id(" 1023\n"), Ok(1_023));
        assert_eq!(
            parse_worker_id("1024"),
            Err(IdError::WorkerIdOutOfRange { worker_id: 1_024 })
        );
        assert_eq!(
            parse_worker_id("99999999999"),
            Err(IdError::WorkerIdOutOfRange {
                worker_id: 99_999_999_999
            })
        );
        let error = parse_worker_id("node-3").unwrap_err();
        assert_eq!(
            error.to_string(),
            "PRPC_WORKER_ID=\"node-3\" is not a worker id (an integer in 0..=1023)"
        );
    }

    #[test]
    fn the_default_generator_keeps_its_worker_id() {
        let first = next_id();
        let worker_id = default_generator().worker_id();
        assert!(next_id() > first);
        assert_eq!(decode(first).worker_id, worker_id);
        assert_eq!(set_worker_id(worker_id), Ok(()));
        let other = (worker_id + 1) % (MAX_WORKER_ID + 1);
        assert_eq!(
            set_worker_id(other),
            Err(IdError::AlreadyInitialized { worker_id })
        );
        assert_eq!(
            set_worker_id(2_000),
            Err(IdError::WorkerIdOutOfRange { worker_id: 2_000 })
        );
    }

    #[test]
    fn timestamps_count_from_2026() {
        let parts = IdParts {
            timestamp_ms: 0,
            worker_id: 0,
            sequence: 0,
        };
        assert_eq!(
            parts.timestamp(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
        );
        let last = IdParts {
            timestamp_ms: MAX_TIMESTAMP_MS,
            ..parts
        };
        // 2095-09-07T15:47:35.551Z
        assert_eq!(
            last.timestamp(),
            SystemTime::UNIX_EPOCH + Duration::from_millis(3_966_248_855_551)
        );
    }

    proptest! {
        #[test]
        fn decode_inverts_compose(
            timestamp_ms in 0..=MAX_TIMESTAMP_MS,
            worker_id in 0..=MAX_WORKER_ID,
            sequence in 0..=MAX_SEQUENCE,
        ) {
            let id = compose(timestamp_ms << SEQUENCE_BITS | sequence, worker_id);
            prop_assert!(id < 1 << 63);
            let parts = decode(id);
            prop_assert_eq!(parts.timestamp_ms, timestamp_ms);
            prop_assert_eq!(parts.worker_id, worker_id);
            prop_assert_eq!(u64::from(parts.sequence), sequence);
        }
    }
}
