//! Byte strings as bytes, in every serde format.
//!
//! serde writes a `Vec<u8>` as a sequence of integers (a MessagePack array of up to 2 bytes an
//! element, a JSON array of numbers), and `Bytes` as bytes, which JSON again writes as an array
//! of numbers. For a method's argument or result that is a byte string, the generated code goes
//! through here instead: a MessagePack `bin`, a base64 string (RFC 4648, with padding) in JSON
//! and any other human-readable format. Decoding takes either form, and the array of integers
//! of older peers too.
//!
//! Where the format hands over bytes borrowed from the body (MessagePack), a `Bytes` is a slice
//! of the received body, not a copy: [`decode_from_body`] makes the body the current one for the
//! duration of the decoding, and the visitor slices it. Decoding is synchronous, so a thread
//! local is exactly as long-lived as the decoding and needs no lock.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

#[cfg(feature = "msgpack")]
use crate::body::LARGE_PART;
use crate::body::{Body, BodyError, Format};

/// Elements of an array-of-integers byte string reserved up front at most: the array's own
/// length is the peer's word, and the body bounds the rest.
const MAX_RESERVED: usize = 64 * 1024;

thread_local! {
    /// The body being decoded by [`decode_from_body`] on this thread.
    static BODY: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Whether `T` is a byte string this module writes as bytes: `Vec<u8>` or `Bytes`.
fn is_byte_string<T: Any>() -> bool {
    let id = std::any::TypeId::of::<T>();
    id == std::any::TypeId::of::<Vec<u8>>() || id == std::any::TypeId::of::<Bytes>()
}

/// Serializes `value` as bytes if it is a `Vec<u8>` or `Bytes`, else as serde would.
///
/// The macro applies it (`#[serde(with = ...)]`) to arguments whose type is spelled `Vec<u8>`
/// or `Bytes`; the check on the type itself keeps a user's own type named `Bytes` as it is.
pub fn serialize<T, S>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    T: Serialize + Any,
    S: Serializer,
{
    let any: &dyn Any = value;
    let bytes: &[u8] = if let Some(vec) = any.downcast_ref::<Vec<u8>>() {
        vec
    } else if let Some(bytes) = any.downcast_ref::<Bytes>() {
        bytes
    } else {
        return value.serialize(serializer);
    };
    if serializer.is_human_readable() {
        #[cfg(feature = "json")]
        {
            use base64::Engine as _;
            return serializer
                .serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
        }
    }
    serializer.serialize_bytes(bytes)
}

/// Deserializes a `Vec<u8>` or `Bytes` from bytes, a base64 string (in a human-readable
/// format) or an array of integers; any other type as serde would.
pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: Deserialize<'de> + Any,
    D: Deserializer<'de>,
{
    if !is_byte_string::<T>() {
        return T::deserialize(deserializer);
    }
    let human_readable = deserializer.is_human_readable();
    let bytes = deserializer.deserialize_any(ByteStringVisitor { human_readable })?;
    let mut slot: Option<T> = None;
    let any: &mut dyn Any = &mut slot;
    if let Some(vec) = any.downcast_mut::<Option<Vec<u8>>>() {
        *vec = Some(bytes.into_vec());
    } else if let Some(shared) = any.downcast_mut::<Option<Bytes>>() {
        *shared = Some(bytes.into_bytes());
    }
    slot.ok_or_else(|| de::Error::custom("byte string of an unexpected type"))
}

/// A value whose `Serialize` writes it as [`serialize`] does: a method's result as its body.
pub struct AsBytes<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + Any> Serialize for AsBytes<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, serializer)
    }
}

/// A value read as [`deserialize`] reads it: a method's result from its body.
pub struct FromBytes<T>(pub T);

impl<'de, T: Deserialize<'de> + Any> Deserialize<'de> for FromBytes<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(FromBytes)
    }
}

/// Decodes `body` as `T` in `format`, with `body` the current body, so that a `Bytes` field
/// decoded through this module is a slice of it where the format lends its bytes.
pub fn decode_from_body<T: serde::de::DeserializeOwned>(
    format: Format,
    body: &Bytes,
) -> Result<T, BodyError> {
    let _current = CurrentBody::enter(body.clone());
    format.decode(body)
}

