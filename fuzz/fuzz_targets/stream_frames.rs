//! A real server's stream state machine driven by arbitrary frames: one in-process server
//! (a `Router` over in-memory duplex streams, as `prpc::transport::memory` makes them) with a
//! hand-written streaming service, and for each input a new connection that opens a stream
//! (request id 1, method `echo`) and then carries the input.
//!
//! The input is a program of operations, each writing one frame or raw bytes: messages, credit
//! grants, ends and cancels on a handful of stream ids (open, closed, reused, the connection's
//! id 0), requests that open further streams or make plain calls, pings, and raw bytes (so
//! that broken frames are reached too). Small windows (4 KiB a stream, 16 KiB the connection)
//! and a "big message" operation reach every flow-control rule of docs/PROTOCOL.md section
//! 7.10 within a short input. The client then closes its side and reads until the server
//! closes.
//!
//! Besides "never panics, never hangs", it checks, from the bytes alone:
//! - what the server wrote is whole, well-formed frames, of kinds a server sends;
//! - every stream frame it wrote (message, or credit other than the connection's) belongs to
//!   a stream the client opened, and its messages are in that stream's format;
//! - it answered no (request id, attempt) more often than the client sent requests under it;
//! - afterwards the same server still answers a plain call on a new connection.

#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use libfuzzer_sys::fuzz_target;
use prpc::server::Router;
use prpc::stream::{Message, MessageStream, Messages};
use prpc::wire::{Encoding, Frame, FrameCodec, Head, RequestHead};
use prpc::{Metadata, Request, Response, Server, Service, ServiceFuture, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Decoder, Encoder};

/// Larger than one big message, so that every size of connection window is reachable.
const MAX_FRAME_SIZE: u32 = 2 << 20;

/// Stream ids the operations address: the opened stream, two more, and the connection's.
const IDS: [u64; 4] = [1, 2, 3, 0];

/// Methods a request names; the last is not on the service.
const METHODS: [&str; 5] = ["echo", "sum", "count", "unary", "nope"];

/// `echo`: each client message back (its first 64 bytes), then a trailer with metadata.
/// `sum`: reads the client's stream to its end, answers the number of messages read.
/// `count`: streams up to 8 messages ("0", "1", ...; the body's first byte chooses how many).
/// `unary`: answers "ok".
struct Streams;

impl Service for Streams {
    fn name(&self) -> &str {
        "Streams"
    }

    fn methods(&self) -> Vec<String> {
        METHODS[..4]
            .iter()
            .map(|method| method.to_string())
            .collect()
    }

    fn call(&self, mut request: Request) -> ServiceFuture {
        Box::pin(async move {
            let messages = request.messages.take();
            match (&*request.method, messages) {
                ("echo", Some(messages)) => {
                    let mut trailer = Metadata::new();
                    trailer.insert("echo", "done");
                    Ok(Response::stream(Box::pin(Echo(messages)), trailer))
                }
                ("sum", Some(mut messages)) => {
                    let mut read = 0u64;
                    while let Some(message) =
                        std::future::poll_fn(|cx| Pin::new(&mut messages).poll_next(cx)).await
                    {
                        message.map_err(|error| Status::internal(error.to_string()))?;
                        read += 1;
                    }
                    Ok(Response::new(Bytes::from(read.to_string())))
                }
                ("count", _) => {
                    let n = request.body.first().map_or(0, |byte| byte % 9);
                    let count: MessageStream = Box::pin(Count(0, n));
                    Ok(Response::stream(count, Metadata::new()))
                }
                ("unary", _) => Ok(Response::new(Bytes::from_static(b"ok"))),
                _ => Err(Status::unimplemented("not a stream, or no such method")),
            }
        })
    }
}

struct Echo(Messages);

impl Stream for Echo {
    type Item = Result<Message, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // At most 64 bytes back per message: whatever the input inflates to, the server's
        // messages stay within its initial credit, so it never waits for a grant that an input
        // without one would never send.
        Pin::new(&mut self.0).poll_next(cx).map(|next| {
            next.map(|message| match message {
                Ok(mut message) => {
                    message.body.truncate(64);
                    Ok(message)
                }
                Err(error) => Err(Status::internal(error.to_string())),
            })
        })
    }
}

struct Count(u8, u8);

impl Stream for Count {
    type Item = Result<Message, Status>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.0 >= self.1 {
            return Poll::Ready(None);
        }
        self.0 += 1;
        let body = Bytes::from((self.0 - 1).to_string());
        Poll::Ready(Some(Ok(Message::new(body))))
    }
}

