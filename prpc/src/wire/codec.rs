use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::frame::{FrameRef, View, is_known_kind};
use super::head::StackHead;
use super::{DEFAULT_MAX_FRAME_SIZE, Frame, MAGIC, PREFIX_LEN, VERSION, WireError};

/// Reads and writes [`Frame`]s on a byte stream (a `tokio_util::codec` codec).
///
/// Decoding checks the fixed prefix as soon as its bytes arrive, so garbage is rejected after
/// one byte and an oversized length before any of its bytes are buffered; the buffer grows to
/// at most the one frame it has accepted. A decoded frame's fields and body are slices of that
/// buffer: decoding allocates nothing beyond it (metadata, when present, is one slice of the frame).
///
/// ```
/// use bytes::BytesMut;
/// use prpc::wire::{Frame, FrameCodec, Head};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = FrameCodec::new();
/// let mut buf = BytesMut::new();
/// codec.encode(Frame::control(7, Head::Ping), &mut buf).unwrap();
/// assert_eq!(&buf[..], &[0xB7, 1, 3, 0, 0, 0, 0, 2, 7, 0]);
/// let frame = codec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(frame.request_id, 7);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_frame_size: u32,
}

impl FrameCodec {
    /// A codec with the default `max_frame_size` (16 MiB).
    pub fn new() -> Self {
        FrameCodec {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }

    /// A codec that refuses frames whose length field exceeds `max_frame_size`, reading or
    /// writing.
    pub fn with_max_frame_size(max_frame_size: u32) -> Self {
        FrameCodec { max_frame_size }
    }

    /// The limit in force.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// Validates the prefix bytes present so far; returns the frame's total size once the whole
    /// prefix is here.
    fn check_prefix(&self, src: &[u8]) -> Result<Option<usize>, WireError> {
        if let Some(&found) = src.first()
            && found != MAGIC
        {
            return Err(WireError::BadMagic {
                found,
                expected: MAGIC,
            });
        }
        if let Some(&found) = src.get(1)
            && found != VERSION
        {
            return Err(WireError::UnsupportedVersion {
                found,
                supported: VERSION,
            });
        }
        if let Some(&kind) = src.get(2)
            && !is_known_kind(kind)
        {
            return Err(WireError::UnknownKind(kind & 0x0f));
        }
        if src.len() < PREFIX_LEN {
            return Ok(None);
        }
        let length = u32::from_be_bytes([src[4], src[5], src[6], src[7]]);
        if length > self.max_frame_size {
            return Err(WireError::FrameTooLarge {
                length: u64::from(length),
                max: self.max_frame_size,
            });
        }
        Ok(Some(PREFIX_LEN + length as usize))
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new()
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        let Some(total) = self.check_prefix(src)? else {
            return Ok(None);
        };
        if src.len() < total {
            // Room for the rest of the frame, as a `FramedRead` expects of its decoder.
            src.reserve(total - src.len());
            return Ok(None);
        }
        decode_whole(src, total).map(Some)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        if src.is_empty() {
            return Ok(None);
        }
        let expected = self.check_prefix(src)?.unwrap_or(PREFIX_LEN);
        Err(WireError::TruncatedFrame {
            received: src.len(),
            expected,
        })
    }
}

/// A frame out of the read buffer: taken after a look at its header in place, or decoded whole.
#[derive(Debug)]
pub(crate) enum Decoded<T> {
    /// What the caller's `take` made of the frame's [`View`], and the frame's body.
    Taken(T, Bytes),
    /// The frame, decoded whole (its shape has no view, or `take` declined it).
    Frame(Frame),
}

impl FrameCodec {
    /// The total size of the frame at the front of `src` once all of it is there. Room for
    /// the rest is the reader's to make ([`FrameReader`](super::FrameReader) reuses the
    /// memory of frames already dropped).
    fn whole_frame(&self, src: &BytesMut) -> Result<Option<usize>, WireError> {
        let Some(total) = self.check_prefix(src)? else {
            return Ok(None);
        };
        Ok((src.len() >= total).then_some(total))
    }

