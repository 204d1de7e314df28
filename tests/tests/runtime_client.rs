//! The client runtime over real sockets: multiplexing, both call styles, deadlines,
//! cancellation, dead peers, connect failures, and task cleanup.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use prpc::wire::Head;
use prpc::{Call, CallOptions, Client, Closed, Code, Compression, Error, Format, Server};
use prpc_tests::{PATIENCE, Probe, RawConnection, spawn_server};

fn call(method: &str, body: impl Into<Bytes>) -> Call {
    Call::new("probe", method.to_owned(), Format::Raw, body.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_share_one_connection() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let calls = (0..2000).map(|i| {
        let client = client.clone();
        async move {
            let reply = client
                .call(call("echo", format!("call {i}")))
                .await
                .unwrap();
            assert_eq!(reply.body, format!("call {i}"));
        }
    });
    let tasks: Vec<_> = calls.map(tokio::spawn).collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(counters.finished.load(Ordering::SeqCst), 2000);
}

#[tokio::test]
async fn a_started_call_is_sent_before_it_is_awaited() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let first = client.start(call("echo", "one")).unwrap();
    let second = client.start(call("echo", "two")).unwrap();
    // Neither handle has been polled, yet the server runs both calls.
    counters.wait_for(|c| &c.finished, 2).await;
    assert_eq!(second.await.unwrap().body, "two");
    assert_eq!(first.await.unwrap().body, "one");
}

#[tokio::test]
async fn the_deadline_travels_to_the_server() {
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let reply = client
        .call(
            call("deadline", "").with_options(CallOptions::new().timeout(Duration::from_secs(60))),
        )
        .await
        .unwrap();
    let left: u64 = std::str::from_utf8(&reply.body).unwrap().parse().unwrap();
    assert!(left > 0 && left <= 60_000, "server saw {left} ms left");
    let reply = client.call(call("deadline", "")).await.unwrap();
    assert_eq!(reply.body, "none");
}

#[tokio::test]
async fn a_timed_out_call_fails_and_its_handler_is_stopped() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let options = CallOptions::new().timeout(Duration::from_millis(50));
    let error = client
        .call(call("sleep", "60000").with_options(options))
        .await
        .unwrap_err();
    // The client's timer and the server's (same deadline) race; either ends the call as
    // deadline_exceeded.
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error}");
    counters.wait_for(|c| &c.dropped, 1).await;
    assert_eq!(counters.finished.load(Ordering::SeqCst), 0);
    // The connection is still good.
    assert_eq!(
        client.call(call("echo", "after")).await.unwrap().body,
        "after"
    );
}

#[tokio::test]
async fn dropping_a_call_cancels_it_on_the_server() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let pending = client.start(call("sleep", "60000")).unwrap();
    counters.wait_for(|c| &c.started, 1).await;
    drop(pending);
    counters.wait_for(|c| &c.dropped, 1).await;

    // The same through a dropped `call` future.
    let slow = client.clone();
    let task = tokio::spawn(async move { slow.call(call("sleep", "60000")).await });
    counters.wait_for(|c| &c.started, 2).await;
    task.abort();
    counters.wait_for(|c| &c.dropped, 2).await;
    assert_eq!(counters.finished.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn server_errors_arrive_as_statuses() {
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let error = client.call(call("fail", "no such user")).await.unwrap_err();
    let status = error.status().expect("a status");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "no such user");
}

#[tokio::test]
async fn compressed_calls_round_trip_in_every_codec() {
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    for compression in Compression::ALL {
        let client = Client::builder()
            .compression(compression)
            .compression_threshold(64)
            .connect(server.addr)
            .await
            .unwrap();
        let body = "compress me ".repeat(1000);
        let reply = client.call(call("echo", body.clone())).await.unwrap();
        assert_eq!(reply.body, body, "{compression}");
        // Per-call override: the other way round.
        let options = CallOptions::new().compression(Compression::None);
        let reply = client
            .call(call("echo", body.clone()).with_options(options))
            .await
            .unwrap();
        assert_eq!(reply.body, body, "{compression} overridden");
    }
}

#[tokio::test]
async fn formats_are_chosen_per_client_and_per_call() {
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    for format in [Format::Json, Format::MsgPack] {
        let client = Client::builder()
            .format(format)
            .connect(server.addr)
            .await
            .unwrap();
        let body = format.encode(&vec![1i64, 2, 39]).unwrap();
        let reply = client
            .call(Call::new("probe", "sum", format, body))
            .await
            .unwrap();
        assert_eq!(reply.format, format);
        assert_eq!(reply.format.decode::<i64>(&reply.body).unwrap(), 42);
    }
}

#[tokio::test]
async fn connect_failures_are_typed() {
    // Bind then drop a listener: nothing listens on that port any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = Client::connect(addr).await.unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert!(error.to_string().contains(&addr.to_string()), "{error}");
}

