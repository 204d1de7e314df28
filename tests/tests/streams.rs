//! Streams through the runtime: flow control and backpressure measured in buffered bytes,
//! cancellation from either end, shutdown, many streams beside unary calls, and bad stream
//! frames sent by hand.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use prpc::stream::{Message, MessageStream, Messages};
use prpc::wire::{Encoding, Frame, Head, RequestHead};
use prpc::{Call, Code, Format, Request, Response, Service, ServiceFuture, Status};
use prpc_tests::{PATIENCE, RawConnection, spawn_server};

/// What the test service's handlers did.
#[derive(Default)]
struct Seen {
    /// Messages the server's producers have handed over.
    produced: AtomicUsize,
    /// Server-side streams (and handlers) dropped.
    dropped: AtomicUsize,
}

/// - `ticks`: 64-byte messages for ever (counted in `produced`).
/// - `hold`: reads nothing from the client's stream until the call's end.
/// - `echo`: each client message back.
/// - `first`: reads one client message, then ends the stream ok.
/// - `unary`: answers "ok" to a plain call.
struct Streams(Arc<Seen>);

struct Ticks(Arc<Seen>);

impl Stream for Ticks {
    type Item = Result<Message, Status>;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.produced.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Message::new(Bytes::from(vec![7u8; 64])))))
    }
}

impl Drop for Ticks {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Counts its drop: a handler that is stopped drops it.
struct DropCount(Arc<Seen>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

struct Echo(Messages, #[allow(dead_code)] DropCount);

impl Stream for Echo {
    type Item = Result<Message, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|m| m.map(|m| m.map_err(|e| Status::internal(e.to_string()))))
    }
}

async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

impl Service for Streams {
    fn name(&self) -> &str {
        "Streams"
    }
    fn methods(&self) -> Vec<String> {
        ["ticks", "hold", "echo", "first", "unary"]
            .map(String::from)
            .to_vec()
    }
    fn call(&self, mut request: Request) -> ServiceFuture {
        let seen = self.0.clone();
        Box::pin(async move {
            match &*request.method {
                "ticks" => Ok(Response::stream(Box::pin(Ticks(seen)), Default::default())),
                "hold" => {
                    let _guard = DropCount(seen);
                    let _messages = request.messages.take();
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                "echo" => {
                    let messages = request.messages.take().expect("a stream");
                    let echo: MessageStream = Box::pin(Echo(messages, DropCount(seen)));
                    Ok(Response::stream(echo, Default::default()))
                }
                "first" => {
                    let mut messages = request.messages.take().expect("a stream");
                    let first = next(&mut messages).await;
                    assert!(matches!(first, Some(Ok(_))));
                    Ok(Response::new(Bytes::from_static(b"enough")))
                }
                "unary" => Ok(Response::new(Bytes::from_static(b"ok"))),
                _ => Err(Status::unimplemented("no such method")),
            }
        })
    }
}

/// A client-side producer that counts what was taken from it and when it was dropped.
struct Producer {
    taken: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    size: usize,
}

impl Stream for Producer {
    type Item = Result<Message, Status>;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.taken.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Message::new(Bytes::from(vec![1u8; self.size])))))
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

fn producer(size: usize) -> (MessageStream, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let taken = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let stream = Box::pin(Producer {
        taken: taken.clone(),
        dropped: dropped.clone(),
        size,
    });
    (stream, taken, dropped)
}

async fn server(builder: prpc::server::Builder) -> (prpc_tests::TestServer, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let server = spawn_server(builder.add_service(Streams(seen.clone()))).await;
    (server, seen)
}

fn call(method: &'static str) -> Call {
    Call::new("Streams", method, Format::Raw, Bytes::new())
}

