//! What a client's reads of large replies cost in fresh memory, counted by a global allocator:
//! a reply read while the one before it is still with its caller cannot go where that one
//! lies, but once the caller has dropped it, the next large reply must reuse its memory
//! rather than allocate (and have the kernel zero and fault in) a new buffer for every
//! frame; and an idle connection must not keep that memory for long. The server is a raw one
//! in the test, so that what arrives, and when, is fixed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use prpc::wire::{Encoding, Frame, FrameCodec, Head, ResponseHead};
use prpc::{Call, Client, Format};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Decoder, Encoder};

/// Counts allocations and deallocations of at least [`LARGE`] bytes.
struct Counting;

/// What counts as a large allocation: a reply's buffer, not the small ones around it.
const LARGE: usize = 32 * 1024;

static LARGE_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LARGE_FREES: AtomicUsize = AtomicUsize::new(0);

/// Runs `test` on a runtime of its own while no other test of this file runs: they count
/// what the whole process allocates and frees, so the runtime (with the connection's tasks
/// and their buffers) is dropped before the next test begins.
fn alone(test: impl Future<Output = ()>) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(test);
    drop(runtime);
}

#[allow(unsafe_code)] // a global allocator can only be written with `unsafe`
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE {
            LARGE_ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= LARGE {
            LARGE_FREES.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= LARGE {
            LARGE_ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The body size of every reply: several reads' worth, larger than a read buffer.
const REPLY: usize = 256 * 1024;

/// Reads request frames from `socket` until `count` have come; returns their ids.
async fn read_requests(socket: &mut TcpStream, buffer: &mut BytesMut, count: usize) -> Vec<u64> {
    let mut codec = FrameCodec::new();
    let mut ids = Vec::new();
    while ids.len() < count {
        match codec.decode(buffer).expect("a request frame") {
            Some(frame) => ids.push(frame.request_id),
            None => {
                let read = socket.read_buf(buffer).await.expect("read");
                assert!(read > 0, "the client closed");
            }
        }
    }
    ids
}

/// An ok reply to `request_id` with `body`, encoded.
fn reply(request_id: u64, body: Bytes) -> BytesMut {
    let frame = Frame {
        request_id,
        attempt: 0,
        encoding: Encoding::new(Format::Raw.id(), 0),
        head: Head::Response(ResponseHead::default()),
        body,
    };
    let mut bytes = BytesMut::new();
    FrameCodec::new().encode(frame, &mut bytes).expect("encode");
    bytes
}

/// A client connected to a raw server (the test's end of the socket), calls it started
/// whose requests the server has read, and an encoded reply to each.
struct InFlight {
    client: Client,
    server: TcpStream,
    calls: Vec<prpc::client::PendingCall>,
    replies: Vec<BytesMut>,
    /// Every reply's body.
    body: Bytes,
}

async fn in_flight(client: prpc::client::Builder, calls: usize) -> InFlight {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = client.connect(addr.to_string()).await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    let calls: Vec<_> = (0..calls)
        .map(|_| {
            let call = Call::new("blob", "get", Format::Raw, Bytes::new());
            client.start(call).expect("start")
        })
        .collect();
    let mut buffer = BytesMut::new();
    let ids = read_requests(&mut server, &mut buffer, calls.len()).await;
    let body = Bytes::from(vec![0x5a; REPLY]);
    let replies = ids.iter().map(|&id| reply(id, body.clone())).collect();
    InFlight {
        client,
        server,
        calls,
        replies,
        body,
    }
}

#[test]
fn a_large_reply_reuses_the_memory_of_one_its_caller_dropped() {
    alone(reuses_the_memory_of_a_dropped_reply());
}

async fn reuses_the_memory_of_a_dropped_reply() {
    // Calls in flight; the server has all their requests before it answers any.
    const CALLS: usize = 8;
    let InFlight {
        client: _client,
        mut server,
        calls,
        replies,
        body,
    } = in_flight(Client::builder(), CALLS).await;

    // Each reply is read while the one before is still with its caller, which drops it only
    // once the next has come. After the first two (which need memory of their own), every
    // reply goes where an earlier one lay: no large allocation at all.
    let mut before = 0;
    let mut held: Option<Bytes> = None;
    for (index, (call, reply)) in calls.into_iter().zip(&replies).enumerate() {
        if index == 2 {
            before = LARGE_ALLOCATIONS.load(Ordering::SeqCst);
        }
        server.write_all(reply).await.unwrap();
        let received = call.await.expect("the reply").body;
        assert_eq!(received, body, "reply {index}");
        held = Some(received);
    }
    let allocated = LARGE_ALLOCATIONS.load(Ordering::SeqCst) - before;
    drop(held);
    assert_eq!(
        allocated,
        0,
        "reading {} large replies allocated {allocated} large buffers",
        CALLS - 2
    );
}

#[test]
fn an_idle_connection_lets_go_of_the_memory_of_large_replies() {
    alone(lets_go_when_idle());
}

async fn lets_go_when_idle() {
    // Keepalive checks every 200 ms; the raw server never answers a ping, and the timeout is
    // longer than the test.
    let builder = Client::builder().keepalive(Duration::from_millis(200), Duration::from_secs(60));
    let InFlight {
        client,
        mut server,
        calls,
        replies,
        body,
    } = in_flight(builder, 3).await;
    // Three large replies read and held at once: each in memory of its own, the reader
    // keeping the buffers it moved off as spares.
    let mut held = Vec::new();
    for (call, reply) in calls.into_iter().zip(&replies) {
        server.write_all(reply).await.unwrap();
        held.push(call.await.expect("the reply").body);
    }
    assert!(held.iter().all(|received| *received == body));
    drop(replies);
    // The callers drop them. The connection then reads nothing more, so only its keepalive
    // check can let go of the spares; of the three buffers the replies were read into, all
    // but (perhaps) the reader's own must be freed. (Without the check one is: the first
    // reply's, which left the spares when the reader moved off the third reply's buffer.)
    let before = LARGE_FREES.load(Ordering::SeqCst);
    drop(held);
    let freed = || LARGE_FREES.load(Ordering::SeqCst) - before;
    let give_up = Instant::now() + Duration::from_secs(10);
    while freed() < 2 && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        freed() >= 2,
        "an idle connection kept the buffers of its large replies ({} freed)",
        freed()
    );
    assert!(client.is_open(), "the connection stays up");
}
