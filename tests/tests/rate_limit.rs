//! The rate limit layer on a real server: a burst passes, the calls over it are refused
//! `resource_exhausted` with the wait in their metadata, tokens come back at the rate, and
//! each method's bucket stands apart from the others and from the global one.
//!
//! Exact refill arithmetic is tested on paused time beside the layer; these tests run on
//! real time, with rates slow enough that their margins are ten times what they need.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use prpc::server::{RETRY_AFTER_MS, Rate, RateLimit};
use prpc::{Call, Client, Code, Error, Format, Server, Status};
use prpc_tests::{Probe, spawn_server};

fn call(method: &str) -> Call {
    Call::new(
        "probe",
        method.to_owned(),
        Format::Raw,
        Bytes::from_static(b"x"),
    )
}

/// The refusal's status, checked to be a rate limit's.
fn refusal(error: &Error) -> &Status {
    let Error::Status(status) = error else {
        panic!("not a status: {error}");
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    status
}

/// The wait a refusal carries.
fn retry_after(status: &Status) -> Duration {
    let value = status
        .metadata()
        .get(RETRY_AFTER_MS)
        .unwrap_or_else(|| panic!("no {RETRY_AFTER_MS} in {status:?}"));
    let millis: u64 = std::str::from_utf8(&value).unwrap().parse().unwrap();
    Duration::from_millis(millis)
}

/// Calls `method` until a call is refused (at most `most` calls); returns how many passed.
async fn passed_before_refusal(client: &Client, method: &str, most: usize) -> usize {
    for passed in 0..most {
        if let Err(error) = client.call(call(method)).await {
            refusal(&error);
            return passed;
        }
    }
    most
}

#[tokio::test]
async fn a_burst_passes_then_calls_are_refused_with_the_wait() {
    let (probe, counters) = Probe::new("probe");
    // One token a second: the burst's calls take milliseconds, far from the next token.
    let limit = RateLimit::global(Rate::per_second(1).burst(5));
    let server = spawn_server(Server::builder().layer(limit).add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();

    for _ in 0..5 {
        client.call(call("echo")).await.unwrap();
    }
    for _ in 0..3 {
        let error = client.call(call("echo")).await.unwrap_err();
        let status = refusal(&error);
        let wait = retry_after(status);
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            status.message().contains("rate limit") && status.message().contains("ms"),
            "{status}"
        );
    }
    // Refused calls never reached the service.
    assert_eq!(counters.started.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn tokens_come_back_at_the_rate() {
    let (probe, _) = Probe::new("probe");
    let limit = RateLimit::global(Rate::per_second(10).burst(100));
    let server = spawn_server(Server::builder().layer(limit).add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();

    assert_eq!(passed_before_refusal(&client, "echo", 1000).await, 100);
    // 300 ms bring 3 tokens back, 3 more if the calls run slowly; 30 would take 3 s.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let passed = passed_before_refusal(&client, "echo", 1000).await;
    assert!((3..30).contains(&passed), "{passed} calls passed");

    // Waiting out the wait a refusal gives is enough for the next call.
    let error = client.call(call("echo")).await.unwrap_err();
    tokio::time::sleep(retry_after(refusal(&error))).await;
    client.call(call("echo")).await.unwrap();
}

#[tokio::test]
async fn method_buckets_stand_apart_from_each_other_and_the_global_one() {
    let (probe, _) = Probe::new("probe");
    let limit = RateLimit::global(Rate::per_second(1).burst(20))
        .method("probe", "echo", Rate::per_second(1).burst(2))
        .method("probe", "metadata", Rate::per_second(1).burst(3));
    let server = spawn_server(Server::builder().layer(limit).add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();

    assert_eq!(passed_before_refusal(&client, "echo", 100).await, 2);
    let error = client.call(call("echo")).await.unwrap_err();
    assert!(refusal(&error).message().contains("probe/echo"), "{error}");
    // `echo`'s empty bucket leaves `metadata`'s alone.
    assert_eq!(passed_before_refusal(&client, "metadata", 100).await, 3);
    // Refused calls took no global tokens: 20 - 2 - 3 are left for the other methods.
    for _ in 0..50 {
        client.call(call("echo")).await.unwrap_err();
    }
    assert_eq!(passed_before_refusal(&client, "deadline", 100).await, 15);
    let error = client.call(call("deadline")).await.unwrap_err();
    assert!(
        refusal(&error)
            .message()
            .contains("the server's rate limit"),
        "{error}"
    );
}

#[tokio::test]
async fn a_refusal_leaves_the_connection_and_other_connections_serving() {
    let (probe, _) = Probe::new("probe");
    let limit = RateLimit::new().method("probe", "echo", Rate::per_second(1).burst(1));
    let server = spawn_server(Server::builder().layer(limit).add_service(probe)).await;
    let first = Client::connect(server.addr).await.unwrap();
    let second = Client::connect(server.addr).await.unwrap();

    first.call(call("echo")).await.unwrap();
    let error = first.call(call("echo")).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted);
    // The bucket is the server's, so the other connection finds it empty too; but both
    // connections stay open and serve every other method.
    assert_eq!(
        second.call(call("echo")).await.unwrap_err().code(),
        Code::ResourceExhausted
    );
    for client in [&first, &second] {
        let reply = client.call(call("deadline")).await.unwrap();
        assert_eq!(&reply.body[..], b"none");
    }
    let third = Client::connect(server.addr).await.unwrap();
    third.call(call("metadata")).await.unwrap();
}

#[tokio::test]
async fn a_retried_call_refused_by_the_limit_runs_once_the_wait_is_over() {
    let (probe, counters) = Probe::new("probe");
    // One call every 100 ms: the retry's backoff (200 ms) outlasts the wait.
    let limit = RateLimit::global(Rate::every(Duration::from_millis(100)));
    let server = spawn_server(Server::builder().layer(limit).add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    client.call(call("echo")).await.unwrap();
    // Not idempotent: its retries carry the dedupe flag, so a refusal the server stored as
    // the call's outcome would answer every retry.
    let policy = prpc::retry::RetryPolicy::new(5)
        .backoff(Duration::from_millis(200), Duration::from_millis(200))
        .jitter(false);
    let retried = call("echo").with_options(prpc::CallOptions::new().retry(policy));
    client
        .call(retried)
        .await
        .expect("the retry after the wait was refused again");
    assert_eq!(counters.finished.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_retry_layer_waits_as_long_as_the_refusal_asks() {
    let (probe, counters) = Probe::new("probe");
    let limit = RateLimit::global(Rate::every(Duration::from_millis(100)));
    let server = spawn_server(Server::builder().layer(limit).add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    client.call(call("echo")).await.unwrap();
    // A backoff of 1 ms would spend both attempts inside the 100 ms wait; the refusal's
    // retry-after-ms makes the second attempt wait it out.
    let policy = prpc::retry::RetryPolicy::new(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(1))
        .jitter(false);
    let retried = call("echo").with_options(prpc::CallOptions::new().retry(policy));
    client
        .call(retried)
        .await
        .expect("the retry did not wait for the limit");
    assert_eq!(counters.finished.load(Ordering::SeqCst), 2);
}
