//! The server's seam: a [`Service`] runs a [`Request`] to a [`Response`] or a [`Status`].
//!
//! `#[prpc::service]` implements [`Service`] for its `FooServer<T>`. It works on encoded
//! bodies: the runtime moves bytes and the generated code turns them into typed values, in the
//! format the request names. These types name no client and no server.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;

use crate::body::Body;
use crate::compress::Compression;
use crate::format::Format;
use crate::reflection::description::MethodDescription;
use crate::status::Status;
use crate::stream::{MessageStream, Messages};
use crate::wire::Metadata;

/// A call as a [`Service`] receives it: the body decompressed, not yet decoded.
#[derive(Debug)]
#[non_exhaustive]
pub struct Request {
    /// Method name within the service.
    pub method: ByteString,
    /// Format of `body`; the reply must be encoded in it.
    pub format: Format,
    /// The compression the request's body came in; the reply is compressed with it (when over
    /// the server's threshold).
    pub compression: Compression,
    /// The encoded arguments.
    pub body: Bytes,
    /// Caller metadata.
    pub metadata: Metadata,
    /// When the caller stops waiting, if it set a deadline.
    pub deadline: Option<Instant>,
    /// The time the caller gave the call when it sent this attempt (what `deadline` was
    /// counted from, on arrival).
    pub timeout: Option<Duration>,
    /// The call's request id (a snowflake id, unique per caller).
    pub request_id: u64,
    /// Which attempt of the call this is (0 for the first).
    pub attempt: u32,
    /// The caller may send this call again under the same request id: the server runs it at
    /// most once (see [`idempotency`](crate::idempotency)).
    pub dedupe: bool,
    /// For a call opened as a stream: the messages the client sends after the request (the
    /// body holds the method's other arguments). `None` for a unary call.
    pub messages: Option<Messages>,
    /// The IP address and port the call's connection came from: set for TCP and TLS
    /// connections a server accepted, `None` where the transport has no such address (Unix
    /// sockets, in-memory streams, streams given to `serve_connection`). The same value is in
    /// the handler's [`Context::peer`](crate::context::Context::peer).
    pub peer: Option<SocketAddr>,
    /// When the connection read the request's bytes (the read that completed its frame),
    /// for the server's latency figures: taken once per read, for all the frames it
    /// brought, so a call costs no clock read for it. `None` for a request made by hand.
    pub(crate) received: Option<Instant>,
    /// Set when the service is called, for the dedupe layer to tell a call refused before it
    /// reached its handler (its claim may be given up) from one that started.
    pub(crate) started: Option<Started>,
    /// The method's number on the server that received the call, as its dispatcher found it
    /// (`None` for a request made otherwise): the stats layer's index of its counters.
    pub(crate) slot: Option<u32>,
}

