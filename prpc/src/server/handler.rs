//! The server's seam for layers: a [`Handler`] takes a request to the service it names and
//! answers it. [`Dispatch`] is the bottom of every stack (it calls the service); the server's
//! own policies ([`Dedupe`](super::Dedupe), [`Deadline`](super::Deadline)) and yours are
//! layers above it.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::context::{self, Context as CallContext};
use crate::service::{Request, Response, Service, ServiceFuture};
use crate::status::Status;
use crate::stream::{Message, MessageStream};

use futures_core::Stream;

/// Handles a request on a server: the services at the bottom, layers above them.
///
/// `service` is the service the request names (found by the server before the stack runs,
/// from the request's bytes); a layer passes it on with the request. The future must be
/// `Unpin` (box it, or build it from `Unpin` parts such as
/// [`Either`](crate::layer::Either)): on a runtime with one worker the server polls it once
/// where the request was read and moves it to a task only if it waits.
///
/// A layer that checks a bearer token in the call's metadata:
///
/// ```
/// use std::future::{Ready, ready};
/// use std::sync::Arc;
/// use prpc::layer::{Either, Layer};
/// use prpc::server::Handler;
/// use prpc::{Request, Response, Service, Status};
///
/// #[derive(Clone)]
/// struct RequireToken(&'static str);
///
/// impl<H> Layer<H> for RequireToken {
///     type Service = TokenCheck<H>;
///     fn layer(&self, inner: H) -> TokenCheck<H> {
///         TokenCheck { inner, expected: format!("Bearer {}", self.0) }
///     }
/// }
///
/// struct TokenCheck<H> {
///     inner: H,
///     expected: String,
/// }
///
/// impl<H: Handler> Handler for TokenCheck<H> {
///     type Future = Either<Ready<Result<Response, Status>>, H::Future>;
///
///     fn call(&self, service: &Arc<dyn Service>, request: Request) -> Self::Future {
///         match request.metadata.get("authorization") {
///             Some(token) if token == self.expected.as_bytes() => {
///                 Either::Right(self.inner.call(service, request))
///             }
///             _ => Either::Left(ready(Err(Status::new(
///                 prpc::Code::Unauthenticated,
///                 "a bearer token is required",
///             )))),
///         }
///     }
/// }
///
/// # #[prpc::service] pub trait Ping { async fn ping(&self) -> u8; }
/// # struct Pong;
/// # impl Ping for Pong { async fn ping(&self) -> u8 { 1 } }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = prpc::Server::builder()
///     .layer(RequireToken("s3cret"))
///     .add_service(PingServer::new(Pong))
///     .bind("127.0.0.1:0")
///     .await?;
/// let addr = server.local_addr();
/// tokio::spawn(server.serve());
///
/// let anonymous = PingClient::connect(&addr).await?;
/// let refused = anonymous.ping().await.unwrap_err();
/// assert_eq!(refused.code(), prpc::Code::Unauthenticated);
///
/// let client = PingClient::connect(&addr)
///     .await?
///     .with_options(prpc::CallOptions::new().metadata("authorization", "Bearer s3cret"));
/// assert_eq!(client.ping().await?, 1);
/// # Ok(()) }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// The answer to one request.
    type Future: Future<Output = Result<Response, Status>> + Send + Unpin + 'static;

    /// Starts handling `request`, addressed to `service`.
    fn call(&self, service: &Arc<dyn Service>, request: Request) -> Self::Future;
}

/// The bottom of every server's stack: calls the service, inside the call's
/// [`context`](crate::context), with a panic turned into an `internal` status for that call
/// alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dispatch;

impl Handler for Dispatch {
    type Future = Guarded;

    fn call(&self, service: &Arc<dyn Service>, request: Request) -> Guarded {
        Guarded::new(&**service, request)
    }
}

/// A handler's future for one call, run inside the call's [`context`] with a panic turned
/// into an `internal` status for that call alone. `Unpin` (the handler's own future is boxed),
/// so it can be polled once where the request was read and then moved to a task of its own.
pub struct Guarded {
    context: Option<CallContext>,
    future: ServiceFuture,
}

impl Guarded {
    /// Calls the service: the handler's work starts when this is first polled (and, for a
    /// hand-written `Service`, whatever its `call` does before returning the future).
    fn new(service: &dyn Service, request: Request) -> Self {
        if let Some(started) = &request.started {
            started.set();
        }
        let context = CallContext {
            request_id: request.request_id,
            attempt: request.attempt,
            deadline: request.deadline,
            metadata: request.metadata.clone(),
            peer: request.peer,
        };
        // A hand-written `call` may panic before it returns its future: that too is the
        // call's `internal` status, not the connection's end.
        let future = std::panic::catch_unwind(AssertUnwindSafe(|| service.call(request)))
            .unwrap_or_else(|panic| {
                let status =
                    Status::internal(format!("handler panicked: {}", panic_message(&*panic)));
                Box::pin(std::future::ready(Err(status)))
            });
        Guarded {
            context: Some(context),
            future,
        }
    }
}

impl Future for Guarded {
    type Output = Result<Response, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Guarded { context, future } = self.get_mut();
        let polled = context::enter(context, || {
            std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)))
        });
        let polled = polled.unwrap_or_else(|panic| {
            Poll::Ready(Err(Status::internal(format!(
                "handler panicked: {}",
                panic_message(&*panic)
            ))))
        });
        // A stream's messages are the handler's code too: they run in its context, and a
        // panic in them ends the stream with `internal`.
        polled.map(|result| {
            result.map(|mut response| {
                if let Some(messages) = response.messages.take() {
                    response.messages = Some(Box::pin(GuardedStream {
                        context: context.take(),
                        messages: Some(messages),
                    }));
                }
                response
            })
        })
    }
}

/// A handler's stream, polled in the call's context with a panic turned into `internal`.
struct GuardedStream {
    context: Option<CallContext>,
    /// `None` once it panicked: the stream is over.
    messages: Option<MessageStream>,
}

impl Stream for GuardedStream {
    type Item = Result<Message, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let GuardedStream { context, messages } = &mut *self;
        let Some(stream) = messages else {
            return Poll::Ready(None);
        };
        let polled = context::enter(context, || {
            std::panic::catch_unwind(AssertUnwindSafe(|| stream.as_mut().poll_next(cx)))
        });
        polled.unwrap_or_else(|panic| {
            *messages = None;
            Poll::Ready(Some(Err(Status::internal(format!(
                "handler panicked: {}",
                panic_message(&*panic)
            )))))
        })
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "(no message)"
    }
}
