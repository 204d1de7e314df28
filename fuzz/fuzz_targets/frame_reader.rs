//! Arbitrary bytes through a connection's `FrameReader` (`prpc::__fuzz::read_frames`): the
//! stream arrives in chunks of one size, into a small read buffer, while the frames' bodies
//! are held for a while and then dropped, so that the reader moves between buffers, reuses
//! spares (and lets go of them, as a client's keepalive check has it do) and carries partial
//! frames along. Input: a byte choosing the frame limit (64 to 2,104 bytes), one the read
//! buffer (16 to 271 bytes), one the chunk size (1 to 256), one whether the reader keeps
//! spares (its top bit) and how many hold bytes follow (0 to 15), the hold bytes, then the
//! stream.
//!
//! Checks (beside those `read_frames` makes: held frames never change, no buffer outgrows a
//! frame and a read nor grows by itself, no spares unless asked for): the reader yields
//! exactly the frames, then the error, that `FrameCodec` decodes from the whole stream at
//! once.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use prpc::wire::{Frame, FrameCodec};
use tokio_util::codec::Decoder;

/// The frames and the ending of the whole stream, decoded in one piece.
fn decode_whole(stream: &[u8], max_frame_size: u32) -> (Vec<Frame>, Option<String>) {
    let mut codec = FrameCodec::with_max_frame_size(max_frame_size);
    let mut buffer = BytesMut::from(stream);
    let mut frames = Vec::new();
    loop {
        match codec.decode_eof(&mut buffer) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(error) => return (frames, Some(error.to_string())),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[limit, read_buffer, chunk, holds], rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    // The top bit: a reader that keeps spares (a client's) or not (a server's).
    let spares = holds & 0x80 != 0;
    let holds = usize::from(holds % 16).min(rest.len());
    let (holds, stream) = rest.split_at(holds);
    let max_frame_size = 64 + u32::from(limit) * 8;
    let read_buffer = 16 + usize::from(read_buffer);
    let chunks: Vec<&[u8]> = stream.chunks(1 + usize::from(chunk)).collect();
    let (frames, ended) =
        prpc::__fuzz::read_frames(&chunks, holds, max_frame_size, read_buffer, spares);
    let (expected, expected_end) = decode_whole(stream, max_frame_size);
    assert_eq!(frames, expected);
    assert_eq!(ended, expected_end);
});
