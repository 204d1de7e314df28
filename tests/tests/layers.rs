//! Server layers: users' own layers see every call, in the order they were added, and can
//! answer a call themselves before it reaches its service.

use std::future::{Ready, ready};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prpc::layer::{Either, Layer};
use prpc::server::Handler;
use prpc::{Call, Client, Code, Error, Format, Request, Response, Server, Service, Status};
use prpc_tests::{Probe, spawn_server};

/// Records `name service/method` for every call it passes on.
#[derive(Clone)]
struct Record {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl<H> Layer<H> for Record {
    type Service = Recorded<H>;

    fn layer(&self, inner: H) -> Recorded<H> {
        Recorded {
            inner,
            layer: self.clone(),
        }
    }
}

struct Recorded<H> {
    inner: H,
    layer: Record,
}

impl<H: Handler> Handler for Recorded<H> {
    type Future = H::Future;

    fn call(&self, service: &Arc<dyn Service>, request: Request) -> H::Future {
        self.layer.log.lock().unwrap().push(format!(
            "{} {}/{}",
            self.layer.name,
            service.name(),
            request.method
        ));
        self.inner.call(service, request)
    }
}

/// Refuses calls without `authorization: Bearer <token>`.
struct RequireToken(&'static str);

impl<H> Layer<H> for RequireToken {
    type Service = TokenCheck<H>;

    fn layer(&self, inner: H) -> TokenCheck<H> {
        TokenCheck {
            inner,
            expected: format!("Bearer {}", self.0),
        }
    }
}

struct TokenCheck<H> {
    inner: H,
    expected: String,
}

impl<H: Handler> Handler for TokenCheck<H> {
    type Future = Either<Ready<Result<Response, Status>>, H::Future>;

    fn call(&self, service: &Arc<dyn Service>, request: Request) -> Self::Future {
        match request.metadata.get("authorization") {
            Some(token) if token == self.expected.as_bytes() => {
                Either::Right(self.inner.call(service, request))
            }
            _ => Either::Left(ready(Err(Status::new(
                Code::Unauthenticated,
                "a bearer token is required",
            )))),
        }
    }
}

fn call(method: &str, body: &'static [u8]) -> Call {
    Call::new(
        "probe",
        method.to_owned(),
        Format::Raw,
        Bytes::from_static(body),
    )
}

#[tokio::test]
async fn layers_see_every_call_in_the_order_they_were_added() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (probe, _) = Probe::new("probe");
    let server = spawn_server(
        Server::builder()
            .layer(Record {
                name: "first",
                log: log.clone(),
            })
            .layer(Record {
                name: "second",
                log: log.clone(),
            })
            .add_service(probe),
    )
    .await;
    let client = Client::connect(server.addr).await.unwrap();
    client.call(call("echo", b"x")).await.unwrap();
    // A call that waits (it runs on a task of its own) goes through them too.
    client.call(call("sleep", b"20")).await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "first probe/echo",
            "second probe/echo",
            "first probe/sleep",
            "second probe/sleep"
        ]
    );
}

#[tokio::test]
async fn a_layer_can_refuse_a_call_before_its_service_runs() {
    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(
        Server::builder()
            .layer(RequireToken("s3cret"))
            .add_service(probe),
    )
    .await;
    let client = Client::connect(server.addr).await.unwrap();
    let refused = client.call(call("echo", b"x")).await.unwrap_err();
    let Error::Status(status) = &refused else {
        panic!("{refused}");
    };
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(counters.started.load(Ordering::SeqCst), 0);

    let wrong = prpc::CallOptions::new().metadata("authorization", "Bearer guess");
    let refused = client
        .call(call("echo", b"x").with_options(wrong))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    let right = prpc::CallOptions::new().metadata("authorization", "Bearer s3cret");
    let reply = client
        .call(call("echo", b"in").with_options(right))
        .await
        .unwrap();
    assert_eq!(&reply.body[..], b"in");
    assert_eq!(counters.finished.load(Ordering::SeqCst), 1);
}

/// Answers every call `unavailable` (a failure worth retrying) and counts them.
struct Unavailable(Arc<std::sync::atomic::AtomicUsize>);

