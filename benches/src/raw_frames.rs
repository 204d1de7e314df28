//! The framing of the raw baselines (`raw_echo`, `raw_stream`): a 12-byte header, request id
//! (u64) and body length (u32), both big-endian, then the body. The least framing that can
//! carry concurrent calls or streams, and no framework.

use bytes::{BufMut, BytesMut};

/// Request id (u64) and body length (u32).
pub const HEADER: usize = 12;
/// Spare room kept in a read buffer.
pub const READ_CHUNK: usize = 64 * 1024;

/// The id and body length of the frame at the start of `bytes`, once its header is there.
pub fn header(bytes: &[u8]) -> Option<(u64, usize)> {
    let header = bytes.get(..HEADER)?;
    let id = u64::from_be_bytes(header[..8].try_into().expect("eight bytes"));
    let length = u32::from_be_bytes(header[8..].try_into().expect("four bytes"));
    Some((id, length as usize))
}

/// Appends the header of a frame with a body of `length` bytes.
pub fn put_header(buffer: &mut BytesMut, id: u64, length: usize) {
    buffer.put_u64(id);
    buffer.put_u32(u32::try_from(length).expect("body under 4 GiB"));
}

/// Appends a whole frame.
pub fn put_frame(buffer: &mut BytesMut, id: u64, body: &[u8]) {
    buffer.reserve(HEADER + body.len());
    put_header(buffer, id, body.len());
    buffer.put_slice(body);
}

/// Makes room for the rest of a partial frame (or a chunk) before the next read.
pub fn reserve_for_next(input: &mut BytesMut) {
    let wanted = match header(input) {
        Some((_, length)) => (HEADER + length).saturating_sub(input.len()),
        None => 0,
    };
    let wanted = wanted.max(READ_CHUNK / 8);
    if input.capacity() - input.len() < wanted {
        input.reserve(wanted.max(READ_CHUNK));
    }
}

/// Takes the complete frame at the front of `input`, if there is one: its id and its body.
pub fn take_frame(input: &mut BytesMut) -> Option<(u64, BytesMut)> {
    let (id, length) = header(input)?;
    if input.len() < HEADER + length {
        return None;
    }
    let mut frame = input.split_to(HEADER + length);
    bytes::Buf::advance(&mut frame, HEADER);
    Some((id, frame))
}
