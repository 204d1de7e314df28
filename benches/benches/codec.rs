//! The wire codec on the hot path: one small request frame (service and method names, a
//! deadline, no metadata, a 64-byte body) through `FrameCodec` and a reused `BytesMut`, the way
//! the client's writer and the server's `FramedRead` drive it.
//!
//! Goal: encode + decode under 100 ns. Run: `cargo bench -p prpc-benches --bench codec`.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prpc::Format;
use prpc::wire::{Encoding, Frame, FrameCodec, Head, RequestHead};
use tokio_util::codec::{Decoder, Encoder};

fn request() -> Frame {
    Frame {
        // A snowflake id: nine varint bytes, as in production.
        request_id: 0x0123_4567_89AB_CDEF,
        attempt: 0,
        encoding: Encoding::new(Format::MsgPack.id(), 0),
        head: Head::Request(RequestHead {
            service: "math.Arith".into(),
            method: "add".into(),
            deadline: Some(Duration::from_secs(5)),
            ..RequestHead::default()
        }),
        body: Bytes::from(vec![0x5a; 64]),
    }
}

fn codec(c: &mut Criterion) {
    let frame = request();
    let mut codec = FrameCodec::new();
    let mut encoded = BytesMut::new();
    codec.encode(&frame, &mut encoded).unwrap();
    let wire = encoded.freeze();

    let mut group = c.benchmark_group("codec/request_64B");
    group.throughput(Throughput::Bytes(wire.len() as u64));

    let mut buffer = BytesMut::with_capacity(4096);
    group.bench_function("encode", |b| {
        b.iter(|| {
            buffer.clear();
            codec.encode(black_box(&frame), &mut buffer).unwrap();
            black_box(buffer.len())
        })
    });

    // Decoding starts from bytes as a socket read leaves them: copied into the read buffer.
    let mut buffer = BytesMut::with_capacity(4096);
    group.bench_function("decode", |b| {
        b.iter(|| {
            buffer.extend_from_slice(black_box(&wire));
            black_box(codec.decode(&mut buffer).unwrap().unwrap())
        })
    });

    let mut buffer = BytesMut::with_capacity(4096);
    group.bench_function("encode+decode", |b| {
        b.iter(|| {
            codec.encode(black_box(&frame), &mut buffer).unwrap();
            black_box(codec.decode(&mut buffer).unwrap().unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
