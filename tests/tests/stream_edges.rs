//! The edges of streams: each test pins one behaviour docs/PROTOCOL.md section 7.10 or 9.3
//! asks for where a stream meets something else (a server without streams, a consumer that
//! stops, the client's FIN, a timeout under a steady producer, a reused id, a reader that
//! outlives its handler).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use prpc::stream::{Message, MessageStream, Messages};
use prpc::wire::{Encoding, Frame, Head, RequestHead, ResponseHead};
use prpc::{Call, Code, Error, Format, Request, Response, Service, ServiceFuture, Status};
use prpc_tests::{RawConnection, spawn_server};

#[derive(Default)]
struct Seen {
    /// A detached reader of a request's messages saw their end.
    detached_ended: AtomicBool,
    /// Messages a `park` handler took.
    parked_took: AtomicUsize,
}

/// - `count`: reads the client's messages to their end, answers how many there were.
/// - `hold`: keeps the client's messages unread, never ends.
/// - `ticks`: 64-byte messages for ever.
/// - `detach`: hands the client's messages to a task of its own and answers at once.
/// - `park`: waits until n messages (the body, default 16) are buffered, takes them in a
///   row, then keeps the stream without reading it.
/// - `echo`: each client message back.
/// - `unary`: "ok".
/// - `busy`: four messages, each computed for 30 ms without yielding (CPU-bound).
struct Review(Arc<Seen>);

async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

struct Ticks;

impl Stream for Ticks {
    type Item = Result<Message, Status>;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(Some(Ok(Message::new(Bytes::from(vec![7u8; 64])))))
    }
}

/// Four messages, each after 30 ms of blocking its thread: it never waits anywhere.
struct Busy(usize);

impl Stream for Busy {
    type Item = Result<Message, Status>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.0 == 4 {
            return Poll::Ready(None);
        }
        self.0 += 1;
        std::thread::sleep(Duration::from_millis(30));
        Poll::Ready(Some(Ok(Message::new(Bytes::from_static(b"busy")))))
    }
}

struct Echo(Messages);

impl Stream for Echo {
    type Item = Result<Message, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|m| m.map(|m| m.map_err(Status::from)))
    }
}

impl Service for Review {
    fn name(&self) -> &str {
        "Review"
    }
    fn methods(&self) -> Vec<String> {
        [
            "count", "hold", "ticks", "detach", "park", "echo", "unary", "busy",
        ]
        .map(String::from)
        .to_vec()
    }
    fn call(&self, mut request: Request) -> ServiceFuture {
        let seen = self.0.clone();
        Box::pin(async move {
            match &*request.method {
                "count" => {
                    let mut messages = request.messages.take().expect("a stream");
                    let mut count = 0;
                    while let Some(message) = next(&mut messages).await {
                        message?;
                        count += 1;
                    }
                    Ok(Response::new(Bytes::from(count.to_string())))
                }
                "hold" => {
                    let _messages = request.messages.take();
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                "ticks" => Ok(Response::stream(Box::pin(Ticks), Default::default())),
                "detach" => {
                    let mut messages = request.messages.take().expect("a stream");
                    tokio::spawn(async move {
                        while let Some(_message) = next(&mut messages).await {}
                        seen.detached_ended.store(true, Ordering::SeqCst);
                    });
                    Ok(Response::new(Bytes::from_static(b"done")))
                }
                "park" => {
                    let take: usize = std::str::from_utf8(&request.body)
                        .ok()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(16);
                    let mut messages = request.messages.take().expect("a stream");
                    // All taken in a row, without a poll that finds the queue empty.
                    while messages.buffered() < take * 1000 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    for _ in 0..take {
                        next(&mut messages).await.expect("a message")?;
                        seen.parked_took.fetch_add(1, Ordering::SeqCst);
                    }
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                "echo" => {
                    let messages = request.messages.take().expect("a stream");
                    Ok(Response::stream(
                        Box::pin(Echo(messages)),
                        Default::default(),
                    ))
                }
                "unary" => Ok(Response::new(Bytes::from_static(b"ok"))),
                "busy" => Ok(Response::stream(Box::pin(Busy(0)), Default::default())),
                _ => Err(Status::unimplemented("no such method")),
            }
        })
    }
}

async fn server(builder: prpc::server::Builder) -> (prpc_tests::TestServer, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let server = spawn_server(builder.add_service(Review(seen.clone()))).await;
    (server, seen)
}

fn stream_request(request_id: u64, method: &str) -> Frame {
    Frame {
        request_id,
        attempt: 0,
        encoding: Encoding::new(Format::Raw.id(), 0),
        head: Head::Request(RequestHead {
            service: "Review".into(),
            method: method.into(),
            stream: true,
            ..RequestHead::default()
        }),
        body: Bytes::new(),
    }
}

fn message(request_id: u64, body: &'static [u8]) -> Frame {
    Frame {
        request_id,
        attempt: 0,
        encoding: Encoding::new(Format::Raw.id(), 0),
        head: Head::Message {
            application_error: false,
        },
        body: Bytes::from_static(body),
    }
}

/// The next frame for `request_id` that is not a credit frame; `None` if the connection
/// closed first.
async fn next_for(connection: &mut RawConnection, request_id: u64) -> Option<Frame> {
    loop {
        let frame = connection.recv().await?;
        if frame.request_id == request_id && !matches!(frame.head, Head::Credit { .. }) {
            return Some(frame);
        }
    }
}

fn status_of(frame: &Frame) -> (Code, String) {
    match &frame.head {
        Head::Response(head) => (Code::from_u32(head.code), head.message.to_string()),
        other => panic!("expected a response, got {other:?}"),
    }
}

async fn open_accepted(connection: &mut RawConnection, id: u64, method: &str) {
    connection.send(stream_request(id, method)).await;
    let accepted = connection.recv().await.expect("an acceptance");
    assert!(
        matches!(accepted.head, Head::Credit { .. }) && accepted.request_id == id,
        "expected the acceptance, got {accepted:?}"
    );
}

/// PROTOCOL.md 7.10, compatibility rule: a client sends no connection credit before it has
/// received a stream's acceptance, so a server that predates streams never sees kind 8.
#[tokio::test]
async fn a_client_sends_no_connection_credit_to_a_server_that_never_accepted_a_stream() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A server that does not know streams: it answers the request with a plain response.
    let old_server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut connection = RawConnection::from_stream(socket);
        let request = connection.recv().await.expect("the request");
        connection
            .send(Frame {
                request_id: request.request_id,
                attempt: request.attempt,
                encoding: request.encoding,
                head: Head::Response(ResponseHead::default()),
                body: Bytes::from_static(b"plain"),
            })
            .await;
        // Whatever else the client sends within a second.
        match tokio::time::timeout(Duration::from_secs(1), connection.recv()).await {
            Ok(Some(frame)) => Some(frame.head),
            _ => None,
        }
    });
    let client = prpc::Client::connect(addr).await.unwrap();
    let call = Call::new("Review", "ticks", Format::Raw, Bytes::new()).stream(None);
    let mut messages = client.call(call).await.unwrap().messages.unwrap();
    assert!(
        next(&mut messages).await.is_none(),
        "the plain response ends the stream"
    );
    drop(messages);
    let after = old_server.await.unwrap();
    assert!(
        after.is_none(),
        "the client sent {after:?} to a server that never accepted a stream"
    );
}

