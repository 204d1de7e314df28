//! The server runtime over real sockets: services by name, deadlines, panics, limits, idle
//! connections and graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use prpc::wire::{Encoding, Frame, FrameCodec, Head};
use prpc::{Call, CallOptions, Client, Closed, Code, Error, Format, Server};
use prpc_tests::{PATIENCE, Probe, RawConnection, request_frame, spawn_server};
use tokio_util::codec::Encoder;

fn call(service: &str, method: &str, body: impl Into<Bytes>) -> Call {
    Call::new(
        service.to_owned(),
        method.to_owned(),
        Format::Raw,
        body.into(),
    )
}

#[tokio::test]
async fn several_services_answer_by_name_and_unknown_ones_are_unimplemented() {
    let (first, first_counters) = Probe::new("first");
    let (second, second_counters) = Probe::new("math.second");
    let server = spawn_server(Server::builder().add_service(first).add_service(second)).await;
    let client = Client::connect(server.addr).await.unwrap();
    client.call(call("first", "echo", "a")).await.unwrap();
    client.call(call("math.second", "echo", "b")).await.unwrap();
    client.call(call("math.second", "echo", "c")).await.unwrap();
    assert_eq!(first_counters.finished.load(Ordering::SeqCst), 1);
    assert_eq!(second_counters.finished.load(Ordering::SeqCst), 2);

    let error = client.call(call("third", "echo", "d")).await.unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented, "{error}");
    assert!(error.to_string().contains("third"), "{error}");
    let error = client.call(call("first", "nope", "d")).await.unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented, "{error}");
}

#[tokio::test]
async fn reflection_lists_every_service_and_its_methods() {
    let (first, _) = Probe::new("first");
    let (second, _) = Probe::new("second");
    let server = spawn_server(Server::builder().add_service(second).add_service(first)).await;
    for format in [Format::Json, Format::MsgPack] {
        let client = Client::builder()
            .format(format)
            .connect(server.addr)
            .await
            .unwrap();
        let services = prpc::reflection::list_services(&client).await.unwrap();
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["first", "prpc.Health", "prpc.Reflection", "second"]);
        assert!(services[0].methods.contains(&"echo".to_owned()));
        assert_eq!(services[1].methods, ["check"]);
        assert_eq!(services[2].methods, ["list_services", "describe_services"]);
    }
}

#[tokio::test]
async fn the_server_stops_a_handler_at_its_deadline() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    // A raw connection, so no client-side timer races the server's.
    let mut raw = RawConnection::connect(server.addr).await;
    let mut frame = request_frame(1, "probe", "sleep", b"60000");
    if let Head::Request(head) = &mut frame.head {
        head.deadline = Some(Duration::from_millis(50));
    }
    raw.send(frame).await;
    let (id, head, _) = raw.recv_response().await;
    assert_eq!(id, 1);
    assert_eq!(
        Code::from_u32(head.code),
        Code::DeadlineExceeded,
        "{}",
        head.message
    );
    counters.wait_for(|c| &c.dropped, 1).await;
}

#[tokio::test]
async fn a_panicking_handler_fails_only_its_call() {
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let slow = client.start(call("probe", "sleep", "100")).unwrap();
    let error = client.call(call("probe", "panic", "")).await.unwrap_err();
    let status = error.status().expect("a status");
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("the probe was asked to panic"),
        "{status}"
    );
    // The same connection carries on: the call in flight and new calls both succeed.
    assert_eq!(slow.await.unwrap().body, "slept");
    assert_eq!(
        client.call(call("probe", "echo", "ok")).await.unwrap().body,
        "ok"
    );
}

#[tokio::test]
async fn calls_over_max_in_flight_are_refused_with_resource_exhausted() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe).max_in_flight(2)).await;
    let client = Client::connect(server.addr).await.unwrap();
    // Long enough that the third call surely comes while both still run, even on a machine
    // slow to schedule this test.
    let first = client.start(call("probe", "sleep", "1000")).unwrap();
    let second = client.start(call("probe", "sleep", "1000")).unwrap();
    counters.wait_for(|c| &c.started, 2).await;
    let error = client
        .call(call("probe", "echo", "third"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted, "{error}");
    assert!(error.to_string().contains("max_in_flight 2"), "{error}");
    first.await.unwrap();
    second.await.unwrap();
    // Room again.
    assert_eq!(
        client
            .call(call("probe", "echo", "fourth"))
            .await
            .unwrap()
            .body,
        "fourth"
    );
}

