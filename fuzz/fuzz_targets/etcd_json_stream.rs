//! Arbitrary bytes through prpc-etcd's `ObjectSplitter`, which splits the body of an etcd
//! JSON-gateway stream (`/v3/watch`) into its objects. The first input byte chooses the
//! object size limit (0 to 4,080 bytes), the second the size of the pieces the rest is fed
//! in (1 to 256 bytes, as HTTP chunks would cut it).
//!
//! Checks, besides "never panics":
//! - fed whole or in pieces, the same objects come out, then the same error (if any);
//! - what it holds while waiting for more never exceeds the limit;
//! - every object is a piece of the input, in order, starting with `{` and ending with `}`
//!   or `]` (brackets are counted, not matched: serde_json refuses `{]` afterwards);
//! - where serde_json reads the input as a whitespace-separated run of objects, each within
//!   the limit, the splitter yields exactly those objects.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prpc_etcd::__fuzz::{ObjectSplitter, SplitError};

/// Everything the splitter yields for `input` fed in pieces of `piece` bytes, and how it
/// ended (an error, or none with the bytes still held).
fn split(input: &[u8], piece: usize, limit: usize) -> (Vec<Vec<u8>>, Result<usize, SplitError>) {
    let mut splitter = ObjectSplitter::new(limit);
    let mut objects = Vec::new();
    for chunk in input.chunks(piece) {
        splitter.extend(chunk);
        loop {
            match splitter.next_object() {
                Ok(Some(object)) => objects.push(object.to_vec()),
                Ok(None) => break,
                Err(error) => return (objects, Err(error)),
            }
        }
        assert!(
            splitter.buffered() <= limit,
            "{} bytes held past the limit {limit}",
            splitter.buffered()
        );
    }
    (objects, Ok(splitter.buffered()))
}

fuzz_target!(|data: &[u8]| {
    let [limit, piece, stream @ ..] = data else {
        return;
    };
    let limit = usize::from(*limit) * 16;
    let piece = 1 + usize::from(*piece);

    let whole = split(stream, stream.len().max(1), limit);
    let pieces = split(stream, piece, limit);
    assert_eq!(whole, pieces, "cut in pieces of {piece}");

    let mut from = 0;
    for object in &whole.0 {
        assert_eq!(object.first(), Some(&b'{'));
        assert!(matches!(object.last(), Some(b'}' | b']')));
        assert!(object.len() <= limit);
        let at = stream[from..]
            .windows(object.len())
            .position(|window| window == object.as_slice())
            .expect("an object that is not in the input");
        from += at + object.len();
    }

    // serde_json as the reference, where it reads the whole input as objects.
    let values: Result<Vec<serde_json::Value>, _> = serde_json::Deserializer::from_slice(stream)
        .into_iter()
        .collect();
    if let Ok(values) = values {
        let objects_within_limit = values.iter().all(|value| {
            value.is_object() && serde_json::to_vec(value).is_ok_and(|text| text.len() <= limit)
        });
        // serde_json's own text is no longer than the input's (it drops whitespace), so
        // compare lengths on the input's pieces instead: only when every object fits.
        if objects_within_limit && whole.1.is_ok() {
            let parsed: Vec<serde_json::Value> = whole
                .0
                .iter()
                .map(|object| serde_json::from_slice(object).expect("a valid object"))
                .collect();
            assert_eq!(parsed, values);
        }
    }
});