/// Encodes a method's byte-string result (or stream item) as its body: what
/// `format.encode(&AsBytes(value))` writes, byte for byte. In MessagePack a `Vec<u8>` or
/// `Bytes` is written straight into the encoding arena (a `bin` header and the bytes), with
/// no serializer; anything else goes through serde.
pub fn encode<T: Serialize + Any>(format: Format, value: &T) -> Result<Bytes, BodyError> {
    #[cfg(feature = "msgpack")]
    if format == Format::MsgPack
        && let Some(bytes) = as_byte_slice(value)
    {
        return Ok(super::encode_raw(|out| super::put_bin(out, bytes)));
    }
    format.encode(&AsBytes(value))
}

/// Encodes a method's byte-string result as its reply body, as [`encode`] does, but a large
/// `Bytes` or `Vec<u8>` (1 KiB or more) in MessagePack is not copied: the body is the `bin`
/// header, then the bytes themselves (the `Vec`'s own buffer, made a `Bytes`) as the body's
/// second part (see [`Body`]).
pub fn encode_body<T: Serialize + Any>(format: Format, value: T) -> Result<Body, BodyError> {
    #[cfg(feature = "msgpack")]
    let value = if format == Format::MsgPack {
        match into_large_shared(value) {
            Ok(shared) => return Ok(split_bin(None, shared)),
            Err(value) => value,
        }
    } else {
        value
    };
    encode(format, &value).map(Body::from)
}

/// A MessagePack `bin` of `shared` in two parts: its header (after the fixstr key `name`
/// of a fixmap of one entry, for arguments), then `shared` itself. Out of line: the common
/// small body never pays for it where its stub is inlined.
#[cfg(feature = "msgpack")]
#[inline(never)]
fn split_bin(name: Option<&str>, shared: Bytes) -> Body {
    let head = super::encode_raw(|out| {
        if let Some(name) = name {
            put_key(out, name);
        }
        super::put_bin_header(out, shared.len());
    });
    Body::from_parts(head, shared)
}

/// A fixmap of one entry, and its key, the fixstr `name` (under 32 bytes).
#[inline]
#[cfg(feature = "msgpack")]
fn put_key(out: &mut bytes::BytesMut, name: &str) {
    out.extend_from_slice(&[0x81, 0xa0 | name.len() as u8]);
    out.extend_from_slice(name.as_bytes());
}

/// Encodes the arguments of a method whose one argument is a byte string, named `name`: in
/// MessagePack, what serde writes for the generated arguments struct (a map of one entry,
/// `name` to a `bin`), written without a serializer, a large `Bytes` or `Vec<u8>` not copied
/// (as in [`encode_body`]). `Err(value)` where that does not apply (another format, a name of
/// 32 bytes or more, a value that is not a `Vec<u8>` or `Bytes`): the caller then encodes the
/// struct through serde.
pub fn encode_arg<T: Any>(format: Format, name: &str, value: T) -> Result<Body, T> {
    #[cfg(feature = "msgpack")]
    if format == Format::MsgPack && name.len() < 32 {
        let value = match into_large_shared(value) {
            Ok(shared) => return Ok(split_bin(Some(name), shared)),
            Err(value) => value,
        };
        return match as_byte_slice(&value) {
            Some(bytes) => Ok(Body::from(super::encode_raw(|out| {
                put_key(out, name);
                super::put_bin(out, bytes);
            }))),
            None => Err(value),
        };
    }
    let _ = (format, name);
    Err(value)
}