    /// Decodes the next frame, first offering its [`View`] (when it has one) to `take`: a view
    /// taken costs no `Bytes` for its header fields, and only the body leaves the buffer.
    pub(crate) fn decode_with<T>(
        &self,
        src: &mut BytesMut,
        take: impl FnOnce(View<'_>) -> Option<T>,
    ) -> Result<Option<Decoded<T>>, WireError> {
        let Some(total) = self.whole_frame(src)? else {
            return Ok(None);
        };
        if let Some((view, body_start)) = View::parse(src[2], src[3], &src[PREFIX_LEN..total])
            && let Some(taken) = take(view)
        {
            let body_start = PREFIX_LEN + body_start;
            src.advance(body_start);
            let body = src.split_to(total - body_start).freeze();
            return Ok(Some(Decoded::Taken(taken, body)));
        }
        decode_whole(src, total).map(|frame| Some(Decoded::Frame(frame)))
    }
}

/// Decodes the `total` bytes at the front of `src`, one whole frame whose prefix is checked.
fn decode_whole(src: &mut BytesMut, total: usize) -> Result<Frame, WireError> {
    let (kind, encoding) = (src[2], src[3]);
    let mut frame = src.split_to(total);
    frame.advance(PREFIX_LEN);
    Frame::decode(kind, encoding, frame.freeze())
}

impl Encoder<Frame> for FrameCodec {
    type Error = WireError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        self.encode(&frame, dst)
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = WireError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        self.encode_frame(&frame.into(), dst).map(|_| ())
    }
}

impl FrameCodec {
    /// The length field for `fields_len` bytes of header fields and the body, checked against
    /// the limit.
    fn checked_length(&self, fields_len: usize, body_len: usize) -> Result<u32, WireError> {
        let length = fields_len + body_len;
        match u32::try_from(length) {
            Ok(length) if length <= self.max_frame_size => Ok(length),
            _ => Err(WireError::FrameTooLarge {
                length: length as u64,
                max: self.max_frame_size,
            }),
        }
    }

    /// Encodes `frame` (what the `Encoder` impls do, without needing `&mut self`). Inlined:
    /// it is the one step of a small frame's send after the lock.
    #[inline(always)]
    pub(crate) fn encode_frame(
        &self,
        frame: &FrameRef<'_>,
        dst: &mut BytesMut,
    ) -> Result<u32, WireError> {
        let length = self.put_head(frame, frame.body_len(), dst)?;
        dst.extend_from_slice(frame.body);
        dst.extend_from_slice(frame.tail);
        Ok(length)
    }

    /// Encodes all of `frame` but its body, whose bytes the caller must write right after
    /// these (a writer that sends large bodies from their own buffers instead of copying them).
    pub(crate) fn encode_head(
        &self,
        frame: &FrameRef<'_>,
        dst: &mut BytesMut,
    ) -> Result<u32, WireError> {
        self.put_head(frame, 0, dst)
    }

