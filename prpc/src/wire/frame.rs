use std::time::Duration;

use bytes::{Buf, Bytes};
use bytestring::ByteString;

use super::head::{HeadOut, STACK_HEAD};
use super::metadata::Fields;
use super::{MAGIC, Metadata, PREFIX_LEN, VERSION, WireError, varint};

/// Kind ids, the low nibble of byte 2.
pub(super) mod kind {
    pub(crate) const REQUEST: u8 = 1;
    pub(crate) const RESPONSE: u8 = 2;
    pub(crate) const PING: u8 = 3;
    pub(crate) const PONG: u8 = 4;
    pub(crate) const CANCEL: u8 = 5;
    pub(crate) const GOAWAY: u8 = 6;
    pub(crate) const MESSAGE: u8 = 7;
    pub(crate) const CREDIT: u8 = 8;
    pub(crate) const END: u8 = 9;
}

/// Flag bits, the high nibble of byte 2.
pub(super) mod flag {
    /// On a request: the caller wants no response.
    pub(crate) const ONEWAY: u8 = 0x10;
    /// On a response: the status code is not ok (lets a proxy see failures without parsing).
    /// On a message: the body is an application error value, not an item.
    pub(crate) const ERROR: u8 = 0x20;
    /// On a request: the caller may resend this call under the same request id; the server
    /// runs it at most once and answers every attempt with the one reply.
    pub(crate) const DEDUPE: u8 = 0x40;
    /// On a request: it opens a stream; messages may follow in either direction.
    pub(crate) const STREAM: u8 = 0x80;
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
#[non_exhaustive]
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
    /// One message on an open stream.
    Message {
        /// The body is an application error value (a typed error for this item), not an item.
        application_error: bool,
    },
    /// Flow control: the sender may send this many more bytes of messages on the stream (or,
    /// with request id 0 and attempt 0, on the whole connection).
    Credit {
        /// Bytes granted.
        bytes: u32,
    },
    /// The sender sends no more messages on the stream (a half-close).
    End,
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
    /// The request opens a stream: messages may follow in either direction until the
    /// response, which ends it.
    pub stream: bool,
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
        FrameRef::from(self).encoded_len()
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
                    stream: kind_byte & flag::STREAM != 0,
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
            kind::MESSAGE => Head::Message {
                application_error: kind_byte & flag::ERROR != 0,
            },
            kind::CREDIT => Head::Credit {
                bytes: src.u32("credit")?,
            },
            kind::END => Head::End,
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

/// A frame to write, borrowed from wherever its parts live: a [`Frame`], a call that is being
/// sent, or a handler's reply. Everything the codec writes is encoded from this, so a sender
/// never assembles (and moves, and drops) a whole `Frame` just to have it encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameRef<'a> {
    pub(crate) request_id: u64,
    pub(crate) attempt: u32,
    pub(crate) encoding: Encoding,
    pub(crate) head: HeadRef<'a>,
    pub(crate) body: &'a Bytes,
    /// More of the body, right after `body` on the wire: the large byte string an encoder left
    /// out of it ([`Body`](crate::Body)'s second part), or empty.
    pub(crate) tail: &'a Bytes,
}

/// A sink that only counts the bytes written to it.
struct Counted(usize);

impl HeadOut for Counted {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }

    fn put_varint(&mut self, value: u64) {
        self.0 += varint::len(value);
    }
}

/// A frame's kind-specific header fields, borrowed (see [`Head`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum HeadRef<'a> {
    Request {
        service: &'a str,
        method: &'a str,
        deadline: Option<Duration>,
        oneway: bool,
        dedupe: bool,
        stream: bool,
        metadata: &'a Metadata,
    },
    Response {
        code: u32,
        message: &'a str,
        metadata: &'a Metadata,
    },
    GoAway {
        code: u32,
        message: &'a str,
    },
    Ping,
    Pong,
    Cancel,
    Message {
        application_error: bool,
    },
    Credit {
        bytes: u32,
    },
    End,
}

