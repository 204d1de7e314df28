//! The raw messages of a stream as the runtime moves them: encoded bodies, in and out.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;

use super::message::{Message, Trailer};
use super::set::{Inbox, Next, StreamId, StreamSet};
use crate::compress::Compression;
use crate::error::Error;
use crate::format::Format;
use crate::status::{Code, Status};
use crate::timer::Sleep;
use crate::wire::{Frame, Head, Metadata};

/// Messages a side sends on a stream: each encoded message, or the status that ends the
/// stream early.
pub type MessageStream = Pin<Box<dyn Stream<Item = Result<Message, Status>> + Send + 'static>>;

/// The messages a stream receives, decompressed, not yet decoded: the client's messages as a
/// server handler reads them ([`Request::messages`](crate::Request)), or the server's as a
/// client reads them ([`Reply::messages`](crate::Reply)).
///
/// Taking a message gives its bytes back to the sender as credit; a consumer that stops
/// taking them makes the sender wait once the stream's window is full. On a client, the
/// stream ends with the server's trailer: `None` after an ok status (its metadata is then in
/// [`trailer`](Messages::trailer)), or the error status as the last item. Dropping a client's
/// `Messages` before the end cancels the call.
pub struct Messages {
    /// Boxed: a unary call's [`Reply`](crate::Reply) has room for an `Option<Messages>`, and
    /// is moved several times per call, so `Messages` is kept to one pointer.
    state: Box<State>,
}

struct State {
    set: Arc<StreamSet>,
    inbox: Arc<Inbox>,
    id: StreamId,
    format: Format,
    side: Side,
    /// The end has been read.
    ended: bool,
    /// A client's trailer, once the stream ended ok.
    reply: Option<Trailer>,
    /// A client's connection, kept open while the stream is.
    _connection: Option<Arc<dyn Send + Sync>>,
    /// Bytes taken from the stream and not yet given back on the connection's window: they
    /// are settled in batches, under one lock of the window for many messages.
    unsettled: usize,
}

/// Bytes a consumer takes before it gives them back on the connection's window, unless it
/// runs out of messages first.
const SETTLE_EVERY: usize = 16 * 1024;

enum Side {
    Server,
    Client {
        /// The call's timeout, for the whole stream.
        deadline: Option<Box<(Sleep, Duration, String)>>,
    },
}

impl Messages {
    pub(crate) fn server(
        set: Arc<StreamSet>,
        inbox: Arc<Inbox>,
        id: StreamId,
        format: Format,
    ) -> Self {
        Messages {
            state: Box::new(State {
                set,
                inbox,
                id,
                format,
                side: Side::Server,
                ended: false,
                reply: None,
                _connection: None,
                unsettled: 0,
            }),
        }
    }

    pub(crate) fn client(
        set: Arc<StreamSet>,
        inbox: Arc<Inbox>,
        id: StreamId,
        format: Format,
        deadline: Option<(Sleep, Duration, String)>,
        connection: Arc<dyn Send + Sync>,
    ) -> Self {
        Messages {
            state: Box::new(State {
                set,
                inbox,
                id,
                format,
                side: Side::Client {
                    deadline: deadline.map(Box::new),
                },
                ended: false,
                reply: None,
                _connection: Some(connection),
                unsettled: 0,
            }),
        }
    }

    /// The format the stream's messages are in.
    pub fn format(&self) -> Format {
        self.state.format
    }

    /// The request id of the call the stream belongs to.
    pub fn request_id(&self) -> u64 {
        self.state.id.0
    }

    /// On a client, once the stream has ended ok: the metadata of the server's trailer.
    pub fn trailer(&self) -> Option<&Metadata> {
        self.state.reply.as_ref().map(|reply| &reply.metadata)
    }

    /// Bytes received on this stream and not taken yet (what flow control bounds).
    pub fn buffered(&self) -> usize {
        usize::try_from(self.state.inbox.buffered()).unwrap_or(0)
    }

