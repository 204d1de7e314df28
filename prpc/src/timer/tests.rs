use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use tokio::time::Instant;

use super::Timer;

const MS: Duration = Duration::from_millis(1);

/// Deterministic pseudo-random numbers (an LCG) for spreading deadlines.
fn spread(count: usize, max: u64) -> Vec<u64> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    (0..count)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % max
        })
        .collect()
}

/// Lets the driver and woken tasks run without moving the paused clock.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test(start_paused = true)]
async fn callbacks_fire_in_deadline_order_within_one_tick() {
    let tick = 10 * MS;
    // Few slots, so that most timers start in overflow wheels and are handed down.
    let timer = Timer::new(tick, 8);
    let fired = Arc::new(Mutex::new(Vec::new()));
    let mut deadlines = Vec::new();
    for (index, micros) in spread(2_000, 20_000_000).into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_micros(micros);
        deadlines.push(deadline);
        let fired = Arc::clone(&fired);
        timer
            .schedule_at(deadline, move || {
                fired.lock().unwrap().push((index, Instant::now()));
            })
            .detach();
    }
    tokio::time::sleep(Duration::from_secs(21)).await;

    let fired = fired.lock().unwrap();
    assert_eq!(fired.len(), deadlines.len());
    for pair in fired.windows(2) {
        let (earlier, later) = (pair[0].0, pair[1].0);
        assert!(
            (deadlines[earlier], earlier) < (deadlines[later], later),
            "timer {earlier} fired before timer {later}, out of deadline order"
        );
    }
    for &(index, at) in fired.iter() {
        let deadline = deadlines[index];
        assert!(at >= deadline, "timer {index} fired early");
        assert!(
            at - deadline <= tick,
            "timer {index} fired {:?} late",
            at - deadline
        );
    }
    assert_eq!(timer.pending_timers(), 0);
}

#[tokio::test(start_paused = true)]
async fn sleeps_complete_within_one_tick_of_their_deadline() {
    let timer = Timer::default();
    let tasks: Vec<_> = spread(500, 3_000_000)
        .into_iter()
        .map(|micros| {
            let sleep = timer.sleep(Duration::from_micros(micros));
            tokio::spawn(async move {
                let deadline = sleep.deadline();
                sleep.await;
                (deadline, Instant::now())
            })
        })
        .collect();
    for task in tasks {
        let (deadline, woke) = task.await.unwrap();
        assert!(woke >= deadline, "sleep completed early");
        assert!(
            woke - deadline <= MS,
            "sleep completed {:?} late",
            woke - deadline
        );
    }
}