impl<'a> From<&'a Head> for HeadRef<'a> {
    fn from(head: &'a Head) -> Self {
        match head {
            Head::Request(head) => HeadRef::Request {
                service: &head.service,
                method: &head.method,
                deadline: head.deadline,
                oneway: head.oneway,
                dedupe: head.dedupe,
                stream: head.stream,
                metadata: &head.metadata,
            },
            Head::Response(head) => HeadRef::Response {
                code: head.code,
                message: &head.message,
                metadata: &head.metadata,
            },
            Head::GoAway(head) => HeadRef::GoAway {
                code: head.code,
                message: &head.message,
            },
            Head::Ping => HeadRef::Ping,
            Head::Pong => HeadRef::Pong,
            Head::Cancel => HeadRef::Cancel,
            Head::Message { application_error } => HeadRef::Message {
                application_error: *application_error,
            },
            Head::Credit { bytes } => HeadRef::Credit { bytes: *bytes },
            Head::End => HeadRef::End,
        }
    }
}

impl<'a> From<&'a Frame> for FrameRef<'a> {
    fn from(frame: &'a Frame) -> Self {
        FrameRef {
            request_id: frame.request_id,
            attempt: frame.attempt,
            encoding: frame.encoding,
            head: HeadRef::from(&frame.head),
            body: &frame.body,
            tail: &crate::body::NO_TAIL,
        }
    }
}

impl HeadRef<'_> {
    /// The kind byte: kind id and flags.
    fn kind_byte(&self) -> u8 {
        match *self {
            HeadRef::Request {
                oneway,
                dedupe,
                stream,
                ..
            } => {
                kind::REQUEST
                    | (if oneway { flag::ONEWAY } else { 0 })
                    | (if dedupe { flag::DEDUPE } else { 0 })
                    | (if stream { flag::STREAM } else { 0 })
            }
            HeadRef::Response { code, .. } => {
                kind::RESPONSE | if code != 0 { flag::ERROR } else { 0 }
            }
            HeadRef::Ping => kind::PING,
            HeadRef::Pong => kind::PONG,
            HeadRef::Cancel => kind::CANCEL,
            HeadRef::GoAway { .. } => kind::GOAWAY,
            HeadRef::Message { application_error } => {
                kind::MESSAGE | if application_error { flag::ERROR } else { 0 }
            }
            HeadRef::Credit { .. } => kind::CREDIT,
            HeadRef::End => kind::END,
        }
    }

    /// An owned copy (names, message and metadata copied).
    fn to_head(self) -> Head {
        match self {
            HeadRef::Request {
                service,
                method,
                deadline,
                oneway,
                dedupe,
                stream,
                metadata,
            } => Head::Request(RequestHead {
                service: service.into(),
                method: method.into(),
                deadline,
                oneway,
                dedupe,
                stream,
                metadata: metadata.clone(),
            }),
            HeadRef::Response {
                code,
                message,
                metadata,
            } => Head::Response(ResponseHead {
                code,
                message: message.into(),
                metadata: metadata.clone(),
            }),
            HeadRef::GoAway { code, message } => Head::GoAway(GoAwayHead {
                code,
                message: message.into(),
            }),
            HeadRef::Ping => Head::Ping,
            HeadRef::Pong => Head::Pong,
            HeadRef::Cancel => Head::Cancel,
            HeadRef::Message { application_error } => Head::Message { application_error },
            HeadRef::Credit { bytes } => Head::Credit { bytes },
            HeadRef::End => Head::End,
        }
    }
}

