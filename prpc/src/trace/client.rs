//! The client's tracing layer: a `prpc.client` span per call, and the call's `traceparent`.

use std::future::{Future, poll_fn};
use std::pin::pin;

use bytestring::ByteString;
use tracing::Span;
use tracing::field::{Empty, display};

use super::traceparent::{Hex, TraceContext};
use super::{Current, TRACEPARENT, TRACESTATE, current_with_state, record_code};
use crate::call::{Call, CallOptions, Reply};
use crate::channel::Channel;
use crate::error::Error;
use crate::status::Code;
use crate::wire::Metadata;

/// Traces the calls of the [`Channel`] it wraps: a `prpc.client` span per call (see the
/// [module docs](super) for its fields) and a `traceparent` in the call's metadata, so the
/// server's span is a child of this one.
///
/// The call's parent is, in order: the trace of the handler the call is made from
/// ([`current`](super::current)), a `traceparent` the call's metadata already has, or none
/// (the call starts a trace). With nothing recording the span, the parent's `traceparent`
/// (and `tracestate`) go out unchanged, and a call with no parent gets none.
///
/// ```no_run
/// # #[prpc::service] pub trait Arith { async fn add(&self, a: i32, b: i32) -> i32; }
/// # async fn demo() -> prpc::Result<()> {
/// use prpc::trace::Traced;
///
/// let client = ArithClient::new(Traced::new(prpc::Client::connect("127.0.0.1:7000").await?));
/// assert_eq!(client.add(1, 2).await?, 3);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Traced<C> {
    inner: C,
}

impl<C> Traced<C> {
    /// Traces the calls of `inner`.
    ///
    /// ```no_run
    /// # async fn demo() -> prpc::Result<()> {
    /// let traced = prpc::trace::Traced::new(prpc::Client::connect("127.0.0.1:7000").await?);
    /// # Ok(()) }
    /// ```
    pub fn new(inner: C) -> Self {
        Traced { inner }
    }

    /// The channel under the layer.
    ///
    /// ```no_run
    /// # async fn demo() -> prpc::Result<()> {
    /// let traced = prpc::trace::Traced::new(prpc::Client::connect("127.0.0.1:7000").await?);
    /// let client: &prpc::Client = traced.inner();
    /// # Ok(()) }
    /// ```
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C: Channel> Channel for Traced<C> {
    fn default_options(&self) -> &CallOptions {
        self.inner.default_options()
    }

    fn call(&self, call: Call) -> impl Future<Output = Result<Reply, Error>> + Send {
        let mut call = call;
        let span = tracing::info_span!(
            target: "prpc::trace",
            "prpc.client",
            "otel.kind" = "client",
            "otel.name" = %format_args!("{}/{}", call.service, call.method),
            "otel.status_code" = Empty,
            "rpc.system" = "prpc",
            "rpc.service" = &*call.service,
            "rpc.method" = &*call.method,
            request_id = Empty,
            attempt = call.attempt,
            code = Empty,
            trace_id = Empty,
            span_id = Empty,
            parent_id = Empty,
        );
        if let Some(outgoing) = self.outgoing(&mut call, &span) {
            carry(&mut call.options.metadata, &outgoing);
        }
        let reply = self.inner.call(call);
        async move {
            let mut reply = pin!(reply);
            let mut outcome = Outcome {
                span: &span,
                answered: false,
            };
            let result = poll_fn(|cx| {
                let _entered = span.enter();
                reply.as_mut().poll(cx)
            })
            .await;
            outcome.answered = true;
            record_code(
                &span,
                result.as_ref().map_or_else(Error::code, |_| Code::Ok),
                false,
            );
            result
        }
    }
}

impl<C: Channel> Traced<C> {
    /// The trace the call carries out, with the span's ids recorded: `None` when it carries
    /// none. Resolves the call's options first when it will carry one, so that the channel's
    /// default metadata is merged before the trace's headers replace any in it.
    fn outgoing(&self, call: &mut Call, span: &Span) -> Option<Current> {
        let parent = current_with_state();
        if span.is_disabled() {
            if parent.is_some() {
                call.resolve(self.inner.default_options());
            }
            return parent;
        }
        call.resolve(self.inner.default_options());
        // Drawn here rather than by the connection, so the span can name it; a retry layer
        // below keeps it for every attempt.
        let request_id = *call.request_id.get_or_insert_with(crate::id::next_id);
        span.record("request_id", request_id);
        let parent = parent.or_else(|| {
            let metadata = &call.options.metadata;
            let context = TraceContext::parse(&metadata.get(TRACEPARENT)?)?;
            Some(Current {
                context,
                state: metadata.get(TRACESTATE),
            })
        });
        let outgoing = match parent {
            Some(parent) => {
                span.record("parent_id", display(Hex(parent.context.parent_id)));
                Current {
                    context: parent.context.child(),
                    state: parent.state,
                }
            }
            None => Current {
                context: TraceContext::new_root(),
                state: None,
            },
        };
        span.record("trace_id", display(Hex(outgoing.context.trace_id)));
        span.record("span_id", display(Hex(outgoing.context.parent_id)));
        Some(outgoing)
    }
}

/// Puts the trace's headers in `metadata`, in place of any it has.
fn carry(metadata: &mut Metadata, trace: &Current) {
    if metadata.get(TRACEPARENT).is_some() || metadata.get(TRACESTATE).is_some() {
        let mut kept = Metadata::new();
        for (key, value) in metadata.iter() {
            if key != TRACEPARENT && key != TRACESTATE {
                kept.insert(key, value);
            }
        }
        *metadata = kept;
    }
    metadata.insert(
        ByteString::from_static(TRACEPARENT),
        trace.context.to_header(),
    );
    if let Some(state) = &trace.state {
        metadata.insert(ByteString::from_static(TRACESTATE), state.clone());
    }
}

/// Records `cancelled` on a call's span if the call is dropped before it answers.
struct Outcome<'a> {
    span: &'a Span,
    answered: bool,
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        if !self.answered {
            record_code(self.span, Code::Cancelled, false);
        }
    }
}
