use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use bytestring::ByteString;

use super::metadata::{Fields, bytes_field_len, put_bytes};
use super::{MAGIC, Metadata, VERSION, WireError, varint};

/// Kind ids, the low nibble of byte 2.
pub(super) mod kind {
    pub(crate) const REQUEST: u8 = 1;
    pub(crate) const RESPONSE: u8 = 2;
    pub(crate) const PING: u8 = 3;
    pub(crate) const PONG: u8 = 4;
    pub(crate) const CANCEL: u8 = 5;
    pub(crate) const GOAWAY: u8 = 6;
}

/// Flag bits, the high nibble of byte 2.
pub(super) mod flag {
    /// On a request: the caller wants no response.
    pub(crate) const ONEWAY: u8 = 0x10;
    /// On a response: the status code is not ok (lets a proxy see failures without parsing).
    pub(crate) const ERROR: u8 = 0x20;
    /// On a request: the caller may resend this call under the same request id; the server
    /// runs it at most once and answers every attempt with the one reply.
    pub(crate) const DEDUPE: u8 = 0x40;
}

/// The encoding byte: body format id in the high nibble, compression id in the low nibble.
///
/// The wire layer carries the ids without judging them; [`Format`](crate::Format) and
/// [`Compression`](crate::Compression) give them meaning, so an id this build does not know
/// fails the one call that used it rather than the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Encoding(u8);

impl Encoding {
    /// Packs a format id and a compression id (each 0..=15; higher bits are dropped).
    pub const fn new(format_id: u8, compression_id: u8) -> Self {
        Encoding(((format_id & 0x0f) << 4) | (compression_id & 0x0f))
    }

    /// The encoding byte as sent.
    pub const fn from_byte(byte: u8) -> Self {
        Encoding(byte)
    }

    /// The byte to send.
    pub const fn to_byte(self) -> u8 {
        self.0
    }

    /// Body format id (high nibble).
    pub const fn format_id(self) -> u8 {
        self.0 >> 4
    }

    /// Compression id (low nibble).
    pub const fn compression_id(self) -> u8 {
        self.0 & 0x0f
    }
}

/// One frame: the fields every frame has, the kind-specific head, and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The call this frame belongs to (for ping and pong, an opaque value the pong echoes).
    pub request_id: u64,
    /// Which attempt of the call this is: 0 for the first send, raised on each retry.
    pub attempt: u32,
    /// How the body is encoded and compressed.
    pub encoding: Encoding,
    /// The kind of frame and the fields only that kind has.
    pub head: Head,
    /// The (possibly compressed) body: everything after the header fields.
    pub body: Bytes,
}

/// The kind of a frame, with the header fields only that kind carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// A call.
    Request(RequestHead),
    /// The reply to a call.
    Response(ResponseHead),
    /// Liveness probe; the peer answers with a pong carrying the same request id.
    Ping,
    /// Answer to a ping.
    Pong,
    /// The caller gave up on the call with this request id; the server may stop its handler.
    Cancel,
    /// The sender will accept no new calls on this connection and is about to close it.
    GoAway(GoAwayHead),
}

/// Fields of a request frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHead {
    /// Service name, e.g. `math.Arith`.
    pub service: ByteString,
    /// Method name within the service.
    pub method: ByteString,
    /// Time the caller will wait from when it sent the frame, in whole milliseconds; `None`
    /// waits forever.
    pub deadline: Option<Duration>,
    /// The caller wants no response.
    pub oneway: bool,
    /// The caller may resend the call under the same request id: the server must run it at
    /// most once.
    pub dedupe: bool,
    /// Caller metadata.
    pub metadata: Metadata,
}

/// Fields of a response frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseHead {
    /// Status code; 0 is ok. See [`Code`](crate::Code).
    pub code: u32,
    /// Human-readable status message; empty when ok.
    pub message: ByteString,
    /// Server metadata.
    pub metadata: Metadata,
}

/// Fields of a goaway frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoAwayHead {
    /// Why the connection is going away, as a status code. See [`Code`](crate::Code).
    pub code: u32,
    /// Human-readable reason.
    pub message: ByteString,
}

impl Head {
    fn kind(&self) -> u8 {
        match self {
            Head::Request(_) => kind::REQUEST,
            Head::Response(_) => kind::RESPONSE,
            Head::Ping => kind::PING,
            Head::Pong => kind::PONG,
            Head::Cancel => kind::CANCEL,
            Head::GoAway(_) => kind::GOAWAY,
        }
    }

    fn flags(&self) -> u8 {
        match self {
            Head::Request(head) => {
                (if head.oneway { flag::ONEWAY } else { 0 })
                    | (if head.dedupe { flag::DEDUPE } else { 0 })
            }
            Head::Response(head) if head.code != 0 => flag::ERROR,
            _ => 0,
        }
    }
}

impl Frame {
    /// A frame of the given head with no body, encoding 0, attempt 0.
    pub fn control(request_id: u64, head: Head) -> Self {
        Frame {
            request_id,
            attempt: 0,
            encoding: Encoding::default(),
            head,
            body: Bytes::new(),
        }
    }

    /// A goaway frame with a status code and reason.
    pub fn goaway(code: u32, message: impl Into<ByteString>) -> Self {
        Frame::control(
            0,
            Head::GoAway(GoAwayHead {
                code,
                message: message.into(),
            }),
        )
    }

