//! Traces across processes: a [`tracing`] span per call on both sides, and the W3C Trace
//! Context `traceparent` header carried in the call's metadata so that one trace follows a
//! request from a client through every server it reaches.
//!
//! Two layers, one per seam:
//!
//! - [`TraceLayer`] on a server opens a `prpc.server` span per call, a child of the caller's
//!   span when the call carries a valid `traceparent`, else the root of a new trace, and runs
//!   the handler inside it with its trace as [`current`].
//! - [`Traced`] over a client's [`Channel`](crate::Channel) opens a `prpc.client` span per call
//!   and puts a `traceparent` in the call's metadata: a child of [`current`] when the call is
//!   made from a traced handler, else of a `traceparent` already in the call's metadata (a
//!   gateway passing one on), else a new trace. Generated clients run over it unchanged.
//!
//! ```
//! use prpc::trace::{TraceLayer, Traced};
//!
//! #[prpc::service]
//! pub trait Ping {
//!     async fn trace_id(&self) -> String;
//! }
//!
//! struct Pong;
//!
//! impl Ping for Pong {
//!     async fn trace_id(&self) -> String {
//!         // The handler's trace: calls it makes through `Traced` continue it.
//!         prpc::trace::current()
//!             .map(|trace| format!("{:032x}", trace.trace_id))
//!             .unwrap_or_default()
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = prpc::Server::builder()
//!     .layer(TraceLayer::new())
//!     .add_service(PingServer::new(Pong))
//!     .bind("127.0.0.1:0")
//!     .await?;
//! let addr = server.local_addr();
//! tokio::spawn(server.serve());
//!
//! // A trace begun elsewhere (say by an HTTP gateway) reaches the handler. With no
//! // subscriber installed nothing is recorded, and the trace passes through unchanged.
//! let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
//! let client = PingClient::new(Traced::new(prpc::Client::connect(addr).await?))
//!     .with_options(prpc::CallOptions::new().metadata("traceparent", header));
//! assert_eq!(client.trace_id().await?, "4bf92f3577b34da6a3ce929d0e0e4736");
//! # Ok(()) }
//! ```
//!
//! # Span fields
//!
//! Both spans are at level `INFO` with target `prpc::trace`, named `prpc.server` and
//! `prpc.client`. Their fields follow OpenTelemetry's conventions for RPC where they have one:
//!
//! | field | value |
//! |-------|-------|
//! | `rpc.system` | `"prpc"` |
//! | `rpc.service`, `rpc.method` | the service and method names |
//! | `request_id` | the call's request id (a snowflake id; the same on every attempt) |
//! | `attempt` | the attempt number (0 first; see below for retries) |
//! | `code` | the call's code as PROTOCOL.md spells it (`ok`, `unavailable`, ...), recorded when it answers; `cancelled` if dropped first. For a stream, when the stream ends |
//! | `trace_id`, `span_id`, `parent_id` | the W3C ids in lowercase hex; `parent_id` is empty for a trace's root |
//! | `otel.kind`, `otel.name`, `otel.status_code` | `server` or `client`; `Service/method`; `ERROR` for a failed call (the server marks only its own faults: `unknown`, `deadline_exceeded`, `unimplemented`, `internal`, `unavailable`, `data_loss`) |
//!
//! A [`Client`](crate::Client) retries below its outside, so `Traced::new(client)` makes one
//! span per call (attempt 0) and the server makes one per attempt, all children of it. For a
//! client span per attempt as well, put a second `Traced` under the retry layer (see
//! [`client::Retry`](crate::client::Retry)); each attempt's span is a child of the call's:
//!
//! ```no_run
//! # async fn demo() -> prpc::Result<()> {
//! use prpc::client::Retry;
//! use prpc::trace::Traced;
//!
//! let client = prpc::Client::connect("127.0.0.1:7000").await?;
//! let per_attempt = Traced::new(Retry::new(
//!     Traced::new(client.link().clone()),
//!     prpc::timer::Timer::default(),
//! ));
//! # Ok(()) }
//! ```
//!
//! On the server the layer sits where [`Builder::layer`](crate::server::Builder::layer) puts
//! it, inside dedupe and the deadline: a reply replayed to a retry by dedupe has no span.
//!
//! # Cost
//!
//! With no subscriber installed, or one that filters `prpc::trace` out, the spans are
//! [`Span::none`](tracing::Span::none) (one relaxed load of tracing's global level filter)
//! and no ids are drawn. What remains per call: on the server a look-up of `traceparent` in
//! the call's metadata (nothing to scan when there is none; a 55-byte hex parse when there
//! is) and swapping the trace into a thread local around each poll of the handler; on the
//! client a read of that thread local, and only inside a traced handler the one allocation
//! of the header passed on. Expected: tens of nanoseconds in all (an estimate from those
//! steps, not a benchmark), against the microseconds of a call.
//! A process that records nothing passes a caller's `traceparent` on unchanged, so a trace
//! crosses it.
//!
//! With a subscriber recording the spans, its own cost dominates: two random ids, hex
//! formatting of three ids and the `Service/method` name per span, and whatever the
//! subscriber does with a span (a few hundred nanoseconds to microseconds for common ones).
//!
//! # OpenTelemetry
//!
//! prpc has no OpenTelemetry exporter of its own: `opentelemetry` with `opentelemetry_sdk`,
//! `opentelemetry-otlp` (defaults: HTTP and protobuf through reqwest) and
//! `tracing-opentelemetry` build 102 crates in 54 s on the 2-core machine prpc is measured
//! on, and the gRPC exporter (`grpc-tonic`) 14 more crates and 18 s more: three times what a
//! one-service prpc app costs to build (57 crates, 23 s). The spans above are ordinary
//! `tracing` spans, so an application that wants OpenTelemetry installs
//! `tracing-opentelemetry` itself:
//!
//! ```ignore
//! use opentelemetry::trace::TracerProvider as _;
//! use tracing_subscriber::prelude::*;
//!
//! let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().build()?;
//! let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
//!     .with_batch_exporter(exporter)
//!     .build();
//! tracing_subscriber::registry()
//!     .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("my-service")))
//!     .init();
//! ```
//!
//! The spans are then exported with the fields above as attributes (`otel.*` set the span's
//! name, kind and status). `tracing-opentelemetry` draws span ids of its own: within a
//! process the exported spans form the tree `tracing` saw, and the `trace_id` attribute
//! (prpc's W3C trace id, the same in every process) finds the spans of one request across
//! processes.

