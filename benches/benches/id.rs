//! Snowflake ids per second from one generator.
//!
//! The layout bounds a generator at 4,096 ids per millisecond (4,096,000 per second): past
//! that, `next_id` waits for the next millisecond. A generator that costs less than 244 ns per
//! id runs into that bound, so `generator_next_id` reports the bound, not the cost of an id;
//! `cost_below_the_bound` spreads the load over 64 generators to show the cost itself.
//!
//! Run: `cargo bench -p prpc-benches --bench id -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prpc::id::SnowflakeGenerator;

fn ids(c: &mut Criterion) {
    let mut group = c.benchmark_group("id");
    group.throughput(Throughput::Elements(1));

    let generator = SnowflakeGenerator::new(1).unwrap();
    group.bench_function("generator_next_id", |b| {
        b.iter(|| black_box(generator.next_id()))
    });
    group.bench_function("process_wide_next_id", |b| {
        b.iter(|| black_box(prpc::id::next_id()))
    });
    // The cost of one id, below the layout bound: 64 generators taking turns share the load,
    // so none of them runs out of a millisecond's ids.
    let generators: Vec<_> = (0..64)
        .map(|worker_id| SnowflakeGenerator::new(worker_id).unwrap())
        .collect();
    let mut turn = 0;
    group.bench_function("cost_below_the_bound", |b| {
        b.iter(|| {
            turn = (turn + 1) % generators.len();
            black_box(generators[turn].next_id())
        })
    });
    group.finish();
}

criterion_group!(benches, ids);
criterion_main!(benches);