/// PROTOCOL.md 9.2 / 9.3 row 5: an id and attempt already open on the connection (here a
/// stream's) is refused `invalid_argument`, whatever the new request is.
#[tokio::test]
async fn a_unary_request_reusing_an_open_streams_id_is_refused() {
    let (server, _seen) = server(prpc::Server::builder()).await;
    let mut connection = RawConnection::connect(server.addr).await;
    open_accepted(&mut connection, 5, "hold").await;
    connection
        .send(prpc_tests::request_frame(5, "Review", "unary", b""))
        .await;
    let answer = next_for(&mut connection, 5).await.expect("an answer");
    let (code, text) = status_of(&answer);
    assert_eq!(
        code,
        Code::InvalidArgument,
        "got {code:?} {text:?} body {:?}: the unary reply doubles as the stream's trailer",
        answer.body
    );
}

/// PROTOCOL.md 7.10, half-close: a client that half-closes the connection (FIN) ends its
/// side of every open stream as an `end` would; a client-streaming call still gets its reply.
#[tokio::test]
async fn a_clients_fin_ends_its_side_of_a_stream_as_an_end_would() {
    let (server, _seen) = server(prpc::Server::builder()).await;
    let mut connection = RawConnection::connect(server.addr).await;
    open_accepted(&mut connection, 7, "count").await;
    connection.send(message(7, b"one")).await;
    connection.send(message(7, b"two")).await;
    connection.shutdown_write().await;
    let trailer = next_for(&mut connection, 7).await;
    let trailer = trailer.expect("the connection closed without the stream's trailer");
    let (code, text) = status_of(&trailer);
    assert_eq!(code, Code::Ok, "{text}");
    assert_eq!(trailer.body, Bytes::from_static(b"2"));
}

/// PROTOCOL.md 7.10: the call's timeout covers the whole stream, also for a consumer that
/// always finds a message waiting.
#[tokio::test]
async fn a_stream_times_out_while_messages_keep_arriving() {
    let (server, _seen) = server(prpc::Server::builder()).await;
    let client = prpc::Client::connect(server.addr).await.unwrap();
    let call = Call::new("Review", "ticks", Format::Raw, Bytes::new())
        .with_options(prpc::CallOptions::new().timeout(Duration::from_millis(300)))
        .stream(None);
    let mut messages = client.call(call).await.unwrap().messages.unwrap();
    let started = tokio::time::Instant::now();
    let mut taken = 0;
    let outcome = loop {
        match next(&mut messages).await {
            Some(Ok(_)) => taken += 1,
            other => break other,
        }
        if started.elapsed() > Duration::from_secs(3) {
            break None;
        }
        // A consumer slower than its producer: a message is always waiting.
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    // The timeout is also the server's deadline: its deadline_exceeded trailer would do too.
    let timed_out = match &outcome {
        Some(Err(Error::Timeout { .. })) => true,
        Some(Err(Error::Status(status))) => status.code() == Code::DeadlineExceeded,
        _ => false,
    };
    assert!(
        timed_out,
        "after {:?} and {taken} messages the 300 ms stream had not timed out: {outcome:?}",
        started.elapsed()
    );
}

/// A client stream that sends one message and then waits for ever (never ends its side).
struct OneThenWait(bool);

impl Stream for OneThenWait {
    type Item = Result<Message, Status>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.0 {
            return Poll::Pending;
        }
        self.0 = true;
        Poll::Ready(Some(Ok(Message::new(Bytes::from_static(b"one")))))
    }
}