/// `value` as a `Bytes` when it is a `Bytes` or a `Vec<u8>` (its buffer, not copied) large
/// enough to go as its own part of a body and short enough for a `bin`; else `value` back. A
/// `Vec` with more than as much again spare as it holds is copied instead: the body may live
/// on (a retry, a hedge), and would keep all of that memory.
#[cfg(feature = "msgpack")]
fn into_large_shared<T: Any>(value: T) -> Result<Bytes, T> {
    if as_byte_slice(&value).is_none_or(|bytes| bytes.len() < LARGE_PART) {
        return Err(value);
    }
    let mut slot = Some(value);
    let any: &mut dyn Any = &mut slot;
    if let Some(shared) = any.downcast_mut::<Option<Bytes>>() {
        return Ok(shared.take().expect("the value was put in"));
    }
    if let Some(vec) = any.downcast_mut::<Option<Vec<u8>>>()
        && vec
            .as_ref()
            .is_some_and(|vec| vec.capacity() - vec.len() <= vec.len())
    {
        return Ok(Bytes::from(vec.take().expect("the value was put in")));
    }
    Err(slot.expect("the value was put in"))
}

/// Decodes a method's byte-string result (or stream item) from its body, as
/// [`decode_from_body`] of [`FromBytes<T>`] does. A MessagePack body that is exactly one `bin`
/// is taken without a deserializer (a `Bytes` as a slice of the body); any other body (the
/// array of integers of older peers, JSON's base64, a malformed body) goes through serde.
pub fn decode<T: serde::de::DeserializeOwned + Any>(
    format: Format,
    body: &Bytes,
) -> Result<T, BodyError> {
    #[cfg(feature = "msgpack")]
    if format == Format::MsgPack
        && let Some(bytes) = whole_bin(body)
        && let Some(value) = from_shared(body.slice_ref(bytes))
    {
        return Ok(value);
    }
    decode_from_body::<FromBytes<T>>(format, body).map(|decoded| decoded.0)
}

/// Decodes the arguments [`encode_arg`] encodes: `Some` when `body` is, in MessagePack, a map
/// of one entry whose key is `name` and whose value is one `bin` (a `Bytes` then a slice of
/// the body). `None` for any other body, which the caller decodes through serde (and which
/// serde may accept: more fields, a key written otherwise, an array of integers).
pub fn decode_arg<T: Any>(format: Format, body: &Bytes, name: &str) -> Option<T> {
    #[cfg(feature = "msgpack")]
    if format == Format::MsgPack && name.len() < 32 {
        let rest = body
            .strip_prefix(&[0x81, 0xa0 | name.len() as u8])?
            .strip_prefix(name.as_bytes())?;
        let bytes = whole_bin(rest)?;
        return from_shared(body.slice_ref(bytes));
    }
    let _ = (format, body, name);
    None
}

/// `value`'s bytes if it is a `Vec<u8>` or `Bytes` that a `bin` can hold (under 4 GiB).
#[cfg(feature = "msgpack")]
fn as_byte_slice<T: Any>(value: &T) -> Option<&[u8]> {
    let any: &dyn Any = value;
    let bytes: &[u8] = if let Some(vec) = any.downcast_ref::<Vec<u8>>() {
        vec
    } else {
        any.downcast_ref::<Bytes>()?
    };
    u32::try_from(bytes.len()).is_ok().then_some(bytes)
}

/// A `Vec<u8>` or `Bytes` made of `bytes` (`None` for any other `T`).
#[cfg(feature = "msgpack")]
fn from_shared<T: Any>(bytes: Bytes) -> Option<T> {
    let mut slot: Option<T> = None;
    let any: &mut dyn Any = &mut slot;
    if let Some(shared) = any.downcast_mut::<Option<Bytes>>() {
        *shared = Some(bytes);
    } else if let Some(vec) = any.downcast_mut::<Option<Vec<u8>>>() {
        *vec = Some(Vec::from(&bytes[..]));
    }
    slot
}

/// The bytes of `body` when it is exactly one MessagePack `bin` (bin 8, 16 or 32) and nothing
/// after it.
#[cfg(feature = "msgpack")]
fn whole_bin(body: &[u8]) -> Option<&[u8]> {
    let (&marker, rest) = body.split_first()?;
    let (length, rest) = match marker {
        0xc4 => {
            let (&length, rest) = rest.split_first()?;
            (usize::from(length), rest)
        }
        0xc5 => {
            let (length, rest) = rest.split_first_chunk::<2>()?;
            (usize::from(u16::from_be_bytes(*length)), rest)
        }
        0xc6 => {
            let (length, rest) = rest.split_first_chunk::<4>()?;
            (u32::from_be_bytes(*length) as usize, rest)
        }
        _ => return None,
    };
    (rest.len() == length).then_some(rest)
}

