//! Unsigned LEB128 varints, as used by every variable-width header field.
//!
//! Seven bits per byte, least significant group first, high bit set on every byte but the
//! last. A `u64` takes at most 10 bytes; a varint that runs longer, or whose tenth byte carries
//! bits beyond the 64th, is an overflow.

use bytes::BufMut;

/// Longest encoding of a `u64`.
pub(crate) const MAX_LEN: usize = 10;

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The buffer ended before the last byte.
    Truncated,
    /// More than 64 bits of value.
    Overflow,
}

/// Appends `value` to `dst`, with one copy into `dst` (byte-at-a-time `put_u8` on a
/// `BytesMut` costs a call per byte).
#[inline]
pub(crate) fn put(dst: &mut impl BufMut, value: u64) {
    if value < 0x80 {
        dst.put_u8(value as u8);
        return;
    }
    let mut scratch = [0u8; MAX_LEN];
    let len = write(&mut scratch, value);
    dst.put_slice(&scratch[..len]);
}

/// Writes `value` at the start of `out`, returning the bytes written (any byte after those
/// may be overwritten too).
#[inline]
pub(crate) fn write(out: &mut [u8; MAX_LEN], value: u64) -> usize {
    if value < 0x80 {
        out[0] = value as u8;
        return 1;
    }
    // The first eight bytes in one word, instead of a loop over the bytes (a request id, a
    // snowflake id, takes nine).
    let low = scatter(value & LOW_56);
    let (first_eight, rest) = out.split_at_mut(8);
    if value <= LOW_56 {
        let len = len(value);
        // Every byte but the last carries the continuation bit.
        let continuation = CONTINUATION & ((1u64 << (8 * (len - 1))) - 1);
        first_eight.copy_from_slice(&(low | continuation).to_le_bytes());
        return len;
    }
    first_eight.copy_from_slice(&(low | CONTINUATION).to_le_bytes());
    let high = value >> 56;
    if high < 0x80 {
        rest[0] = high as u8;
        9
    } else {
        rest[0] = (high as u8) | 0x80;
        rest[1] = (high >> 7) as u8;
        10
    }
}

/// The low 56 bits of a `u64`: what eight varint bytes carry.
const LOW_56: u64 = (1 << 56) - 1;

/// Spreads the eight seven-bit groups of a 56-bit value over the eight bytes of a word, least
/// significant group in the lowest byte (the inverse of [`gather`]).
#[inline]
fn scatter(value: u64) -> u64 {
    let halves = (value & 0x0fff_ffff) | (value & 0x00ff_ffff_f000_0000) << 4;
    let quarters = (halves & 0x0000_3fff_0000_3fff) | (halves & 0x0fff_c000_0fff_c000) << 2;
    (quarters & 0x007f_007f_007f_007f) | (quarters & 0x3f80_3f80_3f80_3f80) << 1
}

