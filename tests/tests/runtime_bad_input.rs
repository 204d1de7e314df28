//! Bad input over real sockets. Each case gets a clear, typed answer, and a healthy client
//! that calls throughout keeps being served during and after.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use prpc::wire::{Encoding, Frame, FrameCodec};
use prpc::{Call, Client, Code, Compression, Format, Server};
use prpc_tests::{Probe, RawConnection, TestServer, request_frame, spawn_server};
use tokio_util::codec::Encoder;

const MAX_FRAME_SIZE: u32 = 64 * 1024;

/// A server with a small frame limit, and a client calling it in a loop until told to stop.
struct Scene {
    server: TestServer,
    stop: Arc<AtomicBool>,
    healthy_calls: Arc<AtomicUsize>,
    healthy: tokio::task::JoinHandle<()>,
}

impl Scene {
    async fn new() -> Self {
        let (probe, _) = Probe::new("probe");
        let server = spawn_server(
            Server::builder()
                .add_service(probe)
                .max_frame_size(MAX_FRAME_SIZE),
        )
        .await;
        let client = Client::connect(server.addr).await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let healthy_calls = Arc::new(AtomicUsize::new(0));
        let healthy = tokio::spawn({
            let stop = stop.clone();
            let healthy_calls = healthy_calls.clone();
            async move {
                while !stop.load(Ordering::SeqCst) {
                    let call = Call::new("probe", "echo", Format::Raw, Bytes::from_static(b"ok"));
                    let reply = client
                        .call(call)
                        .await
                        .expect("the healthy client was hurt");
                    assert_eq!(reply.body, "ok");
                    healthy_calls.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            }
        });
        Scene {
            server,
            stop,
            healthy_calls,
            healthy,
        }
    }

    async fn raw(&self) -> RawConnection {
        RawConnection::connect(self.server.addr).await
    }

    /// Checks the healthy client kept working through the bad input and still works after.
    async fn finish(self) {
        let before = self.healthy_calls.load(Ordering::SeqCst);
        prpc_tests::eventually(
            || self.healthy_calls.load(Ordering::SeqCst) >= before + 10,
            || "healthy client stalled".to_owned(),
        )
        .await;
        self.stop.store(true, Ordering::SeqCst);
        self.healthy.await.unwrap();
        let fresh = Client::connect(self.server.addr).await.unwrap();
        let call = Call::new("probe", "echo", Format::Raw, Bytes::from_static(b"after"));
        assert_eq!(fresh.call(call).await.unwrap().body, "after");
    }
}

fn with_encoding(mut frame: Frame, format_id: u8, compression_id: u8) -> Frame {
    frame.encoding = Encoding::new(format_id, compression_id);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_bad_prefixes_get_a_goaway_and_a_close() {
    let scene = Scene::new().await;
    let cases: [(&[u8], &str); 4] = [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad magic byte 0x47"),
        (&[0x00, 0x01, 0x02, 0x03], "bad magic byte 0x00"),
        (
            &[0xB7, 0x02, 0x01, 0x00, 0, 0, 0, 0],
            "unsupported protocol version 2",
        ),
        (
            &[0xB7, 0x01, 0x0E, 0x00, 0, 0, 0, 0],
            "unknown frame kind 14",
        ),
    ];
    for (bytes, expected) in cases {
        let mut raw = scene.raw().await;
        raw.send_bytes(bytes).await;
        let message = raw.expect_goaway_and_close(Code::InvalidArgument).await;
        assert!(
            message.contains(expected),
            "{message:?} should mention {expected:?}"
        );
    }
    scene.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_length_over_max_frame_size_is_refused_before_it_is_read() {
    let scene = Scene::new().await;
    let mut raw = scene.raw().await;
    // Declares 1 MiB and sends none of it: the server must not wait for it.
    raw.send_bytes(&[0xB7, 0x01, 0x01, 0x00, 0x00, 0x10, 0x00, 0x00])
        .await;
    let message = raw.expect_goaway_and_close(Code::ResourceExhausted).await;
    assert_eq!(
        message,
        "frame of 1048576 bytes exceeds max_frame_size 65536"
    );
    scene.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_cut_short_by_close_is_reported() {
    let scene = Scene::new().await;
    let mut raw = scene.raw().await;
    raw.send_bytes(&[0xB7, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x20, 0x01, 0x00])
        .await;
    raw.shutdown_write().await;
    let message = raw.expect_goaway_and_close(Code::InvalidArgument).await;
    assert!(
        message.contains("closed in the middle of a frame"),
        "{message}"
    );
    scene.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_name_closes_the_connection() {
    let scene = Scene::new().await;
    let mut raw = scene.raw().await;
    // Request id 1, attempt 0, service "\xff\xfe", method "m", no deadline, no metadata.
    raw.send_bytes(&[
        0xB7, 0x01, 0x01, 0x00, 0, 0, 0, 9, 1, 0, 2, 0xFF, 0xFE, 1, b'm', 0, 0,
    ])
    .await;
    let message = raw.expect_goaway_and_close(Code::InvalidArgument).await;
    assert_eq!(message, "service name is not valid UTF-8");
    scene.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_format_or_compression_fails_only_that_call() {
    let scene = Scene::new().await;
    let mut raw = scene.raw().await;
    raw.send(with_encoding(request_frame(1, "probe", "echo", b"x"), 9, 0))
        .await;
    let (id, head, _) = raw.recv_response().await;
    assert_eq!((id, Code::from_u32(head.code)), (1, Code::InvalidArgument));
    assert_eq!(head.message, "unknown body format id 9");

    raw.send(with_encoding(
        request_frame(2, "probe", "echo", b"x"),
        0,
        11,
    ))
    .await;
    let (id, head, _) = raw.recv_response().await;
    assert_eq!((id, Code::from_u32(head.code)), (2, Code::InvalidArgument));
    assert_eq!(head.message, "unknown compression id 11");

    // The connection itself is fine.
    raw.send(request_frame(3, "probe", "echo", b"fine")).await;
    let (id, head, body) = raw.recv_response().await;
    assert_eq!((id, head.code, &body[..]), (3, 0, &b"fine"[..]));
    scene.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_oversized_compressed_bodies_fail_only_that_call() {
    let scene = Scene::new().await;
    let mut raw = scene.raw().await;
    for (request_id, compression) in (10..).zip(Compression::ALL.into_iter().skip(1)) {
        let corrupt = with_encoding(
            request_frame(
                request_id,
                "probe",
                "echo",
                b"\x1f\x8b not really compressed",
            ),
            Format::Raw.id(),
            compression.id(),
        );
        raw.send(corrupt).await;
        let (id, head, _) = raw.recv_response().await;
        assert_eq!(id, request_id);
        assert_eq!(
            Code::from_u32(head.code),
            Code::InvalidArgument,
            "{compression}"
        );
        // lz4 reads the garbage's first bytes as a size prefix far over the limit.
        assert!(
            head.message.contains("corrupt") || head.message.contains("past the limit"),
            "{compression}: {}",
            head.message
        );

        // 1 MiB of zeros compresses to a few KiB but inflates past the 64 KiB limit.
        let mut bomb = request_frame(request_id + 100, "probe", "echo", b"");
        bomb.body = compression.compress(&vec![0u8; 1 << 20]).unwrap();
        bomb.encoding = Encoding::new(Format::Raw.id(), compression.id());
        raw.send(bomb).await;
        let (_, head, _) = raw.recv_response().await;
        assert_eq!(
            Code::from_u32(head.code),
            Code::InvalidArgument,
            "{compression}"
        );
        assert!(
            head.message.contains("past the limit of 65536"),
            "{}",
            head.message
        );
    }
    scene.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_bodies_and_unknown_names_are_answered_per_call() {
    let scene = Scene::new().await;
    let mut raw = scene.raw().await;
    let garbage = with_encoding(
        request_frame(1, "probe", "sum", b"{\"not\": [a list"),
        Format::Json.id(),
        0,
    );
    raw.send(garbage).await;
    let (_, head, _) = raw.recv_response().await;
    assert_eq!(Code::from_u32(head.code), Code::InvalidArgument);
    assert!(
        head.message.starts_with("decoding a json body"),
        "{}",
        head.message
    );

    raw.send(request_frame(2, "nobody", "echo", b"")).await;
    let (_, head, _) = raw.recv_response().await;
    assert_eq!(Code::from_u32(head.code), Code::Unimplemented);
    assert!(head.message.contains("nobody"), "{}", head.message);

    raw.send(request_frame(3, "probe", "nothing", b"")).await;
    let (_, head, _) = raw.recv_response().await;
    assert_eq!(Code::from_u32(head.code), Code::Unimplemented);
    scene.finish().await;
}

/// A request frame (id 1, service `probe`, method `echo`, no deadline) whose metadata block is
/// `count` (one-byte or longer varint) followed by `pairs`, as raw bytes.
fn request_with_metadata(count: u64, pairs: &[u8]) -> Vec<u8> {
    let mut fields = vec![1, 0, 5];
    fields.extend_from_slice(b"probe");
    fields.push(4);
    fields.extend_from_slice(b"echo");
    fields.push(0);
    let mut count = count;
    loop {
        let byte = (count & 0x7f) as u8;
        count >>= 7;
        if count == 0 {
            fields.push(byte);
            break;
        }
        fields.push(byte | 0x80);
    }
    fields.extend_from_slice(pairs);
    let mut frame = vec![0xB7, 1, 1, 0];
    frame.extend_from_slice(&(fields.len() as u32).to_be_bytes());
    frame.extend_from_slice(&fields);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_over_its_limits_is_refused_with_resource_exhausted() {
    let scene = Scene::new().await;

    // 30,000 empty pairs (60 KB, within max_frame_size): too many pairs.
    let mut raw = scene.raw().await;
    raw.send_bytes(&request_with_metadata(30_000, &vec![0; 60_000]))
        .await;
    let message = raw.expect_goaway_and_close(Code::ResourceExhausted).await;
    assert_eq!(
        message,
        format!(
            "metadata of 30000 pairs exceeds the limit of {} pairs",
            prpc::wire::MAX_METADATA_PAIRS
        )
    );

    // One pair whose value is 20,000 bytes: too many bytes.
    let mut pair = vec![1, b'k', 0xA0, 0x9C, 0x01];
    pair.resize(pair.len() + 20_000, b'v');
    let mut raw = scene.raw().await;
    raw.send_bytes(&request_with_metadata(1, &pair)).await;
    let message = raw.expect_goaway_and_close(Code::ResourceExhausted).await;
    assert_eq!(
        message,
        format!(
            "metadata exceeds the limit of {} bytes",
            prpc::wire::MAX_METADATA_BYTES
        )
    );

    // At the limits exactly, the call is answered, and its metadata arrives whole.
    let mut raw = scene.raw().await;
    let pairs = prpc::wire::MAX_METADATA_PAIRS;
    raw.send_bytes(&request_with_metadata(pairs as u64, &vec![0; 2 * pairs]))
        .await;
    let (id, head, _) = raw.recv_response().await;
    assert_eq!((id, head.code), (1, 0), "{}", head.message);
    scene.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refuses_to_send_metadata_a_server_would_refuse() {
    let scene = Scene::new().await;
    let client = Client::connect(scene.server.addr).await.unwrap();
    let options =
        prpc::CallOptions::new().metadata("big", vec![0u8; prpc::wire::MAX_METADATA_BYTES + 1]);
    let call =
        Call::new("probe", "echo", Format::Raw, Bytes::from_static(b"x")).with_options(options);
    let error = client.call(call).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("metadata exceeds the limit of 16384 bytes"),
        "{error}"
    );
    // The connection was not closed: the next call on it works.
    let call = Call::new("probe", "echo", Format::Raw, Bytes::from_static(b"y"));
    assert_eq!(client.call(call).await.unwrap().body, "y");
    scene.finish().await;
}

/// PROTOCOL.md 7.6: requests read whole before bad bytes are answered, then the goaway
/// follows; the bad bytes arrive in the same read as the requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_before_garbage_in_one_read_are_answered_before_the_goaway() {
    let scene = Scene::new().await;
    let mut raw = scene.raw().await;
    let mut bytes = BytesMut::new();
    let mut codec = FrameCodec::new();
    // A call that waits (it runs as a task), one that does not, then garbage.
    codec
        .encode(request_frame(1, "probe", "sleep", b"50"), &mut bytes)
        .unwrap();
    codec
        .encode(request_frame(2, "probe", "echo", b"two"), &mut bytes)
        .unwrap();
    bytes.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    raw.send_bytes(&bytes).await;

    let mut answered = Vec::new();
    for _ in 0..2 {
        let (id, head, body) = raw.recv_response().await;
        assert_eq!(head.code, 0, "call {id}: {}", head.message);
        answered.push((id, body));
    }
    answered.sort();
    assert_eq!(
        answered,
        [
            (1, Bytes::from_static(b"slept")),
            (2, Bytes::from_static(b"two"))
        ]
    );
    let message = raw.expect_goaway_and_close(Code::InvalidArgument).await;
    assert!(message.contains("bad magic byte 0x47"), "{message}");
    scene.finish().await;
}

/// PROTOCOL.md 7.6: a call still running `shutdown_grace` after its connection broke the
/// protocol is stopped and answered `aborted` (it may have run in part), before the goaway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_outlasting_the_grace_after_bad_bytes_is_answered_aborted() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(
        Server::builder()
            .add_service(probe)
            .shutdown_grace(std::time::Duration::from_millis(100)),
    )
    .await;
    let mut raw = RawConnection::connect(server.addr).await;
    let mut bytes = BytesMut::new();
    FrameCodec::new()
        .encode(request_frame(1, "probe", "sleep", b"60000"), &mut bytes)
        .unwrap();
    bytes.extend_from_slice(&[0xB7, 0x07]);
    raw.send_bytes(&bytes).await;
    let (id, head, _) = raw.recv_response().await;
    assert_eq!(
        (id, Code::from_u32(head.code)),
        (1, Code::Aborted),
        "{}",
        head.message
    );
    let message = raw.expect_goaway_and_close(Code::InvalidArgument).await;
    assert_eq!(
        message,
        "unsupported protocol version 7 (this peer speaks version 1)"
    );
    // The handler was stopped, not left running.
    counters.wait_for(|counters| &counters.dropped, 1).await;
}

/// PROTOCOL.md 7.3: a handler that never yields cannot be stopped at its deadline, but once it
/// finishes after it the caller hears `deadline_exceeded`, not its late ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_bound_handler_finishing_after_its_deadline_is_not_answered_ok() {
    let scene = Scene::new().await;
    let mut raw = scene.raw().await;
    let mut request = request_frame(1, "probe", "block", b"200");
    if let prpc::wire::Head::Request(head) = &mut request.head {
        head.deadline = Some(std::time::Duration::from_millis(20));
    }
    raw.send(request).await;
    let (id, head, body) = raw.recv_response().await;
    assert_eq!(id, 1);
    assert_eq!(
        Code::from_u32(head.code),
        Code::DeadlineExceeded,
        "{} {body:?}",
        head.message
    );
    assert!(body.is_empty());
    // Within its deadline the same handler is answered ok.
    let mut request = request_frame(2, "probe", "block", b"1");
    if let prpc::wire::Head::Request(head) = &mut request.head {
        head.deadline = Some(std::time::Duration::from_secs(60));
    }
    raw.send(request).await;
    let (id, head, body) = raw.recv_response().await;
    assert_eq!((id, head.code, &body[..]), (2, 0, &b"blocked"[..]));
    scene.finish().await;
}

/// The server-wide memory budget: slow senders of large frames hold all of it, a small call
/// still goes through, a large one waits for room, and each slow sender is closed once its
/// partial frame has made no progress for the frame progress timeout, giving the room back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_senders_holding_the_memory_budget_do_not_stop_a_good_call() {
    const FRAME: u32 = 256 * 1024;
    // Room for two large frames, not three.
    const BUDGET: usize = 2 * FRAME as usize + 64 * 1024;
    let (probe, _) = Probe::new("probe");
    let server = Server::builder()
        .add_service(probe)
        .max_frame_size(FRAME)
        .memory_budget(BUDGET)
        .frame_progress_timeout(std::time::Duration::from_millis(500))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().socket_addr().unwrap();
    let router = server.router();
    tokio::spawn(server.serve());
    let held_reaches = async |bytes: usize| {
        prpc_tests::eventually(
            || router.stats().memory_budget_held == bytes,
            || {
                format!(
                    "held {} bytes, expected {bytes}",
                    router.stats().memory_budget_held
                )
            },
        )
        .await;
    };
    // Three slow senders: the prefix of a large request and a few of its bytes, then nothing.
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut raw = RawConnection::connect(addr).await;
        let mut start = vec![0xB7, 1, 1, 0];
        start.extend_from_slice(&(FRAME - 16).to_be_bytes());
        start.extend_from_slice(&[1, 0, 5, b'p', b'r', b'o', b'b', b'e', 4, b'e', b'c', b'h']);
        raw.send_bytes(&start).await;
        slow.push(raw);
    }
    // Two frames fit; the third sender waits, unread: the budget holds two frames, and has
    // no room for a third.
    const HELD: usize = 2 * (FRAME as usize - 8);
    held_reaches(HELD).await;
    // A small call while the budget is full.
    let client = Client::connect(addr).await.unwrap();
    let call = Call::new("probe", "echo", Format::Raw, Bytes::from_static(b"small"));
    assert_eq!(client.call(call).await.unwrap().body, "small");
    assert_eq!(router.stats().memory_budget_held, HELD);
    // A large one: it gets room once the slow senders are gone.
    let large = Bytes::from(vec![b'x'; 200 * 1024]);
    let call = Call::new("probe", "echo", Format::Raw, large.clone());
    let reply = tokio::spawn(async move { client.call(call).await });
    for mut raw in slow {
        let message = raw.expect_goaway_and_close(Code::Unavailable).await;
        assert_eq!(message, "a partial frame made no progress for 500ms");
    }
    assert_eq!(reply.await.unwrap().unwrap().body, large);
    // Answered, the large call gave its charge back too.
    held_reaches(0).await;
}

/// A service whose `wait` calls block until the gate closes (counting those that started), and
/// whose `echo` answers at once.
struct Gate {
    gate: Arc<tokio::sync::Semaphore>,
    entered: Arc<AtomicUsize>,
}

impl prpc::Service for Gate {
    fn name(&self) -> &str {
        "gate"
    }

    fn methods(&self) -> Vec<String> {
        vec!["wait".to_owned(), "echo".to_owned()]
    }

    fn call(&self, request: prpc::Request) -> prpc::ServiceFuture {
        let gate = self.gate.clone();
        let entered = self.entered.clone();
        Box::pin(async move {
            if &*request.method == "wait" {
                entered.fetch_add(1, Ordering::SeqCst);
                // Closed, not granted: every waiter goes on at once.
                let _ = gate.acquire().await;
            }
            Ok(prpc::Response::new(request.body))
        })
    }
}

/// Small requests (under 64 KiB) a handler has not answered yet are charged to the memory
/// budget too: many connections pipelining small requests to handlers that block hold the
/// budget, and each then waits before reading more, so what is held stays within the budget
/// plus one read a connection (without the charge, the server read all of them). A
/// fresh connection's call still goes through while the budget is full, and once the handlers
/// are let go every call is answered and the budget is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_small_requests_are_bounded_by_the_memory_budget() {
    const BUDGET: usize = 256 * 1024;
    const CONNECTIONS: usize = 16;
    const PER_CONNECTION: u64 = 100;
    const BODY: usize = 2000;
    // What one such call is charged: its body and 512 bytes for its task and head.
    const CHARGE: usize = BODY + 512;
    const READ_BUFFER: usize = 64 * 1024;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let server = Server::builder()
        .add_service(Gate {
            gate: gate.clone(),
            entered: entered.clone(),
        })
        .max_frame_size(MAX_FRAME_SIZE)
        .memory_budget(BUDGET)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().socket_addr().unwrap();
    let router = server.router();
    tokio::spawn(server.serve());

    // Every connection sends all its requests at once.
    let body: &'static [u8] = Box::leak(vec![b'b'; BODY].into_boxed_slice());
    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut raw = RawConnection::connect(addr).await;
        let mut bytes = BytesMut::new();
        for id in 1..=PER_CONNECTION {
            FrameCodec::new()
                .encode(request_frame(id, "gate", "wait", body), &mut bytes)
                .unwrap();
        }
        raw.send_bytes(&bytes).await;
        connections.push(raw);
    }

    // The budget fills, then the server stops reading: wait until no more calls start.
    prpc_tests::eventually(
        || router.stats().memory_budget_held >= BUDGET,
        || {
            format!(
                "the blocked calls hold {} bytes of the budget, {} started",
                router.stats().memory_budget_held,
                entered.load(Ordering::SeqCst)
            )
        },
    )
    .await;
    let mut started = entered.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now = entered.load(Ordering::SeqCst);
        if now == started {
            break;
        }
        started = now;
    }
    // Each blocked call is charged from before its handler starts: once reading has stopped,
    // what is held is what the started calls were charged.
    prpc_tests::eventually(
        || router.stats().memory_budget_held == entered.load(Ordering::SeqCst) * CHARGE,
        || {
            format!(
                "{} bytes held for {} started calls",
                router.stats().memory_budget_held,
                entered.load(Ordering::SeqCst)
            )
        },
    )
    .await;
    let started = entered.load(Ordering::SeqCst);
    let held = router.stats().memory_budget_held;
    // Each connection reads at most once more after the budget filled: what its read buffer
    // has room for (64 KiB, up to twice that once the buffer has grown around a partial frame).
    let bound = BUDGET + CONNECTIONS * (2 * READ_BUFFER + CHARGE);
    assert!(
        held <= bound,
        "{started} calls started, holding {held} bytes, past {bound}"
    );
    assert!(started < CONNECTIONS * PER_CONNECTION as usize);

