//! Body formats and compression codecs on 64 B, 4 KiB and 1 MiB payloads of JSON-like text
//! (semi-compressible: repeated keys, varying values), the bodies a typical service sends.
//!
//! Run: `cargo bench -p prpc-benches --bench body`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prpc::__private::prost;
use prpc::{Compression, Format};
use serde::{Deserialize, Serialize};

const SIZES: [(usize, &str); 3] = [(64, "64B"), (4 << 10, "4KiB"), (1 << 20, "1MiB")];

/// The serde value the JSON and MessagePack benches carry.
#[derive(Serialize, Deserialize)]
struct Record {
    id: u64,
    kind: String,
    payload: String,
}

/// The same value as a prost message (prost through prpc's re-export, so the benches crate
/// needs no prost dependency of its own).
#[derive(Clone, PartialEq, prost::Message)]
#[prost(prost_path = "prpc::__private::prost")]
struct RecordMessage {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(string, tag = "2")]
    kind: String,
    #[prost(string, tag = "3")]
    payload: String,
}

/// `len` bytes of JSON-like text: records with fixed keys and pseudo-random values.
fn json_like_text(len: usize) -> String {
    const WORDS: [&str; 8] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        // xorshift64: deterministic values, so runs compare.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut text = String::with_capacity(len + 256);
    while text.len() < len {
        let r = next();
        text.push_str(&format!(
            r#"{{"id":{},"user":"user_{:04}","email":"user_{:04}@example.com","score":{}.{:02},"tags":["{}","{}"],"active":{}}},"#,
            r % 1_000_000,
            r % 9973,
            r % 9973,
            r % 100,
            (r >> 8) % 100,
            WORDS[(r >> 16) as usize % 8],
            WORDS[(r >> 24) as usize % 8],
            (r >> 32) % 2 == 0,
        ));
    }
    text.truncate(len);
    text
}

fn formats(c: &mut Criterion) {
    let mut group = c.benchmark_group("format");
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        group.sample_size(if size >= 1 << 20 { 20 } else { 100 });
        let payload = json_like_text(size);

        let record = Record {
            id: 42,
            kind: "event".into(),
            payload: payload.clone(),
        };
        for format in [Format::Json, Format::MsgPack] {
            let body = format.encode(&record).unwrap();
            group.bench_with_input(
                BenchmarkId::new(format!("{format}/encode"), label),
                &record,
                |b, record| b.iter(|| format.encode(black_box(record)).unwrap()),
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{format}/decode"), label),
                &body,
                |b, body| b.iter(|| format.decode::<Record>(black_box(body)).unwrap()),
            );
        }

        let message = RecordMessage {
            id: 42,
            kind: "event".into(),
            payload,
        };
        let format = Format::Protobuf;
        let body = format.encode_message(&message).unwrap();
        group.bench_with_input(
            BenchmarkId::new("protobuf/encode", label),
            &message,
            |b, message| b.iter(|| format.encode_message(black_box(message)).unwrap()),
        );
        group.bench_with_input(
            BenchmarkId::new("protobuf/decode", label),
            &body,
            |b, body| {
                b.iter(|| {
                    format
                        .decode_message::<RecordMessage>(black_box(body))
                        .unwrap()
                })
            },
        );
    }
    group.finish();
}

fn compression(c: &mut Criterion) {
    let mut group = c.benchmark_group("compression");
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        group.sample_size(if size >= 1 << 20 { 20 } else { 100 });
        let plain = json_like_text(size).into_bytes();
        for codec in Compression::ALL
            .into_iter()
            .filter(|c| *c != Compression::None)
        {
            let packed = codec.compress(&plain).unwrap();
            println!(
                "compression/{codec}/{label}: {} -> {} bytes ({:.1}%)",
                plain.len(),
                packed.len(),
                100.0 * packed.len() as f64 / plain.len() as f64
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{codec}/compress"), label),
                &plain,
                |b, plain| b.iter(|| codec.compress(black_box(plain)).unwrap()),
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{codec}/decompress"), label),
                &packed,
                |b, packed| b.iter(|| codec.decompress(black_box(packed), size).unwrap()),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, formats, compression);
criterion_main!(benches);