#[tokio::test]
async fn connections_over_max_connections_get_a_goaway() {
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe).max_connections(1)).await;
    let client = Client::connect(server.addr).await.unwrap();
    client.call(call("probe", "echo", "first")).await.unwrap();
    let mut second = RawConnection::connect(server.addr).await;
    let message = second
        .expect_goaway_and_close(Code::ResourceExhausted)
        .await;
    assert!(message.contains("max_connections 1"), "{message}");
    // The first connection is unaffected.
    client.call(call("probe", "echo", "still")).await.unwrap();
}

#[tokio::test]
async fn idle_connections_are_closed_with_a_goaway() {
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(
        Server::builder()
            .add_service(probe)
            .idle_timeout(Duration::from_millis(100)),
    )
    .await;
    let mut raw = RawConnection::connect(server.addr).await;
    raw.send(request_frame(1, "probe", "echo", b"hi")).await;
    raw.recv_response().await;
    let message = raw.expect_goaway_and_close(Code::Unavailable).await;
    assert!(message.contains("idle"), "{message}");
}

#[tokio::test]
async fn pings_are_answered_with_pongs() {
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let mut raw = RawConnection::connect(server.addr).await;
    raw.send(Frame::control(77, Head::Ping)).await;
    let pong = raw.recv().await.unwrap();
    assert_eq!(pong.head, Head::Pong);
    assert_eq!(pong.request_id, 77);
}