    /// Appends `frame`'s prefix and header fields to `dst`, reserving room for them and for
    /// `extra` bytes more (the body, when it follows at once). Returns the frame's length
    /// field.
    fn put_head(
        &self,
        frame: &FrameRef<'_>,
        extra: usize,
        dst: &mut BytesMut,
    ) -> Result<u32, WireError> {
        if frame.fits_stack_head() {
            // One pass on the stack, then one copy. The length field is filled in last, from
            // what was written: no pass to size the fields first.
            let mut head = StackHead::new();
            frame.encode_head(0, &mut head);
            let length = self.checked_length(head.fields_len(), frame.body_len())?;
            let head = head.finish(length);
            dst.reserve(head.len() + extra);
            dst.extend_from_slice(head);
            return Ok(length);
        }
        // Metadata a receiver would refuse (closing the connection) is refused here instead,
        // so that only the call that carries it fails.
        if let Some(metadata) = frame.metadata() {
            metadata.check_limits()?;
        }
        let fields_len = frame.fields_len();
        let length = self.checked_length(fields_len, frame.body_len())?;
        dst.reserve(PREFIX_LEN + fields_len + extra);
        frame.encode_head(length, dst);
        Ok(length)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::wire::{
        Encoding, GoAwayHead, Head, Metadata, RequestFields, RequestHead, ResponseHead, View,
    };

    fn request() -> Frame {
        let mut metadata = Metadata::new();
        metadata.insert("trace", "abc");
        Frame {
            request_id: 300,
            attempt: 1,
            encoding: Encoding::new(1, 0),
            head: Head::Request(RequestHead {
                service: "Arith".into(),
                method: "add".into(),
                deadline: Some(Duration::from_millis(1500)),
                oneway: false,
                dedupe: false,
                stream: false,
                metadata,
            }),
            body: Bytes::from_static(b"[1,2]"),
        }
    }

    fn encode(frame: &Frame) -> BytesMut {
        let mut buf = BytesMut::new();
        FrameCodec::new().encode(frame, &mut buf).unwrap();
        buf
    }

    #[test]
    fn request_layout_matches_the_spec() {
        let bytes = encode(&request());
        let expected: &[u8] = &[
            0xB7, 0x01, 0x01, 0x10, 0x00, 0x00, 0x00, 0x1F, // prefix: length 31
            0xAC, 0x02, // request id 300
            0x01, // attempt 1
            0x05, b'A', b'r', b'i', b't', b'h', // service
            0x03, b'a', b'd', b'd', // method
            0xDC, 0x0B, // deadline 1500 ms
            0x01, 0x05, b't', b'r', b'a', b'c', b'e', 0x03, b'a', b'b', b'c', // metadata
            b'[', b'1', b',', b'2', b']', // body
        ];
        assert_eq!(&bytes[..], expected);
    }

    #[test]
    fn decodes_frames_split_at_every_byte() {
        let frames = [
            request(),
            Frame {
                request_id: 300,
                attempt: 1,
                encoding: Encoding::new(1, 0),
                head: Head::Response(ResponseHead {
                    code: 3,
                    message: "bad".into(),
                    metadata: Metadata::new(),
                }),
                body: Bytes::from_static(b"3"),
            },
            Frame::control(9, Head::Ping),
            Frame::goaway(14, "shutting down"),
        ];
        let mut wire = BytesMut::new();
        for frame in &frames {
            FrameCodec::new().encode(frame, &mut wire).unwrap();
        }
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for byte in wire.iter() {
            buf.extend_from_slice(&[*byte]);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, frames);
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_bad_prefixes_on_their_first_byte() {
        let mut codec = FrameCodec::new();
        let err = codec.decode(&mut BytesMut::from(&b"G"[..])).unwrap_err();
        assert!(
            matches!(err, WireError::BadMagic { found: b'G', .. }),
            "{err}"
        );
        let err = codec
            .decode(&mut BytesMut::from(&[0xB7, 9][..]))
            .unwrap_err();
        assert!(
            matches!(err, WireError::UnsupportedVersion { found: 9, .. }),
            "{err}"
        );
        let err = codec
            .decode(&mut BytesMut::from(&[0xB7, 1, 0x0f][..]))
            .unwrap_err();
        assert!(matches!(err, WireError::UnknownKind(15)), "{err}");
    }

    #[test]
    fn refuses_oversized_lengths_before_buffering() {
        let mut codec = FrameCodec::with_max_frame_size(1024);
        let mut buf = BytesMut::from(&[0xB7, 1, 1, 0x10, 0, 0, 4, 1][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame of 1025 bytes exceeds max_frame_size 1024"
        );
        assert!(buf.capacity() < 1024);

        let mut big = request();
        big.body = Bytes::from(vec![0u8; 2048]);
        let err = codec.encode(&big, &mut BytesMut::new()).unwrap_err();
        assert!(matches!(err, WireError::FrameTooLarge { max: 1024, .. }));
    }

    #[test]
    fn reports_header_fields_that_lie() {
        let mut codec = FrameCodec::new();
        // Service name claims 200 bytes in a 4-byte frame.
        let mut buf = BytesMut::from(&[0xB7, 1, 1, 0x10, 0, 0, 0, 4, 1, 0, 0xC8, 0x01][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(
            err.to_string(),
            "service name runs past the end of the frame"
        );
        // Invalid UTF-8 in the method name.
        let mut buf =
            BytesMut::from(&[0xB7, 1, 1, 0x10, 0, 0, 0, 8, 1, 0, 1, b'S', 1, 0xFF, 0, 0][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(err.to_string(), "method name is not valid UTF-8");
        // Metadata count far beyond the bytes present.
        let mut buf = BytesMut::from(&[0xB7, 1, 2, 0, 0, 0, 0, 6, 1, 0, 0, 0, 0xFF, 0x7F][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(err.to_string(), "metadata runs past the end of the frame");
        // Attempt wider than 32 bits.
        let mut buf =
            BytesMut::from(&[0xB7, 1, 3, 0, 0, 0, 0, 6, 1, 0x80, 0x80, 0x80, 0x80, 0x10][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(err.to_string(), "attempt overflows its varint");
    }

    #[test]
    fn reports_a_frame_cut_short_by_close() {
        let bytes = encode(&request());
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::from(&bytes[..20]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        let err = codec.decode_eof(&mut buf).unwrap_err();
        assert!(
            matches!(
                err,
                WireError::TruncatedFrame {
                    received: 20,
                    expected: 39
                }
            ),
            "{err}"
        );
        assert!(codec.decode_eof(&mut BytesMut::new()).unwrap().is_none());
    }

    /// Any text, or ASCII names around the 64 bytes up to which headers are assembled on the
    /// stack.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![".{0,24}", "[a-z.]{0,40}"]
    }

    fn metadata() -> impl Strategy<Value = Metadata> {
        prop::collection::vec((text(), prop::collection::vec(any::<u8>(), 0..16)), 0..4)
            .prop_map(|pairs| pairs.into_iter().collect())
    }

    fn head() -> impl Strategy<Value = Head> {
        prop_oneof![
            (
                text(),
                text(),
                any::<Option<u32>>(),
                any::<(bool, bool, bool)>(),
                metadata()
            )
                .prop_map(
                    |(service, method, deadline, (oneway, dedupe, stream), metadata)| {
                        Head::Request(RequestHead {
                            service: service.into(),
                            method: method.into(),
                            deadline: deadline.map(|ms| Duration::from_millis(u64::from(ms) + 1)),
                            oneway,
                            dedupe,
                            stream,
                            metadata,
                        })
                    }
                ),
            // Often the shape of an ok reply (code 0, no message, no metadata), and codes
            // that take one byte.
            (
                prop_oneof![Just(0u32), 0..128u32, any::<u32>()],
                prop_oneof![Just(String::new()), text()],
                prop_oneof![Just(Metadata::new()), metadata()],
            )
                .prop_map(|(code, message, metadata)| {
                    Head::Response(ResponseHead {
                        code,
                        message: message.into(),
                        metadata,
                    })
                }),
            Just(Head::Ping),
            Just(Head::Pong),
            Just(Head::Cancel),
            any::<bool>().prop_map(|application_error| Head::Message { application_error }),
            any::<u32>().prop_map(|bytes| Head::Credit { bytes }),
            Just(Head::End),
            (any::<u32>(), text()).prop_map(|(code, message)| Head::GoAway(GoAwayHead {
                code,
                message: message.into()
            })),
        ]
    }

    fn frame() -> impl Strategy<Value = Frame> {
        let body = prop::collection::vec(any::<u8>(), 0..64);
        (any::<u64>(), any::<u32>(), any::<u8>(), head(), body).prop_map(
            |(request_id, attempt, encoding, head, body)| Frame {
                request_id,
                attempt,
                encoding: Encoding::from_byte(encoding),
                head,
                body: body.into(),
            },
        )
    }

    proptest! {
        #[test]
        fn header_round_trips(frame in frame()) {
            let mut buf = encode(&frame);
            prop_assert_eq!(buf.len(), PREFIX_LEN + frame.encoded_len());
            let decoded = FrameCodec::new().decode(&mut buf).unwrap();
            prop_assert_eq!(decoded, Some(frame));
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn a_view_agrees_with_the_frame_decoded_whole(frame in frame()) {
            let (request_id, attempt) = (frame.request_id, frame.attempt);
            let mut buf = encode(&frame);
            let codec = FrameCodec::new();
            let taken = codec.decode_with(&mut buf, |view| Some(match view {
                View::Request { fields, service, method } => {
                    (Some(fields), service.to_vec(), method.to_vec(), None, None)
                }
                View::Ok { request_id, attempt, encoding } => {
                    (None, Vec::new(), Vec::new(), Some((request_id, attempt, encoding)), None)
                }
                View::Message { request_id, attempt, encoding, application_error, length } => {
                    let message = (request_id, attempt, encoding, application_error, length);
                    (None, Vec::new(), Vec::new(), None, Some(message))
                }
            }));
            prop_assert!(buf.is_empty());
            match (taken.unwrap().unwrap(), &frame.head) {
                (Decoded::Taken((None, _, _, None, Some(message)), body), Head::Message { application_error }) => {
                    let length = frame.encoded_len();
                    prop_assert_eq!(message, (request_id, attempt, frame.encoding, *application_error, length));
                    prop_assert_eq!(body, frame.body);
                }
                (Decoded::Taken((Some(fields), service, method, None, None), body), Head::Request(head)) => {
                    prop_assert!(head.metadata.is_empty());
                    prop_assert_eq!(fields, RequestFields::of(request_id, attempt, frame.encoding, head));
                    prop_assert_eq!(&service[..], head.service.as_bytes());
                    prop_assert_eq!(&method[..], head.method.as_bytes());
                    prop_assert_eq!(body, frame.body);
                }
                (Decoded::Taken((None, _, _, Some(ok), None), body), Head::Response(head)) => {
                    prop_assert!(head.code == 0 && head.message.is_empty() && head.metadata.is_empty());
                    prop_assert_eq!(ok, (request_id, attempt, frame.encoding));
                    prop_assert_eq!(body, frame.body);
                }
                (Decoded::Frame(decoded), _) => {
                    // Only frames without a view are decoded whole when every view is taken.
                    let viewable = match &decoded.head {
                        Head::Request(head) => head.metadata.is_empty(),
                        Head::Response(head) => head.code == 0 && head.message.is_empty() && head.metadata.is_empty(),
                        Head::Message { .. } => true,
                        _ => false,
                    };
                    prop_assert!(!viewable, "{:?} has a view", decoded);
                    prop_assert_eq!(decoded, frame);
                }
                (taken, head) => prop_assert!(false, "{:?} taken from a {:?}", taken, head),
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let mut codec = FrameCodec::with_max_frame_size(4096);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = codec.decode(&mut buf) {}
            let _ = codec.decode_eof(&mut buf);
            // The same bytes through the views.
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = codec.decode_with(&mut buf, |view| Some(format!("{view:?}"))) {}
        }
    }
}
