//! prpc's timing wheel against `tokio_util::time::DelayQueue` and tokio's own `Sleep`, on the
//! path a client takes for every call: put a deadline in, and take it out again because the
//! reply came first.
//!
//! Each iteration schedules a batch of 10,000 timers with deadlines spread over 1 ms..30 s
//! and cancels them all, in scheduling order. Nothing is due during the run, so this measures
//! bookkeeping, not firing. Goal: prpc's wheel at least 2x DelayQueue (insert + remove).
//!
//! Run: `cargo bench -p prpc-benches --bench timer -- --warm-up-time 1 --measurement-time 3`

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prpc::timer::Timer;
use tokio_util::time::DelayQueue;

const BATCH: usize = 10_000;

/// Deadlines spread over 1 ms..30 s (a deterministic LCG), the same for every contender.
fn delays() -> Vec<Duration> {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    (0..BATCH)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            Duration::from_micros(1_000 + (seed >> 33) % 30_000_000)
        })
        .collect()
}

fn schedule_cancel(c: &mut Criterion) {
    // The driver task is spawned but never runs (the runtime is entered, not driven), and
    // DelayQueue is never polled: both measure scheduling and cancelling alone.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let delays = delays();
    let mut cx = Context::from_waker(Waker::noop());

    let mut group = c.benchmark_group("timer/schedule+cancel");
    group.throughput(Throughput::Elements(BATCH as u64));

    let timer = Timer::default();
    let mut handles = Vec::with_capacity(BATCH);
    group.bench_function("prpc_wheel_callback", |b| {
        b.iter(|| {
            for &delay in &delays {
                handles.push(timer.schedule(delay, || {}));
            }
            for handle in handles.drain(..) {
                black_box(handle.cancel());
            }
        })
    });

    // The same with the deadline given, so that no clock is read per timer (on a VM a clock
    // read costs as much as the rest of schedule + cancel).
    group.bench_function("prpc_wheel_callback_at", |b| {
        b.iter(|| {
            let now = tokio::time::Instant::now();
            for &delay in &delays {
                handles.push(timer.schedule_at(now + delay, || {}));
            }
            for handle in handles.drain(..) {
                black_box(handle.cancel());
            }
        })
    });

    let mut sleeps = Vec::with_capacity(BATCH);
    group.bench_function("prpc_wheel_sleep", |b| {
        b.iter(|| {
            for &delay in &delays {
                let mut sleep = timer.sleep(delay);
                // The first poll puts it in the wheel; the drop below takes it out.
                black_box(Pin::new(&mut sleep).poll(&mut cx).is_pending());
                sleeps.push(sleep);
            }
            sleeps.clear();
        })
    });

    let mut queue = DelayQueue::with_capacity(BATCH);
    let mut keys = Vec::with_capacity(BATCH);
    group.bench_function("tokio_util_delay_queue", |b| {
        b.iter(|| {
            for (index, &delay) in delays.iter().enumerate() {
                keys.push(queue.insert(index, delay));
            }
            for key in keys.drain(..) {
                black_box(queue.remove(&key));
            }
        })
    });

    group.bench_function("tokio_util_delay_queue_at", |b| {
        b.iter(|| {
            let now = tokio::time::Instant::now();
            for (index, &delay) in delays.iter().enumerate() {
                keys.push(queue.insert_at(index, now + delay));
            }
            for key in keys.drain(..) {
                black_box(queue.remove(&key));
            }
        })
    });

    let mut tokio_sleeps = Vec::with_capacity(BATCH);
    group.bench_function("tokio_sleep", |b| {
        b.iter(|| {
            for &delay in &delays {
                let mut sleep = Box::pin(tokio::time::sleep(delay));
                black_box(sleep.as_mut().poll(&mut cx).is_pending());
                tokio_sleeps.push(sleep);
            }
            tokio_sleeps.clear();
        })
    });
    group.finish();
}

criterion_group!(benches, schedule_cancel);
criterion_main!(benches);