/// Makes a body the current one until dropped, then restores the one before (a decoding
/// inside a decoding, as a `Deserialize` impl may do, keeps its own).
struct CurrentBody {
    previous: Option<Bytes>,
}

impl CurrentBody {
    fn enter(body: Bytes) -> Self {
        let previous = BODY.with(|current| current.borrow_mut().replace(body));
        CurrentBody { previous }
    }
}

impl Drop for CurrentBody {
    fn drop(&mut self) {
        let previous = self.previous.take();
        BODY.with(|current| *current.borrow_mut() = previous);
    }
}

/// `borrowed` as a slice of the current body when it lies within it, else a copy.
fn share_or_copy(borrowed: &[u8]) -> Bytes {
    BODY.with(|current| match &*current.borrow() {
        Some(body) if within(body, borrowed) => body.slice_ref(borrowed),
        _ => Bytes::copy_from_slice(borrowed),
    })
}

fn within(body: &[u8], part: &[u8]) -> bool {
    let (start, end) = (body.as_ptr() as usize, body.as_ptr() as usize + body.len());
    let part_start = part.as_ptr() as usize;
    part_start >= start && part_start + part.len() <= end && !part.is_empty()
}

/// A decoded byte string, owned in the form it came in, so neither target type pays for a
/// conversion it does not need.
enum ByteString {
    Shared(Bytes),
    Owned(Vec<u8>),
}

impl ByteString {
    fn into_vec(self) -> Vec<u8> {
        match self {
            ByteString::Shared(bytes) => Vec::from(bytes),
            ByteString::Owned(vec) => vec,
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            ByteString::Shared(bytes) => bytes,
            ByteString::Owned(vec) => Bytes::from(vec),
        }
    }
}

struct ByteStringVisitor {
    human_readable: bool,
}

impl<'de> Visitor<'de> for ByteStringVisitor {
    type Value = ByteString;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a byte string (bytes, base64 text or an array of integers 0-255)")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, value: &'de [u8]) -> Result<ByteString, E> {
        Ok(ByteString::Shared(share_or_copy(value)))
    }

    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<ByteString, E> {
        Ok(ByteString::Owned(value.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, value: Vec<u8>) -> Result<ByteString, E> {
        Ok(ByteString::Owned(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ByteString, E> {
        if !self.human_readable {
            // A binary format's string: its UTF-8 bytes are the bytes.
            return Ok(ByteString::Owned(value.as_bytes().to_vec()));
        }
        decode_base64(value).map(ByteString::Owned)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteString, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_RESERVED));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(ByteString::Owned(bytes))
    }

    fn visit_unit<E: de::Error>(self) -> Result<ByteString, E> {
        Err(E::invalid_type(de::Unexpected::Unit, &self))
    }
}

#[cfg(feature = "json")]
fn decode_base64<E: de::Error>(text: &str) -> Result<Vec<u8>, E> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|error| E::custom(format_args!("byte string is not valid base64: {error}")))
}

#[cfg(not(feature = "json"))]
fn decode_base64<E: de::Error>(_text: &str) -> Result<Vec<u8>, E> {
    Err(E::custom(
        "byte string as base64 text needs cargo feature \"json\" of prpc",
    ))
}

