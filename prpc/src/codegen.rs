//! What generated code calls: `#[prpc::service]` and prpc-build expand to calls of these
//! items (as `prpc::__private::...`), so per-method facts reach the runtime without
//! regenerating user code. Not part of the public API.

use std::fmt::Display;

pub use bytes::Bytes;
#[cfg(feature = "protobuf")]
pub use prost;
pub use serde;

use bytestring::ByteString;

use crate::balance::HashKey;
use crate::call::Call;
use crate::call::CallOptions;
use crate::call::Reply;
use crate::channel::Channel;
use crate::error::Error;
use crate::format::Format;
use crate::service::{Request, Response};
use crate::status::Status;
pub use crate::stream::{Message, MessageStream, Streaming};
pub use futures_core::Stream;

/// Byte strings (`Vec<u8>`, `Bytes`) as bytes in every format: the generated code names this
/// module in `#[serde(with = ...)]` on such arguments, and wraps such results in
/// [`AsBytes`](byte_string::AsBytes) and [`FromBytes`](byte_string::FromBytes).
pub mod byte_string {
    pub use crate::format::byte_string::{
        AsBytes, FromBytes, decode, decode_arg, decode_from_body, deserialize, encode, encode_arg,
        encode_body, serialize,
    };
}

/// The format a generated call's resolved options choose: the client view's `options`,
/// else the channel's default (what resolving the call against the channel gives).
pub fn chosen_format<C: Channel>(channel: &C, options: &CallOptions) -> Option<Format> {
    options.format.or(channel.default_options().format)
}

/// The format a serde call encodes in, given the format its options choose
/// ([`chosen_format`]): that one, else MessagePack.
pub fn serde_format(chosen: Option<Format>) -> Format {
    chosen.unwrap_or_default()
}

/// The format a protobuf service that also speaks JSON (`#[prpc::service(protobuf, json)]`)
/// calls in, given the format its options choose ([`chosen_format`]): JSON when they ask for
/// it; protobuf in every other case, so protobuf stays the default.
pub fn proto_format(chosen: Option<Format>) -> Format {
    match chosen {
        Some(Format::Json) => Format::Json,
        _ => Format::Protobuf,
    }
}

/// Encodes a prost message that also implements serde (the proto3 JSON mapping, as
/// pbjson generates it): as JSON in [`Format::Json`], else as a prost message.
#[cfg(feature = "protobuf")]
pub fn encode_proto<M>(format: Format, message: &M) -> Result<Bytes, crate::body::BodyError>
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
pub fn decode_proto<M>(format: Format, body: &[u8]) -> Result<M, crate::body::BodyError>
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
pub fn encode_empty(format: Format) -> Result<Bytes, crate::body::BodyError> {
    match format {
        Format::Json => format.encode(&EmptyMessage {}),
        other => other.encode_message(&()),
    }
}

/// Decodes the empty message: any JSON object (its fields ignored, as unknown fields are),
/// or any protobuf message.
#[cfg(feature = "protobuf")]
pub fn decode_empty(format: Format, body: &[u8]) -> Result<(), crate::body::BodyError> {
    match format {
        Format::Json => format.decode::<EmptyMessage>(body).map(|_| ()),
        other => other.decode_message::<()>(body),
    }
}

/// Expands to nothing with the `protobuf` feature, and to a compile error that says how to
/// turn it on without: every protobuf service (`#[prpc::service(protobuf)]`, prpc-build's
/// output) starts with it, so a missing feature reads as one clear line rather than as
/// missing items of this module.
#[cfg(feature = "protobuf")]
#[doc(hidden)]
#[macro_export]
macro_rules! __require_protobuf {
    () => {};
}

/// See the other definition, with the `protobuf` feature.
#[cfg(not(feature = "protobuf"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __require_protobuf {
    () => {
        ::core::compile_error!(
            "a protobuf service (#[prpc::service(protobuf)], prpc-build's code) needs prpc's \
             `protobuf` feature: prpc = { version = \"0.1\", features = [\"protobuf\"] }"
        );
    };
}

pub use crate::__require_protobuf as require_protobuf;

/// A message without fields, as serde sees it: `{}`.
#[cfg(feature = "protobuf")]
#[derive(serde::Serialize, serde::Deserialize)]
struct EmptyMessage {}

