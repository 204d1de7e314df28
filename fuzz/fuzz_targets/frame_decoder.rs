//! Arbitrary bytes through `FrameCodec` the way `FramedRead` drives it: `decode` until it asks
//! for more, then `decode_eof`. The first two input bytes choose a point where the stream is
//! cut in two reads; the rest is the stream.
//!
//! Besides "never panics, never buffers past the limit", it checks two properties:
//! - cutting the stream anywhere changes nothing: the same frames, then the same error;
//! - every frame decoded re-encodes (within the limit) and decodes back to itself.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use prpc::wire::{Frame, FrameCodec, PREFIX_LEN};
use tokio_util::codec::{Decoder, Encoder};

/// Small, so the fuzzer reaches the "frame too large" paths with short inputs.
const MAX_FRAME_SIZE: u32 = 1024;

/// What a connection would see: the frames, then how the stream ended (`None`: cleanly).
fn read_stream(chunks: &[&[u8]]) -> (Vec<Frame>, Option<String>) {
    let mut codec = FrameCodec::with_max_frame_size(MAX_FRAME_SIZE);
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(frame)) => frames.push(frame),
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
        match codec.decode_eof(&mut buffer) {
            Ok(Some(frame)) => frames.push(frame),
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
    for frame in frames {
        // Every decoded frame fits in the limit, and its canonical encoding is no longer than
        // what was read (varints become minimal, reserved bits are dropped).
        assert!(frame.encoded_len() <= MAX_FRAME_SIZE as usize);
        let mut codec = FrameCodec::with_max_frame_size(MAX_FRAME_SIZE);
        let mut encoded = BytesMut::new();
        codec
            .encode(&frame, &mut encoded)
            .expect("a decoded frame re-encodes");
        assert_eq!(encoded.len(), PREFIX_LEN + frame.encoded_len());
        let decoded = codec
            .decode(&mut encoded)
            .expect("a re-encoded frame decodes");
        assert_eq!(decoded.as_ref(), Some(&frame));
        assert!(encoded.is_empty());
    }
});
