//! Body formats: how argument and reply values become bytes.
//!
//! A call's format travels in the high nibble of the frame's encoding byte, and the server
//! answers in the format it was asked in. Serde types travel as JSON or MessagePack (maps with
//! named fields, so either side may add fields); prost messages travel as protobuf.

use bytes::Bytes;

pub use crate::body::Format;

pub(crate) mod byte_string;

use crate::body::BodyError;

impl Format {
    /// Encodes a serde value. JSON and MessagePack only: protobuf needs a prost message
    /// ([`Format::encode_message`]) and raw needs bytes.
    #[cfg_attr(
        not(any(feature = "json", feature = "msgpack")),
        allow(unused_variables)
    )]
    pub fn encode<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<Bytes, BodyError> {
        let encode_error = |reason: String| BodyError::Encode {
            format: self,
            reason,
        };
        match self {
            #[cfg(feature = "json")]
            Format::Json => encode_into_arena(|out| {
                serde_json::to_writer(out, value).map_err(|e| encode_error(e.to_string()))
            }),
            #[cfg(feature = "msgpack")]
            Format::MsgPack => encode_into_arena(|out| {
                let mut serializer = rmp_serde::Serializer::new(out).with_struct_map();
                value
                    .serialize(&mut serializer)
                    .map_err(|e| encode_error(e.to_string()))
            }),
            other => Err(other.unsupported_for_serde()),
        }
    }

    /// Decodes a serde value (JSON and MessagePack only).
    #[cfg_attr(
        not(any(feature = "json", feature = "msgpack")),
        allow(unused_variables)
    )]
    pub fn decode<T: serde::de::DeserializeOwned>(self, body: &[u8]) -> Result<T, BodyError> {
        let decode_error = |reason: String| BodyError::Decode {
            format: self,
            reason,
        };
        match self {
            #[cfg(feature = "json")]
            Format::Json => {
                serde_json::from_slice(body).map_err(|e| decode_error(json_error(&e, body)))
            }
            #[cfg(feature = "msgpack")]
            Format::MsgPack => rmp_serde::from_slice(body).map_err(|e| decode_error(e.to_string())),
            other => Err(other.unsupported_for_serde()),
        }
    }

    /// Encodes a prost message (protobuf only).
    #[cfg(feature = "protobuf")]
    pub fn encode_message<M: prost::Message>(self, message: &M) -> Result<Bytes, BodyError> {
        match self {
            Format::Protobuf => Ok(Bytes::from(message.encode_to_vec())),
            other => Err(BodyError::Unsupported {
                format: other,
                what: "prost messages without a JSON mapping",
            }),
        }
    }

    /// Decodes a prost message (protobuf only).
    #[cfg(feature = "protobuf")]
    pub fn decode_message<M: prost::Message + Default>(self, body: &[u8]) -> Result<M, BodyError> {
        match self {
            Format::Protobuf => M::decode(body).map_err(|e| BodyError::Decode {
                format: self,
                reason: e.to_string(),
            }),
            other => Err(BodyError::Unsupported {
                format: other,
                what: "prost messages without a JSON mapping",
            }),
        }
    }

    fn unsupported_for_serde(self) -> BodyError {
        match self {
            Format::Json if !cfg!(feature = "json") => BodyError::Disabled {
                what: "format json",
                feature: "json",
            },
            Format::MsgPack if !cfg!(feature = "msgpack") => BodyError::Disabled {
                what: "format msgpack",
                feature: "msgpack",
            },
            other => BodyError::Unsupported {
                format: other,
                what: "serde values",
            },
        }
    }
}

/// Room an encoding arena takes at a time: bodies are cut from it one after another, so small
/// bodies cost no allocation of their own. A body keeps its chunk alive (as a request body keeps
/// the read buffer it was read into); once every body cut from a chunk is gone, the chunk is
/// used again from its start.
#[cfg(any(feature = "json", feature = "msgpack"))]
const ARENA_CHUNK: usize = 16 * 1024;