/// What a generated client method knows of its call before building it.
#[derive(Debug)]
pub struct CallParts {
    /// The service's name.
    pub service: &'static str,
    /// The method's name on the wire.
    pub method: &'static str,
    /// Whether the method is declared idempotent.
    pub idempotent: bool,
    /// The method's `#[prpc(hash_key = "...")]` argument's key ([`call_key`]), if it has one.
    pub key: Option<u64>,
    /// The format the arguments were encoded in.
    pub format: Format,
    /// The encoded arguments.
    pub body: crate::Body,
}

/// The call a generated client method sends, its options resolved against the channel's
/// defaults (the one merge of per-call, per-method and channel options), with its encoded
/// arguments. Every generated method builds its call here, whole, so per-method facts reach
/// the runtime without regenerating user code. A method's key replaces the channel's default
/// key but not one the client view's `options` set: a key chosen for one call or view is more
/// specific than the method's, which is in turn more specific than the channel's default.
pub fn new_call<C: Channel>(channel: &C, parts: CallParts, options: &CallOptions) -> Call {
    // Built with its options, not through the builder methods: each of those moves the whole
    // `Call` (two `memcpy` calls of it per method, a few hundred instructions a call), and
    // setting the options afterwards moves them once more.
    let mut call = Call::with_parts(
        ByteString::from_static(parts.service),
        ByteString::from_static(parts.method),
        parts.format,
        parts.body,
        options.clone(),
    );
    call.idempotent = parts.idempotent;
    call.resolve(channel.default_options());
    if options.hash_key.is_none()
        && let Some(key) = parts.key
    {
        call.options.hash_key = Some(key);
    }
    call
}

/// The key of a method's `#[prpc(hash_key = "...")]` argument; `None` for a `None` key,
/// which leaves the call as it was.
pub fn call_key<K: CallKey + ?Sized>(key: &K) -> Option<u64> {
    key.call_key()
}

/// What `#[prpc(hash_key = "...")]` accepts: a [`HashKey`], or an `Option` of one whose
/// `None` means no key.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot key a call",
    label = "named by #[prpc(hash_key = \"...\")]",
    note = "a key is a type implementing `prpc::balance::HashKey`, or an `Option` of one"
)]
pub trait CallKey {
    /// The key's hash, if it has one.
    fn call_key(&self) -> Option<u64>;
}

impl<T: HashKey + ?Sized> CallKey for T {
    fn call_key(&self) -> Option<u64> {
        Some(self.hash_key())
    }
}

impl<T: HashKey> CallKey for Option<T> {
    fn call_key(&self) -> Option<u64> {
        self.as_ref().map(HashKey::hash_key)
    }
}

/// The status for a method the service does not have.
pub fn no_method(service: &str, method: &str) -> Status {
    Status::unimplemented(format!("no method \"{method}\" on service \"{service}\""))
}

/// The future of a call the dispatcher refused before running a handler (no such method,
/// arguments that do not decode, a stream where none belongs).
pub fn refused(status: Status) -> crate::service::ServiceFuture {
    Box::pin(std::future::ready(Err(status)))
}

/// The status for a handler's reply (or application error) that would not encode.
pub fn reply_unencodable(service: &str, method: &str, error: crate::body::BodyError) -> Status {
    Status::internal(format!(
        "the reply of {service}/{method} did not encode: {error}"
    ))
}

/// The status that ends a client's stream when one of its items does not encode: the call
/// fails with it, and the server is told to stop.
pub fn item_unencodable(service: &str, method: &str, error: crate::body::BodyError) -> Status {
    Status::internal(format!(
        "an item of the stream to {service}/{method} did not encode: {error}"
    ))
}