#[tokio::test(start_paused = true)]
async fn timers_hours_and_days_away_fire_on_time() {
    let timer = Timer::default();
    let fired = Arc::new(Mutex::new(Vec::new()));
    let delays = [
        Duration::from_secs(3 * 3600),
        Duration::from_secs(50 * 3600),
        Duration::from_secs(30 * 86_400) + Duration::from_micros(1_500),
        Duration::from_secs(400 * 86_400),
    ];
    let start = Instant::now();
    for delay in delays {
        let fired = Arc::clone(&fired);
        timer
            .schedule(delay, move || fired.lock().unwrap().push(Instant::now()))
            .detach();
    }
    let sleep = timer.sleep(Duration::from_secs(7 * 86_400));
    sleep.await;
    assert!(Instant::now() - start >= Duration::from_secs(7 * 86_400));
    assert!(Instant::now() - start <= Duration::from_secs(7 * 86_400) + MS);

    tokio::time::sleep(Duration::from_secs(401 * 86_400)).await;
    let fired = fired.lock().unwrap();
    assert_eq!(fired.len(), delays.len());
    for (at, delay) in fired.iter().zip(delays) {
        let late = *at - (start + delay);
        assert!(
            *at >= start + delay && late <= MS,
            "{delay:?}: fired {late:?} late"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn cancelled_timers_never_fire() {
    let timer = Timer::default();
    let count = Arc::new(AtomicUsize::new(0));
    let schedule = |delay: Duration| {
        let count = Arc::clone(&count);
        timer.schedule(delay, move || {
            count.fetch_add(1, Ordering::SeqCst);
        })
    };

    let cancelled = schedule(10 * MS);
    assert!(cancelled.is_pending());
    assert!(cancelled.cancel());
    drop(schedule(20 * MS)); // dropping the handle cancels too
    let far = schedule(Duration::from_secs(3600));
    schedule(30 * MS).detach(); // this one fires
    let fired = schedule(40 * MS);

    tokio::time::sleep(50 * MS).await;
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert!(!fired.is_pending());
    assert!(!fired.cancel(), "a fired timer cannot be cancelled");
    assert!(far.cancel());

    // A dropped sleep is taken out of the wheel.
    {
        let mut sleep = pin!(timer.sleep(10 * MS));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!(timer.pending_timers(), 1);
    }
    assert_eq!(timer.pending_timers(), 0);

    tokio::time::sleep(Duration::from_secs(7200)).await;
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_million_timers_scheduled_and_cancelled_leave_memory_where_it_started() {
    let timer = Timer::default();
    let start = timer.capacity();
    let delays = spread(1_000_000, 3 * 3600 * 1_000);
    let handles: Vec<_> = delays
        .iter()
        .map(|&millis| timer.schedule(Duration::from_millis(millis), || {}))
        .collect();
    assert_eq!(timer.pending_timers(), 1_000_000);
    assert!(timer.capacity() >= 1_000_000);
    // Cancel out of scheduling order: odd ones explicitly, then the rest by drop, backwards.
    let mut rest = Vec::with_capacity(handles.len() / 2);
    for (index, handle) in handles.into_iter().enumerate() {
        if index % 2 == 1 {
            assert!(handle.cancel());
        } else {
            rest.push(handle);
        }
    }
    while rest.pop().is_some() {}
    assert_eq!(timer.pending_timers(), 0);
    settle().await; // the driver gives memory back on its next pass
    assert_eq!(timer.capacity(), start);

    // Sleeps: registered by a first poll, cancelled by drop.
    let mut sleeps: Vec<_> = spread(100_000, 3_600_000)
        .into_iter()
        .map(|millis| Box::pin(timer.sleep(Duration::from_millis(3_600_000 + millis))))
        .collect();
    // Unconstrained: tokio's cooperative budget would make every poll after the 128th return
    // pending without registering.
    tokio::task::coop::unconstrained(async {
        let mut cx = Context::from_waker(Waker::noop());
        for sleep in &mut sleeps {
            assert!(sleep.as_mut().poll(&mut cx).is_pending());
        }
    })
    .await;
    assert_eq!(timer.pending_timers(), 100_000);
    drop(sleeps);
    assert_eq!(timer.pending_timers(), 0);
    settle().await;
    assert_eq!(timer.capacity(), start);
}

#[tokio::test(start_paused = true)]
async fn the_driver_task_ends_when_the_timer_is_dropped() {
    let before = alive_tasks();
    let timer = Timer::default();
    let clone = timer.clone();
    timer.schedule(Duration::from_secs(1), || {}).detach();
    settle().await;
    assert_eq!(alive_tasks(), before + 1);
    drop(timer);
    settle().await;
    assert_eq!(alive_tasks(), before + 1, "a clone still holds the timer");
    drop(clone);
    settle().await;
    assert_eq!(alive_tasks(), before);
}

#[tokio::test(start_paused = true)]
async fn the_driver_task_ends_on_shutdown_and_sleeps_still_complete() {
    let before = alive_tasks();
    let timer = Timer::default();
    let count = Arc::new(AtomicUsize::new(0));
    let pending = {
        let count = Arc::clone(&count);
        timer.schedule(10 * MS, move || {
            count.fetch_add(1, Ordering::SeqCst);
        })
    };
    let start = Instant::now();
    let sleeping = tokio::spawn(timer.sleep(20 * MS));
    settle().await;
    assert_eq!(timer.pending_timers(), 2);

    timer.shutdown();
    assert!(timer.is_shutdown());
    settle().await;
    assert_eq!(alive_tasks(), before + 1, "only the sleeping task is left");
    assert!(!pending.cancel(), "shutdown dropped the callback");

    // The pending sleep moved to tokio's timer; a new one starts there.
    sleeping.await.unwrap();
    assert_eq!(Instant::now() - start, 20 * MS);
    timer.sleep(5 * MS).await;
    assert_eq!(Instant::now() - start, 25 * MS);
    // New callbacks are dropped.
    let late = timer.schedule(MS, || unreachable!());
    assert!(!late.is_pending());
    tokio::time::sleep(10 * MS).await;
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_sleep_is_not_elapsed_because_the_wheel_shut_down() {
    let timer = Timer::default();
    let mut sleep = Box::pin(timer.sleep(20 * MS));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(sleep.as_mut().poll(&mut cx).is_pending());
    timer.shutdown();
    assert!(!sleep.is_elapsed(), "shut down before its deadline");
    tokio::time::sleep(20 * MS).await;
    assert!(sleep.is_elapsed());
    sleep.await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_callback_does_not_stop_the_driver() {
    let timer = Timer::default();
    let count = Arc::new(AtomicUsize::new(0));
    timer.schedule(MS, || panic!("callback panics")).detach();
    let after = Arc::clone(&count);
    timer
        .schedule(2 * MS, move || {
            after.fetch_add(1, Ordering::SeqCst);
        })
        .detach();
    timer.sleep(5 * MS).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn reset_moves_a_waiting_sleep() {
    let timer = Timer::default();
    let start = Instant::now();
    let mut sleep = timer.sleep(100 * MS);
    let polled = tokio::time::timeout(10 * MS, &mut sleep).await;
    assert!(polled.is_err());
    // The waiting sleep is moved earlier and completes without an extra poll to re-register.
    sleep.reset(start + 30 * MS);
    assert_eq!(timer.pending_timers(), 1);
    (&mut sleep).await;
    assert_eq!(Instant::now() - start, 30 * MS);
    assert!(sleep.is_elapsed());
    // Reset after completion: a second, later deadline.
    sleep.reset(start + 50 * MS);
    assert!(!sleep.is_elapsed());
    sleep.await;
    assert_eq!(Instant::now() - start, 50 * MS);
}

#[tokio::test(start_paused = true)]
async fn an_elapsed_deadline_completes_at_once() {
    let timer = Timer::default();
    timer.sleep(Duration::ZERO).await;
    timer.sleep_until(Instant::now() - MS).await;
    assert_eq!(timer.pending_timers(), 0);
    let (send, receive) = tokio::sync::oneshot::channel();
    timer
        .schedule(Duration::ZERO, move || {
            let _ = send.send(Instant::now());
        })
        .detach();
    let start = Instant::now();
    assert!(receive.await.unwrap() - start <= MS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_schedules_and_cancels_from_many_tasks() {
    let timer = Timer::new(MS, 64);
    let fired = Arc::new(AtomicUsize::new(0));
    let fired_before_cancel = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let timer = timer.clone();
            let fired = Arc::clone(&fired);
            let fired_before_cancel = Arc::clone(&fired_before_cancel);
            tokio::spawn(async move {
                for round in 0..200u64 {
                    let fired = Arc::clone(&fired);
                    let handle =
                        timer.schedule(Duration::from_micros(round * 37 % 3_000), move || {
                            fired.fetch_add(1, Ordering::SeqCst);
                        });
                    if (round + task) % 2 == 0 {
                        handle.detach();
                    } else if !handle.cancel() {
                        fired_before_cancel.fetch_add(1, Ordering::SeqCst);
                    }
                    if round % 10 == 0 {
                        timer.sleep(Duration::from_micros(round * 13 % 2_000)).await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Callbacks run just after they leave the wheel; wait for them (no timing assertions
    // on a real clock: the bound only turns a lost timer into a failure instead of a hang).
    let fired_before_cancel = fired_before_cancel.load(Ordering::SeqCst);
    let expected = 400 + fired_before_cancel;
    tokio::time::timeout(Duration::from_secs(60), async {
        while timer.pending_timers() > 0 || fired.load(Ordering::SeqCst) < expected {
            timer.sleep(MS).await;
        }
    })
    .await
    .expect("every detached timer fires");
    timer.sleep(10 * MS).await;
    assert_eq!(fired.load(Ordering::SeqCst), expected);
}

#[tokio::test]
async fn handles_and_futures_can_move_between_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_unpin<T: Unpin>() {}
    assert_send_sync::<Timer>();
    assert_send_sync::<super::TimerHandle>();
    assert_send_sync::<super::Sleep>();
    assert_unpin::<super::Sleep>();

    let timer = Timer::new(MS, 100);
    assert_eq!(timer.slots(), 128, "slots round up to a power of two");
    assert_eq!(timer.tick(), MS);
}