impl FrameRef<'_> {
    /// An owned copy (the names, message and metadata are copied; the body is shared).
    pub(crate) fn to_frame(self) -> Frame {
        Frame {
            request_id: self.request_id,
            attempt: self.attempt,
            encoding: self.encoding,
            head: self.head.to_head(),
            body: crate::Body::from_parts(self.body.clone(), self.tail.clone()).into_bytes(),
        }
    }

    /// The body's length, both parts.
    pub(super) fn body_len(&self) -> usize {
        self.body.len() + self.tail.len()
    }

    /// The frame's metadata, for the kinds that carry it.
    pub(super) fn metadata(&self) -> Option<&Metadata> {
        match self.head {
            HeadRef::Request { metadata, .. } | HeadRef::Response { metadata, .. } => {
                Some(metadata)
            }
            _ => None,
        }
    }

    /// Bytes after the fixed prefix: header fields and body. This is the length field.
    pub(crate) fn encoded_len(&self) -> usize {
        self.fields_len() + self.body_len()
    }

    /// Bytes of the header fields alone (the length field minus the body): what
    /// [`encode_head`](Self::encode_head) writes after the prefix, counted.
    pub(super) fn fields_len(&self) -> usize {
        let mut counted = Counted(0);
        self.encode_head(0, &mut counted);
        counted.0 - PREFIX_LEN
    }

    /// Whether the prefix and header fields surely take at most [`STACK_HEAD`] bytes: no
    /// metadata, and names or message of 64 bytes at most (every varint at its longest).
    pub(super) fn fits_stack_head(&self) -> bool {
        // The longest: a request's prefix, request id, attempt (a u32), two one-byte name
        // lengths, deadline and an empty metadata count, and 64 bytes of names; and room for
        // the whole-word write of the last varint.
        const LONGEST: usize = 8 + varint::MAX_LEN + 5 + 2 + varint::MAX_LEN + 1 + 64;
        const _: () = assert!(LONGEST + varint::MAX_LEN <= STACK_HEAD);
        match self.head {
            HeadRef::Request {
                service,
                method,
                metadata,
                ..
            } => metadata.is_empty() && service.len() + method.len() <= 64,
            HeadRef::Response {
                message, metadata, ..
            } => metadata.is_empty() && message.len() <= 64,
            HeadRef::GoAway { message, .. } => message.len() <= 64,
            HeadRef::Ping
            | HeadRef::Pong
            | HeadRef::Cancel
            | HeadRef::Message { .. }
            | HeadRef::Credit { .. }
            | HeadRef::End => true,
        }
    }

    /// Writes prefix and fields: everything but the body, which must follow them on the wire.
    // Inlined into the caller, where `dst` is a `StackHead` of a known shape: every call's
    // frame head goes through here, and as a call of its own it cost a third more.
    #[inline(always)]
    pub(super) fn encode_head(&self, length: u32, dst: &mut impl HeadOut) {
        let [a, b, c, d] = length.to_be_bytes();
        let prefix = [
            MAGIC,
            VERSION,
            self.head.kind_byte(),
            self.encoding.to_byte(),
            a,
            b,
            c,
            d,
        ];
        dst.put_slice(&prefix);
        dst.put_varint(self.request_id);
        dst.put_varint(u64::from(self.attempt));
        match self.head {
            HeadRef::Request {
                service,
                method,
                deadline,
                metadata,
                ..
            } => {
                dst.put_bytes(service.as_bytes());
                dst.put_bytes(method.as_bytes());
                dst.put_varint(deadline_millis(deadline));
                metadata.encode(dst);
            }
            HeadRef::Response {
                code,
                message,
                metadata,
            } => {
                dst.put_varint(u64::from(code));
                dst.put_bytes(message.as_bytes());
                metadata.encode(dst);
            }
            HeadRef::GoAway { code, message } => {
                dst.put_varint(u64::from(code));
                dst.put_bytes(message.as_bytes());
            }
            HeadRef::Credit { bytes } => dst.put_varint(u64::from(bytes)),
            HeadRef::Ping
            | HeadRef::Pong
            | HeadRef::Cancel
            | HeadRef::Message { .. }
            | HeadRef::End => {}
        }
    }
}

/// The fields of a request frame other than its names, metadata and body: what the server
/// needs of a call besides looking it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestFields {
    pub(crate) request_id: u64,
    pub(crate) attempt: u32,
    pub(crate) encoding: Encoding,
    /// Time the caller will wait, as [`RequestHead::deadline`].
    pub(crate) deadline: Option<Duration>,
    pub(crate) oneway: bool,
    pub(crate) dedupe: bool,
    /// The request opens a stream.
    pub(crate) stream: bool,
}

