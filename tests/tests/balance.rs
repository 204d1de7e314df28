//! prpc::balance over the snapshots discovery publishes, as the balanced client drives it:
//! one balancer per service, updated with each snapshot, picked from by many tasks.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use prpc::balance::{Algorithm, Balancer, Outcome, Pick};
use prpc::discovery::{Endpoint, Publisher};

fn endpoint(address: &str, weight: u32) -> Endpoint {
    Endpoint::new(address).unwrap().weight(weight)
}

#[tokio::test]
async fn smooth_weights_carry_over_a_published_change() {
    let (publisher, mut watch) = Publisher::new("test", "svc");
    let balancer = Algorithm::SmoothWeightedRoundRobin.build();
    // Published out of order: the snapshot sorts by instance id.
    publisher.publish(vec![
        endpoint("10.0.0.3:7000", 1),
        endpoint("10.0.0.1:7000", 5),
        endpoint("10.0.0.2:7000", 1),
    ]);
    balancer.update(&watch.ready().await.unwrap().endpoints);
    let snapshot = watch.current();
    let names = |picks: &[usize]| -> Vec<String> {
        picks
            .iter()
            .map(|&index| snapshot.endpoints[index].address.to_string())
            .collect()
    };
    let picks: Vec<usize> = (0..3).filter_map(|_| balancer.pick(&Pick::new())).collect();
    assert_eq!(
        names(&picks),
        [
            "tcp://10.0.0.1:7000",
            "tcp://10.0.0.1:7000",
            "tcp://10.0.0.2:7000"
        ]
    );

    // A drained instance joins: the cycle goes on (a c a a), by instance, not by index.
    publisher.publish(vec![
        endpoint("10.0.0.1:7000", 5),
        endpoint("10.0.0.2:7000", 1),
        endpoint("10.0.0.3:7000", 1),
        endpoint("10.0.0.0:7000", 0),
    ]);
    watch.changed().await.unwrap();
    let snapshot = watch.current();
    balancer.update(&snapshot.endpoints);
    let picks: Vec<String> = (0..4)
        .filter_map(|_| balancer.pick(&Pick::new()))
        .map(|index| snapshot.endpoints[index].address.to_string())
        .collect();
    assert_eq!(
        picks,
        [
            "tcp://10.0.0.1:7000",
            "tcp://10.0.0.3:7000",
            "tcp://10.0.0.1:7000",
            "tcp://10.0.0.1:7000"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_pick_while_the_set_changes() {
    let sets: Vec<Vec<Endpoint>> = (1..=8)
        .map(|n| {
            (0..n)
                .map(|i| endpoint(&format!("10.0.0.{i}:7000"), 1 + i % 3))
                .collect()
        })
        .collect();
    for algorithm in Algorithm::ALL {
        let balancer: Arc<dyn Balancer> = Arc::from(algorithm.build_seeded(1));
        balancer.update(&sets[7]);
        let pickers: Vec<_> = (0..4)
            .map(|task| {
                let balancer = Arc::clone(&balancer);
                tokio::spawn(async move {
                    let mut seen = HashSet::new();
                    for call in 0..2_000u32 {
                        let key = (task * 10_000 + call).to_le_bytes();
                        // Every set holds at least one endpoint and the largest 8.
                        let index = balancer.pick(&Pick::new().key_bytes(&key)).unwrap();
                        assert!(index < 8);
                        seen.insert(index);
                        if let Some(load) = balancer.load(index) {
                            let call = load.start();
                            tokio::task::yield_now().await;
                            call.finish(Duration::from_micros(100), Outcome::Success);
                        }
                    }
                    seen.len()
                })
            })
            .collect();
        for round in 0..200 {
            balancer.update(&sets[round % 8]);
            tokio::task::yield_now().await;
        }
        balancer.update(&sets[7]);
        for picker in pickers {
            assert!(picker.await.unwrap() >= 1, "{algorithm}");
        }
        // Every call finished: nothing counts as in flight.
        for index in 0..8 {
            if let Some(load) = balancer.load(index) {
                assert_eq!(load.in_flight(), 0, "{algorithm}");
            }
        }
    }
}
