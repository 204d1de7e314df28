//! Body compression: none, gzip, snappy, zstd, lz4.
//!
//! Each codec is a cargo feature (`gzip`, `snappy`, `zstd`, `lz4`, or `compression` for all),
//! so a service pays only for the codecs it uses. A body arriving in a codec this build lacks
//! fails that one call with a clear error. Decompression is bounded: a body that would inflate
//! past the limit (the receiver's `max_frame_size`) is refused before it is all in memory.

use bytes::Bytes;

pub use crate::body::Compression;

use crate::body::{Body, BodyError};

/// Bodies smaller than this go uncompressed unless a caller sets its own threshold: below
/// about a kilobyte, compression saves a few bytes and costs more time than it saves.
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 1024;

impl Compression {
    fn disabled(self) -> BodyError {
        BodyError::Disabled {
            what: match self {
                Compression::Gzip => "compression gzip",
                Compression::Snappy => "compression snappy",
                Compression::Zstd => "compression zstd",
                _ => "compression lz4",
            },
            feature: self.feature(),
        }
    }

    /// Compresses `body`.
    pub fn compress(self, body: &[u8]) -> Result<Bytes, BodyError> {
        if self == Compression::None {
            return Ok(Bytes::copy_from_slice(body));
        }
        let corrupt = |reason: String| BodyError::Corrupt {
            compression: self,
            reason,
        };
        let _ = &corrupt;
        let packed: Result<Vec<u8>, BodyError> = match self {
            #[cfg(feature = "gzip")]
            Compression::Gzip => {
                use std::io::Write;
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 2),
                    flate2::Compression::fast(),
                );
                encoder
                    .write_all(body)
                    .and_then(|()| encoder.finish())
                    .map_err(|e| corrupt(e.to_string()))
            }
            #[cfg(feature = "snappy")]
            Compression::Snappy => snap::raw::Encoder::new()
                .compress_vec(body)
                .map_err(|e| corrupt(e.to_string())),
            #[cfg(feature = "zstd")]
            Compression::Zstd => zstd::bulk::compress(body, 1).map_err(|e| corrupt(e.to_string())),
            #[cfg(feature = "lz4")]
            Compression::Lz4 => Ok(lz4_flex::block::compress_prepend_size(body)),
            _ => Err(self.disabled()),
        };
        packed.map(Bytes::from)
    }

    /// Decompresses `body`, refusing output larger than `limit` bytes.
    pub fn decompress(self, body: &[u8], limit: usize) -> Result<Bytes, BodyError> {
        if self == Compression::None {
            if body.len() > limit {
                return Err(BodyError::TooLarge {
                    compression: self,
                    limit,
                });
            }
            return Ok(Bytes::copy_from_slice(body));
        }
        let corrupt = |reason: String| BodyError::Corrupt {
            compression: self,
            reason,
        };
        let too_large = || BodyError::TooLarge {
            compression: self,
            limit,
        };
        let _ = (&corrupt, &too_large);
        let plain: Result<Vec<u8>, BodyError> = match self {
            #[cfg(feature = "gzip")]
            Compression::Gzip => gunzip(body, limit).map_err(|e| match e {
                Gunzip::TooLarge => too_large(),
                Gunzip::Corrupt(reason) => corrupt(reason),
            }),
            #[cfg(feature = "snappy")]
            Compression::Snappy => match snap::raw::decompress_len(body) {
                Err(e) => Err(corrupt(e.to_string())),
                Ok(size) if size > limit => Err(too_large()),
                Ok(_) => snap::raw::Decoder::new()
                    .decompress_vec(body)
                    .map_err(|e| corrupt(e.to_string())),
            },
            #[cfg(feature = "zstd")]
            Compression::Zstd => match zstd::zstd_safe::get_frame_content_size(body) {
                // A header's content size is believed only once the frame's blocks check out
                // to its end: random bytes after the magic are corrupt, not too large.
                Ok(Some(size)) if size > limit as u64 => {
                    match zstd::zstd_safe::find_frame_compressed_size(body) {
                        Ok(_) => Err(too_large()),
                        Err(code) => Err(corrupt(zstd::zstd_safe::get_error_name(code).to_owned())),
                    }
                }
                _ => zstd::stream::read::Decoder::with_buffer(body)
                    .and_then(|mut decoder| {
                        // A frame may ask for a window far larger than its content (libzstd
                        // allows 128 MiB by default): allow no more than the limit needs.
                        decoder.window_log_max(zstd_window_log(limit))?;
                        Ok(decoder)
                    })
                    .map_err(|e| corrupt(e.to_string()))
                    .and_then(|decoder| {
                        read_bounded(decoder, limit)
                            .map_err(|e| e.into_body_error(too_large, corrupt))
                    }),
            },
            #[cfg(feature = "lz4")]
            Compression::Lz4 => match body.first_chunk::<4>() {
                None => Err(corrupt("missing the 4-byte size prefix".into())),
                Some(size) if u32::from_le_bytes(*size) as usize > limit => Err(too_large()),
                // LZ4 inflates at most about 255 times; a larger declared size is a lie that
                // would only make the decoder reserve memory.
                Some(size)
                    if u32::from_le_bytes(*size) as usize
                        > body.len().saturating_mul(255).saturating_add(16) =>
                {
                    Err(corrupt(format!(
                        "declares {} bytes from a {}-byte block",
                        u32::from_le_bytes(*size),
                        body.len()
                    )))
                }
                Some(size) => {
                    let declared = u32::from_le_bytes(*size) as usize;
                    lz4_flex::block::decompress_size_prepended(body)
                        .map_err(|e| corrupt(e.to_string()))
                        .and_then(|plain| {
                            // The size is exact: a block that ends short of it is corrupt.
                            if plain.len() == declared {
                                Ok(plain)
                            } else {
                                Err(corrupt(format!(
                                    "declares {declared} bytes but decompresses to {}",
                                    plain.len()
                                )))
                            }
                        })
                }
            },
            _ => Err(self.disabled()),
        };
        plain.map(Bytes::from)
    }
}

