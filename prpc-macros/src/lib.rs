//! The `#[prpc::service]` attribute and `#[derive(prpc::Describe)]`. Use them through the
//! `prpc` crate, which re-exports them; the generated code names only `::prpc`, so a user
//! crate depends on `prpc` alone.
//!
//! The service macro reads the trait into a checked `parse::ServiceDef` (every unsupported
//! construct is a compile error at its span), then emits three things from it: the handler
//! trait (`handler`), the server dispatcher (`server`, describing its methods through
//! `reflect`) and the client (`client`), all of which encode bodies through `codec`. The
//! derive (`derive`) gives a type's reflection shape.

mod attrs;
mod client;
mod codec;
mod derive;
mod handler;
mod parse;
mod reflect;
mod server;

use proc_macro::TokenStream;
use quote::quote;

use crate::attrs::ServiceArgs;
use crate::parse::{Encoding, ServiceDef};

/// Derives `prpc::Describe`: the shape reflection shows for the type's values, so that a
/// client that has never seen the type knows what to send (see `prpc::reflection`).
///
/// Structs with named fields are objects, newtypes their field, tuple structs tuples, unit
/// structs `null`; enums are serde's externally tagged form. Names are the Rust names, or
/// `#[serde(rename = "...")]` on a field or variant; fields and variants with
/// `#[serde(skip)]` or `#[serde(skip_serializing)]` are left out. Other serde attributes
/// (`rename_all`, `tag`, `untagged`, `flatten`, ...) are not read: describe such a type by
/// hand. A field whose type does not implement `Describe` is described by its type's name;
/// type parameters must implement `Describe`.
///
/// ```
/// use prpc::reflection::{Field, Shape};
/// use prpc::Describe;
///
/// #[derive(serde::Serialize, prpc::Describe)]
/// struct Reading {
///     #[serde(rename = "sensor")]
///     sensor_id: u32,
///     values: Vec<f64>,
///     at: std::time::SystemTime, // no Describe: described by its name
/// }
///
/// assert_eq!(
///     Reading::shape(),
///     Shape::object("Reading", vec![
///         Field::new("sensor", Shape::Integer),
///         Field::new("values", Shape::array(Shape::Number)),
///         Field::new("at", Shape::Named { name: "SystemTime".into() }),
///     ]),
/// );
/// ```
///
/// prpc-build derives it on the messages it generates with
/// `#[describe(proto = ".package.Message", shape = "...")]`, the message's proto3 JSON shape
/// computed from its descriptor; that attribute is for generated code only.
#[proc_macro_derive(Describe, attributes(describe))]
pub fn derive_describe(item: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(item).and_then(derive::expand) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Turns a trait into an RPC service: a handler trait to implement, a server that dispatches
/// calls to it, and a typed client.
///
/// # Example
///
/// ```
/// use std::time::Duration;
///
/// #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
/// pub enum MathError {
///     DivisionByZero,
/// }
///
/// /// Arithmetic over the network.
/// #[prpc::service(name = "math.Arith")]
/// pub trait Arith {
///     /// Adds two numbers.
///     #[prpc(idempotent)]
///     async fn add(&self, a: i32, b: i32) -> i32;
///     /// Divides `a` by `b`.
///     async fn div(&self, a: f64, b: f64) -> Result<f64, MathError>;
/// }
///
/// struct Calculator;
///
/// impl Arith for Calculator {
///     async fn add(&self, a: i32, b: i32) -> i32 {
///         a + b
///     }
///
///     async fn div(&self, a: f64, b: f64) -> Result<f64, MathError> {
///         if b == 0.0 { Err(MathError::DivisionByZero) } else { Ok(a / b) }
///     }
/// }
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let server = prpc::Server::builder()
///         .add_service(ArithServer::new(Calculator))
///         .bind("127.0.0.1:0")
///         .await?;
///     let addr = server.local_addr();
///     tokio::spawn(server.serve());
///
///     let client = ArithClient::connect(addr).await?;
///     assert_eq!(client.add(1, 2).await?, 3);
///     // Transport errors and the typed application error are separate layers.
///     assert_eq!(client.div(1.0, 0.0).await?, Err(MathError::DivisionByZero));
///     // Per-call options on a view of the client; the method signatures stay the same.
///     let json = client.clone().with_format(prpc::Format::Json).with_timeout(Duration::from_secs(5));
///     assert_eq!(json.div(1.0, 4.0).await?, Ok(0.25));
///     assert_eq!(ArithClient::IDEMPOTENT_METHODS, ["add"]);
///     Ok(())
/// }
/// ```
///
/// # What it generates
///
/// For `pub trait Arith` above (`Foo` in general), in the same module and with the trait's
/// visibility:
///
/// ```text
/// pub trait Arith: Send + Sync + 'static {           // your supertraits are kept
///     fn add(&self, a: i32, b: i32) -> impl Future<Output = i32> + Send;
///     fn div(&self, a: f64, b: f64) -> impl Future<Output = Result<f64, MathError>> + Send;
/// }
///
/// pub struct ArithServer<T> { .. }                   // impl<T: Arith> prpc::Service,
///                                                    // describe() included (see below)
/// impl<T> ArithServer<T> {
///     pub fn new(service: T) -> Self;
///     pub fn from_arc(service: Arc<T>) -> Self;
/// }
///
/// pub struct ArithClient<C = prpc::Client> { .. }    // Clone, Debug
/// impl ArithClient<prpc::Client> {
///     pub const SERVICE: &str;                       // "math.Arith"
///     pub const METHODS: &[&str];                    // ["add", "div"]
///     pub const IDEMPOTENT_METHODS: &[&str];         // ["add"]
///     pub async fn connect(addr) -> Result<Self, prpc::Error>;
/// }
/// impl<C: prpc::Channel> ArithClient<C> {
///     pub fn new(channel: C) -> Self;
///     pub fn with_options(self, options: prpc::CallOptions) -> Self;
///     pub fn with_timeout(self, timeout: Duration) -> Self;
///     pub fn with_format(self, format: prpc::Format) -> Self;
///     pub fn options(&self) -> &prpc::CallOptions;
///     pub fn channel(&self) -> &C;
///     pub fn into_channel(self) -> C;
///     pub async fn add(&self, a: i32, b: i32) -> Result<i32, prpc::Error>;
///     pub async fn div(&self, a: f64, b: f64) -> Result<Result<f64, MathError>, prpc::Error>;
/// }
/// ```
///
/// Implement the trait with plain `async fn`s (or any `fn` returning a `Send` future); the
/// server may move a call to a task (and thread) of its own, so handler futures must be `Send`. A method may have
/// a default body.
///
/// # Reflection
///
/// `FooServer` implements `prpc::Service::describe`, which the server's
/// `prpc.Reflection/describe_services` answers: for each method its arguments by name, the
/// shape of each and of the reply and typed error, which side streams, and whether it is
/// idempotent. A type's shape comes from its `prpc::Describe` impl (derive it on your types);
/// a type without one is described by its name, so nothing more is required of a service.
///
/// # Calls on the wire
///
/// - The service's wire name is the trait's name, or `#[prpc::service(name = "math.Arith")]`;
///   a method's is its Rust name, or `#[prpc(name = "Add")]` on the method.
/// - A serde service's arguments travel as one struct with a field per argument, so a JSON
///   body reads `{"a":1,"b":2}` (a method without arguments sends `{}`); the reply is the
///   return value itself. Because fields are named, a server ignores arguments it does not
///   know and a new `Option` argument decodes as `None` from an older client.
/// - The format is the caller's: the client view's options, else the channel's default
///   (MessagePack for `prpc::Client`); the server answers in the format it was called in.
///   Argument, return and error types need `serde::Serialize` and `serde::Deserialize`.
/// - The server answers an unknown method with `Code::Unimplemented`, a body that does not
///   decode as the method's arguments with `Code::InvalidArgument`, and a reply that does not
///   encode with `Code::Internal`; the client sees them as `prpc::Error::Status`. A reply that
///   does not decode on the client is `prpc::Error::Body`: an older client never gets a wrong
///   value, only an error.
///
/// # Application errors
///
/// A method returning `Result<T, E>` (written with both arguments) has a typed application
/// error. The server sends `Err(e)` as `Status::application(message, e encoded in the call's
/// format)`, where the message is `e`'s `Display` if it has one, else its type name. The
/// client decodes the details back into `E` and returns `Ok(Err(e))`, while transport
/// failures and refusals stay `Err(prpc::Error)`. If the details do not decode as the client's
/// `E`, the client returns the `prpc::Error::Status` itself (code `application`, the server's
/// message). Any other return type, a `Result` alias with one argument included, is sent as a
/// plain value.
///
/// # Errors as statuses
///
/// A method returning `Result<T, prpc::Status>` (the path written out, `prpc::Status` or
/// `::prpc::Status`) picks the call's status itself, as gRPC handlers do: the server sends
/// `Err(status)` as the call's status, code, message, details and metadata unchanged, and the
/// client method returns `Result<T, prpc::Error>`, with the status as
/// `Err(prpc::Error::Status(status))` like any refusal by the runtime. Services generated by
/// prpc-build have only such methods.
///
/// ```
/// use prpc::{Code, Status};
///
/// #[prpc::service]
/// pub trait Users {
///     async fn name(&self, id: u64) -> Result<String, prpc::Status>;
/// }
///
/// struct Directory;
///
/// impl Users for Directory {
///     async fn name(&self, id: u64) -> Result<String, Status> {
///         match id {
///             1 => Ok("ada".into()),
///             _ => Err(Status::new(Code::NotFound, format!("no user {id}"))),
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = prpc::Server::builder().add_service(UsersServer::new(Directory)).bind("127.0.0.1:0").await?;
/// let addr = server.local_addr();
/// tokio::spawn(server.serve());
/// let client = UsersClient::connect(addr).await?;
/// assert_eq!(client.name(1).await?, "ada");
/// let error = client.name(2).await.unwrap_err();
/// assert_eq!(error.code(), Code::NotFound);
/// assert_eq!(error.status().unwrap().message(), "no user 2");
/// # Ok(())
/// # }
/// ```
///
/// # Per-call options
///
/// `with_options`, `with_timeout` and `with_format` return the client with options that apply
/// to every call made through it, layered over its earlier options and then the channel's
/// defaults; clone first to keep the original (`client.clone().with_timeout(..)`: a client
/// clone shares the connection). Compression and metadata are set with
/// `with_options(CallOptions::new().compression(..).metadata(..))`.
///
/// # Streaming methods
///
/// A method streams when `prpc::Streaming` is in its signature: as its return type the
/// server streams the reply's items, as an argument the client streams items to the server,
/// and both at once make a bidirectional stream. The three shapes, as the trait declares them
/// and as the client calls them:
///
/// ```text
/// // server stream
/// async fn watch(&self, topic: String) -> prpc::Streaming<Event>;
/// pub async fn watch(&self, topic: String) -> Result<prpc::Streaming<Event>, prpc::Error>;
/// // client stream
/// async fn upload(&self, name: String, chunks: prpc::Streaming<Chunk>) -> Receipt;
/// pub async fn upload(&self, name: String, chunks: impl Stream<Item = Chunk> + Send + 'static)
///     -> Result<Receipt, prpc::Error>;
/// // bidirectional stream
/// async fn chat(&self, lines: prpc::Streaming<Line>) -> prpc::Streaming<Line>;
/// pub async fn chat(&self, lines: impl Stream<Item = Line> + Send + 'static)
///     -> Result<prpc::Streaming<Line>, prpc::Error>;
/// ```
///
/// - A handler builds its `Streaming` from an iterator (`Streaming::from_iter`), any
///   `Stream` of items (`Streaming::new`), or a `Stream` of `Result`s whose first `Err` ends
///   the stream with that status (`Streaming::try_new`, with a `prpc::Status` or
///   `prpc::Error`); `with_trailer(metadata)` sets the trailer's metadata, which the client
///   reads with `Streaming::trailer()` once the stream has ended.
/// - The client reads items as `Result<T, prpc::Error>` with `message().await` or as a
///   `Stream`. The call is open before the handler answers, so a refusal (and any status
///   that ends the stream) arrives as the stream's last item, after the items before it.
///   Dropping the `Streaming` before its end cancels the call and stops the handler.
/// - Items of type `Result<T, E>` carry a typed error per item: the handler's `Err(e)` goes
///   out as its own message and the stream goes on; the client reads it as `Ok(Err(e))`.
///   A handler that may refuse the whole call returns `Result<prpc::Streaming<T>,
///   prpc::Status>` (prpc-build's form); a typed error for a whole streaming reply is refused.
/// - A method takes at most one `prpc::Streaming` argument, anywhere in its list; the other
///   arguments travel in the request's body exactly as for a unary call. The client sends
///   any `Stream` of items (`futures::stream::iter`, a channel's receiver, ...) and ends its
///   side when that stream ends; a server stream may go on after that. The handler reads the
///   items as `Result<T, prpc::Error>`.
/// - A client stream without a streamed reply answers with one reply once the handler
///   returns, decoded as a unary reply: `Result<T, E>` application errors and
///   `Result<T, prpc::Status>` included.
/// - Items travel in the call's format, as bodies do (a protobuf service's items are
///   messages; `()` is the empty message). A received item that does not decode is an
///   `Err(prpc::Error::Body)` item; an item that does not encode ends the stream with
///   `Code::Internal`.
/// - Messages are flow controlled: a reader that stops taking items stops the writer once a
///   window of bytes is buffered (see `stream_windows` on the server and client builders).
/// - The call's timeout covers the whole stream (`prpc::Error::Timeout` as the last item). A
///   stream is sent once and never retried, so `#[prpc(idempotent)]` on a streaming method
///   is a compile error. A unary request to a streaming method, or a stream to a unary one,
///   is refused with `Code::InvalidArgument`.
///
/// ```
/// use prpc::Streaming;
/// // `futures` (or `tokio-stream`) makes streams from iterators and maps them.
/// use futures::StreamExt as _;
/// # mod futures {
/// #     use std::pin::Pin;
/// #     use std::task::{Context, Poll};
/// #     use prpc::__private::Stream;
/// #     pub mod stream {
/// #         pub struct Iter<I>(I);
/// #         pub fn iter<I: IntoIterator>(items: I) -> Iter<I::IntoIter> { Iter(items.into_iter()) }
/// #         impl<I: Iterator + Unpin> super::Stream for Iter<I> {
/// #             type Item = I::Item;
/// #             fn poll_next(mut self: super::Pin<&mut Self>, _: &mut super::Context<'_>)
/// #                 -> super::Poll<Option<I::Item>> { super::Poll::Ready(self.0.next()) }
/// #         }
/// #     }
/// #     pub struct Map<S, F>(S, F);
/// #     impl<S: Stream + Unpin, T, F: FnMut(S::Item) -> T + Unpin> Stream for Map<S, F> {
/// #         type Item = T;
/// #         fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
/// #             let this = &mut *self;
/// #             Pin::new(&mut this.0).poll_next(cx).map(|item| item.map(&mut this.1))
/// #         }
/// #     }
/// #     pub trait StreamExt: Stream + Sized {
/// #         fn map<T, F: FnMut(Self::Item) -> T>(self, f: F) -> Map<Self, F> { Map(self, f) }
/// #     }
/// #     impl<S: Stream> StreamExt for S {}
/// # }
///
/// #[prpc::service]
/// pub trait Numbers {
///     /// `0..count`, one item at a time.
///     async fn range(&self, count: u32) -> Streaming<u32>;
///     /// The client's numbers, summed once they have all arrived.
///     async fn sum(&self, numbers: Streaming<i64>) -> i64;
///     /// Each number times `factor`, as it arrives.
///     async fn scale(&self, factor: i64, numbers: Streaming<i64>) -> Streaming<i64>;
/// }
///
/// struct Calculator;
///
/// impl Numbers for Calculator {
///     async fn range(&self, count: u32) -> Streaming<u32> {
///         Streaming::from_iter(0..count)
///     }
///
///     async fn sum(&self, mut numbers: Streaming<i64>) -> i64 {
///         let mut sum = 0;
///         while let Ok(Some(number)) = numbers.message().await {
///             sum += number;
///         }
///         sum
///     }
///
///     async fn scale(&self, factor: i64, numbers: Streaming<i64>) -> Streaming<i64> {
///         // A received item that failed ends the reply with its error.
///         Streaming::try_new(numbers.map(move |number| number.map(|n| n * factor)))
///     }
/// }
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let server = prpc::Server::builder()
///         .add_service(NumbersServer::new(Calculator))
///         .bind("127.0.0.1:0")
///         .await?;
///     let addr = server.local_addr();
///     tokio::spawn(server.serve());
///     let client = NumbersClient::connect(addr).await?;
///
///     let mut range = client.range(3).await?;
///     while let Some(n) = range.message().await? {
///         println!("{n}");
///     }
///
///     assert_eq!(client.sum(futures::stream::iter(1..=100)).await?, 5050);
///
///     let mut scaled = client.scale(10, futures::stream::iter([1, 2, 3])).await?;
///     let mut seen = Vec::new();
///     while let Some(n) = scaled.message().await? {
///         seen.push(n);
///     }
///     assert_eq!(seen, [10, 20, 30]);
///     Ok(())
/// }
/// ```
///
/// # Idempotent methods
///
/// `#[prpc(idempotent)]` marks a method as safe to run more than once, so a retry needs no
/// deduplication. Every call the client makes to it has `prpc::Call::idempotent` set, which
/// the runtime retries by default (see `prpc::retry`); the marked methods are also listed in
/// `FooClient::IDEMPOTENT_METHODS`.
///
/// # Keyed calls
///
/// `#[prpc(hash_key = "user_id")]` keys every call of a method by its argument `user_id`:
/// the client sets the call's `prpc::CallOptions::hash_key` to the argument's
/// `prpc::balance::HashKey` hash, so a cluster balanced by consistent hashing sends calls
/// with one key to one endpoint. The argument may be a string, bytes, an integer, a `bool`,
/// a `char`, a type of yours implementing `HashKey`, or an `Option` of one (`None`: no key);
/// `HashKey` says which bytes are hashed (text as UTF-8, integers as decimal text, so `42u64`
/// and `"42"` are one key), so clients in other languages can agree. Any other type, floats
/// included, is a compile error at the attribute.
///
/// Which key a call carries, most specific first: a key set on the client view
/// (`with_options(CallOptions::new().hash_key(..))`), chosen for those calls, wins over the
/// argument's; the argument's wins over a key in the channel's default options; a `None`
/// argument leaves the call with the channel's key or none. A stream argument cannot be a
/// key: the call has gone to an endpoint before its items are sent.
///
/// ```
/// #[prpc::service]
/// pub trait Profiles {
///     /// The user's display name, from the server that holds the user.
///     #[prpc(hash_key = "user_id")]
///     async fn name(&self, user_id: u64) -> String;
/// }
/// # struct Names;
/// # impl Profiles for Names {
/// #     async fn name(&self, user_id: u64) -> String { format!("user {user_id}") }
/// # }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = prpc::Server::builder().add_service(ProfilesServer::new(Names))
/// #     .bind("127.0.0.1:0").await?;
/// # let addr = server.local_addr();
/// # tokio::spawn(server.serve());
/// let endpoints = [prpc::discovery::Endpoint::new(addr)?]; // and the other replicas
/// let cluster = prpc::cluster::Cluster::builder()
///     .balance(prpc::balance::Algorithm::ConsistentHash)
///     .build(&prpc::discovery::StaticDiscover::new(endpoints), "Profiles");
/// let profiles = ProfilesClient::new(cluster);
/// // To the endpoint every client sends the key "42" to.
/// assert_eq!(profiles.name(42).await?, "user 42");
/// // This view sends its calls where the key "admin" goes instead.
/// let admin = profiles.with_options(
///     prpc::CallOptions::new().hash_key(prpc::balance::hash_key(b"admin")),
/// );
/// assert_eq!(admin.name(7).await?, "user 7");
/// # Ok(())
/// # }
/// ```
///
/// # Protobuf services
///
/// `#[prpc::service(protobuf)]` makes bodies prost messages in protobuf: each method takes at
/// most one argument, the request message, and returns a message, `()` or `Result<M, E>` with
/// a message `E` for its application error. The message is the body as it is (no wrapping
/// struct), so a service generated from a `.proto` file speaks the same protobuf as any other
/// implementation of it; prpc-build generates such traits. These calls always use
/// `Format::Protobuf` (see below for JSON too).
///
/// ```
/// #[derive(Clone, PartialEq, prost::Message)]
/// pub struct EchoRequest {
///     #[prost(string, tag = "1")]
///     pub text: String,
/// }
///
/// #[prpc::service(protobuf)]
/// pub trait Echo {
///     async fn echo(&self, request: EchoRequest) -> EchoRequest;
/// }
///
/// struct Parrot;
///
/// impl Echo for Parrot {
///     async fn echo(&self, request: EchoRequest) -> EchoRequest {
///         request
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = prpc::Server::builder().add_service(EchoServer::new(Parrot)).bind("127.0.0.1:0").await?;
/// let addr = server.local_addr();
/// tokio::spawn(server.serve());
/// let reply = EchoClient::connect(addr).await?.echo(EchoRequest { text: "hi".into() }).await?;
/// assert_eq!(reply.text, "hi");
/// # Ok(())
/// # }
/// ```
///
/// ## Protobuf and JSON
///
/// `#[prpc::service(protobuf, json)]` is for messages that also implement serde with the
/// proto3 JSON mapping (pbjson generates such impls; prpc-build's `json` option turns it on):
/// calls travel as protobuf unless the client's options, else the channel's, choose
/// `Format::Json`, and the server answers in either format, so the JSON gateway and clients in
/// other languages can call the service. `()` (a method without argument, or returning
/// nothing) is the empty message: `{}` in JSON. Other formats are refused with
/// `Code::InvalidArgument`, as in a protobuf-only service.
///
/// ```
/// #[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
/// pub struct Note {
///     #[prost(string, tag = "1")]
///     pub text: String,
/// }
///
/// #[prpc::service(protobuf, json, name = "notes.Notes")]
/// pub trait Notes {
///     async fn shout(&self, request: Note) -> Result<Note, prpc::Status>;
/// }
///
/// struct Loud;
///
/// impl Notes for Loud {
///     async fn shout(&self, request: Note) -> Result<Note, prpc::Status> {
///         Ok(Note { text: request.text.to_uppercase() })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = prpc::Server::builder().add_service(NotesServer::new(Loud)).bind("127.0.0.1:0").await?;
/// let addr = server.local_addr();
/// tokio::spawn(server.serve());
/// let client = NotesClient::connect(addr).await?;
/// let note = Note { text: "hi".into() };
/// assert_eq!(client.shout(note.clone()).await?.text, "HI"); // protobuf
/// let json = client.with_format(prpc::Format::Json);
/// assert_eq!(json.shout(note).await?.text, "HI");
/// # Ok(())
/// # }
/// ```
///
/// `json` without `protobuf` is refused: a serde service speaks JSON already.
///
/// ```compile_fail
/// #[prpc::service(json)]
/// pub trait Plain {
///     async fn get(&self) -> u32;
/// }
/// ```
///
/// # One side only
///
/// `#[prpc::service(client = false)]` leaves out `FooClient` and `server = false` leaves out
/// `FooServer` (prpc-build's `build_client` and `build_server`); the handler trait is always
/// there. Both at once leave nothing to generate and are refused.
///
/// ```compile_fail
/// #[prpc::service(client = false, server = false)]
/// pub trait Nothing {
///     async fn get(&self) -> u32;
/// }
/// ```
///
/// ```compile_fail
/// #[prpc::service(client = false)]
/// pub trait Hidden {
///     async fn get(&self) -> u32;
/// }
/// type NoClient = HiddenClient; // not generated
/// ```
///
/// # What is refused
///
/// Each of these is a compile error pointing at the offending tokens: a method that is not
/// `async fn`; generic or lifetime parameters on the trait or a method; a receiver other than
/// `&self`; a borrowed argument or return type (`&str`, `Cow<'a, str>`), `impl Trait`, `Self`;
/// an argument that is a pattern rather than a name; items other than methods; two methods
/// with one wire name; and a method named like an item of the generated client (`new`,
/// `connect`, `clone`, `with_options`, `with_timeout`, `with_format`, `options`, `channel`,
/// `into_channel`): rename the Rust method and keep its wire name with
/// `#[prpc(name = "new")]`; `#[prpc(hash_key = "...")]` naming no argument of the method,
/// given twice or as anything but a non-empty string, or naming an argument whose type is not
/// a key.
/// Among streaming methods: `#[prpc(idempotent)]`, a key that is the stream argument, a second
/// `prpc::Streaming` argument, a typed error for a whole streamed reply
/// (`Result<prpc::Streaming<T>, E>`) and items of type `Result<T, prpc::Status>`.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut args = ServiceArgs::default();
    let parser = syn::meta::parser(|meta| args.parse_meta(meta));
    if let Err(error) = syn::parse::Parser::parse(parser, attr) {
        return error.to_compile_error().into();
    }
    let item = match syn::parse::<syn::Item>(item) {
        Ok(syn::Item::Trait(item)) => item,
        Ok(other) => {
            return syn::Error::new_spanned(
                other,
                "#[prpc::service] goes on a trait whose methods are the service's methods",
            )
            .to_compile_error()
            .into();
        }
        Err(error) => return error.to_compile_error().into(),
    };
    match ServiceDef::parse(args, item.clone()) {
        Ok(service) => {
            let handler = handler::expand(&service);
            let server = server::expand(&service);
            let client = client::expand(&service);
            let feature = (service.encoding != Encoding::Serde)
                .then(|| quote!(::prpc::__private::require_protobuf!();));
            quote!(#feature #handler #server #client).into()
        }
        Err(error) => {
            // The trait as written stays, so code using it reports nothing beyond these errors.
            let error = error.to_compile_error();
            let item = plain_trait(item);
            quote!(#error #item).into()
        }
    }
}

/// The trait as a plain trait again, so that the errors already reported are the only ones:
/// without the `#[prpc(...)]` attributes only this macro understands, and without argument
/// patterns, which a method without a body may not have.
fn plain_trait(mut item: syn::ItemTrait) -> syn::ItemTrait {
    for trait_item in &mut item.items {
        let syn::TraitItem::Fn(function) = trait_item else {
            continue;
        };
        function.attrs.retain(|attr| !attr.path().is_ident("prpc"));
        if function.default.is_some() {
            continue;
        }
        for input in &mut function.sig.inputs {
            if let syn::FnArg::Typed(typed) = input {
                match &mut *typed.pat {
                    syn::Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                        pat.mutability = None;
                    }
                    other => *other = syn::parse_quote!(_),
                }
            }
        }
    }
    item
}
