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