#[tokio::test]
async fn a_connect_that_never_completes_times_out() {
    // A listener with a backlog of one that never accepts: once the backlog is full, the
    // kernel leaves further handshakes unanswered.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    let mut timed_out = false;
    for _ in 0..64 {
        let attempt = Client::builder()
            .connect_timeout(Duration::from_millis(200))
            .connect(addr)
            .await;
        match attempt {
            Ok(client) => fillers.push(client),
            Err(Error::ConnectTimeout { timeout, .. }) => {
                assert_eq!(timeout, Duration::from_millis(200));
                timed_out = true;
                break;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(timed_out, "every connect succeeded");
    drop(listener);
}

#[tokio::test]
async fn a_silent_peer_fails_pending_calls_instead_of_hanging() {
    // A "server" that accepts and reads but never answers anything, pings included.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut sink).await;
    });
    let client = Client::builder()
        .keepalive(Duration::from_millis(100), Duration::from_millis(100))
        .connect(addr)
        .await
        .unwrap();
    let error = tokio::time::timeout(PATIENCE, client.call(call("echo", "anyone?")))
        .await
        .expect("the call hung")
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Closed {
                reason: Closed::Unresponsive(_),
                ..
            }
        ),
        "{error}"
    );
    assert!(!client.is_open());
    // The next call tries a fresh connection; with the peer gone, that fails to connect.
    silent.abort();
    let _ = silent.await;
    let again = client.call(call("echo", "still there?")).await.unwrap_err();
    assert!(matches!(again, Error::Connect { .. }), "{again}");
}

#[tokio::test]
async fn a_lost_connection_is_reopened_by_the_next_call() {
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(
        Server::builder()
            .add_service(probe)
            .idle_timeout(Duration::from_millis(50)),
    )
    .await;
    let client = Client::builder()
        .keepalive(Duration::from_secs(60), Duration::from_secs(60))
        .connect(server.addr)
        .await
        .unwrap();
    assert_eq!(client.call(call("echo", "one")).await.unwrap().body, "one");
    // The server closes the idle connection with a goaway.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while client.is_open() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(client.call(call("echo", "two")).await.unwrap().body, "two");
    assert!(client.is_open());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_in_flight_limit_wait_their_turn() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe).max_in_flight(8)).await;
    let client = Client::builder()
        .max_in_flight(8)
        .connect(server.addr)
        .await
        .unwrap();
    let calls: Vec<_> = (0..100)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.call(call("sleep", format!("{}", i % 3))).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().body, "slept");
    }
    assert_eq!(counters.finished.load(Ordering::SeqCst), 100);
}

#[tokio::test]
async fn a_live_idle_connection_survives_through_pings() {
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(
        Server::builder()
            .add_service(probe)
            .idle_timeout(Duration::from_millis(500)),
    )
    .await;
    // Pings every 30–60 ms: the server hears one well within its idle timeout, even when this
    // test's thread is slow to be scheduled.
    let client = Client::builder()
        .keepalive(Duration::from_millis(30), Duration::from_secs(5))
        .connect(server.addr)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(client.is_open());
    assert_eq!(
        client.call(call("echo", "still here")).await.unwrap().body,
        "still here"
    );
}

#[test]
fn dropping_the_client_ends_its_tasks() {
    // The server runs on its own runtime so that only the client's tasks are counted here.
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let server = server_runtime.block_on(async {
        let (probe, _) = Probe::new("probe");
        spawn_server(Server::builder().add_service(probe)).await
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        let client = Client::connect(server.addr).await.unwrap();
        assert_eq!(client.call(call("echo", "x")).await.unwrap().body, "x");
        assert!(metrics.num_alive_tasks() > before, "the client runs tasks");
        drop(client);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while metrics.num_alive_tasks() > before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "client tasks leaked"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

#[tokio::test]
async fn bodies_over_the_threshold_leave_compressed_in_the_chosen_codec() {
    // A peer that only reads, to see what the client puts on the wire.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Client::builder()
        .compression(Compression::Snappy)
        .compression_threshold(256)
        .connect(addr)
        .await
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let mut peer = RawConnection::from_stream(stream);

    let small = client.start(call("echo", "x".repeat(100))).unwrap();
    let large = client.start(call("echo", "y".repeat(4096))).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let frame = peer.recv().await.expect("the client closed");
        if matches!(frame.head, Head::Request(_)) {
            seen.push((frame.encoding.compression_id(), frame.body.len()));
        }
    }
    assert_eq!(
        seen[0],
        (Compression::None.id(), 100),
        "small bodies go as they are"
    );
    assert_eq!(
        seen[1].0,
        Compression::Snappy.id(),
        "large bodies go compressed"
    );
    assert!(seen[1].1 < 4096, "compressed to {} bytes", seen[1].1);
    drop((small, large));
}

/// Settings as long as a `Duration` holds (a keepalive, a timeout, a retry's backoff) are
/// taken as "never": nothing overflows on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_settings_do_not_overflow() {
    let (probe, _counters) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::builder()
        .keepalive(Duration::MAX, Duration::MAX)
        .timeout(Duration::MAX)
        .connect(server.addr)
        .await
        .unwrap();
    let reply = tokio::time::timeout(PATIENCE, client.call(call("echo", "hi")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.body, "hi");
    server.shutdown.shutdown();
    tokio::time::timeout(PATIENCE, server.serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // The server is gone: the retry would wait the longest backoff, past the call's
    // deadline, so the call ends at once.
    let policy = prpc::retry::RetryPolicy::new(3).backoff(Duration::MAX, Duration::MAX);
    let options = CallOptions::new()
        .retry(policy)
        .timeout(Duration::from_secs(5));
    let failed = tokio::time::timeout(
        PATIENCE,
        client.call(call("echo", "again").with_options(options)),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(failed.code(), Code::DeadlineExceeded, "{failed}");
}
