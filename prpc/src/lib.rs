//! prpc: a Rust RPC framework.
//!
//! Annotate a trait with [`#[prpc::service]`](macro@service); the macro generates a typed
//! client and a server dispatcher. Calls travel over one multiplexed TCP connection in prpc's
//! binary frames (see [`wire`]), in JSON, MessagePack or protobuf, optionally compressed.
//!
//! The runtime underneath works on encoded bodies, so it can be driven by hand too:
//!
//! ```
//! use bytes::Bytes;
//! use prpc::{Call, Client, Format, Request, Response, Server, Service, ServiceFuture, Status};
//!
//! struct Echo;
//!
//! impl Service for Echo {
//!     fn name(&self) -> &str { "Echo" }
//!     fn methods(&self) -> Vec<String> { vec!["echo".into()] }
//!     fn call(&self, request: Request) -> ServiceFuture {
//!         Box::pin(async move {
//!             match &*request.method {
//!                 "echo" => Ok(Response::new(request.body)),
//!                 other => Err(Status::unimplemented(format!("no method {other}"))),
//!             }
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder().add_service(Echo).bind("127.0.0.1:0").await?;
//! let addr = server.local_addr();
//! tokio::spawn(server.serve());
//!
//! let client = Client::connect(addr).await?;
//! let reply = client.call(Call::new("Echo", "echo", Format::Raw, Bytes::from("hi"))).await?;
//! assert_eq!(reply.body, "hi");
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod compress;
mod error;
pub mod format;
pub mod reflection;
pub mod server;
mod service;
mod status;
pub mod wire;

pub use client::Client;
pub use compress::Compression;
pub use error::{BodyError, Closed, Error, Result};
pub use format::Format;
pub use prpc_macros::service;
pub use server::Server;
pub use service::{
    Call, CallOptions, Channel, Reply, Request, Response, Service, ServiceFuture,
};
pub use status::{Code, Status};
pub use wire::{Metadata, WireError};

/// Re-exports for generated code. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use bytes::Bytes;
    #[cfg(feature = "protobuf")]
    pub use prost;
    pub use serde;
}
