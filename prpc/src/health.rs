//! The health service every server answers, `prpc.Health`: whether the server, or one of its
//! services, is serving.
//!
//! A server is [`Serving`](ServingStatus::Serving) from the start and
//! [`NotServing`](ServingStatus::NotServing) from the moment its graceful shutdown is asked
//! for; a service is whatever its server is, unless the application says otherwise through
//! the server's [`HealthReporter`] (a dependency it needs is down, say). A server withdraws its
//! registration of a service (see [`Builder::register`](crate::server::Builder::register))
//! while the service is not serving, and makes it again when it serves again.
//!
//! The service is named [`SERVICE`], with one method, [`CHECK`], which takes `{"service":
//! name}` (an empty name asks about the whole server) and answers `{"status": "SERVING"}` or
//! `{"status": "NOT_SERVING"}`, in the format it was asked in (JSON or MessagePack); a
//! service the server does not have is a `not_found` status. With prpc-http the same answer
//! is `GET /healthz`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # #[prpc::service] pub trait Ping { async fn ping(&self) -> u8; }
//! # struct Pong;
//! # impl Ping for Pong { async fn ping(&self) -> u8 { 1 } }
//! use prpc::health::{self, ServingStatus};
//!
//! let server = prpc::Server::builder()
//!     .add_service(PingServer::new(Pong))
//!     .bind("127.0.0.1:0")
//!     .await?;
//! let reporter = server.router().health();
//! let client = prpc::Client::connect(server.local_addr()).await?;
//! tokio::spawn(server.serve());
//!
//! assert_eq!(health::check(&client, "Ping").await?, ServingStatus::Serving);
//! reporter.set_not_serving("Ping");
//! assert_eq!(health::check(&client, "Ping").await?, ServingStatus::NotServing);
//! assert_eq!(health::check(&client, "").await?, ServingStatus::Serving);
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::call::Call;
use crate::channel::Channel;
use crate::error::Error;
use crate::format::Format;
use crate::reflection::{Field, MethodDescription, Shape, Variant};
use crate::service::{Request, Response, Service, ServiceFuture};
use crate::status::Status;

/// Wire name of the health service.
pub const SERVICE: &str = "prpc.Health";
/// Its method that answers one check.
pub const CHECK: &str = "check";

/// Whether a server or a service is serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServingStatus {
    /// Taking calls.
    Serving,
    /// Draining, or switched off by the application: send calls elsewhere.
    NotServing,
}

impl ServingStatus {
    /// The status as the wire writes it: `SERVING` or `NOT_SERVING`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServingStatus::Serving => "SERVING",
            ServingStatus::NotServing => "NOT_SERVING",
        }
    }
}

impl std::fmt::Display for ServingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The argument of [`CHECK`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRequest {
    /// The service asked about; empty for the whole server.
    #[serde(default)]
    pub service: String,
}

/// The answer of [`CHECK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResponse {
    /// The status.
    pub status: ServingStatus,
}

/// Asks the server behind `channel` whether `service` (or, for `""`, the server) is serving.
pub async fn check<C: Channel>(channel: &C, service: &str) -> Result<ServingStatus, Error> {
    let format = match channel.default_options().format {
        Some(Format::Json) => Format::Json,
        _ => Format::MsgPack,
    };
    let body = format.encode(&CheckRequest {
        service: service.to_owned(),
    })?;
    let reply = channel
        .call(Call::new(SERVICE, CHECK, format, body))
        .await?;
    let answer: CheckResponse = reply.format.decode(&reply.body)?;
    Ok(answer.status)
}