/// Says whether a call reached its service: set by the bottom of the server's stack as it
/// calls the service.
#[derive(Debug, Clone, Default)]
pub(crate) struct Started(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Started {
    /// Records that the service was called.
    pub(crate) fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the service was called.
    pub(crate) fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Request {
    /// A request for `method` with an encoded body and nothing else set (for tests and for
    /// services that call each other in-process).
    pub fn new(method: impl Into<ByteString>, format: Format, body: Bytes) -> Self {
        Request {
            method: method.into(),
            format,
            compression: Compression::None,
            body,
            metadata: Metadata::new(),
            deadline: None,
            timeout: None,
            request_id: 0,
            attempt: 0,
            dedupe: false,
            messages: None,
            peer: None,
            received: None,
            started: None,
            slot: None,
        }
    }
}

/// A handler's successful reply: the encoded result and any metadata to send back.
#[derive(Default)]
#[non_exhaustive]
pub struct Response {
    /// The encoded result, in the request's format (in one piece or two: see [`Body`]). For a
    /// stream, the trailer's body: the reply of a client-streaming call, else empty.
    pub body: Body,
    /// Server metadata sent back with the reply (for a stream, in its trailer).
    pub metadata: Metadata,
    /// For a stream: the messages sent before the trailer. A status from them ends the
    /// stream with it.
    pub messages: Option<MessageStream>,
    /// The body is already compressed with this codec: a stored reply, replayed to another
    /// attempt as it was first sent.
    pub(crate) compressed: Option<Compression>,
}

impl Response {
    /// A reply with this body and no metadata.
    pub fn new(body: Bytes) -> Self {
        Response::from_body(Body::from(body))
    }

    /// A reply with this body, in one piece or two, and no metadata.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use prpc::{Body, Response};
    ///
    /// let payload = Bytes::from(vec![7u8; 4096]);
    /// // A MessagePack `bin` of 4096 bytes: its header, then the payload, not copied.
    /// let body = Body::from_parts(Bytes::from_static(&[0xc5, 0x10, 0x00]), payload);
    /// let response = Response::from_body(body);
    /// assert_eq!(response.body.len(), 3 + 4096);
    /// ```
    pub fn from_body(body: Body) -> Self {
        Response {
            body,
            metadata: Metadata::new(),
            messages: None,
            compressed: None,
        }
    }

    /// The response of a stream: `messages` go out, then a trailer with `metadata`.
    pub fn stream(messages: MessageStream, metadata: Metadata) -> Self {
        Response {
            body: Body::new(),
            metadata,
            messages: Some(messages),
            compressed: None,
        }
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("body", &self.body)
            .field("metadata", &self.metadata)
            .field("stream", &self.messages.is_some())
            .finish_non_exhaustive()
    }
}

/// The future a [`Service`] returns for one call.
pub type ServiceFuture = Pin<Box<dyn Future<Output = Result<Response, Status>> + Send + 'static>>;

/// What a server dispatches calls to: one named service with its methods.
///
/// Generated `FooServer<T>` types implement it; implement it by hand only for dynamic services
/// (proxies, gateways).
pub trait Service: Send + Sync + 'static {
    /// The name callers address, e.g. `math.Arith`.
    fn name(&self) -> &str;

    /// The methods the service answers, for reflection. The server also reads the list once,
    /// when the service is added, to find these methods by the request's bytes alone; a call
    /// to a method not listed still reaches [`call`](Service::call), by a slower path.
    fn methods(&self) -> Vec<String>;

    /// What it takes to call each method, for reflection's
    /// [`describe_services`](crate::reflection::describe_services): its arguments and the
    /// shape of each, its reply, its error. `#[prpc::service]` generates it from the trait;
    /// the default describes nothing, so a hand-written service is listed without methods
    /// there unless it says more. The server asks once, when it is bound.
    ///
    /// ```
    /// use prpc::reflection::{MethodDescription, Shape};
    ///
    /// struct Echo;
    ///
    /// impl prpc::Service for Echo {
    ///     fn name(&self) -> &str {
    ///         "Echo"
    ///     }
    ///
    ///     fn methods(&self) -> Vec<String> {
    ///         vec!["echo".into()]
    ///     }
    ///
    ///     fn describe(&self) -> Vec<MethodDescription> {
    ///         vec![MethodDescription::new("echo").argument("text", Shape::String).returns(Shape::String)]
    ///     }
    ///
    ///     fn call(&self, request: prpc::Request) -> prpc::ServiceFuture {
    ///         Box::pin(async move {
    ///             let (text,): (String,) = request.format.decode(&request.body)?;
    ///             Ok(prpc::Response::new(request.format.encode(&text)?))
    ///         })
    ///     }
    /// }
    /// ```
    fn describe(&self) -> Vec<MethodDescription> {
        Vec::new()
    }

    /// Runs one call. Unknown methods answer [`Code::Unimplemented`](crate::Code); bodies that
    /// do not decode answer [`Code::InvalidArgument`](crate::Code). On a runtime with one
    /// worker thread the future is first polled where the request was read, and a future that
    /// completes there never gets a task; otherwise (or once it waits) it runs on a task of its
    /// own. It is dropped if the caller cancels or the deadline passes.
    fn call(&self, request: Request) -> ServiceFuture;
}
