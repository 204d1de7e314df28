use std::fmt;

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

use super::head::HeadOut;
use super::{WireError, varint};

/// The most metadata pairs a frame may carry. A receiver refuses a frame with more
/// (`resource_exhausted` on a server's goaway), and a prpc sender refuses to send one.
pub const MAX_METADATA_PAIRS: usize = 256;

/// The most bytes a frame's metadata pairs may take on the wire: keys, values and their
/// length prefixes, not the count in front of them. Refused like too many pairs.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Key/value pairs carried beside a call or a reply (trace ids, auth tokens, tenant names).
///
/// Keys are UTF-8 text, values are bytes. Order is kept and keys may repeat. The pairs are
/// held as they travel on the wire, in one buffer: decoded metadata is a shared slice of its
/// frame (reading it copies nothing and allocates nothing per pair), and a lookup walks the
/// pairs, which is cheap for the few a call carries ([`MAX_METADATA_PAIRS`] at most).
///
/// ```
/// let mut metadata = prpc::Metadata::new();
/// metadata.insert("tenant", "acme");
/// assert_eq!(metadata.get("tenant").as_deref(), Some(&b"acme"[..]));
/// assert_eq!(metadata.iter().next().map(|(key, _)| key), Some("tenant"));
/// ```
#[derive(Clone, Default)]
pub struct Metadata {
    /// `None` when empty: boxed, so that the many calls without metadata carry one word for
    /// it, which keeps frames, requests and replies small enough to move without a `memcpy`.
    pairs: Option<Box<Pairs>>,
}

/// Non-empty metadata: the pairs as they are encoded on the wire (each key and value with its
/// varint length), without the count, which is kept apart.
#[derive(Clone)]
struct Pairs {
    encoded: Bytes,
    count: usize,
}

impl Metadata {
    /// Empty metadata (allocates nothing).
    pub const fn new() -> Self {
        Metadata { pairs: None }
    }

    /// Appends a pair. The pairs share one buffer, which grows in place while nothing else
    /// holds it (metadata decoded from a frame is copied out of the frame the first time).
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl AsRef<[u8]>) {
        let (key, value) = (key.as_ref().as_bytes(), value.as_ref());
        let pairs = self.pairs.get_or_insert_with(|| {
            Box::new(Pairs {
                encoded: Bytes::new(),
                count: 0,
            })
        });
        let mut encoded = BytesMut::from(std::mem::take(&mut pairs.encoded));
        encoded.reserve(2 * varint::MAX_LEN + key.len() + value.len());
        varint::put(&mut encoded, key.len() as u64);
        encoded.extend_from_slice(key);
        varint::put(&mut encoded, value.len() as u64);
        encoded.extend_from_slice(value);
        pairs.encoded = encoded.freeze();
        pairs.count += 1;
    }

    /// The first value under `key` (a shared slice: no copy).
    pub fn get(&self, key: &str) -> Option<Bytes> {
        let encoded = self.encoded()?;
        let (_, value) = Walk::new(encoded).find(|(k, _)| *k == key.as_bytes())?;
        Some(encoded.slice_ref(value))
    }

    /// All pairs in order; each value is a shared slice (no copy).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Bytes)> {
        let encoded = self.encoded();
        encoded.into_iter().flat_map(|encoded| {
            Walk::new(encoded).map(move |(key, value)| {
                // Keys were checked to be UTF-8 when the pair was made or decoded.
                let key = std::str::from_utf8(key).unwrap_or_default();
                (key, encoded.slice_ref(value))
            })
        })
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.as_ref().map_or(0, |pairs| pairs.count)
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_none()
    }

    /// Appends every pair of `other`.
    pub fn extend(&mut self, other: &Metadata) {
        for (key, value) in other.iter() {
            self.insert(key, value);
        }
    }

    /// The encoded pairs, when there are any.
    fn encoded(&self) -> Option<&Bytes> {
        self.pairs.as_ref().map(|pairs| &pairs.encoded)
    }

    /// Bytes the pairs take on the wire, without their count.
    pub(crate) fn encoded_len(&self) -> usize {
        self.encoded().map_or(0, Bytes::len)
    }

    /// Whether a receiver would accept this metadata: the error it would refuse it with.
    pub(super) fn check_limits(&self) -> Result<(), WireError> {
        let count = self.len();
        if count > MAX_METADATA_PAIRS {
            return Err(WireError::TooManyMetadataPairs {
                count: count as u64,
                max: MAX_METADATA_PAIRS,
            });
        }
        if self.encoded_len() > MAX_METADATA_BYTES {
            return Err(WireError::MetadataTooLarge {
                max: MAX_METADATA_BYTES,
            });
        }
        Ok(())
    }

    pub(super) fn encode(&self, dst: &mut impl HeadOut) {
        dst.put_varint(self.len() as u64);
        if let Some(encoded) = self.encoded() {
            dst.put_slice(encoded);
        }
    }

    /// Reads a metadata block from the frame being decoded: checks every pair (and the
    /// limits) and keeps the pairs as one slice of the frame.
    pub(crate) fn decode(src: &mut Fields<'_>) -> Result<Self, WireError> {
        let count = src.varint("metadata count")?;
        if count == 0 {
            return Ok(Metadata::new());
        }
        // Each pair takes at least two bytes, so a count larger than that is a lie.
        if count > (src.remaining() / 2) as u64 {
            return Err(WireError::Truncated { field: "metadata" });
        }
        if count > MAX_METADATA_PAIRS as u64 {
            return Err(WireError::TooManyMetadataPairs {
                count,
                max: MAX_METADATA_PAIRS,
            });
        }
        let start = src.position();
        for _ in 0..count {
            let key = src.slice("metadata key")?;
            if std::str::from_utf8(key).is_err() {
                return Err(WireError::InvalidUtf8 {
                    field: "metadata key",
                });
            }
            src.slice("metadata value")?;
            if src.position() - start > MAX_METADATA_BYTES {
                return Err(WireError::MetadataTooLarge {
                    max: MAX_METADATA_BYTES,
                });
            }
        }
        Ok(Metadata {
            pairs: Some(Box::new(Pairs {
                encoded: src.shared(start),
                count: count as usize,
            })),
        })
    }
}