mod client;
mod server;
mod traceparent;

use std::cell::RefCell;

use bytes::Bytes;
use tracing::Span;

pub use client::Traced;
pub use server::{TraceHandler, TraceLayer, TracedCall};
pub use traceparent::TraceContext;

use crate::status::Code;

/// The metadata key of the W3C `traceparent` header.
///
/// ```
/// // A call that continues a trace begun outside prpc (an HTTP gateway's, say):
/// let options = prpc::CallOptions::new().metadata(
///     prpc::trace::TRACEPARENT,
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
/// );
/// # assert_eq!(options.metadata.len(), 1);
/// ```
pub const TRACEPARENT: &str = "traceparent";

/// The metadata key of the W3C `tracestate` header, passed on unchanged with its
/// `traceparent`.
///
/// ```
/// let options = prpc::CallOptions::new()
///     .metadata(prpc::trace::TRACEPARENT, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
///     .metadata(prpc::trace::TRACESTATE, "congo=t61rcWkgMzE");
/// # assert_eq!(options.metadata.len(), 2);
/// ```
pub const TRACESTATE: &str = "tracestate";

/// The trace of the call being served, with the caller's `tracestate`.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    context: TraceContext,
    state: Option<Bytes>,
}

thread_local! {
    /// The trace of the traced handler being polled on this thread, if any.
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// The trace of the call the current task is serving under [`TraceLayer`]: its `parent_id`
/// is the server span's id, the parent of the calls the handler makes. `None` outside a
/// traced handler, or inside one when nothing is recorded and the caller sent no
/// `traceparent`.
///
/// ```
/// // Outside a handler:
/// assert_eq!(prpc::trace::current(), None);
/// ```
pub fn current() -> Option<TraceContext> {
    CURRENT
        .try_with(|current| current.borrow().as_ref().map(|current| current.context))
        .ok()
        .flatten()
}

/// The current trace with its state, for a call made from here.
fn current_with_state() -> Option<Current> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

/// Runs `poll` with `slot`'s trace as the [`current`] one, and puts it back in `slot`
/// afterwards, panic or not: a future keeps its trace across polls and tasks.
fn enter<R>(slot: &mut Option<Current>, poll: impl FnOnce() -> R) -> R {
    crate::context::enter_local(&CURRENT, slot, poll)
}

/// Records a call's code on its span, with OpenTelemetry's status: on a client every failure
/// is an error, on a server only those that are the server's fault.
fn record_code(span: &Span, code: Code, server: bool) {
    if span.is_disabled() {
        return;
    }
    span.record("code", code.as_str());
    let error = if server {
        matches!(
            code,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
                | Code::OutcomeUnknown
        )
    } else {
        code != Code::Ok
    };
    if error {
        span.record("otel.status_code", "ERROR");
    }
}