/// What a received application-error message is on a stream whose items have no typed
/// error (the peer's version of the method has one): the error with the encoded value as its
/// details, never taken for an item.
pub fn untyped_item_error(service: &str, method: &str, message: Message) -> Error {
    Error::Status(Status::application(
        format!("an item of {service}/{method} is an application error this side has no type for"),
        message.body,
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

/// A streaming method's stream, as the generated code sends it: each item encoded with
/// `encode` (in the call's format), ended by the first status the items give.
pub fn outgoing<T, S>(
    items: S,
    encode: impl Fn(T) -> Result<Message, Status> + Send + 'static,
) -> MessageStream
where
    T: Send + 'static,
    S: futures_core::Stream<Item = T> + Send + 'static,
{
    Streaming::new(items).into_messages(encode).0
}

/// The messages and trailer metadata of a stream a handler returned, as its response.
pub fn stream_response<T: Send + 'static>(
    items: Streaming<T>,
    encode: impl Fn(T) -> Result<Message, Status> + Send + 'static,
) -> Response {
    let (messages, trailer) = items.into_messages(encode);
    Response::stream(messages, trailer)
}

/// The client's messages of a stream request, decoded with `decode` for the handler; `Err`
/// for a request that did not open a stream.
pub fn request_stream<T>(
    request: &mut Request,
    service: &str,
    method: &str,
    decode: impl Fn(Message) -> Result<T, Error> + Send + 'static,
) -> Result<Streaming<T>, Status> {
    match request.messages.take() {
        Some(messages) => Ok(Streaming::from_messages(messages, decode)),
        None => Err(not_a_stream(service, method)),
    }
}

/// Refuses a request that opened a stream to a method that is not one; `Ok` for a unary
/// request. (Inlined: every call of a unary method checks this; the refusal is out of line.)
#[inline]
pub fn expect_unary(request: &Request, service: &str, method: &str) -> Result<(), Status> {
    match request.messages {
        Some(_) => Err(not_unary(service, method)),
        None => Ok(()),
    }
}

/// Refuses a unary request to a streaming method; `Ok` for a request that opened a stream.
#[inline]
pub fn expect_stream(request: &Request, service: &str, method: &str) -> Result<(), Status> {
    match request.messages {
        Some(_) => Ok(()),
        None => Err(not_a_stream(service, method)),
    }
}

#[cold]
fn not_unary(service: &str, method: &str) -> Status {
    Status::invalid_argument(format!(
        "{service}/{method} is not a streaming method; call it without opening a stream"
    ))
}

#[cold]
fn not_a_stream(service: &str, method: &str) -> Status {
    Status::invalid_argument(format!(
        "{service}/{method} is a streaming method; open it as a stream"
    ))
}

/// The server's messages of a stream call's reply, decoded with `decode`.
pub fn reply_stream<T>(
    reply: Reply,
    decode: impl Fn(Message) -> Result<T, Error> + Send + 'static,
) -> Result<Streaming<T>, Error> {
    match reply.messages {
        Some(messages) => Ok(Streaming::from_messages(messages, decode)),
        None => Err(Error::Status(Status::internal(
            "the channel answered a stream call without a stream",
        ))),
    }
}

/// The trailer of a client-streaming call: waits for the end of the server's messages and
/// returns the reply it carries.
pub async fn reply_of_stream(reply: Reply) -> Result<Reply, Error> {
    match reply.messages {
        Some(messages) => {
            let format = messages.format();
            let trailer = messages.reply().await?;
            Ok(Reply {
                body: trailer.body,
                format,
                metadata: trailer.metadata,
                messages: None,
            })
        }
        None => Ok(reply),
    }
}

/// The shape of `T` for reflection, whether or not `T` implements
/// [`Describe`](crate::reflection::Describe): generated code calls
/// `(&ShapeOf::<T>::new()).shape()` with both traits below in scope, and method resolution
/// picks [`DescribedShape`] when `T: Describe`, else [`NamedShape`]'s fallback to `T`'s name.
/// So a service builds whatever its types implement.
pub struct ShapeOf<T: ?Sized>(std::marker::PhantomData<T>);

impl<T: ?Sized> ShapeOf<T> {
    /// The probe for `T`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ShapeOf(std::marker::PhantomData)
    }
}

/// [`ShapeOf`] through [`Describe`](crate::reflection::Describe).
pub trait DescribedShape {
    /// `T`'s own shape.
    fn shape(&self) -> crate::reflection::Shape;
}

impl<T: crate::reflection::Describe + ?Sized> DescribedShape for ShapeOf<T> {
    fn shape(&self) -> crate::reflection::Shape {
        T::shape()
    }
}

/// [`ShapeOf`] for a type that does not describe itself.
pub trait NamedShape {
    /// `T`'s name.
    fn shape(&self) -> crate::reflection::Shape;
}

impl<T: ?Sized> NamedShape for &ShapeOf<T> {
    fn shape(&self) -> crate::reflection::Shape {
        crate::reflection::Shape::named::<T>()
    }
}
