//! A server layer of one's own: a bearer-token check on the call's metadata, in front of every
//! service of the server. A call without the token is refused `unauthenticated` before its
//! service runs.
//!
//! Run it with `cargo run -p prpc-examples --bin auth`.

use std::future::{Ready, ready};
use std::sync::Arc;

use prpc::layer::{Either, Layer};
use prpc::server::Handler;
use prpc::{CallOptions, Code, Request, Response, Service, Status};

/// Says hello.
#[prpc::service]
pub trait Greeter {
    /// A greeting for `name`.
    async fn greet(&self, name: String) -> String;
}

struct English;

impl Greeter for English {
    async fn greet(&self, name: String) -> String {
        format!("hello, {name}")
    }
}

/// The layer: wraps the server's handler in a [`TokenCheck`].
struct RequireBearer {
    token: String,
}

impl<H> Layer<H> for RequireBearer {
    type Service = TokenCheck<H>;

    fn layer(&self, inner: H) -> TokenCheck<H> {
        TokenCheck {
            inner,
            expected: format!("Bearer {}", self.token),
        }
    }
}

/// Passes a call on only if its `authorization` metadata is the expected bearer token.
struct TokenCheck<H> {
    inner: H,
    expected: String,
}

impl<H: Handler> Handler for TokenCheck<H> {
    // A refusal is answered at once; a call that passes is the inner handler's future. No box.
    type Future = Either<Ready<Result<Response, Status>>, H::Future>;

    fn call(&self, service: &Arc<dyn Service>, request: Request) -> Self::Future {
        match request.metadata.get("authorization") {
            Some(token) if token == self.expected.as_bytes() => {
                Either::Right(self.inner.call(service, request))
            }
            _ => Either::Left(ready(Err(Status::new(
                Code::Unauthenticated,
                format!("{}/{} needs a bearer token", service.name(), request.method),
            )))),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = prpc::Server::builder()
        .layer(RequireBearer {
            token: "s3cret".into(),
        })
        .add_service(GreeterServer::new(English))
        .bind("127.0.0.1:0")
        .await?;
    let addr = server.local_addr();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());

    let anonymous = GreeterClient::connect(&addr).await?;
    let refused = anonymous.greet("anonymous".into()).await.unwrap_err();
    println!("without a token: {refused}");
    assert_eq!(refused.code(), Code::Unauthenticated);

    let client = GreeterClient::connect(&addr)
        .await?
        .with_options(CallOptions::new().metadata("authorization", "Bearer s3cret"));
    let greeting = client.greet("friend".into()).await?;
    println!("with the token: {greeting:?}");
    assert_eq!(greeting, "hello, friend");

    shutdown.shutdown();
    serving.await??;
    Ok(())
}