/// PROTOCOL.md 7.10: the trailer ends the stream in both directions. A handler's reader of
/// the client's messages that outlives the handler must see the end, not wait for ever
/// (holding the inbox, and the connection's writer through it).
#[tokio::test]
async fn a_reader_that_outlives_its_handler_sees_the_stream_end() {
    let (server, seen) = server(prpc::Server::builder()).await;
    let client = prpc::Client::connect(server.addr).await.unwrap();
    let outgoing: MessageStream = Box::pin(OneThenWait(false));
    let call = Call::new("Review", "detach", Format::Raw, Bytes::new()).stream(Some(outgoing));
    let messages = client.call(call).await.unwrap().messages.unwrap();
    let trailer = messages.reply().await.unwrap();
    assert_eq!(trailer.body, Bytes::from_static(b"done"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !seen.detached_ended.load(Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the detached reader never saw the end of a stream whose trailer was sent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A client stream of `count` messages of 1,000 bytes, then waiting for ever.
struct Thousands(usize);

impl Stream for Thousands {
    type Item = Result<Message, Status>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.0 == 0 {
            return Poll::Pending;
        }
        self.0 -= 1;
        Poll::Ready(Some(Ok(Message::new(Bytes::from(vec![1u8; 1000])))))
    }
}

/// Opens `streams` streams to `park`, each sending `per_stream` messages of 1,000 bytes that
/// its handler takes; returns how many the handlers took within a few seconds.
async fn park_streams(streams: usize, per_stream: usize) -> usize {
    // A connection window of 64 KiB: the client's 1 MiB initial connection credit is all it
    // gets until the server's grants.
    let (server, seen) = server(prpc::Server::builder().stream_windows(1 << 20, 64 << 10)).await;
    let client = prpc::Client::connect(server.addr).await.unwrap();
    let mut parked = Vec::new();
    for _ in 0..streams {
        let outgoing: MessageStream = Box::pin(Thousands(per_stream));
        let body = Bytes::from(per_stream.to_string());
        let call = Call::new("Review", "park", Format::Raw, body).stream(Some(outgoing));
        parked.push(client.call(call).await.unwrap().messages.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.parked_took.load(Ordering::SeqCst) < streams * per_stream
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen.parked_took.load(Ordering::SeqCst)
}

/// PROTOCOL.md 7.10: a receiver grants credit back as its consumer takes messages, so that
/// what a connection holds back is what is buffered. 66 streams whose handlers took their 16
/// messages (16 x 1,010 bytes, under the 16 KiB a consumer settles at) pass the 1 MiB of
/// connection credit; nothing is buffered, yet no connection credit comes back.
#[tokio::test]
async fn messages_taken_give_their_connection_credit_back() {
    let took = park_streams(66, 16).await;
    assert_eq!(
        took,
        66 * 16,
        "every message sent was taken by its handler and nothing is buffered on the server, \
         yet the connection stopped granting credit"
    );
}

/// The control for the test above: with 17 messages a stream (17,170 bytes, past the 16 KiB
/// a consumer settles at), the same 1 MiB and more goes through.
#[tokio::test]
async fn messages_taken_past_the_settle_batch_give_their_credit_back() {
    assert_eq!(park_streams(62, 17).await, 62 * 17);
}

/// PROTOCOL.md 7.3: a stream whose messages are computed without waiting anywhere cannot be
/// stopped at its deadline, but its trailer after the deadline is `deadline_exceeded`, not ok;
/// within its deadline the same stream ends ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_bound_stream_ending_after_its_deadline_does_not_end_ok() {
    let (server, _) = server(prpc::Server::builder()).await;
    let mut connection = RawConnection::connect(server.addr).await;
    for (id, deadline, expected) in [
        (1, Duration::from_millis(20), Code::DeadlineExceeded),
        (2, Duration::from_secs(60), Code::Ok),
    ] {
        let mut request = stream_request(id, "busy");
        if let Head::Request(head) = &mut request.head {
            head.deadline = Some(deadline);
        }
        connection.send(request).await;
        let mut messages = 0;
        let trailer = loop {
            let frame = next_for(&mut connection, id).await.expect("the trailer");
            match frame.head {
                Head::Message { .. } => messages += 1,
                _ => break frame,
            }
        };
        let (code, message) = status_of(&trailer);
        assert_eq!(code, expected, "stream {id}: {message}");
        // What was made before the end went out.
        assert_eq!(messages, 4, "stream {id}");
    }
}
