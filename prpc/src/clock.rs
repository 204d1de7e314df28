//! The kernel's coarse clocks: the time of the last timer tick, read without a clock-source
//! read (which on a VM can cost more than the work it times). Used where a millisecond of lag
//! does not matter and a read happens per call: snowflake ids and balancers' load decay.
//!
//! On Linux through `clock_gettime(CLOCK_*_COARSE)` from libc, which tokio already builds;
//! elsewhere, or should the call ever fail, the precise clocks of std.

use std::time::{Duration, SystemTime};

/// Time since the Unix epoch by the coarse wall clock (lags the wall clock by under a tick).
pub(crate) fn realtime_coarse() -> Duration {
    #[cfg(target_os = "linux")]
    if let Some(now) = read(libc::CLOCK_REALTIME_COARSE) {
        return now;
    }
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// Time on a monotonic coarse clock since an unspecified start (boot on Linux, the first
/// reading elsewhere): only differences between readings mean anything.
#[cfg(feature = "cluster")]
pub(crate) fn monotonic_coarse() -> Duration {
    #[cfg(target_os = "linux")]
    if let Some(now) = read(libc::CLOCK_MONOTONIC_COARSE) {
        return now;
    }
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn read(clock: libc::clockid_t) -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec` for the whole call, and `clock_gettime`
    // writes nothing else; an unknown clock is reported by its return value, not UB.
    let status = unsafe { libc::clock_gettime(clock, &mut now) };
    if status != 0 {
        return None;
    }
    let seconds = u64::try_from(now.tv_sec).ok()?;
    let nanos = u32::try_from(now.tv_nsec)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    Some(Duration::new(seconds, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_wall_clock_is_within_a_tick_or_two_of_the_precise_one() {
        let precise = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        let coarse = realtime_coarse();
        // A tick is at most 10 ms (HZ=100); the coarse clock may lag, never lead by more
        // than the time between the two reads.
        assert!(
            coarse <= precise + Duration::from_millis(50),
            "{coarse:?} {precise:?}"
        );
        assert!(
            precise - coarse < Duration::from_millis(50),
            "{coarse:?} {precise:?}"
        );
    }

    #[cfg(feature = "cluster")]
    #[test]
    fn the_monotonic_coarse_clock_does_not_go_back() {
        let mut last = monotonic_coarse();
        for _ in 0..10_000 {
            let now = monotonic_coarse();
            assert!(now >= last);
            last = now;
        }
    }
}
