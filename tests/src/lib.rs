//! Shared pieces of prpc's integration tests: a hand-written service that lets tests observe
//! the runtime, a server launcher, and a raw-frame connection for speaking the protocol
//! badly on purpose.

pub mod etcd;
pub mod proxy;
pub mod redis;
pub mod tinyproxy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use prpc::server::{Builder, ShutdownHandle};
use prpc::wire::{Encoding, Frame, FrameCodec, Head, RequestHead, ResponseHead};
use prpc::{Format, Request, Response, Service, ServiceFuture, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::codec::{Decoder, Encoder};

/// How long a test waits for something that should happen promptly before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Counters a [`Probe`] service updates, so tests can see what the server did.
#[derive(Debug, Default)]
pub struct Counters {
    /// Handlers started.
    pub started: AtomicUsize,
    /// Handlers that ran to completion.
    pub finished: AtomicUsize,
    /// Handlers dropped before completion (cancelled, deadline, shutdown).
    pub dropped: AtomicUsize,
}

impl Counters {
    /// Waits (bounded by [`PATIENCE`]) until `counter` reaches `value`.
    pub async fn wait_for(&self, counter: impl Fn(&Counters) -> &AtomicUsize, value: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while counter(self).load(Ordering::SeqCst) < value {
            assert!(
                tokio::time::Instant::now() < deadline,
                "counter stuck at {} (waiting for {value})",
                counter(self).load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A hand-written service (no macro) with methods that exercise the runtime:
///
/// - `echo`: returns the body.
/// - `sleep`: sleeps for the number of milliseconds in the body (ASCII), returns "slept".
/// - `block`: blocks its thread (never yields) for the milliseconds in the body, returns
///   "blocked": a CPU-bound handler.
/// - `panic`: panics.
/// - `fail`: answers `not_found` with the body as message.
/// - `sum`: decodes a `Vec<i64>` in the request's format and returns the sum in it.
/// - `size`: returns a body of as many bytes as the ASCII number in the body.
/// - `deadline`: returns the milliseconds left until the request's deadline (ASCII), or "none".
/// - `metadata`: returns the metadata value under the key in the body, or "missing".
pub struct Probe {
    name: String,
    counters: Arc<Counters>,
}

impl Probe {
    /// A probe service named `name`.
    pub fn new(name: &str) -> (Self, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        (
            Probe {
                name: name.to_owned(),
                counters: counters.clone(),
            },
            counters,
        )
    }
}

/// Counts a handler as dropped unless it is disarmed on completion.
struct DropWatch(Option<Arc<Counters>>);

impl Drop for DropWatch {
    fn drop(&mut self) {
        if let Some(counters) = self.0.take() {
            counters.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn ascii_number(body: &[u8]) -> Result<u64, Status> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| Status::invalid_argument("body is not an ASCII number"))
}

impl Service for Probe {
    fn name(&self) -> &str {
        &self.name
    }

    fn methods(&self) -> Vec<String> {
        [
            "echo", "sleep", "block", "panic", "fail", "sum", "size", "deadline", "metadata",
        ]
        .map(String::from)
        .to_vec()
    }

    fn call(&self, request: Request) -> ServiceFuture {
        let counters = self.counters.clone();
        Box::pin(async move {
            counters.started.fetch_add(1, Ordering::SeqCst);
            let mut watch = DropWatch(Some(counters.clone()));
            let result = match &*request.method {
                "echo" => Ok(Response::new(request.body)),
                "sleep" => {
                    let millis = ascii_number(&request.body)?;
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    Ok(Response::new(Bytes::from_static(b"slept")))
                }
                "block" => {
                    let millis = ascii_number(&request.body)?;
                    std::thread::sleep(Duration::from_millis(millis));
                    Ok(Response::new(Bytes::from_static(b"blocked")))
                }
                "panic" => panic!("the probe was asked to panic"),
                "fail" => Err(Status::new(
                    prpc::Code::NotFound,
                    String::from_utf8_lossy(&request.body).into_owned(),
                )),
                "sum" => {
                    let numbers: Vec<i64> = request.format.decode(&request.body)?;
                    let sum: i64 = numbers.iter().sum();
                    Ok(Response::new(request.format.encode(&sum)?))
                }
                "size" => {
                    let size = ascii_number(&request.body)?;
                    Ok(Response::new(Bytes::from(vec![b'x'; size as usize])))
                }
                "deadline" => {
                    let left = match request.deadline {
                        Some(deadline) => deadline
                            .saturating_duration_since(std::time::Instant::now())
                            .as_millis()
                            .to_string(),
                        None => "none".to_owned(),
                    };
                    Ok(Response::new(Bytes::from(left)))
                }
                "metadata" => {
                    let key = String::from_utf8_lossy(&request.body);
                    let value = request.metadata.get(&key);
                    Ok(Response::new(
                        value.unwrap_or(Bytes::from_static(b"missing")),
                    ))
                }
                other => Err(Status::unimplemented(format!("no method {other}"))),
            };
            watch.0 = None;
            counters.finished.fetch_add(1, Ordering::SeqCst);
            result
        })
    }
}

/// A server running in the background.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Triggers graceful shutdown.
    pub shutdown: ShutdownHandle,
    /// Completes when `serve` returns.
    pub serving: JoinHandle<std::io::Result<()>>,
}

/// Binds `builder` on an ephemeral loopback port and serves it in the background.
pub async fn spawn_server<L>(builder: Builder<L>) -> TestServer
where
    L: prpc::layer::Layer<prpc::server::Dispatch>,
    L::Service: prpc::server::Handler,
{
    let server = builder.bind("127.0.0.1:0").await.expect("bind");
    let addr = server
        .local_addr()
        .socket_addr()
        .expect("a TCP server has a socket address");
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());
    TestServer {
        addr,
        shutdown,
        serving,
    }
}

/// A request frame for `service/method` with a raw body.
pub fn request_frame(request_id: u64, service: &str, method: &str, body: &'static [u8]) -> Frame {
    Frame {
        request_id,
        attempt: 0,
        encoding: Encoding::new(Format::Raw.id(), 0),
        head: Head::Request(RequestHead {
            service: service.into(),
            method: method.into(),
            ..RequestHead::default()
        }),
        body: Bytes::from_static(body),
    }
}

/// A connection that speaks frames (or raw bytes) by hand.
pub struct RawConnection {
    stream: TcpStream,
    codec: FrameCodec,
    buffer: BytesMut,
}

impl RawConnection {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Self {
        RawConnection {
            stream: TcpStream::connect(addr).await.expect("connect"),
            codec: FrameCodec::new(),
            buffer: BytesMut::new(),
        }
    }

    /// Speaks frames on an accepted stream (to play the server).
    pub fn from_stream(stream: TcpStream) -> Self {
        RawConnection {
            stream,
            codec: FrameCodec::new(),
            buffer: BytesMut::new(),
        }
    }

    /// Sends bytes as they are.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Closes the sending side (the server sees end of stream).
    pub async fn shutdown_write(&mut self) {
        self.stream.shutdown().await.expect("shutdown");
    }

    /// Encodes and sends a frame.
    pub async fn send(&mut self, frame: Frame) {
        let mut bytes = BytesMut::new();
        self.codec.encode(frame, &mut bytes).expect("encode");
        self.send_bytes(&bytes).await;
    }

    /// The next frame, or `None` once the server closes the connection. Fails the test if
    /// nothing arrives within [`PATIENCE`].
    pub async fn recv(&mut self) -> Option<Frame> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(frame) = self
                    .codec
                    .decode(&mut self.buffer)
                    .expect("server sent a bad frame")
                {
                    return Some(frame);
                }
                match self.stream.read_buf(&mut self.buffer).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("no frame and no close from the server in time")
    }

    /// The next frame, which must be a response; returns its head and body.
    pub async fn recv_response(&mut self) -> (u64, ResponseHead, Bytes) {
        let frame = self
            .recv()
            .await
            .expect("connection closed instead of a response");
        match frame.head {
            Head::Response(head) => (frame.request_id, head, frame.body),
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// Expects a goaway with `code` and then the connection's close; returns the message.
    pub async fn expect_goaway_and_close(&mut self, code: prpc::Code) -> String {
        let frame = self
            .recv()
            .await
            .expect("connection closed without a goaway");
        let Head::GoAway(head) = frame.head else {
            panic!("expected goaway, got {:?}", frame.head);
        };
        assert_eq!(
            prpc::Code::from_u32(head.code),
            code,
            "goaway: {}",
            head.message
        );
        assert!(
            self.recv().await.is_none(),
            "connection stayed open after goaway"
        );
        head.message.to_string()
    }
}