/// The input as the connection's bytes, decoding operations until the input runs out.
struct Program<'a> {
    input: &'a [u8],
    out: BytesMut,
    codec: FrameCodec,
}

impl Program<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.input.split_first() else {
            return 0;
        };
        self.input = rest;
        first
    }

    fn bytes(&mut self, len: usize) -> &[u8] {
        let (taken, rest) = self.input.split_at(len.min(self.input.len()));
        self.input = rest;
        taken
    }

    /// A stream address: one of [`IDS`], attempt 0 or 1.
    fn id(&mut self) -> (u64, u32) {
        let byte = self.byte();
        (IDS[usize::from(byte & 3)], u32::from(byte >> 2 & 1))
    }

    fn frame(&mut self, (request_id, attempt): (u64, u32), encoding: u8, head: Head, body: Bytes) {
        let frame = Frame {
            request_id,
            attempt,
            encoding: Encoding::from_byte(encoding),
            head,
            body,
        };
        self.codec
            .encode(&frame, &mut self.out)
            .expect("a frame within max_frame_size encodes");
    }

    fn request(&mut self, id: (u64, u32), flags: u8, method: &str, body: Bytes) {
        let deadline = match flags & 0x03 {
            0 => None,
            1 => Some(Duration::from_millis(1)),
            _ => Some(Duration::from_secs(60)),
        };
        let head = Head::Request(RequestHead {
            service: "Streams".into(),
            method: method.into(),
            deadline,
            oneway: flags & 0x10 != 0,
            dedupe: flags & 0x40 != 0,
            stream: flags & 0x80 != 0,
            metadata: Metadata::new(),
        });
        self.frame(id, 0x00, head, body);
    }

    /// One operation.
    fn step(&mut self) {
        let op = self.byte();
        match op % 9 {
            0 => {
                let id = self.id();
                let encoding = self.byte();
                let len = usize::from(self.byte() % 32);
                let body = Bytes::copy_from_slice(self.bytes(len));
                let application_error = op & 0x80 != 0;
                self.frame(id, encoding, Head::Message { application_error }, body);
            }
            1 => {
                let id = self.id();
                let bytes = match self.byte() % 6 {
                    0 => 0,
                    1 => 1,
                    2 => 4096,
                    3 => (1 << 31) - 1,
                    4 => u32::MAX,
                    _ => u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()]),
                };
                self.frame(id, 0x00, Head::Credit { bytes }, Bytes::new());
            }
            2 => {
                let id = self.id();
                self.frame(id, 0x00, Head::End, Bytes::new());
            }
            3 => {
                let id = self.id();
                self.frame(id, 0x00, Head::Cancel, Bytes::new());
            }
            4 => {
                let id = self.id();
                let flags = self.byte();
                let method = METHODS[usize::from(self.byte()) % METHODS.len()];
                let body = Bytes::copy_from_slice(self.bytes(1));
                self.request(id, flags, method, body);
            }
            5 => {
                let request_id = u64::from(self.byte());
                self.frame((request_id, 0), 0x00, Head::Ping, Bytes::new());
            }
            6 => {
                let len = usize::from(self.byte() % 64);
                let raw = self.bytes(len).to_vec();
                self.out.extend_from_slice(&raw);
            }
            7 => {
                // A message of 1 MiB of zeros: spends the connection's initial credit
                // (1 MiB) with a few input bytes. (One size only: big messages are what makes
                // an execution slow.)
                let id = self.id();
                let body = Bytes::from(vec![0u8; 1 << 20]);
                self.frame(
                    id,
                    0x00,
                    Head::Message {
                        application_error: false,
                    },
                    body,
                );
            }
            _ => {
                // The same message several times: floods a stream's window of 4 KiB.
                let id = self.id();
                let times = usize::from(self.byte() % 64) + 1;
                let body = Bytes::from(vec![7u8; 100]);
                for _ in 0..times {
                    let head = Head::Message {
                        application_error: false,
                    };
                    self.frame(id, 0x00, head, body.clone());
                }
            }
        }
    }
}

/// The connection's bytes: the request that opens stream 1 on `echo`, then the program's.
fn client_bytes(input: &[u8]) -> Vec<u8> {
    let mut program = Program {
        input,
        out: BytesMut::new(),
        codec: FrameCodec::with_max_frame_size(MAX_FRAME_SIZE),
    };
    program.request((1, 0), 0x80, "echo", Bytes::new());
    while !program.input.is_empty() {
        program.step();
    }
    program.out.to_vec()
}