    // A call on a fresh connection goes through while the budget is full.
    let client = Client::connect(addr).await.unwrap();
    let call = Call::new("gate", "echo", Format::Raw, Bytes::from_static(b"small"));
    assert_eq!(client.call(call).await.unwrap().body, "small");

    // Let the handlers go: every call is answered, in whatever order.
    gate.close();
    for mut raw in connections {
        let mut answered = std::collections::HashSet::new();
        for _ in 0..PER_CONNECTION {
            let (id, head, reply) = raw.recv_response().await;
            assert_eq!(Code::from_u32(head.code), Code::Ok, "{}", head.message);
            assert_eq!(reply.len(), BODY);
            answered.insert(id);
        }
        assert_eq!(answered.len(), PER_CONNECTION as usize);
    }
    assert_eq!(
        entered.load(Ordering::SeqCst),
        CONNECTIONS * PER_CONNECTION as usize
    );
    assert_eq!(router.stats().memory_budget_held, 0);
    let fresh = Client::connect(addr).await.unwrap();
    let call = Call::new("gate", "echo", Format::Raw, Bytes::from_static(b"after"));
    assert_eq!(fresh.call(call).await.unwrap().body, "after");
}

/// A small call cancelled before its task first ran gives its share of the memory budget back
/// too: request and cancel pairs in one write (each task is spawned, then stopped while the
/// read loop goes on) leave nothing held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cancelled_before_they_ran_give_the_budget_back() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let server = Server::builder()
        .add_service(Gate {
            gate: gate.clone(),
            entered: entered.clone(),
        })
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().socket_addr().unwrap();
    let router = server.router();
    tokio::spawn(server.serve());
    let mut raw = RawConnection::connect(addr).await;
    let mut bytes = BytesMut::new();
    for id in 1..=500 {
        FrameCodec::new()
            .encode(request_frame(id, "gate", "wait", b"0123456789"), &mut bytes)
            .unwrap();
        FrameCodec::new()
            .encode(Frame::control(id, prpc::wire::Head::Cancel), &mut bytes)
            .unwrap();
    }
    FrameCodec::new()
        .encode(Frame::control(9999, prpc::wire::Head::Ping), &mut bytes)
        .unwrap();
    raw.send_bytes(&bytes).await;
    // Cancelled calls get no answer: the pong is the first frame back.
    let pong = raw.recv().await.expect("the pong");
    assert!(matches!(pong.head, prpc::wire::Head::Pong), "{pong:?}");
    prpc_tests::eventually(
        || router.stats().memory_budget_held == 0,
        || {
            format!(
                "{} bytes still held, {} of 500 handlers ran",
                router.stats().memory_budget_held,
                entered.load(Ordering::SeqCst)
            )
        },
    )
    .await;
}

