//! Arbitrary bytes through `FrameCodec` the way `FramedRead` drives it: `decode` until it asks
//! for more, then `decode_eof`. The first two input bytes choose a point where the stream is
//! cut in two reads; the rest is the stream.
//!
//! Besides "never panics, never buffers past the limit", it checks three properties:
//! - cutting the stream anywhere changes nothing: the same frames, then the same error;
//! - every frame decoded re-encodes (within the limit) and decodes back to itself, and its
//!   metadata is within the limits of docs/PROTOCOL.md section 3.3 and walks to its count;
//! - the re-encoded kind byte keeps the kind id and exactly the flags docs/PROTOCOL.md
//!   section 2.1 defines for that kind (request: oneway, dedupe, stream; message: error;
//!   response: error if and only if the code is not 0), dropping every other bit.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use prpc::wire::{
    Frame, FrameCodec, Head, MAX_METADATA_BYTES, MAX_METADATA_PAIRS, PREFIX_LEN, RequestHead,
    ResponseHead,
};
use tokio_util::codec::{Decoder, Encoder};

/// Small, so the fuzzer reaches the "frame too large" paths with short inputs.
const MAX_FRAME_SIZE: u32 = 1024;

/// What a connection would see: each frame with the kind byte it was read from, then how the
/// stream ended (`None`: cleanly).
fn read_stream(chunks: &[&[u8]]) -> (Vec<(u8, Frame)>, Option<String>) {
    let mut codec = FrameCodec::with_max_frame_size(MAX_FRAME_SIZE);
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            // A decoded frame is taken from the front of the buffer: its kind byte is here.
            let kind_byte = buffer.get(2).copied().unwrap_or_default();
            match codec.decode(&mut buffer) {
                Ok(Some(frame)) => frames.push((kind_byte, frame)),
                Ok(None) => {
                    // Waiting for more: what is buffered is less than one whole frame.
                    assert!(buffer.len() < PREFIX_LEN + MAX_FRAME_SIZE as usize);
                    break;
                }
                Err(error) => return (frames, Some(error.to_string())),
            }
        }
    }
    loop {
        let kind_byte = buffer.get(2).copied().unwrap_or_default();
        match codec.decode_eof(&mut buffer) {
            Ok(Some(frame)) => frames.push((kind_byte, frame)),
            Ok(None) => return (frames, None),
            Err(error) => return (frames, Some(error.to_string())),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((split, stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    let whole = read_stream(&[stream]);
    let cut = usize::from(u16::from_le_bytes(*split)) % (stream.len() + 1);
    let (head, tail) = stream.split_at(cut);
    let in_two_reads = read_stream(&[head, tail]);
    assert_eq!(
        whole, in_two_reads,
        "decoding depends on where the stream was cut at {cut}"
    );

    let (frames, _) = whole;
    for (kind_byte, frame) in frames {
        // Every decoded frame fits in the limit, and its canonical encoding is no longer than
        // what was read (varints become minimal, reserved bits are dropped).
        assert!(frame.encoded_len() <= MAX_FRAME_SIZE as usize);
        // Decoded metadata is within its limits, and walking it finds every pair it counts,
        // the first value of a key first.
        if let Head::Request(RequestHead { metadata, .. })
        | Head::Response(ResponseHead { metadata, .. }) = &frame.head
        {
            assert!(metadata.len() <= MAX_METADATA_PAIRS);
            assert_eq!(metadata.iter().count(), metadata.len());
            assert!(
                metadata
                    .iter()
                    .map(|(key, value)| key.len() + value.len())
                    .sum::<usize>()
                    <= MAX_METADATA_BYTES
            );
            if let Some((key, value)) = metadata.iter().next() {
                assert_eq!(metadata.get(key), Some(value));
            }
        }
        let mut codec = FrameCodec::with_max_frame_size(MAX_FRAME_SIZE);
        let mut encoded = BytesMut::new();
        codec
            .encode(&frame, &mut encoded)
            .expect("a decoded frame re-encodes");
        assert_eq!(encoded.len(), PREFIX_LEN + frame.encoded_len());
        assert_eq!(
            encoded[2],
            canonical_kind_byte(kind_byte, &frame),
            "kind byte {kind_byte:#04x} re-encoded as {:#04x} for {:?}",
            encoded[2],
            frame.head
        );
        let decoded = codec
            .decode(&mut encoded)
            .expect("a re-encoded frame decodes");
        assert_eq!(decoded.as_ref(), Some(&frame));
        assert!(encoded.is_empty());
    }
});

/// The kind byte a sender must write for a frame read with `kind_byte`: its kind id, and only
/// the flags defined for that kind (docs/PROTOCOL.md section 2.1).
fn canonical_kind_byte(kind_byte: u8, frame: &Frame) -> u8 {
    const ONEWAY: u8 = 0x10;
    const ERROR: u8 = 0x20;
    const DEDUPE: u8 = 0x40;
    const STREAM: u8 = 0x80;
    let kind = kind_byte & 0x0f;
    let flags = match &frame.head {
        Head::Request(_) => kind_byte & (ONEWAY | DEDUPE | STREAM),
        Head::Response(head) if head.code != 0 => ERROR,
        Head::Message { .. } => kind_byte & ERROR,
        _ => 0,
    };
    kind | flags
}