/// Every whole frame at the front of `bytes`, up to the first that does not decode (where the
/// server stopped reading).
fn frames(bytes: &[u8]) -> (Vec<Frame>, Result<(), String>) {
    let mut codec = FrameCodec::with_max_frame_size(MAX_FRAME_SIZE);
    let mut buffer = BytesMut::from(bytes);
    let mut frames = Vec::new();
    loop {
        match codec.decode_eof(&mut buffer) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, Ok(())),
            Err(error) => return (frames, Err(error.to_string())),
        }
    }
}

/// Checks what the server wrote against what the client sent.
fn check(sent: &[u8], received: &[u8]) {
    let (requests, _) = frames(sent);
    let (replies, ended) = frames(received);
    if let Err(error) = ended {
        panic!("the server wrote a bad frame: {error}");
    }
    // Per (request id, attempt): requests sent, and how many opened a stream in which format.
    let mut sent_requests: HashMap<(u64, u32), usize> = HashMap::new();
    let mut stream_formats: HashMap<(u64, u32), Vec<u8>> = HashMap::new();
    for frame in &requests {
        if let Head::Request(head) = &frame.head {
            let id = (frame.request_id, frame.attempt);
            *sent_requests.entry(id).or_default() += 1;
            if head.stream {
                let format = frame.encoding.format_id();
                stream_formats.entry(id).or_default().push(format);
            }
        }
    }
    let mut answered: HashMap<(u64, u32), usize> = HashMap::new();
    for frame in &replies {
        let id = (frame.request_id, frame.attempt);
        match &frame.head {
            Head::Response(_) => {
                let count = answered.entry(id).or_default();
                *count += 1;
                let limit = sent_requests.get(&id).copied().unwrap_or(0);
                assert!(
                    *count <= limit,
                    "{count} responses to {id:?}, {limit} requests"
                );
            }
            Head::Message { .. } => {
                let formats = stream_formats.get(&id);
                assert!(
                    formats.is_some(),
                    "a message on {id:?}, which no request opened"
                );
                let format = frame.encoding.format_id();
                assert!(
                    formats.is_some_and(|formats| formats.contains(&format)),
                    "a message in format {format} on {id:?}, opened in {formats:?}"
                );
            }
            Head::Credit { .. } if id == (0, 0) => {}
            Head::Credit { .. } => assert!(
                stream_formats.contains_key(&id),
                "credit on {id:?}, which no request opened"
            ),
            Head::Pong | Head::GoAway(_) => {}
            other => panic!("a server sent {other:?}"),
        }
    }
}

/// The unary call that must still work on a new connection after each input.
fn unary_request() -> Vec<u8> {
    let mut program = Program {
        input: &[],
        out: BytesMut::new(),
        codec: FrameCodec::new(),
    };
    program.request((9, 0), 0, "unary", Bytes::new());
    program.out.to_vec()
}

/// Writes `bytes` on a new connection to `router`, closes the client's side, and returns what
/// the server wrote until it closed its own.
async fn exchange(router: &Router, bytes: &[u8]) -> Vec<u8> {
    let (client, server) = tokio::io::duplex(4 << 20);
    let serving = tokio::spawn(router.serve_connection(server));
    let (mut read, mut write) = tokio::io::split(client);
    let writing = async {
        // The server may close first (after a protocol error): a failed write is expected.
        let _ = write.write_all(bytes).await;
        let _ = write.shutdown().await;
    };
    let mut received = Vec::new();
    let reading = read.read_to_end(&mut received);
    let exchanged = tokio::time::timeout(Duration::from_secs(10), async {
        let ((), read) = tokio::join!(writing, reading);
        read.expect("an in-memory read");
        serving
            .await
            .expect("the connection task ends without a panic");
    });
    exchanged
        .await
        .expect("the server closes within 10 s of the client closing its side");
    received
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

fn harness() -> Harness {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let router = runtime.block_on(async {
        Server::builder()
            .add_service(Streams)
            .max_frame_size(MAX_FRAME_SIZE)
            .stream_windows(4096, 16384)
            .build()
    });
    Harness { runtime, router }
}

fuzz_target!(|input: &[u8]| {
    HARNESS.with(|harness| {
        let mut harness = harness.borrow_mut();
        let Harness { runtime, router } = harness.get_or_insert_with(self::harness);
        let sent = client_bytes(input);
        runtime.block_on(async {
            let received = exchange(router, &sent).await;
            check(&sent, &received);
            let answer = exchange(router, &unary_request()).await;
            let (replies, _) = frames(&answer);
            match replies.as_slice() {
                [
                    Frame {
                        head: Head::Response(head),
                        body,
                        ..
                    },
                ] if head.code == 0 && body == "ok" => {}
                other => panic!("after the input, a plain call got {other:?}"),
            }
        });
    });
});
