//! prpc: a Rust RPC framework.
//!
//! Annotate a trait with [`#[prpc::service]`](macro@service); the macro generates a typed
//! client and a server dispatcher. Calls travel over one multiplexed connection (TCP, a Unix
//! socket, TLS, or any byte stream: [`transport`]) in prpc's binary frames (see [`wire`] and
//! `docs/PROTOCOL.md`), in MessagePack, JSON or protobuf ([`Format`]), optionally compressed
//! ([`Compression`]).
//!
//! ```
//! #[prpc::service]
//! pub trait Greeter {
//!     async fn greet(&self, name: String) -> String;
//! }
//!
//! struct English;
//!
//! impl Greeter for English {
//!     async fn greet(&self, name: String) -> String {
//!         format!("hello, {name}")
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = prpc::Server::builder()
//!     .add_service(GreeterServer::new(English))
//!     .bind("127.0.0.1:0")
//!     .await?;
//! let addr = server.local_addr();
//! tokio::spawn(server.serve());
//!
//! let client = GreeterClient::connect(addr).await?;
//! assert_eq!(client.greet("prpc".into()).await?, "hello, prpc");
//! # Ok(())
//! # }
//! ```
//!
//! Where things live, from the bottom up (each module uses only those above it in this
//! list, never the other way):
//!
//! - [`wire`], [`timer`] (prpc's hierarchical timing wheel), [`id`] (snowflake request ids),
//!   [`transport`] (addresses, connectors, listeners, stream splitting): the ground floor.
//! - [`Format`], [`Compression`], [`BodyError`], with [`format`](mod@format) and
//!   [`compress`] implementing them; [`Status`] and [`Code`]; [`context`] (what a handler
//!   knows of its call); [`idempotency`] (the dedupe stores); [`Error`] (what a failed call
//!   reports); [`retry`] ([`RetryPolicy`](retry::RetryPolicy), plain data a call's options
//!   carry); [`discovery`] (endpoints, the [`Discover`](discovery::Discover) and
//!   [`Register`](discovery::Register) traits, static and DNS sources; the client side with
//!   the `cluster` feature); [`balance`] (with the `cluster` feature; which
//!   endpoint takes a call: random, round robin, smooth weighted round robin, consistent
//!   hashing, least active, p2c on peak EWMA, behind the [`Balancer`](balance::Balancer)
//!   trait).
//! - The shared types of both seams, naming neither client nor server: [`Request`],
//!   [`Response`] and [`Service`] (the server's seam); [`Call`], [`CallOptions`], [`Reply`] and
//!   [`Channel`] (the client's seam); [`layer`] (how policies wrap either seam).
//! - [`reflection`]: every server lists its services and describes their methods, with
//!   the shapes of their types ([`Describe`]).
//! - [`client`]: [`Client`], a [`Retry`](client::Retry) layer (over any channel) over a
//!   [`Link`](client::Link), one multiplexed connection reopened through its connector; its
//!   [`Builder`](client::Builder).
//! - [`server`]: [`Server`] and [`Router`](server::Router) (serve a listener, one stream, or
//!   any stream of streams), registration with a registry, the handler stack (limits → [`Dedupe`](server::Dedupe) →
//!   [`Deadline`](server::Deadline) → your [`layer`]s → the services), graceful shutdown.
//! - [`cluster`] (feature `cluster`): the balanced client, calling a service over many
//!   endpoints that discovery finds, with failover, hedging and a circuit
//!   [`Breaker`](cluster::Breaker) per endpoint.
//! - [`trace`]: a `tracing` span per call on both sides, and the W3C `traceparent` carried
//!   in the call's metadata so that a trace crosses processes.
//!
//! # Cargo features
//!
//! The default is what a `#[prpc::service]` app needs: `msgpack` (serde bodies in MessagePack,
//! the default format). The rest is opt-in, each for its build cost: `json` (serde bodies in
//! JSON as well, for callers that speak JSON: a server without it answers a JSON call with
//! `invalid_argument`, "format json is not enabled in this build"; prpc-http turns it on for
//! its gateway), `protobuf` (prost messages: `#[prpc::service(protobuf)]` and prpc-build's code, which
//! say so when it is missing), `gzip`, `snappy`, `zstd`, `lz4` (or `compression` for all
//! four), `cluster` (the balanced client `cluster`, the algorithms of [`balance`] and the
//! client side of [`discovery`]: no dependency of its own, but a fifth of prpc's compile),
//! `redis` (the shared idempotency store, `RedisStore` in [`idempotency`]), `tls` (rustls),
//! `tower` (tower layers on a server) and `full` for everything. Streaming, stats and tracing
//! spans are not features: every call uses them (benches/README.md, "Build cost").

/// Items that need the `cluster` feature: the balanced client, the balancing algorithms and
/// the client side of discovery.
macro_rules! cfg_cluster {
    ($($item:item)*) => {
        $(
            #[cfg(feature = "cluster")]
            $item
        )*
    };
}
pub(crate) use cfg_cluster;

pub mod balance;
mod body;
mod call;
mod channel;
pub mod client;
mod clock;
cfg_cluster! {
    pub mod cluster;
}
pub mod compress;
pub mod context;
pub mod discovery;
mod error;
pub mod format;
pub mod health;
pub mod id;
pub mod idempotency;
pub mod layer;
pub mod rate;
pub mod reflection;
pub mod retry;
pub mod server;
mod service;
mod shard_map;
pub mod stats;
mod status;
pub mod stream;
mod task;
pub mod timer;
pub mod trace;
pub mod transport;
pub mod wire;

/// Re-exports for generated code. Not part of the public API.
#[doc(hidden)]
#[path = "codegen.rs"]
pub mod __private;

/// Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): internal, not a public
/// API, and not covered by semver.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::format::byte_string::fuzz_decode as decode_byte_string;
    pub use crate::stream::fuzz::drive;
    pub use crate::wire::fuzz_read as read_frames;
}

pub use body::{Body, BodyError};
pub use bytestring::ByteString;
pub use call::{Call, CallOptions, Reply};
pub use channel::{BoxChannel, Channel};
pub use client::Client;
pub use compress::Compression;
pub use error::{Closed, Error, Result, SentAs};
pub use format::Format;
pub use prpc_macros::{Describe, service};
pub use reflection::Describe;
pub use server::Server;
pub use service::{Request, Response, Service, ServiceFuture};
pub use status::{Code, Status};
pub use stream::Streaming;
pub use wire::{Metadata, WireError};

/// Includes the Rust code prpc-build generated for a protobuf package: its messages, and for
/// each service the handler trait, `FooServer` and `FooClient`.
///
/// Call it in a module whose path mirrors the package (for a package `acme.library.v1`, in
/// `mod acme { mod library { mod v1 { .. } } }`), so references between packages resolve.
/// The argument is the package name as the `.proto` file declares it (`"_"` for a file
/// without one); the file is read from `OUT_DIR`, where `prpc_build::compile_protos` writes.
///
/// ```ignore
/// pub mod echo {
///     prpc::include_proto!("echo");
/// }
/// ```
#[macro_export]
macro_rules! include_proto {
    ($package:tt) => {
        include!(concat!(env!("OUT_DIR"), concat!("/", $package, ".rs")));
    };
}