    /// Bytes after the fixed prefix: header fields and body. This is the length field.
    pub fn encoded_len(&self) -> usize {
        self.fields_len() + self.body.len()
    }

    /// Bytes of the header fields alone (the length field minus the body).
    pub(super) fn fields_len(&self) -> usize {
        let common = varint::len(self.request_id) + varint::len(u64::from(self.attempt));
        common
            + match &self.head {
                Head::Request(head) => {
                    bytes_field_len(head.service.len())
                        + bytes_field_len(head.method.len())
                        + varint::len(deadline_millis(head.deadline))
                        + head.metadata.encoded_len()
                }
                Head::Response(head) => {
                    varint::len(u64::from(head.code))
                        + bytes_field_len(head.message.len())
                        + head.metadata.encoded_len()
                }
                Head::GoAway(head) => {
                    varint::len(u64::from(head.code)) + bytes_field_len(head.message.len())
                }
                Head::Ping | Head::Pong | Head::Cancel => 0,
            }
    }

    /// Writes prefix and fields: everything but the body, which must follow them on the wire.
    pub(super) fn encode_head(&self, length: u32, dst: &mut impl BufMut) {
        // The prefix and the two ids go out in one copy.
        let mut start = [0u8; 8 + 2 * varint::MAX_LEN];
        let [magic, version, kind, encoding, length_bytes @ ..] = &mut start[..8] else {
            unreachable!("the prefix is 8 bytes");
        };
        (*magic, *version) = (MAGIC, VERSION);
        *kind = self.head.kind() | self.head.flags();
        *encoding = self.encoding.to_byte();
        length_bytes.copy_from_slice(&length.to_be_bytes());
        let mut scratch = [0u8; varint::MAX_LEN];
        let id_len = varint::write(&mut scratch, self.request_id);
        start[8..8 + id_len].copy_from_slice(&scratch[..id_len]);
        let attempt_len = varint::write(&mut scratch, u64::from(self.attempt));
        let end = 8 + id_len + attempt_len;
        start[8 + id_len..end].copy_from_slice(&scratch[..attempt_len]);
        dst.put_slice(&start[..end]);
        match &self.head {
            Head::Request(head) => {
                put_bytes(dst, head.service.as_bytes());
                put_bytes(dst, head.method.as_bytes());
                varint::put(dst, deadline_millis(head.deadline));
                head.metadata.encode(dst);
            }
            Head::Response(head) => {
                varint::put(dst, u64::from(head.code));
                put_bytes(dst, head.message.as_bytes());
                head.metadata.encode(dst);
            }
            Head::GoAway(head) => {
                varint::put(dst, u64::from(head.code));
                put_bytes(dst, head.message.as_bytes());
            }
            Head::Ping | Head::Pong | Head::Cancel => {}
        }
    }

    /// Parses a whole frame whose prefix the codec has validated. `frame` starts at the first
    /// byte after the prefix and holds exactly `length` bytes.
    pub(super) fn decode(kind_byte: u8, encoding: u8, mut frame: Bytes) -> Result<Self, WireError> {
        let mut fields = Fields::new(&frame);
        let src = &mut fields;
        let request_id = src.varint("request id")?;
        let attempt = src.u32("attempt")?;
        let head = match kind_byte & 0x0f {
            kind::REQUEST => {
                let service = src.text("service name")?;
                let method = src.text("method name")?;
                let deadline = match src.varint("deadline")? {
                    0 => None,
                    millis => Some(Duration::from_millis(millis)),
                };
                let metadata = Metadata::decode(src)?;
                Head::Request(RequestHead {
                    service,
                    method,
                    deadline,
                    oneway: kind_byte & flag::ONEWAY != 0,
                    dedupe: kind_byte & flag::DEDUPE != 0,
                    metadata,
                })
            }
            kind::RESPONSE => {
                let code = src.u32("status code")?;
                let message = src.text("status message")?;
                let metadata = Metadata::decode(src)?;
                Head::Response(ResponseHead {
                    code,
                    message,
                    metadata,
                })
            }
            kind::GOAWAY => {
                let code = src.u32("goaway code")?;
                let message = src.text("goaway message")?;
                Head::GoAway(GoAwayHead { code, message })
            }
            kind::PING => Head::Ping,
            kind::PONG => Head::Pong,
            kind::CANCEL => Head::Cancel,
            other => return Err(WireError::UnknownKind(other)),
        };
        let body_start = fields.position();
        frame.advance(body_start);
        Ok(Frame {
            request_id,
            attempt,
            encoding: Encoding::from_byte(encoding),
            head,
            body: frame,
        })
    }
}

/// Whether the low nibble of a kind byte names a frame kind.
pub(super) fn is_known_kind(kind_byte: u8) -> bool {
    matches!(kind_byte & 0x0f, kind::REQUEST..=kind::GOAWAY)
}

/// Deadline as sent: whole milliseconds, rounded up so a short deadline never reads as "none".
fn deadline_millis(deadline: Option<Duration>) -> u64 {
    match deadline {
        None => 0,
        Some(deadline) => {
            // Whole milliseconds, rounded up, without a 128-bit division.
            let partial = u64::from(deadline.subsec_nanos() % 1_000_000 != 0);
            let millis = deadline
                .as_secs()
                .saturating_mul(1000)
                .saturating_add(u64::from(deadline.subsec_millis()))
                .saturating_add(partial);
            millis.max(1)
        }
    }
}