/// Bytes `put` writes for `value`.
#[inline]
pub(crate) fn len(value: u64) -> usize {
    // One byte per started group of seven significant bits; zero still takes a byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a varint from the front of `bytes`: its value and how many bytes it took.
#[inline(always)] // the one-byte case, most varints, is a compare and a load where it is read
pub(crate) fn decode(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
    if let Some(&first) = bytes.first()
        && first < 0x80
    {
        return Ok((u64::from(first), 1));
    }
    decode_long(bytes)
}

/// [`decode`] of a varint longer than one byte (or of nothing).
fn decode_long(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
    if let Some(word) = bytes.first_chunk::<8>() {
        return decode_word(u64::from_le_bytes(*word), &bytes[8..]);
    }
    decode_bytewise(bytes)
}

/// The high bit of every byte of a word.
const CONTINUATION: u64 = 0x8080_8080_8080_8080;

/// [`decode`] for a varint whose first eight bytes are `word` (little-endian), followed by
/// `rest`: finds the last byte and gathers the seven-bit groups with a few shifts, instead of
/// a loop over the bytes (a request id, a snowflake id, takes nine).
#[inline]
fn decode_word(word: u64, rest: &[u8]) -> Result<(u64, usize), VarintError> {
    let last_bytes = !word & CONTINUATION;
    if last_bytes == 0 {
        // All eight bytes continue: the ninth (and tenth) byte finish it.
        let low = gather(word);
        return match rest {
            [ninth, ..] if ninth & 0x80 == 0 => Ok((low | u64::from(*ninth) << 56, 9)),
            [ninth, tenth, ..] if tenth & 0x80 == 0 && *tenth <= 1 => Ok((
                low | u64::from(ninth & 0x7f) << 56 | u64::from(*tenth) << 63,
                10,
            )),
            [_, _, ..] => Err(VarintError::Overflow),
            _ => Err(VarintError::Truncated),
        };
    }
    let len = (last_bytes.trailing_zeros() as usize + 1) / 8;
    let used = if len == 8 {
        word
    } else {
        word & ((1u64 << (8 * len)) - 1)
    };
    Ok((gather(used), len))
}

/// Packs the seven-bit groups of up to eight varint bytes (little-endian in `word`) into one
/// value.
#[inline]
fn gather(word: u64) -> u64 {
    let groups = word & 0x7f7f_7f7f_7f7f_7f7f;
    let pairs = (groups & 0x007f_007f_007f_007f) | (groups & 0x7f00_7f00_7f00_7f00) >> 1;
    let quads = (pairs & 0x0000_3fff_0000_3fff) | (pairs & 0x3fff_0000_3fff_0000) >> 2;
    (quads & 0x0000_0000_0fff_ffff) | (quads & 0x0fff_ffff_0000_0000) >> 4
}

/// [`decode`] a byte at a time (for a buffer shorter than eight bytes).
fn decode_bytewise(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().take(MAX_LEN).enumerate() {
        let group = u64::from(byte & 0x7f);
        if index == MAX_LEN - 1 && group > 1 {
            return Err(VarintError::Overflow);
        }
        value |= group << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, index + 1));
        }
    }
    if bytes.len() < MAX_LEN {
        Err(VarintError::Truncated)
    } else {
        Err(VarintError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use proptest::prelude::*;

    /// The plain byte-at-a-time reading of the format, which `decode` must agree with.
    fn get_bytewise(src: &mut impl Buf) -> Result<u64, VarintError> {
        let mut value = 0u64;
        for index in 0..MAX_LEN {
            if !src.has_remaining() {
                return Err(VarintError::Truncated);
            }
            let byte = src.get_u8();
            let group = u64::from(byte & 0x7f);
            if index == MAX_LEN - 1 && group > 1 {
                return Err(VarintError::Overflow);
            }
            value |= group << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(VarintError::Overflow)
    }

    #[test]
    fn known_encodings() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0x00]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            put(&mut out, *value);
            assert_eq!(&out, bytes, "encoding {value}");
            assert_eq!(len(*value), bytes.len(), "length of {value}");
            assert_eq!(decode(bytes), Ok((*value, bytes.len())));
        }
    }

    #[test]
    fn rejects_truncated_and_overflowing_input() {
        assert_eq!(decode(&[]), Err(VarintError::Truncated));
        assert_eq!(decode(&[0x80, 0x80]), Err(VarintError::Truncated));
        let eleven = [0xff; 11];
        assert_eq!(decode(&eleven), Err(VarintError::Overflow));
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(decode(&too_big), Err(VarintError::Overflow));
    }

    proptest! {
        #[test]
        fn slice_and_bytewise_reads_agree_on_any_input(bytes in proptest::collection::vec(any::<u8>(), 0..14)) {
            let fast = decode(&bytes);
            prop_assert_eq!(decode_bytewise(&bytes), fast);
            let mut chained = (&bytes[..bytes.len() / 2]).chain(&bytes[bytes.len() / 2..]);
            let slow = get_bytewise(&mut chained).map(|value| (value, bytes.len() - chained.remaining()));
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn reads_any_value_followed_by_anything(value: u64, tail in proptest::collection::vec(any::<u8>(), 0..12)) {
            let mut bytes = Vec::new();
            put(&mut bytes, value);
            let len = bytes.len();
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(decode(&bytes), Ok((value, len)));
        }

        #[test]
        fn writes_what_a_byte_at_a_time_encoder_writes(value: u64, shift in 0..64u32) {
            // Values of every length, 1 to 10 bytes.
            let value = value >> shift;
            let mut expected = Vec::new();
            let mut rest = value;
            while rest >= 0x80 {
                expected.push((rest as u8) | 0x80);
                rest >>= 7;
            }
            expected.push(rest as u8);
            let mut out = [0u8; MAX_LEN];
            let written = write(&mut out, value);
            prop_assert_eq!(&out[..written], &expected[..]);
        }

        #[test]
        fn round_trips(value: u64) {
            let mut out = Vec::new();
            put(&mut out, value);
            prop_assert_eq!(out.len(), len(value));
            prop_assert_eq!(decode(&out), Ok((value, out.len())));
        }
    }
}