#[cfg(any(feature = "json", feature = "msgpack"))]
thread_local! {
    /// This thread's encoding arena, and the buffer small writes gather in, used in place.
    /// (Initialized as a constant: no lazy set-up to check on every use.)
    static ARENA: std::cell::RefCell<Option<ArenaWriter>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `encode` on a writer into this thread's arena and cuts what it wrote off as a body.
///
/// A large value is written with one large write (a byte string's bytes), for which the
/// arena makes room of exactly that size: its body is allocated once, at its size, never
/// grown by doubling; and when the bodies cut before it are gone, not allocated at all.
#[cfg(any(feature = "json", feature = "msgpack"))]
fn encode_into_arena(
    encode: impl FnOnce(&mut ArenaWriter) -> Result<(), BodyError>,
) -> Result<Bytes, BodyError> {
    ArenaWriter::with(|writer| {
        let encoded = encode(writer);
        writer.flush_small();
        let body = writer.arena.split().freeze();
        encoded.map(|()| body)
    })
}

/// Cuts a body written by `write` (with no serializer: a few large appends) off this thread's
/// arena, as [`encode_into_arena`] does, but straight into the arena.
#[cfg(feature = "msgpack")]
fn encode_raw(write: impl FnOnce(&mut bytes::BytesMut)) -> Bytes {
    ArenaWriter::with(|writer| {
        write(&mut writer.arena);
        writer.arena.split().freeze()
    })
}

/// Writes that gather in [`ArenaWriter::small`] before they go to the arena together.
#[cfg(any(feature = "json", feature = "msgpack"))]
const SMALL_WRITES: usize = 512;

/// What the serializers write into. They write a value a few bytes at a time (a marker,
/// then a number): those gather in `small` (a plain `Vec`, whose appends are cheap, kept
/// with its capacity), which goes to the arena in larger pieces; a large write goes to the
/// arena as it is.
#[cfg(any(feature = "json", feature = "msgpack"))]
#[derive(Default)]
struct ArenaWriter {
    arena: bytes::BytesMut,
    small: Vec<u8>,
}

#[cfg(any(feature = "json", feature = "msgpack"))]
impl ArenaWriter {
    /// Runs `use_writer` on this thread's writer, in place (moving it out and back costs more
    /// than the encoding of a small body), emptied of anything an encoding that panicked left
    /// in it and with room in its arena. An encoding inside an encoding (a `Serialize` impl
    /// that encodes a body of its own) finds the thread's writer in use and gets one of its
    /// own.
    fn with<R>(use_writer: impl FnOnce(&mut ArenaWriter) -> R) -> R {
        ARENA.with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => use_writer(slot.get_or_insert_with(ArenaWriter::default).ready()),
            Err(_) => use_writer(ArenaWriter::default().ready()),
        })
    }

    /// The writer, empty, with room in its arena.
    fn ready(&mut self) -> &mut Self {
        self.arena.clear();
        self.small.clear();
        if self.arena.capacity() < ARENA_CHUNK / 16 {
            self.arena.reserve(ARENA_CHUNK);
        }
        self
    }

    fn flush_small(&mut self) {
        if !self.small.is_empty() {
            self.arena.extend_from_slice(&self.small);
            self.small.clear();
        }
    }
}