#[tokio::test]
async fn graceful_shutdown_finishes_calls_in_flight_and_refuses_new_ones() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let in_flight = client.start(call("probe", "sleep", "300")).unwrap();
    counters.wait_for(|c| &c.started, 1).await;
    server.shutdown.shutdown();

    // The call in flight completes normally.
    assert_eq!(in_flight.await.unwrap().body, "slept");
    // The client heard the goaway, so its connection takes no new calls; a new call dials
    // again and finds nobody listening.
    assert!(!client.is_open());
    match client.start(call("probe", "echo", "late")) {
        Err(Error::Closed {
            reason: Closed::GoAway { code, message },
            ..
        }) => {
            assert_eq!(code, Code::Unavailable);
            assert_eq!(message, "server is shutting down");
        }
        other => panic!("expected the goaway's refusal, got {other:?}"),
    }
    let error = client
        .call(call("probe", "echo", "late"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    tokio::time::timeout(PATIENCE, server.serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // Nothing listens any more.
    assert!(Client::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_stops_calls_that_outlive_the_grace_period() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(
        Server::builder()
            .add_service(probe)
            .shutdown_grace(Duration::from_millis(100)),
    )
    .await;
    let client = Client::connect(server.addr).await.unwrap();
    let stuck = client.start(call("probe", "sleep", "60000")).unwrap();
    counters.wait_for(|c| &c.started, 1).await;
    server.shutdown.shutdown();
    let error = tokio::time::timeout(PATIENCE, stuck)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, Error::Closed { .. }), "{error}");
    counters.wait_for(|c| &c.dropped, 1).await;
    tokio::time::timeout(PATIENCE, server.serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn metadata_reaches_the_handler_and_replies_keep_the_request_format() {
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::builder()
        .metadata("client", "test")
        .connect(server.addr)
        .await
        .unwrap();
    let body = Format::Json.encode(&vec![20i64, 22]).unwrap();
    let reply = client
        .call(
            Call::new("probe", "sum", Format::Json, body)
                .with_options(CallOptions::new().metadata("trace", "abc")),
        )
        .await
        .unwrap();
    assert_eq!(reply.format, Format::Json);
    assert_eq!(&reply.body[..], b"42");
    for (key, value) in [("client", "test"), ("trace", "abc"), ("absent", "missing")] {
        let options = CallOptions::new().metadata("trace", "abc");
        let reply = client
            .call(call("probe", "metadata", key).with_options(options))
            .await
            .unwrap();
        assert_eq!(reply.body, value, "metadata {key}");
    }
}

#[tokio::test]
async fn a_request_id_already_in_flight_is_refused() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let mut raw = RawConnection::connect(server.addr).await;
    // Long enough that the duplicate surely comes while the first still runs.
    raw.send(request_frame(5, "probe", "sleep", b"1000")).await;
    counters.wait_for(|c| &c.started, 1).await;
    raw.send(request_frame(5, "probe", "echo", b"dup")).await;
    let (id, head, _) = raw.recv_response().await;
    assert_eq!(id, 5);
    assert_eq!(
        Code::from_u32(head.code),
        Code::InvalidArgument,
        "{}",
        head.message
    );
    let (id, head, body) = raw.recv_response().await;
    assert_eq!((id, head.code, &body[..]), (5, 0, &b"slept"[..]));
}

#[tokio::test]
async fn oneway_calls_run_and_are_never_answered() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let client = Client::connect(server.addr).await.unwrap();
    client
        .send_oneway(call("probe", "echo", "fire"))
        .await
        .unwrap();
    counters.wait_for(|c| &c.finished, 1).await;

    // On the wire: neither a oneway call nor a oneway call's refusal gets a frame back.
    let mut raw = RawConnection::connect(server.addr).await;
    for (request_id, service) in [(1, "probe"), (2, "nobody")] {
        let mut frame = request_frame(request_id, service, "echo", b"quiet");
        if let Head::Request(head) = &mut frame.head {
            head.oneway = true;
        }
        raw.send(frame).await;
    }
    raw.send(request_frame(3, "probe", "echo", b"loud")).await;
    let (id, head, body) = raw.recv_response().await;
    assert_eq!((id, head.code, &body[..]), (3, 0, &b"loud"[..]));
    counters.wait_for(|c| &c.finished, 3).await;
}

#[tokio::test]
async fn a_reply_over_max_frame_size_becomes_resource_exhausted() {
    let (probe, _) = Probe::new("probe");
    // A frame size below the minimum is raised to it (1 KiB), so error replies always fit.
    let server = spawn_server(Server::builder().add_service(probe).max_frame_size(48)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let error = client
        .call(call("probe", "size", "4096"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted, "{error}");
    assert!(
        error.to_string().contains("exceeds max_frame_size 1024"),
        "{error}"
    );
    assert_eq!(
        client
            .call(call("probe", "size", "10"))
            .await
            .unwrap()
            .body
            .len(),
        10
    );
}

#[tokio::test]
async fn replies_go_back_in_the_request_format_and_compression() {
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let mut raw = RawConnection::connect(server.addr).await;
    let body = vec![b'z'; 8192];
    let mut frame = request_frame(1, "probe", "echo", b"");
    frame.body = prpc::Compression::Lz4.compress(&body).unwrap();
    frame.encoding = Encoding::new(Format::Json.id(), prpc::Compression::Lz4.id());
    raw.send(frame).await;
    let reply = raw.recv().await.unwrap();
    assert_eq!(reply.encoding.format_id(), Format::Json.id());
    assert_eq!(reply.encoding.compression_id(), prpc::Compression::Lz4.id());
    assert!(reply.body.len() < body.len());
    let plain = prpc::Compression::Lz4
        .decompress(&reply.body, 1 << 20)
        .unwrap();
    assert_eq!(plain, body);
}

#[tokio::test]
async fn a_client_that_never_reads_stops_the_server_reading_it_and_others_carry_on() {
    a_client_that_never_reads_is_bounded().await;
}

/// With more than one worker every call runs on a task of its own, and the replies that pile
/// up come from those tasks rather than from the read loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_bounded_when_calls_run_on_tasks() {
    a_client_that_never_reads_is_bounded().await;
}

async fn a_client_that_never_reads_is_bounded() {
    const CALLS: u64 = 2000;
    static BODY: [u8; 64 * 1024] = [7; 64 * 1024];
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(Server::builder().add_service(probe)).await;
    let mut silent = RawConnection::connect(server.addr).await;
    // 2000 echoes of 64 KiB is 125 MiB of replies that the client never reads. The server must
    // stop reading its requests once its queue and the socket buffers are full, so sending
    // stalls long before the end.
    let mut sent = 0;
    for id in 1..=CALLS {
        let frame = request_frame(id, "probe", "echo", &BODY);
        match tokio::time::timeout(Duration::from_millis(500), silent.send(frame)).await {
            Ok(()) => sent += 1,
            Err(_) => break,
        }
    }
    assert!(
        sent < CALLS,
        "the server read every request of a client that never reads"
    );
    // The socket buffers alone may hold tens of MiB on loopback (autotuned), so the bound on
    // calls run is loose; what matters is that the server has stopped running them.
    let finished = counters.finished.load(Ordering::SeqCst);
    assert!(
        finished < CALLS as usize / 2,
        "the server ran {finished} calls for a client that never reads"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = counters.finished.load(Ordering::SeqCst);
    assert_eq!(
        later, finished,
        "the server kept running calls for a client that never reads"
    );
    // Other connections are served as usual meanwhile.
    let client = Client::connect(server.addr).await.unwrap();
    for _ in 0..10 {
        assert_eq!(
            client.call(call("probe", "echo", "ok")).await.unwrap().body,
            "ok"
        );
    }
}

/// A hand-written service whose `call` panics before it returns a future.
struct PanicsInCall;

impl prpc::Service for PanicsInCall {
    fn name(&self) -> &str {
        "eager"
    }

    fn methods(&self) -> Vec<String> {
        vec!["boom".into(), "echo".into()]
    }

    fn call(&self, request: prpc::Request) -> prpc::ServiceFuture {
        if &*request.method == "boom" {
            panic!("call itself panicked");
        }
        Box::pin(async move { Ok(prpc::Response::new(request.body)) })
    }
}

#[tokio::test]
async fn a_service_whose_call_panics_fails_only_that_call() {
    let server = spawn_server(Server::builder().add_service(PanicsInCall)).await;
    let client = Client::connect(server.addr).await.unwrap();
    let error = client.call(call("eager", "boom", "")).await.unwrap_err();
    let status = error.status().expect("a status");
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("call itself panicked"),
        "{status}"
    );
    assert_eq!(
        client.call(call("eager", "echo", "ok")).await.unwrap().body,
        "ok"
    );
}

/// A hand-written service that answers any method with `service/method`, and lists only some
/// of them.
struct Names {
    name: String,
    listed: Vec<String>,
}

impl prpc::Service for Names {
    fn name(&self) -> &str {
        &self.name
    }

    fn methods(&self) -> Vec<String> {
        self.listed.clone()
    }

    fn call(&self, request: prpc::Request) -> prpc::ServiceFuture {
        let answer = format!("{}/{}", self.name, request.method);
        Box::pin(async move { Ok(prpc::Response::new(answer.into())) })
    }
}

/// The server finds the services and methods it knows from the request's bytes, without
/// decoding the names; every call must still reach the right service with the right method
/// name, whether the server has few names or many, and whether the service lists the method.
#[tokio::test]
async fn calls_reach_the_named_service_and_method_listed_or_not() {
    for (services, methods) in [(2, 3), (12, 20)] {
        let listed: Vec<String> = (0..methods).map(|m| format!("m{m}")).collect();
        let mut builder = Server::builder();
        for s in 0..services {
            builder = builder.add_service(Names {
                name: format!("svc{s}"),
                listed: listed.clone(),
            });
        }
        let server = spawn_server(builder).await;
        let client = Client::connect(server.addr).await.unwrap();
        for s in 0..services {
            // Every listed method, one the service does not list, and one with metadata.
            let unlisted = ["m0".to_owned(), "unlisted".to_owned()];
            for method in listed.iter().chain(&unlisted) {
                let service = format!("svc{s}");
                let reply = client.call(call(&service, method, "")).await.unwrap();
                assert_eq!(reply.body, format!("svc{s}/{method}"));
            }
            let mut with_metadata = call(&format!("svc{s}"), "m1", "");
            with_metadata.options.metadata.insert("k", "v");
            let reply = client.call(with_metadata).await.unwrap();
            assert_eq!(reply.body, format!("svc{s}/m1"));
        }
        let error = client.call(call("svc", "m0", "")).await.unwrap_err();
        assert_eq!(error.code(), Code::Unimplemented, "{error}");
        // Reflection lists every one of them, whichever way they are looked up.
        let names: Vec<String> = prpc::reflection::list_services(&client)
            .await
            .unwrap()
            .into_iter()
            .map(|info| info.name)
            .filter(|name| name != prpc::reflection::SERVICE && name != prpc::health::SERVICE)
            .collect();
        let mut expected: Vec<String> = (0..services).map(|s| format!("svc{s}")).collect();
        expected.sort();
        assert_eq!(names, expected);
    }
}

/// Handlers that hold their thread (as CPU-bound work does) until the test has heard a
/// reply, 20 ms at most each, counting the calls they have taken.
struct Busy {
    started: Arc<AtomicUsize>,
    heard: Arc<AtomicBool>,
}

impl prpc::Service for Busy {
    fn name(&self) -> &str {
        "busy"
    }

    fn methods(&self) -> Vec<String> {
        vec!["work".into()]
    }

    fn call(&self, request: prpc::Request) -> prpc::ServiceFuture {
        let (started, heard) = (self.started.clone(), self.heard.clone());
        Box::pin(async move {
            started.fetch_add(1, Ordering::SeqCst);
            let until = std::time::Instant::now() + Duration::from_millis(20);
            while !heard.load(Ordering::SeqCst) && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(prpc::Response::new(request.body))
        })
    }
}

/// A client that sends many calls at once gets the first replies while the server is still
/// handling the rest, even where one thread runs the whole server and every handler finishes
/// without waiting (so all of them run on the connection's read loop).
#[tokio::test]
async fn replies_go_out_while_a_batch_of_calls_is_still_being_handled() {
    const CALLS: u64 = 96;
    let started = Arc::new(AtomicUsize::new(0));
    let heard = Arc::new(AtomicBool::new(false));
    let busy = Busy {
        started: started.clone(),
        heard: heard.clone(),
    };
    let (bound, server_up) = tokio::sync::oneshot::channel();
    let serving = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let server = Server::builder()
                .add_service(busy)
                .bind("127.0.0.1:0")
                .await
                .expect("bind");
            let _ = bound.send((
                server.local_addr().socket_addr().unwrap(),
                server.shutdown_handle(),
            ));
            server.serve().await
        })
    });
    let (addr, shutdown) = server_up.await.expect("server thread started");
    let mut connection = RawConnection::connect(addr).await;
    // Every request in one write, so the server reads them all at once.
    let mut batch = BytesMut::new();
    for id in 1..=CALLS {
        FrameCodec::new()
            .encode(request_frame(id, "busy", "work", b"x"), &mut batch)
            .expect("encode");
    }
    connection.send_bytes(&batch).await;
    // Until a reply is heard each call takes 20 ms, so the server cannot finish the batch
    // while this test waits to be scheduled (unless that takes over a second).
    let (first, head, _) = connection.recv_response().await;
    let handled = started.load(Ordering::SeqCst);
    heard.store(true, Ordering::SeqCst);
    assert_eq!((first, head.code), (1, 0));
    assert!(
        handled < CALLS as usize,
        "the first reply waited until all {CALLS} calls were handled"
    );
    for id in 2..=CALLS {
        let (answered, head, body) = connection.recv_response().await;
        assert_eq!((answered, head.code, &body[..]), (id, 0, &b"x"[..]));
    }
    shutdown.shutdown();
    drop(connection);
    let joined = tokio::task::spawn_blocking(move || serving.join());
    let served = tokio::time::timeout(PATIENCE, joined)
        .await
        .expect("the server stops after shutdown")
        .expect("join")
        .expect("the server thread does not panic");
    served.expect("serve returns cleanly");
}

