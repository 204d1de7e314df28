//! Where a frame's header is written: straight into the outgoing buffer, or, for the common
//! short header, into a fixed buffer on the stack that is then appended in one copy.

use bytes::BytesMut;

use super::{PREFIX_LEN, varint};

/// A destination for header fields.
pub(super) trait HeadOut {
    fn put_slice(&mut self, bytes: &[u8]);

    fn put_varint(&mut self, value: u64);

    /// A length-prefixed field.
    #[inline]
    fn put_bytes(&mut self, bytes: &[u8]) {
        self.put_varint(bytes.len() as u64);
        self.put_slice(bytes);
    }
}

impl HeadOut for BytesMut {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn put_varint(&mut self, value: u64) {
        varint::put(self, value);
    }
}

/// Bytes on the stack for a frame's prefix and header fields: every frame without metadata
/// and with short names and message fits (see `Frame::fits_stack_head`).
pub(super) const STACK_HEAD: usize = 128;

/// A header assembled on the stack. Varints are written in place, whole words at a time, so
/// writing one past the end of the longest header the shape check admits must still fit.
pub(super) struct StackHead {
    bytes: [u8; STACK_HEAD],
    len: usize,
}

impl StackHead {
    pub(super) fn new() -> Self {
        StackHead {
            bytes: [0; STACK_HEAD],
            len: 0,
        }
    }

    /// Bytes after the prefix.
    pub(super) fn fields_len(&self) -> usize {
        self.len - PREFIX_LEN
    }

    /// The header with its length field set.
    pub(super) fn finish(&mut self, length: u32) -> &[u8] {
        self.bytes[4..PREFIX_LEN].copy_from_slice(&length.to_be_bytes());
        &self.bytes[..self.len]
    }
}

impl HeadOut for StackHead {
    #[inline]
    fn put_slice(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        self.bytes[self.len..end].copy_from_slice(bytes);
        self.len = end;
    }

    #[inline]
    fn put_varint(&mut self, value: u64) {
        let window = &mut self.bytes[self.len..self.len + varint::MAX_LEN];
        self.len += varint::write(window.try_into().expect("MAX_LEN bytes"), value);
    }
}