/// Appends a MessagePack `bin` of `bytes` to `out`: the smallest header that holds its
/// length, then the bytes.
#[cfg(feature = "msgpack")]
fn put_bin(out: &mut bytes::BytesMut, bytes: &[u8]) {
    put_bin_header(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends the header of a MessagePack `bin` of `length` bytes: the smallest that holds it.
#[cfg(feature = "msgpack")]
#[inline]
fn put_bin_header(out: &mut bytes::BytesMut, length: usize) {
    if let Ok(short) = u8::try_from(length) {
        out.extend_from_slice(&[0xc4, short]);
    } else if let Ok(medium) = u16::try_from(length) {
        let [a, b] = medium.to_be_bytes();
        out.extend_from_slice(&[0xc5, a, b]);
    } else {
        // Callers pass under 4 GiB (`as_byte_slice` sees to it, for `into_large_shared` too).
        let [a, b, c, d] = u32::try_from(length).unwrap_or(u32::MAX).to_be_bytes();
        out.extend_from_slice(&[0xc6, a, b, c, d]);
    }
}

#[cfg(any(feature = "json", feature = "msgpack"))]
impl std::io::Write for ArenaWriter {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.write_all(bytes)?;
        Ok(bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.small.len() + bytes.len() > SMALL_WRITES {
            self.flush_small();
        }
        if bytes.len() >= SMALL_WRITES {
            self.arena.extend_from_slice(bytes);
        } else {
            self.small.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A JSON decoding error's message. serde_json reads an integer too large for 64 bits as a
/// float and then reports "invalid type: floating point"; that is said as what it is.
#[cfg(feature = "json")]
fn json_error(error: &serde_json::Error, body: &[u8]) -> String {
    let message = error.to_string();
    if !message.starts_with("invalid type: floating point") {
        return message;
    }
    // The error's position is the value's last character: read the token back from there.
    let Some(line) = body
        .split(|&byte| byte == b'\n')
        .nth(error.line().saturating_sub(1))
    else {
        return message;
    };
    let end = error.column().min(line.len());
    let start = line[..end]
        .iter()
        .rposition(|byte| !(byte.is_ascii_digit() || *byte == b'-'))
        .map_or(0, |at| at + 1);
    let token = &line[start..end];
    let digits = token.strip_prefix(b"-").unwrap_or(token);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return message;
    }
    let expected = message
        .split_once(", expected ")
        .map_or("", |(_, rest)| rest);
    format!(
        "integer {} does not fit in 64 bits, expected {expected}",
        String::from_utf8_lossy(token)
    )
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Args {
        name: String,
        count: u32,
        tags: Vec<String>,
    }

    fn args() -> Args {
        Args {
            name: "ünïcode".into(),
            count: 7,
            tags: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn serde_formats_round_trip() {
        for format in [Format::Json, Format::MsgPack] {
            let body = format.encode(&args()).unwrap();
            assert_eq!(format.decode::<Args>(&body).unwrap(), args(), "{format}");
        }
    }

    #[test]
    fn msgpack_keeps_field_names_so_fields_can_be_added() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Older {
            count: u32,
        }
        let body = Format::MsgPack.encode(&args()).unwrap();
        assert_eq!(
            Format::MsgPack.decode::<Older>(&body).unwrap(),
            Older { count: 7 }
        );
    }

    #[test]
    fn ids_round_trip_and_unknown_ids_are_typed_errors() {
        for format in Format::ALL {
            assert_eq!(Format::from_id(format.id()).unwrap(), format);
        }
        let err = Format::from_id(9).unwrap_err();
        assert_eq!(err.to_string(), "unknown body format id 9");
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let err = Format::Json.decode::<Args>(b"{not json").unwrap_err();
        assert!(
            matches!(
                err,
                BodyError::Decode {
                    format: Format::Json,
                    ..
                }
            ),
            "{err}"
        );
        let err = Format::MsgPack.decode::<Args>(&[0xc1, 0xff]).unwrap_err();
        assert!(
            matches!(
                err,
                BodyError::Decode {
                    format: Format::MsgPack,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn bodies_are_cut_from_a_reused_arena() {
        use crate::format::byte_string::AsBytes;
        let large = Bytes::from(vec![7u8; 1 << 20]);
        let first = Format::MsgPack.encode(&AsBytes(&large)).unwrap();
        assert_eq!(first.len(), (1 << 20) + 5, "bin 32 and the bytes");
        assert_eq!(&first[5..], &large[..]);
        let at = first.as_ptr();
        drop(first);
        // Its body gone, the space is written again: no allocation for the next body.
        let second = Format::MsgPack.encode(&AsBytes(&large)).unwrap();
        assert_eq!(second.as_ptr(), at);
        // While a body lives its bytes are its own.
        let third = Format::MsgPack.encode(&AsBytes(&large)).unwrap();
        assert_ne!(third.as_ptr(), second.as_ptr());
        assert_eq!(second, third);
        // Small bodies follow one another in one chunk.
        let small = [
            Format::MsgPack.encode(&args()).unwrap(),
            Format::Json.encode(&args()).unwrap(),
        ];
        assert_eq!(
            small[0].as_ptr().wrapping_add(small[0].len()),
            small[1].as_ptr()
        );
        assert_eq!(Format::Json.decode::<Args>(&small[1]).unwrap(), args());
    }

    /// A value that encodes a body of its own while it is being encoded, or panics half-way.
    struct Awkward {
        panic: bool,
    }

    impl Serialize for Awkward {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq as _;
            let mut seq = serializer.serialize_seq(Some(2))?;
            seq.serialize_element(&"x".repeat(600))?;
            assert!(!self.panic, "a Serialize impl that panics");
            let inner = Format::MsgPack.encode(&args()).unwrap();
            seq.serialize_element(&inner.len())?;
            seq.end()
        }
    }

    #[test]
    fn the_arena_survives_nested_encodings_and_panics() {
        // An encoding inside an encoding writes into a writer of its own.
        let inner = Format::MsgPack.encode(&args()).unwrap();
        let expected = rmp_serde::to_vec_named(&("x".repeat(600), inner.len())).unwrap();
        let body = Format::MsgPack.encode(&Awkward { panic: false }).unwrap();
        assert_eq!(&body[..], &expected[..]);
        // An encoding that panics after writing leaves nothing behind for the next one.
        let panicked =
            std::panic::catch_unwind(|| Format::MsgPack.encode(&Awkward { panic: true }));
        assert!(panicked.is_err());
        assert_eq!(Format::MsgPack.encode(&args()).unwrap(), inner);
        let bin = byte_string::encode(Format::MsgPack, &Bytes::from_static(b"ab")).unwrap();
        assert_eq!(&bin[..], &[0xc4, 2, b'a', b'b']);
    }

    #[test]
    fn protobuf_refuses_serde_values() {
        let err = Format::Protobuf.encode(&args()).unwrap_err();
        assert_eq!(err.to_string(), "format protobuf cannot carry serde values");
    }

    #[cfg(feature = "protobuf")]
    #[test]
    fn prost_messages_round_trip() {
        #[derive(Clone, PartialEq, prost::Message)]
        struct Echo {
            #[prost(string, tag = "1")]
            text: String,
        }
        let message = Echo { text: "hi".into() };
        let body = Format::Protobuf.encode_message(&message).unwrap();
        assert_eq!(
            Format::Protobuf.decode_message::<Echo>(&body).unwrap(),
            message
        );
        assert!(
            Format::Protobuf
                .decode_message::<Echo>(&[0xff, 0xff])
                .is_err()
        );
    }
}