/// A client that sends its calls, closes its side and never reads the replies does not keep
/// its connection (and the replies queued for it) forever: once its calls have answered, the
/// replies have the idle timeout to be read. (With more than one worker every call runs on a
/// task of its own, so the server reads the end of the stream before any reply is queued.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_closes_its_side_and_never_reads_is_let_go() {
    // 32 MB of replies: more than the socket buffers of both ends hold.
    const CALLS: u64 = 8;
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(
        Server::builder()
            .add_service(probe)
            .idle_timeout(Duration::from_millis(300)),
    )
    .await;
    // A small receive buffer set before connecting turns off the kernel's autotuning, which
    // may otherwise grow it to tcp_rmem's maximum (32 MiB on some machines) and take every
    // reply.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let mut silent = RawConnection::from_stream(socket.connect(server.addr).await.unwrap());
    for id in 1..=CALLS {
        silent
            .send(request_frame(id, "probe", "size", b"4000000"))
            .await;
    }
    silent.shutdown_write().await;
    counters.wait_for(|c| &c.finished, CALLS as usize).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The server has given up on the replies still queued: reading now gets those already in
    // the socket buffers, then the end of the stream.
    // (The server may have said why it gave up: a goaway after the replies, as the last frame.)
    let mut replies = 0;
    let mut gone_away = false;
    while let Some(frame) = silent.recv().await {
        assert!(!gone_away, "a frame after the goaway: {:?}", frame.head);
        match frame.head {
            Head::Response(_) => replies += 1,
            Head::GoAway(_) => gone_away = true,
            other => panic!("{other:?}"),
        }
    }
    assert!(
        replies < CALLS,
        "all {CALLS} replies were kept for a client that did not read them"
    );
}
