//! The raw baseline of the peer comparison: a plain tokio echo with the least framing that
//! can carry concurrent calls (a 12-byte header: request id u64 and body length u32, both
//! big-endian), no framework. It pipelines and coalesces writes as prpc does, so it is the
//! practical ceiling for prpc on this machine. Same command line and report as `prpc_echo`.
//!
//! ```text
//! raw_echo server [ADDR] [--runtime current|multi]
//! raw_echo client ADDR [--connections N] [--in-flight N] [--size BYTES] [--seconds S] ...
//! ```
//!
//! The server is one task per connection: it reads what the socket has, and since an echo's
//! reply is its request byte for byte, writes the complete frames straight back, 16 frames a
//! write, as prpc's server sends the replies of a large batch (so that its client starts on
//! them while it handles the rest). `RAW_WRITE_EVERY=N` in the server's environment writes
//! every N frames instead; 0 writes once per read.
//!
//! The client is shaped like an RPC client: callers queue frames to a writer task that
//! sends each batch in one write (after yielding once, so that a batch holds every frame
//! queued by the tasks woken together), and a reader task hands each reply to its caller by
//! id.
//! Request id `u64::MAX` asks for the server's CPU time (reply body: nanoseconds, u64
//! big-endian).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use prpc_benches::counters::process_cpu_time;
use prpc_benches::driver::{self, Caller};
use prpc_benches::options::{self, Options, Role};
use prpc_benches::raw_frames::{HEADER, READ_CHUNK, header, put_frame, reserve_for_next};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// The request id that asks for the server's CPU time.
const CPU_REPORT: u64 = u64::MAX;
/// Frames coalesced into one write at most (as prpc's writer).
const MAX_BATCH: usize = 128;
/// Frames echoed per write (prpc's server sends replies 16 at a time).
const WRITE_EVERY: usize = 16;

fn main() {
    let options = Options::from_args();
    match options.role {
        Role::Server => options.runtime.run(serve(options)),
        Role::Client => options.runtime.run(drive(options)),
    }
}

async fn serve(options: Options) {
    let listener = TcpListener::bind(&options.addr).await.expect("bind");
    options::announce(listener.local_addr().expect("local address"));
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        tokio::spawn(async move {
            let _ = echo_connection(stream).await;
        });
    }
}

async fn echo_connection(mut stream: TcpStream) -> std::io::Result<()> {
    let write_every = match std::env::var("RAW_WRITE_EVERY").map(|every| every.parse()) {
        Ok(Ok(0)) => usize::MAX,
        Ok(Ok(every)) => every,
        _ => WRITE_EVERY,
    };
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    loop {
        reserve_for_next(&mut input);
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
        // Complete frames at the front of the buffer are their own replies.
        let (mut ready, mut frames) = (0, 0);
        while let Some((id, length)) = header(&input[ready..]) {
            let end = ready + HEADER + length;
            if input.len() < end {
                break;
            }
            if id != CPU_REPORT {
                ready = end;
                frames += 1;
                if frames == write_every {
                    stream.write_all(&input[..ready]).await?;
                    input.advance(ready);
                    (ready, frames) = (0, 0);
                }
                continue;
            }
            stream.write_all(&input[..ready]).await?;
            input.advance(end);
            (ready, frames) = (0, 0);
            let mut reply = BytesMut::new();
            let nanos = process_cpu_time().as_nanos() as u64;
            put_frame(&mut reply, CPU_REPORT, &nanos.to_be_bytes());
            stream.write_all(&reply).await?;
        }
        stream.write_all(&input[..ready]).await?;
        input.advance(ready);
    }
}

/// One connection's client: callers wait in `pending` for the reply with their id.
#[derive(Clone)]
struct RawCaller {
    shared: Arc<Shared>,
}

struct Shared {
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Bytes>>>,
    outbound: mpsc::UnboundedSender<(u64, Bytes)>,
}

impl RawCaller {
    fn spawn(stream: TcpStream) -> RawCaller {
        let (read, write) = stream.into_split();
        let (outbound, queued) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            next_id: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            outbound,
        });
        tokio::spawn(write_loop(write, queued));
        tokio::spawn(read_loop(read, shared.clone()));
        RawCaller { shared }
    }

    async fn call(&self, id: u64, body: Bytes) -> Bytes {
        let (waiter, reply) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, waiter);
        self.shared
            .outbound
            .send((id, body))
            .expect("writer running");
        reply.await.expect("connection closed before the reply")
    }
}

impl Caller for RawCaller {
    async fn echo(&self, body: Bytes) -> usize {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.call(id, body).await.len()
    }

    async fn server_cpu(&self) -> Duration {
        let reply = self.call(CPU_REPORT, Bytes::new()).await;
        let nanos = reply[..]
            .try_into()
            .map(u64::from_be_bytes)
            .expect("8-byte cpu reply");
        Duration::from_nanos(nanos)
    }
}

async fn write_loop(mut write: OwnedWriteHalf, mut queued: mpsc::UnboundedReceiver<(u64, Bytes)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut buffer = BytesMut::with_capacity(READ_CHUNK);
    while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Woken by the first caller's frame, yield once so that the other callers woken by
        // the same read queue theirs first. Without this, the multi-thread scheduler's LIFO
        // slot runs the writer right after each caller and every frame goes in its own write
        // (on this machine: 10x fewer calls/s in scenario b, a segment per call instead of
        // one per 60 calls).
        tokio::task::yield_now().await;
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(frame) => batch.push(frame),
                Err(_) => break,
            }
        }
        for (id, body) in batch.drain(..) {
            put_frame(&mut buffer, id, &body);
        }
        if write.write_all(&buffer).await.is_err() {
            return;
        }
        buffer.clear();
    }
}

async fn read_loop(mut read: OwnedReadHalf, shared: Arc<Shared>) {
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    loop {
        reserve_for_next(&mut input);
        match read.read_buf(&mut input).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        while let Some((id, length)) = header(&input) {
            if input.len() < HEADER + length {
                break;
            }
            let mut frame = input.split_to(HEADER + length);
            frame.advance(HEADER);
            let waiter = shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            if let Some(waiter) = waiter {
                let _ = waiter.send(frame.freeze());
            }
        }
    }
    // Fail every waiting caller.
    shared
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
}

async fn drive(options: Options) {
    let mut callers = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..options.connections {
        let (stream, socket) = driver::connect(&options.addr).await;
        callers.push(RawCaller::spawn(stream));
        sockets.push(socket);
    }
    driver::drive(&options, callers, sockets).await;
}
