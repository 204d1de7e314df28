//! Traces across processes: real servers on loopback under `TraceLayer`, clients over
//! `Traced`, and a subscriber that records every span with its fields. One trace runs from a
//! client through a server whose handler calls a second server; each span's parent is its
//! caller's span.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use prpc::client::Retry;
use prpc::retry::RetryPolicy;
use prpc::timer::Timer;
use prpc::trace::{TraceContext, TraceLayer, Traced};
use prpc::{
    Call, CallOptions, Channel, Client, Code, Format, Request, Response, Server, Service,
    ServiceFuture, Status,
};
use prpc_tests::spawn_server;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// The second hop: says which trace headers reached it.
#[prpc::service]
pub trait Back {
    async fn seen(&self) -> (String, String);
    /// `0..count`.
    async fn count(&self, count: u32) -> prpc::Streaming<u32>;
}

/// The first hop: asks `Back` what reached it, through a traced client.
#[prpc::service]
pub trait Front {
    async fn relay(&self) -> (String, String);
}

struct Headers;

impl Back for Headers {
    async fn seen(&self) -> (String, String) {
        let call = prpc::context::current().expect("inside a handler");
        let header = |key| {
            call.metadata
                .get(key)
                .map(|value| String::from_utf8_lossy(&value).into_owned())
                .unwrap_or_default()
        };
        (header("traceparent"), header("tracestate"))
    }

    async fn count(&self, count: u32) -> prpc::Streaming<u32> {
        prpc::Streaming::from_iter(0..count)
    }
}

/// Answers `unavailable` until a call's third attempt.
struct Flaky;

impl Service for Flaky {
    fn name(&self) -> &str {
        "Flaky"
    }

    fn methods(&self) -> Vec<String> {
        vec!["flaky".into()]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        Box::pin(std::future::ready(if request.attempt < 2 {
            Err(Status::new(Code::Unavailable, "not yet"))
        } else {
            Ok(Response::new(Bytes::new()))
        }))
    }
}

/// A call to `Flaky`, safe to retry.
fn flaky() -> Call {
    Call::new("Flaky", "flaky", Format::Raw, Bytes::new()).idempotent(true)
}

struct Relay {
    back: BackClient<Traced<Client>>,
}

impl Front for Relay {
    async fn relay(&self) -> (String, String) {
        self.back.seen().await.expect("the second hop answers")
    }
}

/// One span as the subscriber saw it.
#[derive(Debug, Clone)]
struct Span {
    name: &'static str,
    fields: BTreeMap<&'static str, String>,
}

impl Span {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("{} has no {name}: {:?}", self.name, self.fields))
    }
}

/// Records every span and the fields recorded on it; nothing else.
#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Recorder {
    /// The `prpc.server` or `prpc.client` spans of `service`, in the order they opened.
    fn spans(&self, name: &str, service: &str) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|span| {
                span.name == name
                    && span.fields.get("rpc.service").map(String::as_str) == Some(service)
            })
            .cloned()
            .collect()
    }

    fn only(&self, name: &str, service: &str) -> Span {
        let mut spans = self.spans(name, service);
        assert_eq!(spans.len(), 1, "{name} spans of {service}: {spans:#?}");
        spans.remove(0)
    }
}

struct Fields<'a>(&'a mut BTreeMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

