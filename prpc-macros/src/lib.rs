//! The `#[prpc::service]` attribute. Use it through the `prpc` crate, which re-exports it; the
//! generated code names only `::prpc`, so a user crate depends on `prpc` alone.
//!
//! The macro reads the trait into a checked `parse::ServiceDef` (every unsupported construct
//! is a compile error at its span), then emits three things from it: the handler trait
//! (`handler`), the server dispatcher (`server`) and the client (`client`), all of which encode
//! bodies through `codec`.

mod attrs;
mod client;
mod codec;
mod handler;
mod parse;
mod server;

use proc_macro::TokenStream;
use quote::quote;

use crate::attrs::ServiceArgs;
use crate::parse::ServiceDef;

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
/// pub struct ArithServer<T> { .. }                   // impl<T: Arith> prpc::Service
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
/// # Idempotent methods
///
/// `#[prpc(idempotent)]` marks a method as safe to run more than once, so a retry needs no
/// deduplication. Every call the client makes to it has `prpc::Call::idempotent` set, which
/// the runtime retries by default (see `prpc::retry`); the marked methods are also listed in
/// `FooClient::IDEMPOTENT_METHODS`.
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
/// `#[prpc(name = "new")]`.
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
            quote!(#handler #server #client).into()
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