impl RequestFields {
    /// The fields of a request frame decoded whole: its common fields, and its head.
    pub(crate) fn of(
        request_id: u64,
        attempt: u32,
        encoding: Encoding,
        head: &RequestHead,
    ) -> Self {
        RequestFields {
            request_id,
            attempt,
            encoding,
            deadline: head.deadline,
            oneway: head.oneway,
            dedupe: head.dedupe,
            stream: head.stream,
        }
    }
}

/// A frame's header read in place, in the read buffer, for the frames that come by the
/// thousand: a request without metadata, an ok response without message or metadata, and a
/// stream's message. It holds no
/// `Bytes` and validates nothing it need not: the reader's caller looks at it and either takes
/// the body alone, or has the frame decoded whole (which reports any error).
#[derive(Debug, Clone, Copy)]
pub(crate) enum View<'a> {
    /// A request: its fixed fields and its names, as bytes (not yet known to be UTF-8).
    Request {
        fields: RequestFields,
        service: &'a [u8],
        method: &'a [u8],
    },
    /// An ok response with an empty message and no metadata.
    Ok {
        request_id: u64,
        attempt: u32,
        encoding: Encoding,
    },
    /// A message on a stream.
    Message {
        request_id: u64,
        attempt: u32,
        encoding: Encoding,
        application_error: bool,
        /// The frame's length field: what the message costs in flow-control credit.
        length: usize,
    },
}

impl<'a> View<'a> {
    /// Reads the header of a frame whose prefix the codec has validated (`fields` is the frame
    /// after its prefix). Returns the view and where the body starts, or `None` when the frame
    /// is of another shape (or malformed) and must be decoded whole.
    pub(super) fn parse(kind_byte: u8, encoding: u8, fields: &'a [u8]) -> Option<(Self, usize)> {
        let mut at = 0;
        let request_id = take_varint(fields, &mut at)?;
        let attempt = u32::try_from(take_varint(fields, &mut at)?).ok()?;
        let encoding = Encoding::from_byte(encoding);
        match kind_byte & 0x0f {
            kind::REQUEST => {
                let service = take_bytes(fields, &mut at)?;
                let method = take_bytes(fields, &mut at)?;
                let deadline = match take_varint(fields, &mut at)? {
                    0 => None,
                    millis => Some(Duration::from_millis(millis)),
                };
                // Metadata present: decoded whole, into shared slices.
                if take_varint(fields, &mut at)? != 0 {
                    return None;
                }
                let fields = RequestFields {
                    request_id,
                    attempt,
                    encoding,
                    deadline,
                    oneway: kind_byte & flag::ONEWAY != 0,
                    dedupe: kind_byte & flag::DEDUPE != 0,
                    stream: kind_byte & flag::STREAM != 0,
                };
                let view = View::Request {
                    fields,
                    service,
                    method,
                };
                Some((view, at))
            }
            kind::RESPONSE => {
                // Code 0, empty message, no metadata: three zero bytes.
                let [0, 0, 0, ..] = fields.get(at..)? else {
                    return None;
                };
                let view = View::Ok {
                    request_id,
                    attempt,
                    encoding,
                };
                Some((view, at + 3))
            }
            kind::MESSAGE => {
                let view = View::Message {
                    request_id,
                    attempt,
                    encoding,
                    application_error: kind_byte & flag::ERROR != 0,
                    length: fields.len(),
                };
                Some((view, at))
            }
            _ => None,
        }
    }
}

/// The varint at `*at` in `bytes`, moving `at` past it.
#[inline(always)] // a few instructions for the one-byte varints most fields are
fn take_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let (value, used) = varint::decode(bytes.get(*at..)?).ok()?;
    *at += used;
    Some(value)
}

/// The length-prefixed field at `*at` in `bytes`, moving `at` past it.
#[inline(always)]
fn take_bytes<'a>(bytes: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = usize::try_from(take_varint(bytes, at)?).ok()?;
    let field = bytes.get(*at..at.checked_add(len)?)?;
    *at += len;
    Some(field)
}

/// Whether the low nibble of a kind byte names a frame kind.
pub(super) fn is_known_kind(kind_byte: u8) -> bool {
    matches!(kind_byte & 0x0f, kind::REQUEST..=kind::END)
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