/// Sets and reads the health of one server's services: from
/// [`Router::health`](crate::server::Router::health). Cheap to clone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use prpc::health::ServingStatus;
/// let router = prpc::Server::builder().build();
/// let reporter = router.health();
/// reporter.set_not_serving("math.Arith");
/// assert_eq!(reporter.status("math.Arith"), Some(ServingStatus::NotServing));
/// reporter.set_serving("math.Arith");
/// assert_eq!(reporter.status(""), Some(ServingStatus::Serving));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HealthReporter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The services the server has (health answers `not_found` for others it was not told
    /// about).
    known: HashSet<String>,
    /// What the application set, by service.
    set: RwLock<HashMap<String, ServingStatus>>,
    /// The server's graceful shutdown was asked for: nothing serves.
    stopping: CancellationToken,
    /// Bumped on every change the application makes.
    changes: watch::Sender<u64>,
}

impl HealthReporter {
    pub(crate) fn new(known: HashSet<String>, stopping: CancellationToken) -> Self {
        HealthReporter {
            inner: Arc::new(Inner {
                known,
                set: RwLock::default(),
                stopping,
                changes: watch::Sender::new(0),
            }),
        }
    }

    /// Marks `service` as serving (the default).
    pub fn set_serving(&self, service: &str) {
        self.set(service, ServingStatus::Serving);
    }

    /// Marks `service` as not serving: checks say so, and the server withdraws its
    /// registrations of it until it serves again.
    pub fn set_not_serving(&self, service: &str) {
        self.set(service, ServingStatus::NotServing);
    }

    /// Sets the status of `service` (`""` is the whole server: every service follows it).
    pub fn set(&self, service: &str, status: ServingStatus) {
        let mut set = self.inner.set.write().unwrap_or_else(|e| e.into_inner());
        if set.insert(service.to_owned(), status) != Some(status) {
            drop(set);
            self.inner.changes.send_modify(|version| *version += 1);
        }
    }

    /// The status of `service` (`""` for the server), or `None` for a service the server
    /// does not have and the application never set.
    pub fn status(&self, service: &str) -> Option<ServingStatus> {
        let set = self.inner.set.read().unwrap_or_else(|e| e.into_inner());
        let own = set.get(service).copied();
        if own.is_none() && !service.is_empty() && !self.inner.known.contains(service) {
            return None;
        }
        let server = set.get("").copied().unwrap_or(ServingStatus::Serving);
        let stopping = self.inner.stopping.is_cancelled();
        Some(
            if stopping
                || server == ServingStatus::NotServing
                || own == Some(ServingStatus::NotServing)
            {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            },
        )
    }

    /// Waits for the application's next change (a status set to another value).
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// The health service answering for this reporter.
    pub(crate) fn service(&self) -> HealthService {
        HealthService {
            reporter: self.clone(),
        }
    }
}

/// The `prpc.Health` service of one server.
pub(crate) struct HealthService {
    reporter: HealthReporter,
}

impl Service for HealthService {
    fn name(&self) -> &str {
        SERVICE
    }

    fn methods(&self) -> Vec<String> {
        vec![CHECK.to_owned()]
    }

    fn describe(&self) -> Vec<MethodDescription> {
        let status = Shape::enumeration(
            "ServingStatus",
            [ServingStatus::Serving, ServingStatus::NotServing]
                .map(|status| Variant::unit(status.as_str()))
                .into(),
        );
        vec![
            MethodDescription::new(CHECK)
                .argument("service", Shape::String)
                .returns(Shape::object(
                    "CheckResponse",
                    vec![Field::new("status", status)],
                ))
                .idempotent(true),
        ]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        let reporter = self.reporter.clone();
        Box::pin(async move {
            if &*request.method != CHECK {
                return Err(Status::unimplemented(format!(
                    "no method \"{}\" on service \"{SERVICE}\"",
                    request.method
                )));
            }
            let asked: CheckRequest = if request.body.is_empty() {
                CheckRequest::default()
            } else {
                request.format.decode(&request.body)?
            };
            let Some(status) = reporter.status(&asked.service) else {
                return Err(Status::new(
                    crate::status::Code::NotFound,
                    format!("no service named \"{}\" on this server", asked.service),
                ));
            };
            let body: Bytes = request.format.encode(&CheckResponse { status })?;
            Ok(Response::new(body))
        })
    }
}
