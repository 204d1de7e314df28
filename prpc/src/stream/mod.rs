//! Streaming calls: a client, a server, or both send a sequence of messages on one call.
//!
//! A stream is a call opened with the request's `stream` flag. Either side then sends
//! messages, each its own frame; the client ends its side with an `end` frame, and the
//! server's response (the trailer: a status and metadata) ends the stream. Messages are
//! flow-controlled in bytes, per stream and per connection: a receiver grants credit as its
//! consumer takes messages, and a sender without credit waits, so a consumer that stops
//! reading stops its producer with at most a window of bytes buffered. docs/PROTOCOL.md
//! section 7.10 is the normative description.
//!
//! User code sees [`Streaming`]: a handler returns one built from any `Stream`, a client
//! reads one. The layers below it move raw [`Message`]s: a request's
//! [`messages`](crate::Request) and a response's, a call's and a reply's.

mod flow;
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz;
mod message;
mod messages;
mod send;
mod set;
mod streaming;

pub use message::{Message, Trailer};
pub use messages::{MessageStream, Messages};
pub use streaming::Streaming;

pub(crate) use flow::{INITIAL_STREAM_CREDIT, Ready, SendCredit};
pub(crate) use send::{Stopped, send_all};
pub(crate) use set::{
    Arrivals, Broken, CONNECTION, FlowConfig, MessageHead, Opened, Received, StreamId, StreamSet,
};
