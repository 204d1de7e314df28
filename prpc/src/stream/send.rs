//! Sending a stream's messages: each compressed by the same rule as any body, then sent as
//! the stream's and the connection's credit allow.

use std::pin::Pin;

use futures_core::Stream;

use super::flow::SendCredit;
use super::messages::MessageStream;
use super::set::{StreamId, StreamSet};
use crate::compress::{Compression, CompressionPolicy};
use crate::error::Error;
use crate::format::Format;
use crate::status::Status;
use crate::wire::Encoding;

/// Why sending stopped before the messages ran out.
#[derive(Debug)]
pub(crate) enum Stopped {
    /// The stream ended first (cancelled, or closed by the peer's trailer).
    Closed,
    /// The messages ended the stream with a status.
    Status(Status),
    /// A message could not be compressed or framed.
    Failed(Error),
}

/// Sends every message of `messages` on stream `id`, waiting for credit as it goes. `Ok` once
/// they ran out.
pub(crate) async fn send_all(
    set: &StreamSet,
    id: StreamId,
    credit: &SendCredit,
    mut messages: MessageStream,
    format: Format,
    policy: CompressionPolicy,
) -> Result<(), Stopped> {
    // What the last send found queued: the queue's room is checked (under its lock) only
    // when that was full.
    let mut queue_full = true;
    loop {
        let next = std::future::poll_fn(|cx| Pin::new(&mut messages).poll_next(cx)).await;
        let message = match next {
            None => return Ok(()),
            Some(Err(status)) => return Err(Stopped::Status(status)),
            Some(Ok(message)) => message,
        };
        let packed = policy
            .apply((&message.body, &crate::body::NO_TAIL))
            .map_err(|error| Stopped::Failed(error.into()))?;
        let (compression, body) = match &packed {
            Some((compression, packed)) => (*compression, packed),
            None => (Compression::None, &message.body),
        };
        let encoding = Encoding::new(format.id(), compression.id());
        let sent = set.send_message(
            id,
            credit,
            queue_full,
            encoding,
            message.application_error,
            body,
        );
        match sent.await {
            Ok(Some(queued)) => queue_full = StreamSet::queue_full(queued),
            Ok(None) => return Err(Stopped::Closed),
            Err(error) => return Err(Stopped::Failed(error)),
        }
    }
}