/// Walks encoded pairs (which were checked when they were made), yielding key and value.
struct Walk<'a> {
    rest: &'a [u8],
}

impl<'a> Walk<'a> {
    fn new(encoded: &'a [u8]) -> Self {
        Walk { rest: encoded }
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let (len, used) = varint::decode(self.rest).ok()?;
        let end = used.checked_add(usize::try_from(len).ok()?)?;
        let field = self.rest.get(used..end)?;
        self.rest = &self.rest[end..];
        Some(field)
    }
}

impl<'a> Iterator for Walk<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        Some((self.field()?, self.field()?))
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut metadata = Metadata::new();
        for (key, value) in iter {
            metadata.insert(key, value);
        }
        metadata
    }
}

impl PartialEq for Metadata {
    /// Pair by pair (two encodings of the same pairs may differ in their varints).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Metadata {}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Reads the header fields of one frame: a cursor over its bytes, which hands out shared
/// slices of the frame's buffer only for the fields kept.
pub(crate) struct Fields<'a> {
    frame: &'a Bytes,
    position: usize,
}

impl<'a> Fields<'a> {
    pub(super) fn new(frame: &'a Bytes) -> Self {
        Fields { frame, position: 0 }
    }

    /// Bytes not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.frame.len() - self.position
    }

    /// Where the next field starts.
    pub(super) fn position(&self) -> usize {
        self.position
    }

    #[inline]
    pub(super) fn varint(&mut self, field: &'static str) -> Result<u64, WireError> {
        let (value, used) =
            varint::decode(&self.frame[self.position..]).map_err(|error| match error {
                varint::VarintError::Truncated => WireError::Truncated { field },
                varint::VarintError::Overflow => WireError::VarintOverflow { field },
            })?;
        self.position += used;
        Ok(value)
    }

    pub(super) fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        u32::try_from(self.varint(field)?).map_err(|_| WireError::VarintOverflow { field })
    }

    /// A length-prefixed field, borrowed.
    fn slice(&mut self, field: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.varint(field)?;
        if len > self.remaining() as u64 {
            return Err(WireError::Truncated { field });
        }
        let start = self.position;
        self.position += len as usize;
        Ok(&self.frame[start..self.position])
    }

    /// The bytes from `start` to the position, shared with the frame.
    fn shared(&self, start: usize) -> Bytes {
        self.frame.slice(start..self.position)
    }

    /// A length-prefixed field.
    pub(super) fn bytes(&mut self, field: &'static str) -> Result<Bytes, WireError> {
        let field = self.slice(field)?;
        Ok(if field.is_empty() {
            Bytes::new()
        } else {
            self.frame.slice_ref(field)
        })
    }

    /// A length-prefixed UTF-8 field.
    pub(super) fn text(&mut self, field: &'static str) -> Result<ByteString, WireError> {
        ByteString::try_from(self.bytes(field)?).map_err(|_| WireError::InvalidUtf8 { field })
    }
}
