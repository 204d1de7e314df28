//! The server's tracing layer: a `prpc.server` span per call, continuing the caller's trace.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use tracing::Span;
use tracing::field::{Empty, display};

use super::traceparent::{Hex, TraceContext};
use super::{Current, TRACEPARENT, TRACESTATE, enter, record_code};
use crate::layer::Layer;
use crate::server::Handler;
use crate::service::{Request, Response, Service};
use crate::status::{Code, Status};
use crate::stream::{Message, MessageStream};

/// The server's tracing layer: a `prpc.server` span per call (see the [module
/// docs](super) for its fields), a child of the caller's span when the call carries a valid
/// `traceparent`, else the root of a new trace; the handler runs inside the span and sees its
/// trace in [`current`](super::current), so the calls it makes through
/// [`Traced`](super::Traced) continue the trace.
///
/// ```
/// # #[prpc::service] pub trait Ping { async fn ping(&self) -> u8; }
/// # struct Pong;
/// # impl Ping for Pong { async fn ping(&self) -> u8 { 1 } }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = prpc::Server::builder()
///     .layer(prpc::trace::TraceLayer::new())
///     .add_service(PingServer::new(Pong))
///     .bind("127.0.0.1:0")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct TraceLayer;

impl TraceLayer {
    /// The layer.
    ///
    /// ```
    /// use prpc::layer::Layer;
    ///
    /// // What the server's builder does with it: wrap the handler under it.
    /// let handler = prpc::trace::TraceLayer::new().layer(prpc::server::Dispatch);
    /// ```
    pub fn new() -> Self {
        TraceLayer
    }
}

impl<H> Layer<H> for TraceLayer {
    type Service = TraceHandler<H>;

    fn layer(&self, inner: H) -> TraceHandler<H> {
        TraceHandler { inner }
    }
}

/// The [`Handler`] [`TraceLayer`] makes: traces the calls of the handler it wraps.
///
/// ```
/// use prpc::layer::Layer;
/// use prpc::server::{Dispatch, Handler};
/// use prpc::trace::{TraceHandler, TraceLayer};
///
/// fn is_handler(_: &impl Handler) {}
/// let traced: TraceHandler<Dispatch> = TraceLayer::new().layer(Dispatch);
/// is_handler(&traced);
/// ```
#[derive(Debug, Clone)]
pub struct TraceHandler<H> {
    inner: H,
}

impl<H: Handler> Handler for TraceHandler<H> {
    type Future = TracedCall<H::Future>;

    fn call(&self, service: &Arc<dyn Service>, request: Request) -> Self::Future {
        let incoming = request
            .metadata
            .get(TRACEPARENT)
            .and_then(|header| TraceContext::parse(&header));
        let span = tracing::info_span!(
            target: "prpc::trace",
            "prpc.server",
            "otel.kind" = "server",
            "otel.name" = %format_args!("{}/{}", service.name(), request.method),
            "otel.status_code" = Empty,
            "rpc.system" = "prpc",
            "rpc.service" = service.name(),
            "rpc.method" = &*request.method,
            request_id = request.request_id,
            attempt = request.attempt,
            code = Empty,
            trace_id = Empty,
            span_id = Empty,
            parent_id = Empty,
        );
        // Not recorded here: the caller's trace passes through unchanged, so a process that
        // records nothing still carries traces between processes that do.
        let context = if span.is_disabled() {
            incoming
        } else {
            let context = match incoming {
                Some(parent) => {
                    span.record("parent_id", display(Hex(parent.parent_id)));
                    parent.child()
                }
                None => TraceContext::new_root(),
            };
            span.record("trace_id", display(Hex(context.trace_id)));
            span.record("span_id", display(Hex(context.parent_id)));
            Some(context)
        };
        // `tracestate` belongs to the `traceparent` it came with: without a valid one the
        // trace restarts here and the state is dropped, as the spec says.
        let mut current = context.map(|context| Current {
            context,
            state: incoming.and_then(|_| request.metadata.get(TRACESTATE)),
        });
        // A service may start its work before returning its future: that too is in the span.
        let inner = {
            let _entered = span.enter();
            enter(&mut current, || self.inner.call(service, request))
        };
        TracedCall {
            inner,
            span,
            current,
            answered: false,
        }
    }
}

/// The future of [`TraceHandler`]: the call, polled inside its span with its trace as the
/// [`current`](super::current) one; the span records the call's code when it answers (for a
/// stream, when the stream ends), or `cancelled` if it is dropped first. Made by
/// [`TraceHandler`]'s `call`, under a server; not built by hand.
pub struct TracedCall<F> {
    inner: F,
    span: Span,
    current: Option<Current>,
    answered: bool,
}

impl<F> Future for TracedCall<F>
where
    F: Future<Output = Result<Response, Status>> + Unpin,
{
    type Output = Result<Response, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = {
            let _entered = this.span.enter();
            ready!(enter(&mut this.current, || Pin::new(&mut this.inner).poll(cx)))
        };
        this.answered = true;
        Poll::Ready(match result {
            Ok(mut response) => {
                match response.messages.take() {
                    // The span lasts as long as the stream, and records how it ended.
                    Some(messages) => {
                        response.messages = Some(Box::pin(TracedStream {
                            messages,
                            span: this.span.clone(),
                            current: this.current.take(),
                            ended: false,
                        }));
                    }
                    None => record_code(&this.span, Code::Ok, true),
                }
                Ok(response)
            }
            Err(status) => {
                record_code(&this.span, status.code(), true);
                Err(status)
            }
        })
    }
}

impl<F> Drop for TracedCall<F> {
    fn drop(&mut self) {
        if !self.answered {
            record_code(&self.span, Code::Cancelled, true);
        }
    }
}

/// A handler's stream, polled inside the call's span and trace.
struct TracedStream {
    messages: MessageStream,
    span: Span,
    current: Option<Current>,
    ended: bool,
}

impl Stream for TracedStream {
    type Item = Result<Message, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = {
            let _entered = this.span.enter();
            ready!(enter(&mut this.current, || this
                .messages
                .as_mut()
                .poll_next(cx)))
        };
        match &item {
            None if !this.ended => record_code(&this.span, Code::Ok, true),
            Some(Err(status)) if !this.ended => record_code(&this.span, status.code(), true),
            _ => return Poll::Ready(item),
        }
        this.ended = true;
        Poll::Ready(item)
    }
}

impl Drop for TracedStream {
    fn drop(&mut self) {
        if !self.ended {
            record_code(&self.span, Code::Cancelled, true);
        }
    }
}