/// Errors say what is wrong: an lz4 size that is not the exact length, a gzip trailer whose
/// ISIZE alone is wrong, random bytes after the zstd magic, and a JSON integer past 64 bits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_errors_name_the_actual_fault() {
    let scene = Scene::new().await;
    let mut raw = scene.raw().await;
    let plain = vec![b'a'; 100];
    let mut ask = async |id: u64, compression: Compression, body: Vec<u8>| {
        let mut frame = request_frame(id, "probe", "echo", b"");
        frame.body = body.into();
        frame.encoding = Encoding::new(Format::Raw.id(), compression.id());
        raw.send(frame).await;
        let (answered, head, _) = raw.recv_response().await;
        assert_eq!(answered, id);
        assert_eq!(
            Code::from_u32(head.code),
            Code::InvalidArgument,
            "{}",
            head.message
        );
        head.message.to_string()
    };

    // lz4 declaring 150 bytes for a block of 100.
    let mut lz4 = Compression::Lz4.compress(&plain).unwrap().to_vec();
    lz4[..4].copy_from_slice(&150u32.to_le_bytes());
    assert_eq!(
        ask(1, Compression::Lz4, lz4).await,
        "corrupt lz4 body: declares 150 bytes but decompresses to 100"
    );

    // gzip whose ISIZE (the last four bytes) says 101.
    let mut gzip = Compression::Gzip.compress(&plain).unwrap().to_vec();
    let at = gzip.len() - 4;
    gzip[at..].copy_from_slice(&101u32.to_le_bytes());
    assert_eq!(
        ask(2, Compression::Gzip, gzip).await,
        "corrupt gzip body: ISIZE mismatch: the trailer says 101 bytes, the data is 100 bytes"
    );
    // And one whose CRC-32 is wrong.
    let mut gzip = Compression::Gzip.compress(&plain).unwrap().to_vec();
    let at = gzip.len() - 8;
    gzip[at] ^= 1;
    let message = ask(3, Compression::Gzip, gzip).await;
    assert!(
        message.starts_with("corrupt gzip body: CRC-32 mismatch"),
        "{message}"
    );

    // The zstd magic, a header declaring 2^64 - 1 bytes of content, then noise.
    let mut zstd = vec![0x28, 0xB5, 0x2F, 0xFD, 0xE0];
    zstd.extend_from_slice(&[0xFF; 8]);
    zstd.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    let message = ask(4, Compression::Zstd, zstd).await;
    assert!(message.starts_with("corrupt zstd body"), "{message}");

    // JSON: 2^64 where an i64 is expected.
    let frame = with_encoding(
        request_frame(5, "probe", "sum", b"[18446744073709551616]"),
        Format::Json.id(),
        0,
    );
    raw.send(frame).await;
    let (_, head, _) = raw.recv_response().await;
    assert_eq!(
        head.message,
        "decoding a json body: integer 18446744073709551616 does not fit in 64 bits, \
         expected i64 at line 1 column 21"
    );
    scene.finish().await;
}

