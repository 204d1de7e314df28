//! The circuit breaker's state machine on paused time: how it trips, how long it stays open,
//! how its trial calls close or reopen it, and that outcomes from an older generation are
//! ignored.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prpc::cluster::{Breaker, BreakerConfig, BreakerState, StateChange};
use tokio::time::advance;

const OPEN: Duration = Duration::from_secs(5);

/// Trips on `failures` consecutive failures only, stays open 5 s, and lets `trials` through
/// when half-open.
fn consecutive(failures: u32, trials: u32) -> BreakerConfig {
    BreakerConfig::default()
        .consecutive_failures(failures)
        .without_failure_ratio()
        .open_timeout(OPEN)
        .half_open_calls(trials)
}

fn fail(breaker: &Breaker, times: usize) {
    for _ in 0..times {
        breaker.allow().expect("allowed").failure();
    }
}

fn succeed(breaker: &Breaker, times: usize) {
    for _ in 0..times {
        breaker.allow().expect("allowed").success();
    }
}

/// A breaker tripped with the config's consecutive failures, and 5 s later half-open.
async fn half_open(config: BreakerConfig) -> Breaker {
    let breaker = Breaker::new(config);
    while breaker.state() == BreakerState::Closed {
        fail(&breaker, 1);
    }
    advance(OPEN).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    breaker
}

#[tokio::test(start_paused = true)]
async fn trips_on_consecutive_failures() {
    let breaker = Breaker::new(consecutive(3, 1));
    fail(&breaker, 2);
    // A success breaks the run.
    succeed(&breaker, 1);
    fail(&breaker, 2);
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.stats().consecutive_failures, 2);
    fail(&breaker, 1);
    assert_eq!(breaker.state(), BreakerState::Open);
    let stats = breaker.stats();
    assert_eq!(
        (stats.trips, stats.total_failures, stats.total_successes),
        (1, 5, 1)
    );
    assert_eq!(stats.open_until, Some(stats.since + OPEN));
}

