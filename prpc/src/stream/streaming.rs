//! [`Streaming`], the typed stream generated services and clients hand to user code.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::message::Message;
use super::messages::{MessageStream, Messages};
use crate::error::Error;
use crate::status::Status;
use crate::wire::Metadata;

/// A stream of typed items: what a streaming method's handler returns and its client reads,
/// and what a client-streaming handler receives.
///
/// A handler builds one from any [`Stream`] (or iterator) of items; a client or handler that
/// receives one reads `Result<T, prpc::Error>` items, with [`message`](Streaming::message)
/// or as a [`Stream`]. An item type of `Result<Item, E>` sends a typed error per item (the
/// stream goes on after it); an `Err` of the stream itself ([`try_new`](Streaming::try_new))
/// ends the stream with that status.
///
/// ```
/// # async fn demo() -> Result<(), prpc::Error> {
/// let mut ticks = prpc::Streaming::from_iter([1, 2, 3]);
/// let mut seen = Vec::new();
/// while let Some(tick) = ticks.message().await? {
///     seen.push(tick);
/// }
/// assert_eq!(seen, [1, 2, 3]);
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
/// ```
pub struct Streaming<T> {
    source: Source<T>,
}

enum Source<T> {
    /// Made on this side, from user code.
    Local {
        items: Pin<Box<dyn Stream<Item = Result<T, Error>> + Send + 'static>>,
        trailer: Metadata,
    },
    /// Received: the peer's messages, decoded as they are taken.
    Remote {
        messages: Messages,
        decode: Box<dyn Fn(Message) -> Result<T, Error> + Send + 'static>,
    },
}

impl<T: Send + 'static> Streaming<T> {
    /// A stream of the items `stream` yields.
    pub fn new(stream: impl Stream<Item = T> + Send + 'static) -> Self {
        Streaming::local(Box::pin(MapOk(Box::pin(stream))))
    }

    /// A stream of the items `stream` yields, ended early by its first `Err`, whose status
    /// the peer receives (a `Status` converts into an [`Error`]).
    pub fn try_new<E: Into<Error>>(
        stream: impl Stream<Item = Result<T, E>> + Send + 'static,
    ) -> Self {
        Streaming::local(Box::pin(MapErr(Box::pin(stream))))
    }

    /// A stream of the items of an iterator.
    #[allow(clippy::should_implement_trait)] // also a FromIterator below; this one is the named constructor
    pub fn from_iter<I>(items: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        Streaming::new(Iter(Box::new(items.into_iter())))
    }

    /// A stream with no items.
    pub fn empty() -> Self {
        Streaming::from_iter(std::iter::empty())
    }

    fn local(items: Pin<Box<dyn Stream<Item = Result<T, Error>> + Send + 'static>>) -> Self {
        Streaming {
            source: Source::Local {
                items,
                trailer: Metadata::new(),
            },
        }
    }
}

impl<T> Streaming<T> {
    /// Sets the metadata sent in the trailer that ends the stream (for a stream a handler
    /// returns).
    #[must_use]
    pub fn with_trailer(mut self, metadata: Metadata) -> Self {
        if let Source::Local { trailer, .. } = &mut self.source {
            *trailer = metadata;
        }
        self
    }

    /// The trailer's metadata: for a stream a client received, once it has ended ok; for one
    /// made here, what [`with_trailer`](Streaming::with_trailer) set.
    pub fn trailer(&self) -> Option<&Metadata> {
        match &self.source {
            Source::Local { trailer, .. } => Some(trailer),
            Source::Remote { messages, .. } => messages.trailer(),
        }
    }

    /// The next item: `Ok(None)` at the end of the stream.
    pub async fn message(&mut self) -> Result<Option<T>, Error> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .transpose()
    }

    /// For a stream received from the peer: the bytes it has received and not yet decoded
    /// (bounded by the stream's flow-control window); 0 for a stream made here.
    pub fn buffered(&self) -> usize {
        match &self.source {
            Source::Local { .. } => 0,
            Source::Remote { messages, .. } => messages.buffered(),
        }
    }

    /// A stream that decodes `messages` with `decode` (generated code builds these).
    pub(crate) fn from_messages(
        messages: Messages,
        decode: impl Fn(Message) -> Result<T, Error> + Send + 'static,
    ) -> Self {
        Streaming {
            source: Source::Remote {
                messages,
                decode: Box::new(decode),
            },
        }
    }
}

impl<T: Send + 'static> Streaming<T> {
    /// The stream's messages, each item encoded with `encode`, and its trailer's metadata
    /// (generated code sends these).
    pub(crate) fn into_messages(
        self,
        encode: impl Fn(T) -> Result<Message, Status> + Send + 'static,
    ) -> (MessageStream, Metadata) {
        let trailer = match &self.source {
            Source::Local { trailer, .. } => trailer.clone(),
            Source::Remote { .. } => Metadata::new(),
        };
        let encoded = Encode {
            items: self,
            encode: Box::new(encode),
        };
        (Box::pin(encoded), trailer)
    }
}

impl<T> Stream for Streaming<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.source {
            Source::Local { items, .. } => items.as_mut().poll_next(cx),
            Source::Remote { messages, decode } => Pin::new(messages)
                .poll_next(cx)
                .map(|next| next.map(|message| message.and_then(decode))),
        }
    }
}

impl<T: Send + 'static> FromIterator<T> for Streaming<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let items: Vec<T> = items.into_iter().collect();
        Streaming::from_iter(items)
    }
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Local { .. } => f.debug_struct("Streaming").finish_non_exhaustive(),
            Source::Remote { messages, .. } => f
                .debug_struct("Streaming")
                .field("messages", messages)
                .finish_non_exhaustive(),
        }
    }
}

// The adapters below hold their inner stream boxed, so that they are `Unpin` whatever it is
// and need no pin projection.

/// Items as `Ok`s.
struct MapOk<S>(Pin<Box<S>>);

impl<S: Stream> Stream for MapOk<S> {
    type Item = Result<S::Item, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx).map(|item| item.map(Ok))
    }
}

/// Errors converted into [`Error`].
struct MapErr<S>(Pin<Box<S>>);

impl<T, E: Into<Error>, S: Stream<Item = Result<T, E>>> Stream for MapErr<S> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|item| item.map(|result| result.map_err(Into::into)))
    }
}

/// An iterator as a stream that is always ready.
struct Iter<I>(Box<I>);

impl<I: Iterator> Stream for Iter<I> {
    type Item = I::Item;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.next())
    }
}

/// The encoder of an item into a message.
type EncodeFn<T> = Box<dyn Fn(T) -> Result<Message, Status> + Send + 'static>;

/// Items encoded into messages; an item that will not encode ends the stream with its status.
struct Encode<T> {
    items: Streaming<T>,
    encode: EncodeFn<T>,
}

impl<T> Stream for Encode<T> {
    type Item = Result<Message, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        Pin::new(&mut this.items).poll_next(cx).map(|next| {
            next.map(|item| match item {
                Ok(item) => (this.encode)(item),
                Err(Error::Status(status)) => Err(status),
                Err(error) => Err(Status::new(error.code(), error.to_string())),
            })
        })
    }
}
