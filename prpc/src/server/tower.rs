//! tower middleware on a prpc server (cargo feature `tower`).
//!
//! prpc's server layers are its own [`Handler`]s, monomorphised with no box on the way
//! through (tower's `Service` takes `&mut self` and a readiness poll per call, which would
//! cost a clone of the stack per call on a server whose handlers run concurrently). This
//! module lets tower's layers join the stack anyway: [`TowerLayer`] wraps a `tower::Layer`,
//! whose middleware sees [`Routed`] requests and answers [`Response`]s or errors (a
//! [`Status`] error is answered as it is; any other error is `internal`). Each call through a
//! tower layer clones the middleware and boxes its future.
//!
//! ```
//! use std::time::Duration;
//! use prpc::server::tower::TowerLayer;
//!
//! # #[prpc::service] pub trait Ping { async fn ping(&self) -> u8; }
//! # struct Pong;
//! # impl Ping for Pong { async fn ping(&self) -> u8 { 1 } }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = prpc::Server::builder()
//!     // tower's own concurrency limit, in front of every service of the server.
//!     .layer(TowerLayer(tower::limit::ConcurrencyLimitLayer::new(64)))
//!     .add_service(PingServer::new(Pong))
//!     .bind("127.0.0.1:0")
//!     .await?;
//! let addr = server.local_addr();
//! tokio::spawn(server.serve());
//! assert_eq!(PingClient::connect(&addr).await?.ping().await?, 1);
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::tower::{BoxError, ServiceExt};

use super::handler::Handler;
use crate::layer::Layer;
use crate::service::{Request, Response, Service};
use crate::status::Status;

/// A request as tower middleware on a prpc server sees it: the service it names, and the
/// request.
#[non_exhaustive]
pub struct Routed {
    /// The service the request is for.
    pub service: Arc<dyn Service>,
    /// The request.
    pub request: Request,
}

/// A prpc [`Handler`] as a tower service over [`Routed`] requests: what a tower layer wraps.
/// Always ready.
pub struct AsTower<H>(Arc<H>);

impl<H> Clone for AsTower<H> {
    fn clone(&self) -> Self {
        AsTower(self.0.clone())
    }
}

impl<H: Handler> ::tower::Service<Routed> for AsTower<H> {
    type Response = Response;
    type Error = Status;
    type Future = H::Future;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, routed: Routed) -> H::Future {
        self.0.call(&routed.service, routed.request)
    }
}

/// A tower layer as a prpc server layer (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct TowerLayer<L>(pub L);

impl<H, L> Layer<H> for TowerLayer<L>
where
    L: ::tower::Layer<AsTower<H>>,
{
    type Service = FromTower<L::Service>;

    fn layer(&self, inner: H) -> FromTower<L::Service> {
        FromTower(self.0.layer(AsTower(Arc::new(inner))))
    }
}

/// A tower service over [`Routed`] requests as a prpc [`Handler`].
#[derive(Debug, Clone)]
pub struct FromTower<S>(S);

/// The future of [`FromTower`].
pub type TowerFuture = Pin<Box<dyn Future<Output = Result<Response, Status>> + Send>>;

impl<S> Handler for FromTower<S>
where
    S: ::tower::Service<Routed, Response = Response> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    type Future = TowerFuture;

    fn call(&self, service: &Arc<dyn Service>, request: Request) -> TowerFuture {
        let middleware = self.0.clone();
        let routed = Routed {
            service: service.clone(),
            request,
        };
        Box::pin(async move { middleware.oneshot(routed).await.map_err(status_of) })
    }
}

/// The status a tower error answers: itself if it is one, else `internal`.
fn status_of(error: impl Into<BoxError>) -> Status {
    match error.into().downcast::<Status>() {
        Ok(status) => *status,
        Err(other) => Status::internal(format!("a tower layer failed the call: {other}")),
    }
}
