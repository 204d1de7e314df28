use std::fmt;

use bytes::Bytes;
use bytestring::ByteString;

use super::head::HeadOut;
use super::{WireError, varint};

/// Key/value pairs carried beside a call or a reply (trace ids, auth tokens, tenant names).
///
/// Keys are UTF-8 text, values are bytes. Order is kept and keys may repeat. Decoded metadata
/// shares the frame's buffer: reading it copies nothing.
///
/// ```
/// let mut metadata = prpc::Metadata::new();
/// metadata.insert("tenant", "acme");
/// assert_eq!(metadata.get("tenant").map(|value| &value[..]), Some(&b"acme"[..]));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `None` when empty (never an empty `Vec`): boxed, so that the many calls without
    /// metadata carry one word for it, which keeps frames, requests and replies small enough
    /// to move without a `memcpy` call.
    #[allow(clippy::box_collection)] // one word on the stack instead of three, on purpose
    entries: Option<Box<Vec<(ByteString, Bytes)>>>,
}

impl Metadata {
    /// Empty metadata (allocates nothing).
    pub const fn new() -> Self {
        Metadata { entries: None }
    }

    fn pairs(&self) -> &[(ByteString, Bytes)] {
        self.entries.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Appends a pair.
    pub fn insert(&mut self, key: impl Into<ByteString>, value: impl Into<Bytes>) {
        self.entries
            .get_or_insert_with(Box::default)
            .push((key.into(), value.into()));
    }

    /// The first value under `key`.
    pub fn get(&self, key: &str) -> Option<&Bytes> {
        self.pairs()
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v)
    }

    /// All pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.pairs().iter().map(|(k, v)| (&**k, v))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs().len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_none()
    }

    /// Appends every pair of `other`.
    pub fn extend(&mut self, other: &Metadata) {
        if !other.is_empty() {
            self.entries
                .get_or_insert_with(Box::default)
                .extend(other.pairs().iter().cloned());
        }
    }

    pub(super) fn encode(&self, dst: &mut impl HeadOut) {
        dst.put_varint(self.len() as u64);
        for (key, value) in self.pairs() {
            dst.put_bytes(key.as_bytes());
            dst.put_bytes(value);
        }
    }

    /// Reads a metadata block from the frame being decoded.
    pub(crate) fn decode(src: &mut Fields<'_>) -> Result<Self, WireError> {
        let count = src.varint("metadata count")?;
        if count == 0 {
            return Ok(Metadata::new());
        }
        // Each pair takes at least two bytes, so a count larger than that is a lie; checking it
        // first keeps a hostile count from reserving memory.
        if count > (src.remaining() / 2) as u64 {
            return Err(WireError::Truncated { field: "metadata" });
        }
        let mut entries = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let key = src.text("metadata key")?;
            let value = src.bytes("metadata value")?;
            entries.push((key, value));
        }
        Ok(Metadata {
            entries: Some(Box::new(entries)),
        })
    }
}

impl<K: Into<ByteString>, V: Into<Bytes>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut metadata = Metadata::new();
        for (key, value) in iter {
            metadata.insert(key, value);
        }
        metadata
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("entries", &self.pairs())
            .finish()
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

    /// A length-prefixed field.
    pub(super) fn bytes(&mut self, field: &'static str) -> Result<Bytes, WireError> {
        let len = self.varint(field)?;
        if len > self.remaining() as u64 {
            return Err(WireError::Truncated { field });
        }
        let start = self.position;
        self.position += len as usize;
        Ok(if len == 0 {
            Bytes::new()
        } else {
            self.frame.slice(start..self.position)
        })
    }

    /// A length-prefixed UTF-8 field.
    pub(super) fn text(&mut self, field: &'static str) -> Result<ByteString, WireError> {
        ByteString::try_from(self.bytes(field)?).map_err(|_| WireError::InvalidUtf8 { field })
    }
}
