//! Arbitrary bytes through the gzip path of `Compression::decompress` alone (prpc parses the
//! gzip header and trailer itself and inflates through flate2's raw DEFLATE decoder), checked
//! against flate2's own gzip reader. The first input byte chooses the limit (0 to 65,280 bytes,
//! in steps of 256); the second chooses what the rest is:
//!
//! - even: the rest as received from the network;
//! - odd: the rest as plain data, gzipped (header fields written here, DEFLATE by flate2) with
//!   the header fields and level the selector's bits choose, then decoded (so deep paths past the header and trailer are
//!   common, not only garbage).

#![no_main]

use std::cell::RefCell;
use std::io::Read;

use libfuzzer_sys::fuzz_target;
use prpc::{BodyError, Compression};

const FHCRC: u8 = 0x02;

/// flate2's gzip reader: `Some(plain)` if `body` starts with a valid gzip member of at most
/// `limit` bytes, `None` if it is invalid or larger.
fn reference(body: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut plain = Vec::new();
    flate2::bufread::GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut plain)
        .ok()?;
    (plain.len() <= limit).then_some(plain)
}

/// Checks prpc's reading of `body` and returns it.
fn check(body: &[u8], limit: usize) -> Result<bytes::Bytes, BodyError> {
    let ours = Compression::Gzip.decompress(body, limit);
    match &ours {
        Ok(plain) => assert!(plain.len() <= limit, "{} > {limit}", plain.len()),
        Err(BodyError::Corrupt { .. } | BodyError::TooLarge { .. }) => {}
        Err(other) => panic!("unexpected error {other}"),
    }
    let theirs = reference(body, limit);
    // What flate2 reads as valid gzip within the limit, prpc reads the same.
    if let Some(plain) = &theirs {
        match &ours {
            Ok(ours) => assert_eq!(&ours[..], &plain[..], "different bytes"),
            Err(error) => panic!("flate2 reads {} bytes, prpc refuses: {error}", plain.len()),
        }
    }
    // And the other way: prpc checks no header CRC (flate2 does), else what prpc accepts
    // flate2 accepts too.
    if let Ok(plain) = &ours {
        let header_crc = body.get(3).is_some_and(|flags| flags & FHCRC != 0);
        if !header_crc {
            assert_eq!(
                theirs.as_deref(),
                Some(&plain[..]),
                "prpc reads {} bytes flate2 does not",
                plain.len()
            );
        }
    }
    ours
}

thread_local! {
    /// One raw DEFLATE compressor a level, reset for each input: a fresh one costs a zeroed
    /// allocation of some 300 KB, which made this target several times slower.
    static COMPRESSORS: RefCell<Vec<flate2::Compress>> = RefCell::new(
        (0..10).map(|level| flate2::Compress::new(flate2::Compression::new(level), false)).collect(),
    );
}

/// `plain` as one gzip member (RFC 1952) with the header fields and level `mode` chooses,
/// written here (flate2's `GzBuilder` cannot reuse a compressor), so that prpc's header parser
/// is checked against flate2's reader and not against a writer sharing its reading of the RFC.
fn gzip(plain: &[u8], mode: u8) -> Vec<u8> {
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    let flags = mode & (FHCRC | FEXTRA | FNAME | FCOMMENT);
    let mut packed = vec![0x1f, 0x8b, 8, flags, mode, 0, 0, 0, 0, 255];
    if flags & FEXTRA != 0 {
        let extra = &plain[..plain.len().min(40)];
        packed.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        packed.extend_from_slice(extra);
    }
    if flags & FNAME != 0 {
        packed.extend_from_slice(b"name.bin\0");
    }
    if flags & FCOMMENT != 0 {
        packed.extend_from_slice(b"a comment\0");
    }
    if flags & FHCRC != 0 {
        let mut crc = flate2::Crc::new();
        crc.update(&packed);
        packed.extend_from_slice(&(crc.sum() as u16).to_le_bytes());
    }
    COMPRESSORS.with_borrow_mut(|compressors| {
        let compressor = &mut compressors[usize::from(mode >> 4) % 10];
        compressor.reset();
        packed.reserve(plain.len() + plain.len() / 8 + 64);
        loop {
            let before = compressor.total_in();
            let input = &plain[before as usize..];
            if packed.len() == packed.capacity() {
                packed.reserve(256);
            }
            let status = compressor
                .compress_vec(input, &mut packed, flate2::FlushCompress::Finish)
                .expect("compressing to a Vec");
            if status == flate2::Status::StreamEnd {
                break;
            }
        }
    });
    let mut crc = flate2::Crc::new();
    crc.update(plain);
    packed.extend_from_slice(&crc.sum().to_le_bytes());
    packed.extend_from_slice(&(plain.len() as u32).to_le_bytes());
    if mode & 0x20 != 0 {
        // A later member or trailing bytes: ignored.
        packed.extend_from_slice(&plain[..plain.len().min(8)]);
    }
    packed
}

fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let limit = usize::from(limit) * 256;
    let Some((&mode, rest)) = rest.split_first() else {
        check(&[], limit).ok();
        return;
    };
    if mode & 1 == 0 {
        check(rest, limit).ok();
        return;
    }
    // What a writer makes of the plain bytes comes back whole, or is too large.
    match check(&gzip(rest, mode), limit) {
        Ok(plain) => assert_eq!(&plain[..], rest),
        Err(BodyError::TooLarge { .. }) => assert!(rest.len() > limit),
        Err(error) => panic!("flate2's gzip of {} bytes refused: {error}", rest.len()),
    }
});