impl Subscriber for Recorder {
    // Asked per call, so that tests on other threads (with their own recorder, or none) do
    // not share a cached answer.
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut span = Span {
            name: attributes.metadata().name(),
            fields: BTreeMap::new(),
        };
        attributes.record(&mut Fields(&mut span.fields));
        let mut spans = self.spans.lock().unwrap();
        spans.push(span);
        Id::from_u64(spans.len() as u64)
    }

    fn record(&self, id: &Id, values: &Record<'_>) {
        let mut spans = self.spans.lock().unwrap();
        let span = &mut spans[id.into_u64() as usize - 1];
        values.record(&mut Fields(&mut span.fields));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Records nothing: every span is `Span::none()`, as with no subscriber installed.
struct Off;

impl Subscriber for Off {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// A traced server of `Back`.
async fn back_server() -> prpc_tests::TestServer {
    spawn_server(
        Server::builder()
            .layer(TraceLayer::new())
            .add_service(BackServer::new(Headers))
            .add_service(Flaky),
    )
    .await
}

/// A traced server of `Front`, relaying to `back`.
async fn front_server(back: std::net::SocketAddr) -> prpc_tests::TestServer {
    let back = BackClient::new(Traced::new(Client::connect(back).await.unwrap()));
    spawn_server(
        Server::builder()
            .layer(TraceLayer::new())
            .add_service(FrontServer::new(Relay { back })),
    )
    .await
}

fn assert_answered(span: &Span, method: &str) {
    assert_eq!(span.field("rpc.system"), "prpc");
    assert_eq!(span.field("rpc.method"), method);
    assert_eq!(span.field("attempt"), "0");
    assert_eq!(span.field("code"), "ok");
    assert!(span.field("request_id").parse::<u64>().is_ok(), "{span:?}");
}

// Tests run on one thread each (the servers are spawned on it), where the recorder is the
// default subscriber.
#[tokio::test]
async fn one_trace_runs_from_the_client_through_two_servers() {
    let recorder = Recorder::default();
    let _recording = tracing::subscriber::set_default(recorder.clone());
    let back = back_server().await;
    let front = front_server(back.addr).await;

    let client = FrontClient::new(Traced::new(Client::connect(front.addr).await.unwrap()));
    let (traceparent, tracestate) = client.relay().await.unwrap();

    let caller = recorder.only("prpc.client", "Front");
    let front = recorder.only("prpc.server", "Front");
    let relay = recorder.only("prpc.client", "Back");
    let back = recorder.only("prpc.server", "Back");
    assert_answered(&caller, "relay");
    assert_answered(&front, "relay");
    assert_answered(&relay, "seen");
    assert_answered(&back, "seen");
    assert_eq!(caller.field("otel.kind"), "client");
    assert_eq!(front.field("otel.kind"), "server");
    assert_eq!(front.field("otel.name"), "Front/relay");

    // One trace; each span the child of its caller's.
    let trace_id = caller.field("trace_id");
    assert_eq!(trace_id.len(), 32);
    for span in [&front, &relay, &back] {
        assert_eq!(span.field("trace_id"), trace_id, "{span:?}");
    }
    assert!(
        !caller.fields.contains_key("parent_id"),
        "the root has no parent"
    );
    assert_eq!(front.field("parent_id"), caller.field("span_id"));
    assert_eq!(relay.field("parent_id"), front.field("span_id"));
    assert_eq!(back.field("parent_id"), relay.field("span_id"));
    // A call's request id is the same on both sides of it.
    assert_eq!(caller.field("request_id"), front.field("request_id"));
    assert_eq!(relay.field("request_id"), back.field("request_id"));

    // What reached the second hop is the relay span's context, and no state was made up.
    assert_eq!(
        traceparent,
        format!("00-{trace_id}-{}-01", relay.field("span_id"))
    );
    assert_eq!(tracestate, "");
}

#[tokio::test]
async fn a_callers_traceparent_and_tracestate_are_continued() {
    let recorder = Recorder::default();
    let _recording = tracing::subscriber::set_default(recorder.clone());
    let back = back_server().await;
    let front = front_server(back.addr).await;

    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let client = FrontClient::new(Traced::new(Client::connect(front.addr).await.unwrap()))
        .with_options(
            CallOptions::new()
                .metadata("traceparent", incoming)
                .metadata("tracestate", "congo=t61rcWkgMzE"),
        );
    let (traceparent, tracestate) = client.relay().await.unwrap();

    let caller = recorder.only("prpc.client", "Front");
    assert_eq!(caller.field("trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(caller.field("parent_id"), "00f067aa0ba902b7");
    let relay = recorder.only("prpc.client", "Back");
    let sent = TraceContext::parse(traceparent.as_bytes()).unwrap();
    assert_eq!(sent.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
    assert_eq!(format!("{:016x}", sent.parent_id), relay.field("span_id"));
    assert_eq!(
        tracestate, "congo=t61rcWkgMzE",
        "tracestate passes through unchanged"
    );
}

#[tokio::test]
async fn a_malformed_traceparent_starts_a_fresh_trace() {
    let recorder = Recorder::default();
    let _recording = tracing::subscriber::set_default(recorder.clone());
    let back = back_server().await;

    // A client that is not traced itself, sending a header in uppercase (refused by the spec).
    let malformed = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";
    let client = BackClient::connect(back.addr).await.unwrap().with_options(
        CallOptions::new()
            .metadata("traceparent", malformed)
            .metadata("tracestate", "congo=t61rcWkgMzE"),
    );
    let (traceparent, _) = client.seen().await.unwrap();
    assert_eq!(
        traceparent, malformed,
        "the handler sees the call's metadata as sent"
    );

    let back = recorder.only("prpc.server", "Back");
    assert_answered(&back, "seen");
    assert!(!back.fields.contains_key("parent_id"), "{back:?}");
    assert_ne!(back.field("trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(back.field("trace_id").len(), 32);
}

#[tokio::test]
async fn each_attempt_of_a_retried_call_has_its_span() {
    let recorder = Recorder::default();
    let _recording = tracing::subscriber::set_default(recorder.clone());
    let back = back_server().await;
    let policy = RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(2));
    let client = Client::builder()
        .retry(policy)
        .connect(back.addr)
        .await
        .unwrap();

    // Over a client: one span for the call, one server span per attempt.
    Traced::new(client.clone()).call(flaky()).await.unwrap();
    let call = recorder.only("prpc.client", "Flaky");
    assert_eq!(call.field("code"), "ok");
    let attempts = recorder.spans("prpc.server", "Flaky");
    let codes: Vec<_> = attempts.iter().map(|span| span.field("code")).collect();
    let numbers: Vec<_> = attempts.iter().map(|span| span.field("attempt")).collect();
    assert_eq!(codes, ["unavailable", "unavailable", "ok"]);
    assert_eq!(numbers, ["0", "1", "2"]);
    for attempt in &attempts {
        assert_eq!(attempt.field("request_id"), call.field("request_id"));
        assert_eq!(attempt.field("trace_id"), call.field("trace_id"));
        assert_eq!(attempt.field("parent_id"), call.field("span_id"));
    }
    assert_eq!(attempts[0].field("otel.status_code"), "ERROR");
    assert!(!attempts[2].fields.contains_key("otel.status_code"));
    recorder.spans.lock().unwrap().clear();

    // Traced again under the retry layer: a client span per attempt, children of the call's.
    let per_attempt = Traced::new(Retry::new(
        Traced::new(client.link().clone()),
        Timer::default(),
    ));
    per_attempt
        .call(flaky().with_options(CallOptions::new().retry(policy)))
        .await
        .unwrap();
    let spans = recorder.spans("prpc.client", "Flaky");
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let (call, attempts) = (&spans[0], &spans[1..]);
    let servers = recorder.spans("prpc.server", "Flaky");
    for (number, (attempt, server)) in attempts.iter().zip(&servers).enumerate() {
        assert_eq!(attempt.field("attempt"), number.to_string());
        assert_eq!(server.field("attempt"), number.to_string());
        assert_eq!(attempt.field("parent_id"), call.field("span_id"));
        assert_eq!(server.field("parent_id"), attempt.field("span_id"));
        assert_eq!(server.field("trace_id"), call.field("trace_id"));
        assert_eq!(attempt.field("request_id"), call.field("request_id"));
    }
    assert_eq!(attempts[2].field("code"), "ok");
    assert_eq!(attempts[0].field("code"), "unavailable");
}

#[tokio::test]
async fn with_nothing_recording_a_trace_passes_through_unchanged() {
    let _off = tracing::subscriber::set_default(Off);
    let back = back_server().await;
    let front = front_server(back.addr).await;

    // No parent: no trace is started, no header sent.
    let client = FrontClient::new(Traced::new(Client::connect(front.addr).await.unwrap()));
    assert_eq!(
        client.relay().await.unwrap(),
        (String::new(), String::new())
    );

    // A caller's trace crosses the process that records nothing as it came.
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let client = client.with_options(
        CallOptions::new()
            .metadata("traceparent", incoming)
            .metadata("tracestate", "congo=t61rcWkgMzE"),
    );
    assert_eq!(
        client.relay().await.unwrap(),
        (incoming.to_owned(), "congo=t61rcWkgMzE".to_owned())
    );
}

#[tokio::test]
async fn a_streams_span_records_its_code_when_the_stream_ends() {
    let recorder = Recorder::default();
    let _recording = tracing::subscriber::set_default(recorder.clone());
    let back = back_server().await;
    let client = BackClient::new(Traced::new(Client::connect(back.addr).await.unwrap()));

    let mut stream = client.count(3).await.unwrap();
    let mut items = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        items.push(item);
    }
    assert_eq!(items, [0, 1, 2]);
    // The server's span ends with the stream, which the client has read to its trailer.
    let server = recorder.only("prpc.server", "Back");
    assert_eq!(server.field("rpc.method"), "count");
    assert_eq!(server.field("code"), "ok");
    let caller = recorder.only("prpc.client", "Back");
    assert_eq!(server.field("parent_id"), caller.field("span_id"));
}