/// PROTOCOL.md 1: a server ignores well-formed response, pong and goaway frames from a client,
/// but decodes them first: a malformed one closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_a_server_ignores_are_still_checked() {
    let scene = Scene::new().await;
    let mut raw = scene.raw().await;
    // A pong (id 9), a response (id 3, code 0, no message, no metadata), a goaway (code 0,
    // message "bye"): ignored.
    raw.send_bytes(&[0xB7, 1, 4, 0, 0, 0, 0, 2, 9, 0]).await;
    raw.send_bytes(&[0xB7, 1, 2, 0, 0, 0, 0, 5, 3, 0, 0, 0, 0])
        .await;
    raw.send_bytes(&[0xB7, 1, 6, 0, 0, 0, 0, 7, 0, 0, 0, 3, b'b', b'y', b'e'])
        .await;
    raw.send(request_frame(1, "probe", "echo", b"still here"))
        .await;
    let (id, head, body) = raw.recv_response().await;
    assert_eq!((id, head.code, &body[..]), (1, 0, &b"still here"[..]));
    // A goaway whose message is not UTF-8, and a response whose code is over 32 bits.
    raw.send_bytes(&[0xB7, 1, 6, 0, 0, 0, 0, 5, 0, 0, 0, 1, 0xFF])
        .await;
    let message = raw.expect_goaway_and_close(Code::InvalidArgument).await;
    assert_eq!(message, "goaway message is not valid UTF-8");
    let mut raw = scene.raw().await;
    raw.send_bytes(&[
        0xB7, 1, 2, 0, 0, 0, 0, 8, 3, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0,
    ])
    .await;
    let message = raw.expect_goaway_and_close(Code::InvalidArgument).await;
    assert_eq!(message, "status code overflows its varint");
    scene.finish().await;
}