/// Which codec to use for outgoing bodies, and from what size on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompressionPolicy {
    pub(crate) compression: Compression,
    pub(crate) threshold: usize,
}

impl CompressionPolicy {
    /// Never compresses.
    pub(crate) const NONE: CompressionPolicy = CompressionPolicy {
        compression: Compression::None,
        threshold: usize::MAX,
    };

    /// Compresses a body, given as [`Body::parts`] gives it (the second part empty for a body
    /// in one piece), when it is at least the threshold and compression pays: the codec used
    /// and the compressed body, or `None` when the body goes as it is.
    #[inline] // the common case, nothing to try, is a comparison where the call is built
    pub(crate) fn apply(
        self,
        (head, tail): (&Bytes, &Bytes),
    ) -> Result<Option<(Compression, Bytes)>, BodyError> {
        if self.compression == Compression::None || head.len() + tail.len() < self.threshold {
            return Ok(None);
        }
        self.compress_parts(head, tail)
    }

    /// [`apply`](CompressionPolicy::apply) once compression is to be tried, out of line: the
    /// parts joined (a copy only when there are two), then compressed.
    fn compress_parts(
        self,
        head: &Bytes,
        tail: &Bytes,
    ) -> Result<Option<(Compression, Bytes)>, BodyError> {
        self.compress(&Body::from_parts(head.clone(), tail.clone()).into_bytes())
    }

    /// Compresses `body`, unless that does not make it smaller.
    fn compress(self, body: &[u8]) -> Result<Option<(Compression, Bytes)>, BodyError> {
        let packed = self.compression.compress(body)?;
        if packed.len() >= body.len() {
            return Ok(None);
        }
        Ok(Some((self.compression, packed)))
    }
}

#[cfg(feature = "zstd")]
enum Bounded {
    TooLarge,
    Io(std::io::Error),
}

#[cfg(feature = "zstd")]
impl Bounded {
    fn into_body_error(
        self,
        too_large: impl FnOnce() -> BodyError,
        corrupt: impl FnOnce(String) -> BodyError,
    ) -> BodyError {
        match self {
            Bounded::TooLarge => too_large(),
            Bounded::Io(error) => corrupt(error.to_string()),
        }
    }
}

/// Why a gzip member did not decode.
#[cfg(feature = "gzip")]
enum Gunzip {
    TooLarge,
    Corrupt(String),
}