#[tokio::test(start_paused = true)]
async fn trips_on_the_ratio_only_past_the_minimum_count() {
    let breaker = Breaker::new(
        BreakerConfig::default()
            .consecutive_failures(0)
            .failure_ratio(0.5, 10)
            .interval(Duration::from_secs(10)),
    );
    // 9 calls, all failed: under the minimum, so closed.
    fail(&breaker, 9);
    assert_eq!(breaker.state(), BreakerState::Closed);
    // The counting interval ends: counts start over.
    advance(Duration::from_secs(10)).await;
    assert_eq!(breaker.stats().calls, 0);
    // Alternating success and failure: 4 of 9, then 5 of 10 fail.
    for _ in 0..4 {
        succeed(&breaker, 1);
        fail(&breaker, 1);
    }
    succeed(&breaker, 1);
    assert_eq!(breaker.state(), BreakerState::Closed);
    fail(&breaker, 1);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_ratio_under_the_threshold_keeps_it_closed() {
    let breaker = Breaker::new(
        BreakerConfig::default()
            .consecutive_failures(0)
            .failure_ratio(0.5, 10)
            .interval(Duration::ZERO),
    );
    for _ in 0..100 {
        succeed(&breaker, 2);
        fail(&breaker, 1);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.stats().calls, 300);
}

#[tokio::test(start_paused = true)]
async fn open_refuses_until_the_timeout() {
    let breaker = Breaker::new(consecutive(1, 1));
    fail(&breaker, 1);
    for (at, step) in [(0, 1), (1, 3), (4, 0)] {
        let open = breaker.allow().unwrap_err();
        assert_eq!(open.state(), BreakerState::Open);
        assert_eq!(open.retry_after(), Some(OPEN - Duration::from_secs(at)));
        advance(Duration::from_secs(step)).await;
    }
    advance(Duration::from_millis(999)).await;
    assert!(breaker.allow().is_err());
    advance(Duration::from_millis(1)).await;
    let permit = breaker.allow().expect("a trial after the timeout");
    assert!(permit.is_trial());
    assert_eq!(breaker.stats().total_rejected, 4);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_a_bounded_number_of_trials() {
    let breaker = half_open(consecutive(1, 3)).await;
    let first = breaker.allow().unwrap();
    let second = breaker.allow().unwrap();
    let third = breaker.allow().unwrap();
    let refused = breaker.allow().unwrap_err();
    assert_eq!(refused.state(), BreakerState::HalfOpen);
    assert_eq!(refused.retry_after(), None);
    assert_eq!(breaker.stats().trials_in_flight, 3);

    // A finished trial keeps its place; a dropped one frees it.
    first.success();
    assert!(breaker.allow().is_err());
    drop(second);
    let replacement = breaker.allow().expect("the dropped trial's place");
    assert!(breaker.allow().is_err());
    third.success();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    replacement.success();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn recovers_on_successful_trials() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let config = consecutive(2, 2).on_state_change(move |change: &StateChange| {
        seen.lock()
            .unwrap()
            .push((change.from, change.to, change.stats.generation));
    });
    let breaker = half_open(config).await;
    succeed(&breaker, 2);
    assert_eq!(breaker.state(), BreakerState::Closed);
    // Closed again with cleared counts: it takes two failures in a row to trip.
    fail(&breaker, 1);
    assert_eq!(breaker.state(), BreakerState::Closed);
    use BreakerState::*;
    assert_eq!(
        *log.lock().unwrap(),
        [
            (Closed, Open, 1),
            (Open, HalfOpen, 2),
            (HalfOpen, Closed, 3)
        ]
    );
    let stats = breaker.stats();
    assert_eq!(
        (stats.state, stats.trips, stats.consecutive_failures),
        (Closed, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_reopens_it() {
    let breaker = half_open(consecutive(1, 3)).await;
    let other = breaker.allow().unwrap();
    succeed(&breaker, 1);
    fail(&breaker, 1);
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(breaker.stats().trips, 2);
    // The other trial, from the half-open generation, finishes too late to count.
    other.success();
    assert_eq!(breaker.state(), BreakerState::Open);
    // A full timeout again before the next trials.
    advance(OPEN - Duration::from_millis(1)).await;
    assert!(breaker.allow().is_err());
    advance(Duration::from_millis(1)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn outcomes_of_an_older_generation_are_ignored() {
    let breaker = Breaker::new(consecutive(2, 1));
    // Calls in flight when the breaker trips...
    let slow_failure = breaker.allow().unwrap();
    let slow_success = breaker.allow().unwrap();
    fail(&breaker, 2);
    assert_eq!(breaker.state(), BreakerState::Open);
    advance(OPEN).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    // ...finish while it is half-open: the success does not close it, the failure does not
    // reopen it.
    slow_success.success();
    slow_failure.failure();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(breaker.stats().calls, 0);
    // Counted in the totals all the same.
    assert_eq!(breaker.stats().total_failures, 3);

    // A cleared counting interval is a new generation too.
    succeed(&breaker, 1);
    let stale = breaker.allow().unwrap();
    fail(&breaker, 1);
    // The default counting interval is 10 s.
    advance(Duration::from_secs(10)).await;
    stale.failure();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.stats().consecutive_failures, 0);
}

#[test]
fn permits_are_shared_across_threads() {
    let breaker = Arc::new(Breaker::new(consecutive(1_000, 1)));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let breaker = breaker.clone();
            std::thread::spawn(move || {
                for call in 0..1_000 {
                    breaker.allow().unwrap().record(call % 2 == 0);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let stats = breaker.stats();
    assert_eq!(
        (stats.total_successes, stats.total_failures),
        (2_000, 2_000)
    );
    assert_eq!(stats.state, BreakerState::Closed);
}
