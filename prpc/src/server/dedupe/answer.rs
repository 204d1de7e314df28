//! What a duplicate is answered: a recorded reply replayed as it was stored, and the statuses
//! the dedupe layer answers in place of running a call.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::compress::Compression;
use crate::format::Format;
use crate::idempotency::Key;
use crate::service::Response;
use crate::status::{Code, Status};
use crate::wire::{Frame, FrameCodec, Head};

pub(super) fn still_running(key: &Key) -> Status {
    Status::new(
        Code::Unavailable,
        format!("call {key} is still running under an earlier attempt"),
    )
}

/// The answer of an attempt whose deadline passed while it waited for an earlier attempt: the
/// call's one deadline, which the running attempt carries too.
pub(super) fn deadline_passed_waiting(key: &Key) -> Status {
    Status::new(
        Code::DeadlineExceeded,
        format!("deadline exceeded while call {key} was still running under an earlier attempt"),
    )
}

pub(super) fn outcome_unknown(key: &Key) -> Status {
    Status::new(
        Code::OutcomeUnknown,
        format!(
            "call {key} may have run, but its outcome could not be recorded; it is not run again"
        ),
    )
}

pub(super) fn not_the_same_call(key: &Key) -> Status {
    Status::invalid_argument(format!(
        "request id of call {key} was first used for another call (its service, method, \
         format or body differ)"
    ))
}

/// The answer a stored reply frame holds, for an attempt in the format `format_id`: `None`
/// when the bytes are not a response frame.
pub(super) fn replay(
    stored: &[u8],
    format_id: u8,
    max_frame_size: u32,
) -> Option<Result<Response, Status>> {
    let mut buffer = BytesMut::from(stored);
    let frame = FrameCodec::with_max_frame_size(max_frame_size)
        .decode(&mut buffer)
        .ok()??;
    if !matches!(frame.head, Head::Response(_)) {
        return None;
    }
    // The fingerprint already refuses an attempt in another format; a reply stored by a
    // server that kept no fingerprint is checked here.
    let stored_format = frame.encoding.format_id();
    if stored_format != format_id {
        return Some(Err(Status::invalid_argument(format!(
            "this call ran in format {}; this attempt asks for {}",
            format_name(stored_format),
            format_name(format_id)
        ))));
    }
    Some(answer_of(frame, max_frame_size))
}

/// The handler's answer a stored response frame carries. An ok reply's body goes on as it was
/// stored, compressed or not (its codec is the one the call asked for); an error's details
/// are decompressed (servers store them uncompressed, but one of an older version may not).
fn answer_of(frame: Frame, max_frame_size: u32) -> Result<Response, Status> {
    let Head::Response(head) = frame.head else {
        return Err(Status::internal("a stored reply is not a response"));
    };
    let compression = Compression::from_id(frame.encoding.compression_id())
        .map_err(|error| Status::internal(format!("a stored reply: {error}")))?;
    if head.code == Code::Ok.as_u32() {
        let mut response = Response::new(frame.body);
        response.metadata = head.metadata;
        if compression != Compression::None {
            response.compressed = Some(compression);
        }
        return Ok(response);
    }
    let details = match compression {
        Compression::None => frame.body,
        other => other
            .decompress(&frame.body, max_frame_size as usize)
            .map_err(|error| Status::internal(format!("a stored reply: {error}")))?,
    };
    Err(
        Status::new(Code::from_u32(head.code), head.message.to_string())
            .with_details(details)
            .with_metadata(head.metadata),
    )
}

/// A format's name, or its id when it names none.
fn format_name(id: u8) -> String {
    Format::from_id(id).map_or_else(|_| id.to_string(), |format| format.to_string())
}