/// Decodes the first gzip member of `body` (RFC 1952), at most `limit` bytes of it, checking
/// its trailer: a CRC-32 and an ISIZE that disagree with the data are told apart.
#[cfg(feature = "gzip")]
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, Gunzip> {
    use std::io::Read;
    let corrupt = |reason: &str| Gunzip::Corrupt(reason.to_owned());
    let deflated = gzip_header(body).ok_or_else(|| corrupt("bad or truncated gzip header"))?;
    let mut decoder = flate2::bufread::DeflateDecoder::new(deflated);
    let mut plain = Vec::new();
    (&mut decoder)
        .take(limit as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(|error| Gunzip::Corrupt(error.to_string()))?;
    if plain.len() > limit {
        return Err(Gunzip::TooLarge);
    }
    // The decoder stopped at the end of the DEFLATE data: the trailer follows.
    let trailer = decoder.into_inner();
    let Some((crc, isize)) = trailer.first_chunk::<8>().map(|t| {
        (
            u32::from_le_bytes([t[0], t[1], t[2], t[3]]),
            u32::from_le_bytes([t[4], t[5], t[6], t[7]]),
        )
    }) else {
        return Err(corrupt("the gzip trailer (CRC-32 and ISIZE) is missing"));
    };
    let mut computed = flate2::Crc::new();
    computed.update(&plain);
    if computed.sum() != crc {
        return Err(Gunzip::Corrupt(format!(
            "CRC-32 mismatch: the trailer says {crc:#010x}, the data gives {:#010x}",
            computed.sum()
        )));
    }
    // ISIZE is the length modulo 2^32.
    if plain.len() as u32 != isize {
        return Err(Gunzip::Corrupt(format!(
            "ISIZE mismatch: the trailer says {isize} bytes, the data is {} bytes",
            plain.len()
        )));
    }
    Ok(plain)
}

/// The DEFLATE data after a gzip member's header, or `None` if the header is bad or cut short.
#[cfg(feature = "gzip")]
fn gzip_header(body: &[u8]) -> Option<&[u8]> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    let (fixed, mut rest) = body.split_first_chunk::<10>()?;
    // Magic, method 8 (deflate), no reserved flag bits.
    if fixed[..3] != [0x1f, 0x8b, 8] || fixed[3] & 0xe0 != 0 {
        return None;
    }
    let flags = fixed[3];
    if flags & FEXTRA != 0 {
        let (len, after) = rest.split_first_chunk::<2>()?;
        rest = after.get(usize::from(u16::from_le_bytes(*len))..)?;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let end = rest.iter().position(|&byte| byte == 0)?;
            rest = &rest[end + 1..];
        }
    }
    if flags & FHCRC != 0 {
        rest = rest.get(2..)?;
    }
    Some(rest)
}

/// The largest zstd window (as a power of two) a body of at most `limit` bytes needs: zstd's
/// minimum (2^10) at least, its default maximum for decoders (2^27) at most.
#[cfg(feature = "zstd")]
fn zstd_window_log(limit: usize) -> u32 {
    limit
        .max(1)
        .next_power_of_two()
        .trailing_zeros()
        .clamp(10, 27)
}