    /// On a client: waits for the end of the stream and returns the server's trailer (the
    /// reply of a client-streaming call is its body). Messages that come before it are
    /// skipped.
    pub async fn reply(mut self) -> Result<Trailer, Error> {
        loop {
            match std::future::poll_fn(|cx| Pin::new(&mut self).poll_next(cx)).await {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => {
                    return self.state.reply.take().ok_or(Error::Status(Status::new(
                        Code::Internal,
                        "the stream ended without a trailer",
                    )));
                }
            }
        }
    }
}

impl State {
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        let Side::Client {
            deadline: Some(deadline),
        } = &mut self.side
        else {
            return Poll::Pending;
        };
        let (sleep, timeout, method) = &mut **deadline;
        ready!(Pin::new(sleep).poll(cx));
        let error = Error::Timeout {
            method: std::mem::take(method),
            timeout: *timeout,
            sent: None,
        };
        self.cancel();
        Poll::Ready(error)
    }

    /// A client's cancel: the stream is closed here and the server told to stop.
    fn cancel(&mut self) {
        if self.set.close(self.id, Err(Error::Cancelled)).is_some() {
            let mut frame = Frame::control(self.id.0, Head::Cancel);
            frame.attempt = self.id.1;
            let _ = self.set.outbound.send(&frame);
        }
    }

    /// Gives back on the connection's window what was taken from the stream.
    fn settle(&mut self) {
        if self.unsettled > 0 {
            self.set.consumed(std::mem::take(&mut self.unsettled));
        }
    }

    /// A received message as the consumer reads it: decompressed, in the stream's format.
    fn open(&self, received: super::set::Received) -> Result<Message, Error> {
        let encoding = received.encoding;
        if encoding.format_id() != self.format.id() {
            return Err(Error::Status(Status::invalid_argument(format!(
                "a message in format id {} on a stream in {}",
                encoding.format_id(),
                self.format
            ))));
        }
        let body = match Compression::from_id(encoding.compression_id())? {
            Compression::None => received.body,
            codec => codec.decompress(&received.body, self.set.max_frame_size as usize)?,
        };
        Ok(Message {
            body,
            application_error: received.application_error,
        })
    }
}

impl Stream for Messages {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self.state;
        if this.ended {
            return Poll::Ready(None);
        }
        // The timeout first: a consumer slower than its producer always finds a message.
        if let Poll::Ready(error) = this.poll_deadline(cx) {
            this.ended = true;
            this.settle();
            return Poll::Ready(Some(Err(error)));
        }
        match this.inbox.poll_next(cx) {
            Poll::Ready(Next::Message(received, grant, drained)) => {
                if let Some(bytes) = grant {
                    this.set.grant_stream(this.id, bytes);
                }
                this.unsettled += received.cost;
                // Settled once the queue is empty too: a consumer that takes what it needs
                // and stops polling holds no connection credit for what it took.
                if drained || this.unsettled >= SETTLE_EVERY {
                    this.settle();
                }
                return Poll::Ready(Some(this.open(received)));
            }
            Poll::Ready(Next::End(outcome)) => {
                this.settle();
                this.ended = true;
                return Poll::Ready(match outcome {
                    Ok(reply) => {
                        this.reply = reply;
                        None
                    }
                    Err(error) => Some(Err(error)),
                });
            }
            Poll::Pending => this.settle(),
        }
        Poll::Pending
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.settle();
        match self.side {
            Side::Server => {
                let dropped = self.inbox.drop_consumer();
                self.set.consumed(dropped);
            }
            Side::Client { .. } => {
                if !self.ended {
                    self.cancel();
                }
                let dropped = self.inbox.drop_consumer();
                self.set.consumed(dropped);
            }
        }
    }
}

impl fmt::Debug for Messages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = &self.state;
        f.debug_struct("Messages")
            .field("request_id", &state.id.0)
            .field("attempt", &state.id.1)
            .field("format", &state.format)
            .field("ended", &state.ended)
            .finish_non_exhaustive()
    }
}
