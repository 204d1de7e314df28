//! The generated stubs with a 1 MiB byte string (issue 22): what a `#[prpc::service]` client
//! spends encoding the argument, and what its server spends on a call (decoding the argument,
//! the handler, encoding the result), for a `Bytes` and for a `Vec<u8>`, in MessagePack, no
//! socket. A large byte string should cost the same whatever its size: it goes into the body
//! as it is, not copied (a `Vec` argument is copied once, decoded on the server: it owns its
//! bytes, where a `Bytes` is a slice of the request).
//!
//! Run: `cargo bench -p prpc-benches --bench stub`.

use std::future::Future;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use prpc::{Call, CallOptions, Channel, Error, Format, Reply, Request, Service};

/// Byte strings in, the same out.
#[prpc::service]
pub trait Blobs {
    /// A `Bytes`, back.
    async fn echo(&self, payload: Bytes) -> Bytes;
    /// A `Vec<u8>`, back.
    async fn echo_vec(&self, payload: Vec<u8>) -> Vec<u8>;
}

struct Echoer;

impl Blobs for Echoer {
    async fn echo(&self, payload: Bytes) -> Bytes {
        payload
    }

    async fn echo_vec(&self, payload: Vec<u8>) -> Vec<u8> {
        payload
    }
}

/// A channel that takes each call (its body, as the stub encoded it) and answers none: what
/// is left to time is the stub's own work.
struct Discard(CallOptions);

impl Channel for Discard {
    fn default_options(&self) -> &CallOptions {
        &self.0
    }

    fn call(&self, call: Call) -> impl Future<Output = Result<Reply, Error>> + Send {
        black_box(call.body.len());
        std::future::ready(Err(Error::Cancelled))
    }
}

const SIZE: usize = 1 << 20;

fn stubs(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let payload = vec![0x5a_u8; SIZE];

    let mut group = c.benchmark_group("stub/client_1MiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    let client = BlobsClient::new(Discard(CallOptions::new()));
    group.bench_function("bytes", |b| {
        let shared = Bytes::from(payload.clone());
        b.iter(|| runtime.block_on(client.echo(shared.clone())).unwrap_err())
    });
    group.bench_function("vec", |b| {
        b.iter_batched(
            || payload.clone(),
            |vec| runtime.block_on(client.echo_vec(vec)).unwrap_err(),
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("stub/server_1MiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    let server = BlobsServer::new(Echoer);
    // The arguments as the client sends them: a map of "payload" to a `bin 32`.
    let mut args = b"\x81\xa7payload\xc6".to_vec();
    args.extend_from_slice(&(SIZE as u32).to_be_bytes());
    args.extend_from_slice(&payload);
    let args = Bytes::from(args);
    for (name, method) in [("bytes", "echo"), ("vec", "echo_vec")] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let request = Request::new(method, Format::MsgPack, args.clone());
                let response = runtime.block_on(server.call(request)).expect("echo");
                assert_eq!(response.body.len(), SIZE + 5);
                response
            })
        });
    }
    group.finish();
}

criterion_group!(benches, stubs);
criterion_main!(benches);