/// Reads `reader` to its end, giving up as soon as it yields more than `limit` bytes.
#[cfg(feature = "zstd")]
fn read_bounded(reader: impl std::io::Read, limit: usize) -> Result<Vec<u8>, Bounded> {
    use std::io::Read;
    let mut plain = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(Bounded::Io)?;
    if plain.len() > limit {
        return Err(Bounded::TooLarge);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> impl Iterator<Item = Compression> {
        Compression::ALL.into_iter().filter(|c| c.is_enabled())
    }

    fn sample() -> Vec<u8> {
        (0..8192u32).flat_map(|i| (i % 97).to_le_bytes()).collect()
    }

    #[test]
    fn every_enabled_codec_round_trips() {
        for compression in enabled() {
            let body = sample();
            let packed = compression.compress(&body).unwrap();
            let plain = compression.decompress(&packed, body.len()).unwrap();
            assert_eq!(plain, body, "{compression}");
        }
    }

    #[test]
    fn output_past_the_limit_is_refused() {
        for compression in enabled().filter(|c| *c != Compression::None) {
            let packed = compression.compress(&vec![0u8; 1 << 20]).unwrap();
            let err = compression.decompress(&packed, 4096).unwrap_err();
            assert!(
                matches!(err, BodyError::TooLarge { limit: 4096, .. }),
                "{compression}: {err}"
            );
        }
    }

    #[test]
    fn corrupt_bodies_are_typed_errors() {
        for compression in enabled().filter(|c| *c != Compression::None) {
            let mut packed = compression.compress(&sample()).unwrap().to_vec();
            let middle = packed.len() / 2;
            packed.truncate(middle);
            let err = compression.decompress(&packed, 1 << 20).unwrap_err();
            assert!(
                matches!(err, BodyError::Corrupt { .. } | BodyError::TooLarge { .. }),
                "{compression}: {err}"
            );
            let err = compression
                .decompress(b"\xff\xfe garbage", 1 << 20)
                .unwrap_err();
            assert!(
                matches!(err, BodyError::Corrupt { .. } | BodyError::TooLarge { .. }),
                "{compression}: {err}"
            );
        }
    }

    #[test]
    fn policy_skips_small_and_incompressible_bodies() {
        let Some(compression) = enabled().find(|c| *c != Compression::None) else {
            return;
        };
        let policy = CompressionPolicy {
            compression,
            threshold: 1024,
        };
        let whole = |bytes: Vec<u8>| Body::from(bytes);
        let apply = |body: &Body| policy.apply(body.parts()).unwrap();
        assert!(apply(&whole(vec![0; 100])).is_none());
        let (used, packed) = apply(&whole(vec![0; 4096])).unwrap();
        assert_eq!(used, compression);
        assert!(packed.len() < 4096);
        // A body in two parts is compressed as their bytes in one piece, and only past the
        // threshold counted over both.
        let split = |head: usize, tail: usize| {
            Body::from_parts(Bytes::from(vec![0; head]), Bytes::from(vec![0; tail]))
        };
        assert!(apply(&split(3, 1000)).is_none());
        let (_, packed_split) = apply(&split(3, 4093)).unwrap();
        assert_eq!(packed_split, packed);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                // xorshift64: bytes with no pattern a codec could use.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 56) as u8
            })
            .collect();
        assert!(apply(&whole(noise)).is_none());
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn a_zstd_frame_asking_for_a_window_beyond_the_limit_is_refused() {
        let plain = vec![7u8; 3000];
        // A streaming frame declares its window instead of its size: ask for 64 MiB.
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        encoder.window_log(26).unwrap();
        std::io::Write::write_all(&mut encoder, &plain).unwrap();
        let greedy = encoder.finish().unwrap();
        let error = Compression::Zstd.decompress(&greedy, 4096).unwrap_err();
        assert!(matches!(error, BodyError::Corrupt { .. }), "{error}");
        // A body the limit allows still inflates.
        let packed = Compression::Zstd.compress(&plain).unwrap();
        assert_eq!(Compression::Zstd.decompress(&packed, 3000).unwrap(), plain);
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_headers_with_optional_fields_decode_and_later_members_are_ignored() {
        use std::io::Write;
        let plain = sample();
        let mut encoder = flate2::GzBuilder::new()
            .filename("body.bin")
            .comment("a comment")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&plain).unwrap();
        let mut member = encoder.finish().unwrap();
        member.extend_from_slice(b"trailing bytes after the first member");
        let limit = plain.len();
        assert_eq!(Compression::Gzip.decompress(&member, limit).unwrap(), plain);
        // Cut short in the trailer, in the data, and in the header: corrupt, never a panic.
        for cut in [member.len() - 40, member.len() / 2, 12, 3] {
            let error = Compression::Gzip
                .decompress(&member[..cut], limit)
                .unwrap_err();
            assert!(matches!(error, BodyError::Corrupt { .. }), "{cut}: {error}");
        }
    }

    #[test]
    fn ids_round_trip() {
        for compression in Compression::ALL {
            assert_eq!(Compression::from_id(compression.id()).unwrap(), compression);
        }
        assert_eq!(
            Compression::from_id(12).unwrap_err().to_string(),
            "unknown compression id 12"
        );
    }
}
