//! prpc: a Rust RPC framework.
//!
//! Annotate a trait with [`#[prpc::service]`](macro@service); the macro generates a typed
//! client and a server dispatcher. Calls travel over one multiplexed TCP connection in prpc's
//! binary frames (see [`wire`] and `docs/PROTOCOL.md`), in MessagePack, JSON or protobuf
//! ([`Format`]), optionally compressed ([`Compression`]).
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
//! Where things live:
//!
//! - [`Server`] and its [`server::Builder`]: services, limits, graceful shutdown, and the
//!   [`idempotency`] store that makes retried calls run once.
//! - [`Client`] and its [`client::Builder`]: one multiplexed connection, reopened when lost,
//!   deadlines, [`retry`] policies, keepalive. Generated clients work over any [`Channel`].
//! - [`Service`], [`Channel`], [`Call`], [`CallOptions`]: the seams generated code plugs into;
//!   implement them by hand for proxies and gateways.
//! - [`Error`], [`Status`], [`Code`]: what a failed call reports.
//! - [`wire`], [`format`](mod@format), [`compress`]: the frame codec and body encodings.
//! - [`timer`] (prpc's hierarchical timing wheel), [`id`] (snowflake request ids),
//!   [`reflection`] (every server lists its services).

pub mod client;
pub mod compress;
pub mod context;
mod error;
pub mod format;
pub mod id;
pub mod idempotency;
pub mod reflection;
pub mod retry;
pub mod server;
mod service;
mod status;
pub mod timer;
pub mod wire;

pub use bytestring::ByteString;
pub use client::Client;
pub use compress::Compression;
pub use error::{BodyError, Closed, Error, Result};
pub use format::Format;
pub use prpc_macros::service;
pub use server::Server;
pub use service::{Call, CallOptions, Channel, Reply, Request, Response, Service, ServiceFuture};
pub use status::{Code, Status};
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

/// Re-exports for generated code. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    use std::fmt::Display;

    pub use bytes::Bytes;
    #[cfg(feature = "protobuf")]
    pub use prost;
    pub use serde;
    pub use tokio::net::ToSocketAddrs;

    use crate::{Call, CallOptions, Channel, Format, Status};

    /// The format a serde call encodes in: the client's options, else the channel's default.
    pub fn serde_format<C: Channel>(options: &CallOptions, channel: &C) -> Format {
        options
            .format
            .or(channel.default_options().format)
            .unwrap_or_default()
    }

    /// The format a protobuf service that also speaks JSON (`#[prpc::service(protobuf, json)]`)
    /// calls in: JSON when the client's options, else the channel's, ask for it; protobuf in
    /// every other case, so protobuf stays the default.
    pub fn proto_format<C: Channel>(options: &CallOptions, channel: &C) -> Format {
        match options.format.or(channel.default_options().format) {
            Some(Format::Json) => Format::Json,
            _ => Format::Protobuf,
        }
    }

    /// Encodes a prost message that also implements serde (the proto3 JSON mapping, as
    /// pbjson generates it): as JSON in [`Format::Json`], else as a prost message.
    #[cfg(feature = "protobuf")]
    pub fn encode_proto<M>(format: Format, message: &M) -> Result<Bytes, crate::BodyError>
    where
        M: prost::Message + serde::Serialize,
    {
        match format {
            Format::Json => format.encode(message),
            other => other.encode_message(message),
        }
    }

    /// Decodes what [`encode_proto`] encodes.
    #[cfg(feature = "protobuf")]
    pub fn decode_proto<M>(format: Format, body: &[u8]) -> Result<M, crate::BodyError>
    where
        M: prost::Message + Default + serde::de::DeserializeOwned,
    {
        match format {
            Format::Json => format.decode(body),
            other => other.decode_message(body),
        }
    }

    /// The empty message (`()`, `google.protobuf.Empty`) a method without a request or reply
    /// sends: `{}` in JSON, where serde would write `null`, and no bytes in protobuf.
    #[cfg(feature = "protobuf")]
    pub fn encode_empty(format: Format) -> Result<Bytes, crate::BodyError> {
        match format {
            Format::Json => format.encode(&EmptyMessage {}),
            other => other.encode_message(&()),
        }
    }

    /// Decodes the empty message: any JSON object (its fields ignored, as unknown fields are),
    /// or any protobuf message.
    #[cfg(feature = "protobuf")]
    pub fn decode_empty(format: Format, body: &[u8]) -> Result<(), crate::BodyError> {
        match format {
            Format::Json => format.decode::<EmptyMessage>(body).map(|_| ()),
            other => other.decode_message::<()>(body),
        }
    }

    /// A message without fields, as serde sees it: `{}`.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct EmptyMessage {}

    /// The call a generated client method sends. Every generated method builds its call here,
    /// so per-method facts reach the runtime without regenerating user code.
    pub fn new_call(
        service: &'static str,
        method: &'static str,
        format: Format,
        body: Bytes,
        options: &CallOptions,
        idempotent: bool,
    ) -> Call {
        // Static names are shared, not copied: no allocation per call for them.
        Call::new(
            crate::ByteString::from_static(service),
            crate::ByteString::from_static(method),
            format,
            body,
        )
        .with_options(options.clone())
        .idempotent(idempotent)
    }

    /// The status for a method the service does not have.
    pub fn no_method(service: &str, method: &str) -> Status {
        Status::unimplemented(format!("no method \"{method}\" on service \"{service}\""))
    }

    /// The status for a handler's reply (or application error) that would not encode.
    pub fn reply_unencodable(service: &str, method: &str, error: crate::BodyError) -> Status {
        Status::internal(format!(
            "the reply of {service}/{method} did not encode: {error}"
        ))
    }

    /// Describes an application error for its status message: its `Display` when it has one,
    /// else its type name. Generated code calls `(&Describe(&error)).describe()` with both
    /// traits in scope; method resolution picks [`DescribeDisplay`] when it applies.
    pub struct Describe<'a, T: ?Sized>(pub &'a T);

    /// [`Describe`] through `Display`.
    pub trait DescribeDisplay {
        /// The error's `Display`.
        fn describe(&self) -> String;
    }

    impl<T: Display + ?Sized> DescribeDisplay for Describe<'_, T> {
        fn describe(&self) -> String {
            self.0.to_string()
        }
    }

    /// [`Describe`] for types without `Display`.
    pub trait DescribeTypeName {
        /// The error's type name.
        fn describe(&self) -> String;
    }

    impl<T: ?Sized> DescribeTypeName for &Describe<'_, T> {
        fn describe(&self) -> String {
            std::any::type_name::<T>().to_owned()
        }
    }
}
