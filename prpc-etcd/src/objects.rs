//! Splits the body of a streaming call to etcd's JSON gateway (`/v3/watch`,
//! `/v3/lease/keepalive`) into its JSON objects.
//!
//! The gateway writes one JSON object per message (`{"result":{...}}`, or `{"error":{...}}`
//! when the stream fails), separated by newlines, in HTTP chunks that bear no relation to the
//! objects' boundaries: one chunk may hold half an object or several. [`ObjectSplitter`]
//! finds the boundaries by tracking strings, escapes and bracket depth, without parsing
//! values: serde_json does that once an object is whole, and refuses what is not JSON
//! (brackets are counted, not matched, so `{"a":[}]` comes out as one object and fails
//! there). It scans each byte once, however
//! the objects are cut, and refuses an object larger than its limit, so a peer that never
//! closes its braces costs at most the limit plus one chunk of memory.

use bytes::{Bytes, BytesMut};

/// The largest object [`ObjectSplitter::default`] accepts: a watch response carries one
/// revision's events, and a revision of thousands of registrations fits well within.
pub(crate) const DEFAULT_MAX_OBJECT: usize = 4 * 1024 * 1024;

/// Why a stream of JSON objects cannot be read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// An object grew past the limit before it was closed.
    #[error("a JSON object in the stream exceeds {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Something other than whitespace or an object at the top level of the stream.
    #[error("byte 0x{byte:02x} outside a JSON object in the stream")]
    Unexpected {
        /// The byte found.
        byte: u8,
    },
}

/// Splits a byte stream into top-level JSON objects. Feed it with
/// [`extend`](ObjectSplitter::extend), take objects with [`next_object`](ObjectSplitter::next_object).
#[derive(Debug)]
pub struct ObjectSplitter {
    buffer: BytesMut,
    /// How many bytes of `buffer` have been scanned.
    scanned: usize,
    /// Open braces and brackets of the current object (0 between objects).
    depth: usize,
    in_string: bool,
    escaped: bool,
    limit: usize,
}

impl Default for ObjectSplitter {
    fn default() -> Self {
        ObjectSplitter::new(DEFAULT_MAX_OBJECT)
    }
}

impl ObjectSplitter {
    /// A splitter that refuses objects over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        ObjectSplitter {
            buffer: BytesMut::new(),
            scanned: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            limit,
        }
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole object, `None` if more bytes are needed first. After an error the
    /// stream cannot be read on (the error repeats).
    pub fn next_object(&mut self) -> Result<Option<Bytes>, SplitError> {
        while self.scanned < self.buffer.len() {
            let byte = self.buffer[self.scanned];
            if self.depth == 0 {
                // Between objects: skip whitespace, so that an object starts at offset 0.
                match byte {
                    b' ' | b'\t' | b'\r' | b'\n' => {
                        let _ = self.buffer.split_to(1);
                        continue;
                    }
                    b'{' => self.depth = 1,
                    _ => return Err(SplitError::Unexpected { byte }),
                }
                self.scanned = 1;
                if self.scanned > self.limit {
                    return Err(SplitError::TooLarge { limit: self.limit });
                }
                continue;
            }
            self.scanned += 1;
            if self.scanned > self.limit {
                return Err(SplitError::TooLarge { limit: self.limit });
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
            } else {
                match byte {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            let object = self.buffer.split_to(self.scanned).freeze();
                            self.scanned = 0;
                            return Ok(Some(object));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(None)
    }

    /// Bytes held: the part of an object not yet closed.
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Whether the stream stopped between objects (whitespace aside): a stream that ends
    /// with a partial object was cut.
    pub fn is_between_objects(&self) -> bool {
        self.depth == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(splitter: &mut ObjectSplitter) -> Result<Vec<Bytes>, SplitError> {
        let mut out = Vec::new();
        while let Some(object) = splitter.next_object()? {
            out.push(object);
        }
        Ok(out)
    }

    #[test]
    fn objects_cut_anywhere_come_out_whole() {
        let stream = br#"{"result":{"a":"}{\"\\"}}
 {"result":{"events":[{"kv":{}}]}}
"#;
        for cut in 0..=stream.len() {
            let mut splitter = ObjectSplitter::default();
            splitter.extend(&stream[..cut]);
            let mut objects = split_all(&mut splitter).unwrap();
            splitter.extend(&stream[cut..]);
            objects.extend(split_all(&mut splitter).unwrap());
            assert_eq!(objects.len(), 2, "cut at {cut}");
            assert_eq!(&objects[0][..], br#"{"result":{"a":"}{\"\\"}}"#);
            assert_eq!(&objects[1][..], br#"{"result":{"events":[{"kv":{}}]}}"#);
            assert!(splitter.is_between_objects());
            assert_eq!(splitter.buffered(), 0);
        }
    }

    #[test]
    fn an_object_over_the_limit_is_refused() {
        let mut splitter = ObjectSplitter::new(16);
        splitter.extend(br#"{"a":"0123456789"}"#);
        assert_eq!(
            splitter.next_object(),
            Err(SplitError::TooLarge { limit: 16 })
        );

        let mut open = ObjectSplitter::new(16);
        open.extend(b"{");
        open.extend(&[b' '; 32]);
        assert_eq!(open.next_object(), Err(SplitError::TooLarge { limit: 16 }));
    }

    #[test]
    fn garbage_between_objects_is_refused() {
        let mut splitter = ObjectSplitter::default();
        splitter.extend(b"{}x");
        assert_eq!(&splitter.next_object().unwrap().unwrap()[..], b"{}");
        assert_eq!(
            splitter.next_object(),
            Err(SplitError::Unexpected { byte: b'x' })
        );
        let mut splitter = ObjectSplitter::default();
        splitter.extend(b"]");
        assert_eq!(
            splitter.next_object(),
            Err(SplitError::Unexpected { byte: b']' })
        );
    }
}