impl Service for Unavailable {
    fn name(&self) -> &str {
        "flaky"
    }

    fn methods(&self) -> Vec<String> {
        vec!["get".into()]
    }

    fn call(&self, _: Request) -> prpc::ServiceFuture {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(ready(Err(Status::new(Code::Unavailable, "try again"))))
    }
}

#[tokio::test]
async fn retries_are_a_layer_over_a_link_that_sends_once() {
    use prpc::client::Retry;
    use prpc::retry::RetryPolicy;
    use prpc::{BoxChannel, Channel};

    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = spawn_server(Server::builder().add_service(Unavailable(runs.clone()))).await;
    let client = Client::builder()
        .retry(RetryPolicy::new(3).backoff(
            std::time::Duration::from_millis(1),
            std::time::Duration::from_millis(2),
        ))
        .connect(server.addr)
        .await
        .unwrap();
    // Idempotent, so that the server runs every attempt (it would dedupe them otherwise).
    let get = || Call::new("flaky", "get", Format::Raw, Bytes::new()).idempotent(true);

    // The client (a retry layer over its link) tries three times.
    let error = client.call(get()).await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable);
    assert_eq!(runs.swap(0, Ordering::SeqCst), 3);

    // The link under it sends once, whatever the policy says.
    let error = client.link().call(get()).await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable);
    assert_eq!(runs.swap(0, Ordering::SeqCst), 1);

    // A retry layer of one's own over the link, boxed: the call's own policy decides.
    let stack = BoxChannel::new(Retry::new(
        client.link().clone(),
        prpc::timer::Timer::default(),
    ));
    let twice = prpc::CallOptions::new().retry(RetryPolicy::new(2).backoff(
        std::time::Duration::from_millis(1),
        std::time::Duration::from_millis(2),
    ));
    let error = stack.call(get().with_options(twice)).await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable);
    assert_eq!(runs.swap(0, Ordering::SeqCst), 2);
    // Its defaults are the link's, which are the client's.
    assert!(stack.default_options().retry.is_some());

    // A retry layer over a client (itself a retry layer): the outer one owns the call's
    // retries, so attempts do not multiply (3, not 3 x 3).
    let over_client = Retry::new(client.clone(), prpc::timer::Timer::default());
    let error = over_client.call(get()).await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable);
    assert_eq!(runs.swap(0, Ordering::SeqCst), 3);
}

/// A tower middleware that refuses the probe's `fail` method itself, with a status of its own.
#[derive(Clone)]
struct DenyFail<S>(S);

impl<S> tower::Service<prpc::server::tower::Routed> for DenyFail<S>
where
    S: tower::Service<prpc::server::tower::Routed, Response = Response, Error = Status>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Status;
    type Future = Either<Ready<Result<Response, Status>>, S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Status>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, routed: prpc::server::tower::Routed) -> Self::Future {
        if &*routed.request.method == "fail" {
            Either::Left(ready(Err(Status::new(
                Code::PermissionDenied,
                "denied by tower",
            ))))
        } else {
            Either::Right(self.0.call(routed))
        }
    }
}

#[tokio::test]
async fn tower_layers_join_the_stack() {
    use prpc::server::tower::TowerLayer;

    let (probe, counters) = Probe::new("probe");
    let server = spawn_server(
        Server::builder()
            .layer(TowerLayer(tower::limit::ConcurrencyLimitLayer::new(2)))
            .layer(TowerLayer(tower::layer::layer_fn(DenyFail)))
            .add_service(probe),
    )
    .await;
    let client = Client::connect(server.addr).await.unwrap();
    // Calls pass through both tower layers to the service, several at once under the limit.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = client.clone();
        calls.spawn(async move { client.call(call("sleep", b"10")).await });
    }
    while let Some(reply) = calls.join_next().await {
        assert_eq!(&reply.unwrap().unwrap().body[..], b"slept");
    }
    // A tower layer's status reaches the caller as it is, and the service never runs.
    let started = counters.started.load(Ordering::SeqCst);
    let denied = client.call(call("fail", b"x")).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(counters.started.load(Ordering::SeqCst), started);
}
