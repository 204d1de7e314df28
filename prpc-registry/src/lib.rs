//! prpc's built-in registry: where servers register and clients find them.
//!
//! - [`Registry`]: the registry, a prpc service (`prpc.Registry`, see [`RegistryApi`] and
//!   `docs/REGISTRY.md`) that any prpc server hosts with one builder call, or that the
//!   `prpc-registry serve ADDR` binary runs on its own.
//! - [`RegistryClient`]: its client, a [`Register`](prpc::discovery::Register) for servers
//!   (with the server builder's `register`) and a [`Discover`](prpc::discovery::Discover) for
//!   clients, which follow a service's endpoints as a server stream of changes.
//! - [`Standalone`]: the registry as a process of its own, as `prpc-registry serve ADDR` and
//!   `prpc registry serve ADDR` run it.
//!
//! Registrations carry a TTL, kept by heartbeats at a third of it; expiry runs on prpc's
//! timing wheel, and a server withdraws its registration when it shuts down, before it
//! drains. A registry restart loses every registration: registrants find out at their next
//! heartbeat (`not_found`) and register again, watchers watch again and get the whole set.
//!
//! ```
//! use std::time::Duration;
//! use prpc::discovery::Discover;
//! use prpc_registry::{Registry, RegistryClient};
//!
//! #[prpc::service]
//! pub trait Hello {
//!     async fn hello(&self) -> String;
//! }
//! struct World;
//! impl Hello for World {
//!     async fn hello(&self) -> String { "world".into() }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The registry, hosted by a prpc server of its own.
//! // (No warm-up: a registry that has never run has no registrants to wait for.)
//! let registry = prpc::Server::builder()
//!     .add_service(Registry::default().warm_up(Duration::ZERO).service())
//!     .bind("127.0.0.1:0")
//!     .await?;
//! let client = RegistryClient::new(registry.local_addr())?;
//! tokio::spawn(registry.serve());
//!
//! // A server that registers itself.
//! let server = prpc::Server::builder()
//!     .add_service(HelloServer::new(World))
//!     .register(client.clone(), "Hello", 1, [("version", "1")])
//!     .bind("127.0.0.1:0")
//!     .await?;
//! let shutdown = server.shutdown_handle();
//! let serving = tokio::spawn(server.serve());
//!
//! // A client that finds it.
//! let mut watch = client.watch("Hello");
//! let snapshot = loop {
//!     let snapshot = watch.changed().await?;
//!     if !snapshot.is_empty() { break snapshot; }
//! };
//! let hello = HelloClient::connect(snapshot.endpoints[0].address.clone()).await?;
//! assert_eq!(hello.hello().await?, "world");
//!
//! // Shutdown withdraws the registration first.
//! shutdown.shutdown();
//! serving.await??;
//! assert!(watch.changed().await?.is_empty());
//! # Ok(())
//! # }
//! ```

mod api;
mod client;
mod limits;
mod registry;
mod standalone;

pub use api::{
    Granted, RegistryApi, RegistryApiClient, RegistryApiServer, ServiceSet, ServiceSummary,
    WatchEvent,
};
pub use client::RegistryClient;
pub use limits::Limits;
pub use registry::Registry;
pub use standalone::Standalone;