/// The entry point of the `byte_string` fuzz target: `body` decoded as a byte string in
/// `format`, borrowing from it where the format allows, else the typed error.
#[cfg(feature = "fuzzing")]
///
/// The serde-free paths ([`decode`], [`decode_arg`]) are checked against serde on the same body
/// here: where one takes a body, it must read what serde reads (a panic otherwise, which the
/// fuzzer reports).
pub fn fuzz_decode(format: Format, body: &Bytes) -> Result<(Bytes, Vec<u8>), BodyError> {
    #[derive(Deserialize)]
    struct Args {
        #[serde(with = "self")]
        payload: Bytes,
    }
    if let Some(fast) = decode_arg::<Bytes>(format, body, "payload") {
        let serde = decode_from_body::<Args>(format, body).map(|args| args.payload);
        assert_eq!(
            serde.ok(),
            Some(fast),
            "decode_arg read what serde does not"
        );
    }
    let shared = decode_from_body::<FromBytes<Bytes>>(format, body)?.0;
    let owned = format.decode::<FromBytes<Vec<u8>>>(body)?.0;
    let fast = decode::<Bytes>(format, body)?;
    assert_eq!(fast, shared, "decode read other bytes than serde");
    Ok((shared, owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Args {
        #[serde(with = "self")]
        payload: Bytes,
        #[serde(with = "self")]
        data: Vec<u8>,
        count: u32,
    }

    fn args() -> Args {
        Args {
            payload: Bytes::from_static(b"\x00\x01\xff hello"),
            data: vec![0, 200, 255],
            count: 7,
        }
    }

    /// The msgpack map entry for `key` in `body`: the bytes after the key's fixstr.
    fn after_key<'a>(body: &'a [u8], key: &str) -> &'a [u8] {
        let mut needle = vec![0xa0 | key.len() as u8];
        needle.extend_from_slice(key.as_bytes());
        let at = body
            .windows(needle.len())
            .position(|window| window == needle)
            .expect("key in body");
        &body[at + needle.len()..]
    }

    #[test]
    fn msgpack_writes_bin_for_vec_and_bytes() {
        let body = Format::MsgPack.encode(&args()).unwrap();
        // bin 8 (0xc4), then the length.
        assert_eq!(&after_key(&body, "payload")[..2], &[0xc4, 9]);
        assert_eq!(&after_key(&body, "data")[..5], &[0xc4, 3, 0, 200, 255]);
        assert_eq!(Format::MsgPack.decode::<Args>(&body).unwrap(), args());
    }

    #[test]
    fn json_writes_base64() {
        let body = Format::Json.encode(&args()).unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"payload":"AAH/IGhlbGxv","data":"AMj/","count":7}"#
        );
        assert_eq!(Format::Json.decode::<Args>(&body).unwrap(), args());
    }

    #[test]
    fn the_array_of_integers_of_older_peers_is_accepted() {
        #[derive(Serialize)]
        struct Older {
            payload: Vec<u8>,
            data: Vec<u8>,
            count: u32,
        }
        let older = Older {
            payload: b"\x00\x01\xff hello".to_vec(),
            data: vec![0, 200, 255],
            count: 7,
        };
        for format in [Format::MsgPack, Format::Json] {
            let body = format.encode(&older).unwrap();
            assert_eq!(format.decode::<Args>(&body).unwrap(), args(), "{format}");
        }
        let json = br#"{"payload":[0,1,255,32,104,101,108,108,111],"data":[0,200,255],"count":7}"#;
        assert_eq!(Format::Json.decode::<Args>(json).unwrap(), args());
    }

    #[test]
    fn bytes_decoded_from_a_body_are_a_slice_of_it() {
        let body = Format::MsgPack.encode(&args()).unwrap();
        let decoded: Args = decode_from_body(Format::MsgPack, &body).unwrap();
        assert_eq!(decoded, args());
        let range = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
        assert!(range.contains(&(decoded.payload.as_ptr() as usize)));
        // The body is no longer current once decoded.
        assert!(BODY.with(|current| current.borrow().is_none()));
        // Not from a body: a copy.
        let copied: Args = Format::MsgPack.decode(&body).unwrap();
        assert!(!range.contains(&(copied.payload.as_ptr() as usize)));
    }

    #[test]
    fn a_result_travels_as_bytes_too() {
        let value = Bytes::from_static(b"\x01\x02");
        let body = Format::MsgPack.encode(&AsBytes(&value)).unwrap();
        assert_eq!(&body[..], &[0xc4, 2, 1, 2]);
        let body = Format::Json.encode(&AsBytes(&vec![1u8, 2])).unwrap();
        assert_eq!(&body[..], br#""AQI=""#);
        let decoded: FromBytes<Vec<u8>> = decode_from_body(Format::Json, &body).unwrap();
        assert_eq!(decoded.0, vec![1, 2]);
        // Another type is left as serde writes it.
        let body = Format::Json.encode(&AsBytes(&vec![1u16, 2])).unwrap();
        assert_eq!(&body[..], b"[1,2]");
    }

    #[test]
    fn bad_input_is_a_decode_error() {
        for (format, body) in [
            (Format::Json, &br#""not base64!""#[..]),
            (Format::Json, b"[1,256]"),
            (Format::Json, b"{}"),
            (Format::MsgPack, &[0xc4, 9, 1][..]),
            (Format::MsgPack, &[0xdc, 0xff, 0xff][..]),
            (Format::MsgPack, &[0xc0][..]),
        ] {
            let error = decode_from_body::<FromBytes<Bytes>>(format, &Bytes::copy_from_slice(body))
                .err()
                .unwrap_or_else(|| panic!("{format} {body:?} decoded"));
            assert!(matches!(error, BodyError::Decode { .. }), "{error}");
        }
    }

    /// The arguments struct the macro generates for `fn m(&self, payload: Bytes)`.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct OneArg<T: Serialize + Any + for<'a> Deserialize<'a>> {
        #[serde(with = "self")]
        payload: T,
    }

    /// Lengths on each side of every `bin` header's bounds.
    const LENGTHS: [usize; 8] = [0, 1, 64, 255, 256, 65_535, 65_536, 1 << 20];

    /// Whether `body`'s second part is `shared` itself.
    fn is_shared(body: &Body, shared: &Bytes) -> bool {
        let tail = body.parts().1;
        !tail.is_empty() && tail.as_ptr() == shared.as_ptr() && tail.len() == shared.len()
    }

    /// `vec`'s bytes in a `Vec` with room to spare (as much again), and where its buffer lies.
    fn with_spare_capacity(vec: &[u8]) -> (Vec<u8>, *const u8) {
        let mut spare = Vec::with_capacity(vec.len() * 2);
        spare.extend_from_slice(vec);
        let at = spare.as_ptr();
        (spare, at)
    }

    /// Whether `body`'s second part is the `length` bytes at `at`: a buffer taken, not copied.
    fn carries(body: &Body, at: *const u8, length: usize) -> bool {
        let tail = body.parts().1;
        length > 0 && tail.as_ptr() == at && tail.len() == length
    }

    #[test]
    fn fast_paths_write_what_serde_writes() {
        for length in LENGTHS {
            let vec: Vec<u8> = (0..length).map(|i| i as u8).collect();
            let shared = Bytes::from(vec.clone());
            for format in [Format::MsgPack, Format::Json] {
                let serde = format.encode(&AsBytes(&shared)).unwrap();
                assert_eq!(encode(format, &shared).unwrap(), serde, "{format} {length}");
                assert_eq!(encode(format, &vec).unwrap(), serde, "{format} {length}");
                assert_eq!(
                    encode_body(format, shared.clone()).unwrap(),
                    serde,
                    "{format} {length}"
                );
                assert_eq!(
                    encode_body(format, vec.clone()).unwrap(),
                    serde,
                    "{format} {length}"
                );
                // A large `Bytes` or `Vec` goes as the body's own second part, not copied (the
                // `Vec`'s buffer, whatever its spare capacity); a short byte string or another
                // format, in one piece.
                let split = format == Format::MsgPack && length >= LARGE_PART;
                let (spare, spare_at) = with_spare_capacity(&vec);
                assert_eq!(
                    is_shared(&encode_body(format, shared.clone()).unwrap(), &shared),
                    split
                );
                assert_eq!(
                    carries(&encode_body(format, spare).unwrap(), spare_at, length),
                    split
                );
                let args = format
                    .encode(&OneArg {
                        payload: shared.clone(),
                    })
                    .unwrap();
                if format == Format::MsgPack {
                    assert_eq!(encode_arg(format, "payload", shared.clone()).unwrap(), args);
                    assert_eq!(encode_arg(format, "payload", vec.clone()).unwrap(), args);
                    let arg = encode_arg(format, "payload", shared.clone()).unwrap();
                    assert_eq!(is_shared(&arg, &shared), split);
                    let (spare, spare_at) = with_spare_capacity(&vec);
                    let arg = encode_arg(format, "payload", spare).unwrap();
                    assert_eq!(arg, args);
                    assert_eq!(carries(&arg, spare_at, length), split);
                    // More spare than that: copied, so the body holds only what it sends.
                    let mut roomy = Vec::with_capacity(length * 2 + 2);
                    roomy.extend_from_slice(&vec);
                    let arg = encode_arg(format, "payload", roomy).unwrap();
                    assert_eq!(arg, args);
                    assert!(arg.parts().1.is_empty());
                } else {
                    // The value comes back whole, for serde.
                    assert_eq!(encode_arg(format, "payload", vec.clone()), Err(vec.clone()));
                }
            }
        }
        // A name a fixstr cannot hold, and a type that is not a byte string, go through serde.
        assert_eq!(
            encode_arg(Format::MsgPack, &"n".repeat(32), Bytes::new()),
            Err(Bytes::new())
        );
        assert_eq!(encode_arg(Format::MsgPack, "payload", 7u32), Err(7));
    }

    #[test]
    fn fast_paths_read_what_serde_reads() {
        for length in LENGTHS {
            let vec: Vec<u8> = (0..length).map(|i| i as u8).collect();
            let shared = Bytes::from(vec.clone());
            let body = encode(Format::MsgPack, &shared).unwrap();
            let decoded: Bytes = decode(Format::MsgPack, &body).unwrap();
            assert_eq!(decoded, shared);
            // A slice of the body, not a copy.
            if length > 0 {
                assert!(within(&body, &decoded));
            }
            assert_eq!(decode::<Vec<u8>>(Format::MsgPack, &body).unwrap(), vec);

            let args = encode_arg(Format::MsgPack, "payload", shared.clone())
                .unwrap()
                .into_bytes();
            let decoded: Bytes = decode_arg(Format::MsgPack, &args, "payload").unwrap();
            assert_eq!(decoded, shared);
            assert_eq!(
                decode_arg::<Vec<u8>>(Format::MsgPack, &args, "payload").unwrap(),
                vec
            );
        }
    }

    #[test]
    fn bodies_the_fast_paths_do_not_take_go_to_serde() {
        let args = encode_arg(Format::MsgPack, "payload", Bytes::from_static(b"abc"))
            .unwrap()
            .into_bytes();
        // Another name, a trailing byte, a short body, another format.
        assert!(decode_arg::<Bytes>(Format::MsgPack, &args, "other").is_none());
        let mut longer = args.to_vec();
        longer.push(0);
        assert!(decode_arg::<Bytes>(Format::MsgPack, &Bytes::from(longer), "payload").is_none());
        let short = args.slice(..args.len() - 1);
        assert!(decode_arg::<Bytes>(Format::MsgPack, &short, "payload").is_none());
        assert!(decode_arg::<Bytes>(Format::Json, &args, "payload").is_none());
        // An older peer's array of integers is still read, through serde.
        let array = rmp_serde::to_vec(&vec![1u8, 2, 3]).unwrap();
        let decoded: Vec<u8> = decode(Format::MsgPack, &Bytes::from(array)).unwrap();
        assert_eq!(decoded, [1, 2, 3]);
        // A truncated bin is the decoding error serde reports.
        let error =
            decode::<Bytes>(Format::MsgPack, &Bytes::from_static(&[0xc4, 5, 1])).unwrap_err();
        assert!(matches!(error, BodyError::Decode { .. }), "{error}");
        // JSON's base64.
        let json = encode(Format::Json, &Bytes::from_static(b"abc")).unwrap();
        assert_eq!(&json[..], b"\"YWJj\"");
        let decoded: Bytes = decode(Format::Json, &json).unwrap();
        assert_eq!(&decoded[..], b"abc");
    }
}
