//! The cost of a pick and of an update for each of `prpc::balance`'s algorithms, at 3, 100
//! and 1,000 endpoints (issue 15's goals: ≤ 50 ns a pick for random, round robin and p2c at
//! 100; ≤ 300 ns for smooth weighted round robin and least active; ≤ 200 ns for consistent
//! hashing).
//!
//! Balancers are built by name and boxed (`Algorithm::build`), as a cluster configured by
//! name holds them: every pick goes through one virtual call. Weights cycle 1 to 5; no call
//! is in flight, so least active sees an n-way tie, its slowest path; consistent-hash picks
//! each carry another key. `update` alternates between two sets that differ in one endpoint,
//! so the state kept by instance id is carried each time.
//!
//! Run: `cargo bench -p prpc-benches --bench balance -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prpc::balance::{Algorithm, Pick, hash_key};
use prpc::discovery::Endpoint;

const SIZES: [usize; 3] = [3, 100, 1_000];

fn endpoints(n: usize, first: usize) -> Vec<Endpoint> {
    let mut endpoints: Vec<Endpoint> = (first..first + n)
        .map(|i| {
            Endpoint::new(format!("10.0.{}.{}:7000", i / 250, i % 250 + 1))
                .unwrap()
                .weight(1 + (i % 5) as u32)
        })
        .collect();
    endpoints.sort_by(|a, b| a.instance.cmp(&b.instance));
    endpoints
}

fn pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("balance_pick");
    group.throughput(Throughput::Elements(1));
    let keys: Vec<u64> = (0..4096u32).map(|i| hash_key(&i.to_le_bytes())).collect();
    for algorithm in Algorithm::ALL {
        for n in SIZES {
            let balancer = algorithm.build();
            balancer.update(&endpoints(n, 0));
            let mut turn = 0;
            group.bench_function(BenchmarkId::new(algorithm.name(), n), |b| {
                b.iter(|| {
                    turn = (turn + 1) & 4095;
                    black_box(balancer.pick(&Pick::new().key(keys[turn])))
                })
            });
        }
    }
    // A failover's pick: the endpoint already tried is skipped (asked of every candidate).
    for algorithm in Algorithm::ALL {
        let balancer = algorithm.build();
        balancer.update(&endpoints(100, 0));
        let tried = 7;
        let skip = move |index: usize| index == tried;
        let mut turn = 0;
        group.bench_function(
            BenchmarkId::new(format!("{}_skip_one", algorithm.name()), 100),
            |b| {
                b.iter(|| {
                    turn = (turn + 1) & 4095;
                    black_box(balancer.pick(&Pick::new().key(keys[turn]).skip(&skip)))
                })
            },
        );
    }
    group.finish();
}

fn update(c: &mut Criterion) {
    let mut group = c.benchmark_group("balance_update");
    for algorithm in Algorithm::ALL {
        for n in [100, 1_000] {
            let sets = [endpoints(n, 0), endpoints(n, 1)];
            let balancer = algorithm.build();
            let mut turn = 0;
            group.bench_function(BenchmarkId::new(algorithm.name(), n), |b| {
                b.iter(|| {
                    turn ^= 1;
                    balancer.update(black_box(&sets[turn]))
                })
            });
        }
    }
    group.finish();
}

/// The load feedback a load-aware balancer asks of every call: start, then finish.
fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("balance_load");
    group.throughput(Throughput::Elements(1));
    let balancer = Algorithm::P2c.build();
    balancer.update(&endpoints(100, 0));
    let load = balancer.load(0).unwrap();
    let latency = std::time::Duration::from_micros(250);
    group.bench_function("start_finish", |b| {
        b.iter(|| {
            load.start()
                .finish(black_box(latency), prpc::balance::Outcome::Success)
        })
    });
    group.finish();
}

criterion_group!(benches, pick, update, load);
criterion_main!(benches);