/// Waits (bounded) until `check` holds.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Lets everything that can happen happen: the producer fills what credit allows.
async fn settle(counter: &AtomicUsize) -> usize {
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = counter.load(Ordering::SeqCst);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// A message of 64 bytes costs its frame's length: the body, the request id and attempt.
const MESSAGE_COST: usize = 64 + 10;

#[tokio::test]
async fn a_consumer_that_stops_reading_stops_the_server_within_the_stream_window() {
    let (server, seen) = server(prpc::Server::builder()).await;
    let client = prpc::Client::builder()
        .stream_windows(16 * 1024, 1 << 20)
        .connect(server.addr)
        .await
        .unwrap();
    let mut ticks = client
        .call(call("ticks").stream(None))
        .await
        .unwrap()
        .messages
        .unwrap();
    // Read one message, then stop.
    next(&mut ticks).await.unwrap().unwrap();
    let produced = settle(&seen.produced).await;
    // What the client holds unread is bounded by its window (the server's initial credit is
    // 64 KiB, the window 16 KiB, plus the one message that may overdraw), not by what the
    // producer could make.
    let buffered = ticks.buffered();
    assert!(buffered > 0, "nothing arrived");
    assert!(
        buffered <= 64 * 1024 + MESSAGE_COST,
        "{buffered} bytes buffered past the credit"
    );
    // The producer was asked for about what the credit allows (and a few it holds while it
    // waits), not more.
    assert!(
        produced * MESSAGE_COST <= 64 * 1024 + 4 * MESSAGE_COST,
        "{produced} messages made for a stalled consumer"
    );
    // Reading resumes the stream, with credit granted back.
    for _ in 0..5_000 {
        next(&mut ticks).await.unwrap().unwrap();
    }
    assert!(seen.produced.load(Ordering::SeqCst) > produced);
    // Dropping the client's end stops the server's producer.
    drop(ticks);
    eventually("the server's producer dropped", || {
        seen.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
}

#[tokio::test]
async fn a_handler_that_stops_reading_stops_the_client_within_its_window() {
    let (server, seen) = server(prpc::Server::builder().stream_windows(32 * 1024, 1 << 20)).await;
    let client = prpc::Client::connect(server.addr).await.unwrap();
    let (messages, taken, producer_dropped) = producer(1000);
    let held = client
        .call(call("hold").stream(Some(messages)))
        .await
        .unwrap();
    let taken_now = settle(&taken).await;
    // 32 KiB of window at ~1 KiB a message: about 33 messages sent, one more taken and
    // waiting for credit.
    assert!(taken_now >= 10, "only {taken_now} messages sent");
    assert!(
        taken_now <= 32 * 1024 / 1000 + 3,
        "{taken_now} messages taken from the producer for a handler that reads none"
    );
    // Dropping the call cancels it: the handler is stopped, and the client's producer too.
    drop(held);
    eventually("the handler stopped", || {
        seen.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
    eventually("the producer dropped", || {
        producer_dropped.load(Ordering::SeqCst) == 1
    })
    .await;
}

#[tokio::test]
async fn many_stalled_streams_are_bounded_by_the_connection_window() {
    let (server, _seen) = server(prpc::Server::builder()).await;
    // 64 streams with 64 KiB windows would hold 4 MiB; the connection's 256 KiB bounds them.
    let client = prpc::Client::builder()
        .stream_windows(64 * 1024, 256 * 1024)
        .connect(server.addr)
        .await
        .unwrap();
    let mut streams = Vec::new();
    for _ in 0..64 {
        let ticks = client
            .call(call("ticks").stream(None))
            .await
            .unwrap()
            .messages
            .unwrap();
        streams.push(ticks);
    }
    // Nothing is read: the streams fill what credit allows, then stop.
    let mut total = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now: usize = streams.iter().map(Messages::buffered).sum();
        if now == total {
            break;
        }
        total = now;
    }
    assert!(total > 0, "nothing arrived");
    // The initial connection credit is 1 MiB (the protocol's); the window only shrinks what
    // is granted after it. Every stream may overdraw by one message.
    assert!(
        total <= (1 << 20) + 64 * MESSAGE_COST,
        "{total} bytes buffered on one connection"
    );
    // Unary calls are not flow-controlled: they go through while every stream is stalled.
    let reply = client.call(call("unary")).await.unwrap();
    assert_eq!(reply.body, Bytes::from_static(b"ok"));
}

#[tokio::test]
async fn the_server_ending_first_stops_the_clients_sending() {
    let (server, _seen) = server(prpc::Server::builder()).await;
    let client = prpc::Client::connect(server.addr).await.unwrap();
    let (messages, _taken, producer_dropped) = producer(10);
    let reply = client
        .call(call("first").stream(Some(messages)))
        .await
        .unwrap();
    let reply = reply.messages.unwrap().reply().await.unwrap();
    assert_eq!(reply.body, Bytes::from_static(b"enough"));
    eventually("the client's producer dropped", || {
        producer_dropped.load(Ordering::SeqCst) == 1
    })
    .await;
}

#[tokio::test]
async fn a_shutdown_ends_open_streams_with_unavailable() {
    let (server, _seen) = server(prpc::Server::builder()).await;
    let client = prpc::Client::connect(server.addr).await.unwrap();
    let mut ticks = client
        .call(call("ticks").stream(None))
        .await
        .unwrap()
        .messages
        .unwrap();
    next(&mut ticks).await.unwrap().unwrap();
    server.shutdown.shutdown();
    let error = loop {
        match next(&mut ticks).await {
            Some(Ok(_)) => continue,
            Some(Err(error)) => break error,
            None => panic!("the stream ended without a status"),
        }
    };
    assert_eq!(error.code(), Code::Unavailable, "{error}");
    assert!(error.to_string().contains("shutting down"), "{error}");
}

#[tokio::test]
async fn a_deadline_covers_the_whole_stream() {
    let (server, seen) = server(prpc::Server::builder()).await;
    let client = prpc::Client::connect(server.addr).await.unwrap();
    let call = call("ticks")
        .with_options(prpc::CallOptions::new().timeout(Duration::from_millis(200)))
        .stream(None);
    let mut ticks = client.call(call).await.unwrap().messages.unwrap();
    let error = loop {
        match next(&mut ticks).await {
            Some(Ok(_)) => continue,
            Some(Err(error)) => break error,
            None => panic!("the stream ended without a status"),
        }
    };
    assert!(matches!(error.code(), Code::DeadlineExceeded), "{error}");
    eventually("the server's producer dropped", || {
        seen.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_streams_share_a_connection_with_unary_calls() {
    const STREAMS: u32 = 10_000;
    let (server, _seen) = server(prpc::Server::builder().max_concurrent_streams(10_000)).await;
    let client = prpc::Client::connect(server.addr).await.unwrap();
    let opened = Arc::new(AtomicUsize::new(0));
    // Every stream sends its first message, then waits for this before the rest, so that
    // all of them are open at once.
    let (go, wait) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..STREAMS {
        let client = client.clone();
        let opened = opened.clone();
        let wait = wait.clone();
        tasks.push(tokio::spawn(async move {
            let items: MessageStream = Box::pin(Counted {
                id: i,
                next: 0,
                count: 3,
                hold: Some(Box::pin(async move {
                    let mut wait = wait;
                    let _ = wait.wait_for(|go| *go).await;
                })),
            });
            let mut echo = client.call(call("echo").stream(Some(items))).await.unwrap();
            let mut messages = echo.messages.take().unwrap();
            let mut got = vec![next(&mut messages).await.unwrap().unwrap().body];
            opened.fetch_add(1, Ordering::SeqCst);
            while let Some(message) = next(&mut messages).await {
                got.push(message.unwrap().body);
            }
            let expected: Vec<Bytes> = (0..3).map(|k| Bytes::from(format!("{i}.{k}"))).collect();
            assert_eq!(got, expected);
        }));
    }
    eventually("every stream open", || {
        opened.load(Ordering::SeqCst) == STREAMS as usize
    })
    .await;
    // Unary calls go through while 10,000 streams are open on the connection.
    for _ in 0..100 {
        let reply = client.call(call("unary")).await.unwrap();
        assert_eq!(reply.body, Bytes::from_static(b"ok"));
    }
    go.send(true).unwrap();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("streams stalled")
            .unwrap();
    }
}

/// `count` messages "id.k", waiting for `hold` after the first.
struct Counted {
    id: u32,
    next: u32,
    count: u32,
    hold: Option<Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

impl Stream for Counted {
    type Item = Result<Message, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.next == self.count {
            return Poll::Ready(None);
        }
        if self.next == 1
            && let Some(hold) = self.hold.as_mut()
        {
            std::task::ready!(hold.as_mut().poll(cx));
            self.hold = None;
        }
        self.next += 1;
        let body = format!("{}.{}", self.id, self.next - 1);
        Poll::Ready(Some(Ok(Message::new(Bytes::from(body)))))
    }
}

#[tokio::test]
async fn over_max_concurrent_streams_is_refused_and_the_limit_is_apart_from_calls() {
    let (server, _seen) = server(
        prpc::Server::builder()
            .max_concurrent_streams(2)
            .max_in_flight(1),
    )
    .await;
    let client = prpc::Client::connect(server.addr).await.unwrap();
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut ticks = client
            .call(call("ticks").stream(None))
            .await
            .unwrap()
            .messages
            .unwrap();
        next(&mut ticks).await.unwrap().unwrap();
        open.push(ticks);
    }
    let mut third = client
        .call(call("ticks").stream(None))
        .await
        .unwrap()
        .messages
        .unwrap();
    let error = next(&mut third).await.unwrap().unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted, "{error}");
    assert!(
        error.to_string().contains("max_concurrent_streams 2"),
        "{error}"
    );
    // Streams do not take the calls' places.
    let reply = client.call(call("unary")).await.unwrap();
    assert_eq!(reply.body, Bytes::from_static(b"ok"));
}

// Bad stream frames, sent by hand.

fn stream_request(request_id: u64, method: &str) -> Frame {
    Frame {
        request_id,
        attempt: 0,
        encoding: Encoding::new(Format::Raw.id(), 0),
        head: Head::Request(RequestHead {
            service: "Streams".into(),
            method: method.into(),
            stream: true,
            ..RequestHead::default()
        }),
        body: Bytes::new(),
    }
}

fn frame(request_id: u64, head: Head, body: &'static [u8]) -> Frame {
    Frame {
        request_id,
        attempt: 0,
        encoding: Encoding::new(Format::Raw.id(), 0),
        head,
        body: Bytes::from_static(body),
    }
}

fn message(request_id: u64, body: &'static [u8]) -> Frame {
    frame(
        request_id,
        Head::Message {
            application_error: false,
        },
        body,
    )
}

/// The next frame for `request_id` that is not a credit frame.
async fn next_for(connection: &mut RawConnection, request_id: u64) -> Frame {
    loop {
        let frame = connection.recv().await.expect("the connection closed");
        if frame.request_id == request_id && !matches!(frame.head, Head::Credit { .. }) {
            return frame;
        }
    }
}

fn status_of(frame: &Frame) -> (Code, String) {
    match &frame.head {
        Head::Response(head) => (Code::from_u32(head.code), head.message.to_string()),
        other => panic!("expected a trailer, got {other:?}"),
    }
}

/// A unary call on the connection still gets its answer.
async fn still_answers(connection: &mut RawConnection, request_id: u64) {
    connection
        .send(prpc_tests::request_frame(
            request_id, "Streams", "unary", b"",
        ))
        .await;
    let reply = next_for(connection, request_id).await;
    assert_eq!(status_of(&reply).0, Code::Ok);
    assert_eq!(reply.body, Bytes::from_static(b"ok"));
}

#[tokio::test]
async fn stream_frames_for_unknown_streams_are_ignored() {
    let (server, _seen) = server(prpc::Server::builder()).await;
    let mut connection = RawConnection::connect(server.addr).await;
    connection.send(message(77, b"nobody")).await;
    connection.send(frame(78, Head::End, b"")).await;
    connection
        .send(frame(79, Head::Credit { bytes: 1000 }, b""))
        .await;
    still_answers(&mut connection, 1).await;
}

#[tokio::test]
async fn a_message_after_the_clients_end_ends_that_stream_alone() {
    let (server, seen) = server(prpc::Server::builder()).await;
    let mut connection = RawConnection::connect(server.addr).await;
    // `hold` never ends by itself: only the late message can end it.
    open_accepted(&mut connection, 5, "hold").await;
    connection.send(message(5, b"one")).await;
    connection.send(frame(5, Head::End, b"")).await;
    connection.send(message(5, b"late")).await;
    let (code, text) = status_of(&next_for(&mut connection, 5).await);
    assert_eq!(code, Code::InvalidArgument, "{text}");
    assert!(text.contains("after the end of the stream"), "{text}");
    eventually("the handler stopped", || {
        seen.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
    still_answers(&mut connection, 6).await;
}

/// Opens stream `id` on `method` by hand and waits for the server's acceptance (a client may
/// send on a stream only after it); returns the credit it grants.
async fn open_accepted(connection: &mut RawConnection, id: u64, method: &str) -> u32 {
    connection.send(stream_request(id, method)).await;
    let accepted = connection.recv().await.unwrap();
    match accepted.head {
        Head::Credit { bytes } if accepted.request_id == id => bytes,
        _ => panic!("expected the acceptance, got {accepted:?}"),
    }
}

#[tokio::test]
async fn a_credit_overflow_ends_that_stream_alone() {
    let (server, seen) = server(prpc::Server::builder()).await;
    let mut connection = RawConnection::connect(server.addr).await;
    open_accepted(&mut connection, 9, "hold").await;
    // 65,536 initial plus 2^32-1 passes 2^31-1.
    connection
        .send(frame(9, Head::Credit { bytes: u32::MAX }, b""))
        .await;
    let trailer = next_for(&mut connection, 9).await;
    let (code, text) = status_of(&trailer);
    assert_eq!(code, Code::InvalidArgument, "{text}");
    assert!(text.contains("credit overflow"), "{text}");
    eventually("the handler stopped", || {
        seen.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
    // A connection-level overflow is ignored.
    connection
        .send(frame(0, Head::Credit { bytes: u32::MAX }, b""))
        .await;
    still_answers(&mut connection, 10).await;
}

#[tokio::test]
async fn messages_beyond_the_credit_end_that_stream_alone() {
    let (server, _seen) = server(prpc::Server::builder().stream_windows(1024, 1 << 20)).await;
    let mut connection = RawConnection::connect(server.addr).await;
    let bytes = open_accepted(&mut connection, 11, "hold").await;
    assert_eq!(bytes, 1024, "the server grants its stream window");
    // One message may overdraw the credit; the next is beyond it.
    connection.send(message(11, &[0; 1500])).await;
    connection.send(message(11, b"beyond")).await;
    let trailer = next_for(&mut connection, 11).await;
    let (code, text) = status_of(&trailer);
    assert_eq!(code, Code::ResourceExhausted, "{text}");
    assert!(text.contains("beyond the stream's credit"), "{text}");
    still_answers(&mut connection, 12).await;
}

#[tokio::test]
async fn a_stream_cannot_be_oneway_deduplicated_or_id_zero() {
    let (server, _seen) = server(prpc::Server::builder()).await;
    let mut connection = RawConnection::connect(server.addr).await;
    let mut oneway = stream_request(20, "echo");
    if let Head::Request(head) = &mut oneway.head {
        head.dedupe = true;
    }
    connection.send(oneway).await;
    let (code, text) = status_of(&next_for(&mut connection, 20).await);
    assert_eq!(code, Code::InvalidArgument, "{text}");
    connection.send(stream_request(0, "echo")).await;
    let (code, text) = status_of(&next_for(&mut connection, 0).await);
    assert_eq!(code, Code::InvalidArgument, "{text}");
    still_answers(&mut connection, 21).await;
}

#[tokio::test]
async fn an_open_stream_keeps_an_idle_connection_open() {
    let (server, _seen) =
        server(prpc::Server::builder().idle_timeout(Duration::from_millis(100))).await;
    let client = prpc::Client::connect(server.addr).await.unwrap();
    let mut ticks = client
        .call(call("ticks").stream(None))
        .await
        .unwrap()
        .messages
        .unwrap();
    next(&mut ticks).await.unwrap().unwrap();
    // Many idle timeouts with nothing sent by the client: the stream keeps it open.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(client.is_open(), "the connection was closed as idle");
    for _ in 0..2_000 {
        next(&mut ticks).await.unwrap().unwrap();
    }
    // With the stream gone, the idle timeout closes the connection.
    drop(ticks);
    eventually("the idle connection closed", || !client.is_open()).await;
}
