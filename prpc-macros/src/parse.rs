//! From the annotated trait to a checked [`ServiceDef`]: everything the generators need, and a
//! compile error pointing at the offending tokens for everything they cannot handle.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::{
    Attribute, Block, FnArg, GenericArgument, Ident, ItemTrait, LitStr, Pat, PathArguments,
    ReceiverKind, ReturnType, Safety, Token, TraitItem, TraitItemFn, Type, TypeParamBound,
    Visibility, parse_quote,
};

use crate::attrs::{MethodArgs, ServiceArgs};

/// Inherent items of the generated client; a method with one of these names would collide.
pub(crate) const CLIENT_ITEMS: &[&str] = &[
    "new",
    "connect",
    // The client is `Clone`: an inherent `clone` would shadow `Clone::clone`.
    "clone",
    "with_options",
    "with_timeout",
    "with_format",
    "options",
    "channel",
    "into_channel",
    "SERVICE",
    "METHODS",
    "IDEMPOTENT_METHODS",
];

/// How argument and reply values become bodies.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Serde values, in JSON or MessagePack as the caller chooses; arguments bundled into a
    /// struct with one field per argument.
    Serde,
    /// Prost messages in protobuf; the one argument is the body.
    Protobuf,
    /// Prost messages that also implement serde with the proto3 JSON mapping (pbjson): in
    /// protobuf unless the caller asks for JSON.
    ProtobufJson,
}

impl Encoding {
    /// Whether bodies are prost messages (one argument, no wrapping struct).
    pub(crate) fn is_protobuf(self) -> bool {
        matches!(self, Encoding::Protobuf | Encoding::ProtobufJson)
    }
}

/// How a method fails, as its return type says.
pub(crate) enum Failure {
    /// It returns a plain value: only the call itself can fail.
    Infallible,
    /// `Result<T, E>`: `E` is a typed application error, sent in the status details.
    Typed(Box<Type>),
    /// `Result<T, prpc::Status>`: the handler picks the call's status itself.
    Status,
}

/// The items of a stream, from `prpc::Streaming<T>` as written.
pub(crate) struct StreamItems {
    /// The `T` of `Streaming<T>`: what each item is.
    pub(crate) ty: Type,
    /// What an item carries on success: `T`, or `A` when `T` is `Result<A, E>`.
    pub(crate) ok: Type,
    /// `E` when `T` is `Result<A, E>`: a typed error per item, sent as its own message while
    /// the stream goes on.
    pub(crate) error: Option<Type>,
}

/// A checked service trait.
pub(crate) struct ServiceDef {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) ident: Ident,
    pub(crate) supertraits: Punctuated<TypeParamBound, Token![+]>,
    /// The name callers address.
    pub(crate) name: String,
    pub(crate) encoding: Encoding,
    /// Whether to generate `FooClient`.
    pub(crate) client: bool,
    /// Whether to generate `FooServer`.
    pub(crate) server: bool,
    pub(crate) methods: Vec<MethodDef>,
}

/// A checked service method.
pub(crate) struct MethodDef {
    /// Its attributes less `#[prpc(...)]`.
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) ident: Ident,
    /// The name callers address.
    pub(crate) wire_name: String,
    pub(crate) idempotent: bool,
    /// The argument named by `#[prpc(hash_key = "...")]`, whose value keys each call, and the
    /// name as written there (to blame for a type that cannot be a key).
    pub(crate) hash_key: Option<(Ident, LitStr)>,
    /// Every argument in order, a stream argument included.
    pub(crate) args: Vec<Arg>,
    /// What the handler's future yields on success (`()` when the method returns nothing; the
    /// `prpc::Streaming<T>` of a method that streams its reply).
    pub(crate) ok: Type,
    /// How the method fails.
    pub(crate) failure: Failure,
    /// The full return type as written (`()` when none).
    pub(crate) output: Type,
    /// The items of the reply, for a method that streams it (server and bidirectional
    /// streams): `ok` is then the `prpc::Streaming<T>`.
    pub(crate) reply_stream: Option<StreamItems>,
    /// A default body, if the trait gives one.
    pub(crate) default: Option<Block>,
}

impl MethodDef {
    /// The arguments that travel in the request's body: all but the stream.
    pub(crate) fn body_args(&self) -> impl Iterator<Item = &Arg> + Clone {
        self.args.iter().filter(|arg| arg.stream.is_none())
    }

    /// The argument the client streams, if the method has one (client and bidirectional
    /// streams), with its items.
    pub(crate) fn request_stream(&self) -> Option<(&Arg, &StreamItems)> {
        self.args
            .iter()
            .find_map(|arg| arg.stream.as_ref().map(|items| (arg, items)))
    }

    /// Whether the call is opened as a stream (either side streams).
    pub(crate) fn is_stream(&self) -> bool {
        self.reply_stream.is_some() || self.request_stream().is_some()
    }
}

/// One argument: a plain name and an owned type.
pub(crate) struct Arg {
    pub(crate) ident: Ident,
    pub(crate) mutable: bool,
    pub(crate) ty: Type,
    /// For the argument of type `prpc::Streaming<T>`: the client's stream, not a body field.
    pub(crate) stream: Option<StreamItems>,
}

/// Collects errors so one compile shows every problem, not only the first.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    /// An error covering every token of `tokens`.
    fn push(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.add(syn::Error::new_spanned(tokens, message));
    }

    fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

impl ServiceDef {
    pub(crate) fn parse(args: ServiceArgs, item: ItemTrait) -> syn::Result<ServiceDef> {
        let mut errors = Errors::default();
        if let Some(unsafety) = &item.unsafety {
            errors.push(unsafety, "a service trait cannot be `unsafe`");
        }
        if let Some(auto) = &item.modifiers.auto_token {
            errors.push(auto, "a service trait cannot be an auto trait");
        }
        if !item.generics.params.is_empty() {
            errors.push(
                &item.generics.params,
                "a service trait cannot have generic or lifetime parameters: the generated \
                 client and server encode and decode concrete types",
            );
        }
        if let Some(where_clause) = &item.generics.where_clause {
            errors.push(where_clause, "a service trait cannot have a where clause");
        }
        let encoding = match (args.protobuf, args.json) {
            (true, Some(_)) => Encoding::ProtobufJson,
            (true, None) => Encoding::Protobuf,
            (false, json) => {
                if let Some(span) = json {
                    errors.add(syn::Error::new(
                        span,
                        "`json` applies to protobuf services (`#[prpc::service(protobuf, json)]`); \
                         a serde service speaks JSON already",
                    ));
                }
                Encoding::Serde
            }
        };
        let client = args.client.as_ref().is_none_or(|flag| flag.value);
        let server = args.server.as_ref().is_none_or(|flag| flag.value);
        if let (false, false, Some(flag)) = (client, server, &args.server) {
            errors.push(
                flag,
                "`client = false` and `server = false` leave nothing to generate",
            );
        }

        let mut methods: Vec<MethodDef> = Vec::new();
        for trait_item in item.items {
            let TraitItem::Fn(function) = trait_item else {
                errors.push(
                    &trait_item,
                    "a service trait can only contain `async fn` methods",
                );
                continue;
            };
            match MethodDef::parse(function, encoding) {
                Ok((method, name_tokens)) => {
                    if let Some(earlier) = methods.iter().find(|m| m.wire_name == method.wire_name)
                    {
                        errors.push(
                            name_tokens,
                            format!(
                                "two methods answer the wire name \"{}\" (`{}` and `{}`); \
                                 rename one with #[prpc(name = \"...\")]",
                                method.wire_name, earlier.ident, method.ident
                            ),
                        );
                    }
                    methods.push(method);
                }
                Err(error) => errors.add(error),
            }
        }
        errors.finish()?;

        let name = args
            .name
            .map_or_else(|| item.ident.unraw().to_string(), |name| name.value());
        Ok(ServiceDef {
            attrs: item.attrs,
            vis: item.vis,
            ident: item.ident,
            supertraits: item.supertraits,
            name,
            encoding,
            client,
            server,
            methods,
        })
    }
}

impl MethodDef {
    /// The method and the tokens to blame for its wire name.
    fn parse(function: TraitItemFn, encoding: Encoding) -> syn::Result<(MethodDef, TokenStream)> {
        let TraitItemFn {
            mut attrs,
            sig,
            default,
            ..
        } = function;
        let mut errors = Errors::default();
        let options = match MethodArgs::take(&mut attrs) {
            Ok(options) => options,
            Err(error) => {
                errors.add(error);
                MethodArgs::default()
            }
        };

        if let Some(constness) = &sig.constness {
            errors.push(constness, "a service method cannot be `const`");
        }
        match &sig.safety {
            Safety::Unsafe(unsafety) => {
                errors.push(unsafety, "a service method cannot be `unsafe`");
            }
            Safety::Safe(safe) => errors.push(safe, "a service method cannot be `safe`"),
            Safety::Default => {}
        }
        if let Some(abi) = &sig.abi {
            errors.push(abi, "a service method cannot have an `extern` ABI");
        }
        if sig.asyncness.is_none() {
            let (fn_token, ident) = (&sig.fn_token, &sig.ident);
            errors.push(
                quote!(#fn_token #ident),
                "service methods must be `async fn`: each call is answered by a future the \
                 server polls, on a task of its own when it has to wait",
            );
        }
        if !sig.generics.params.is_empty() {
            errors.push(
                &sig.generics.params,
                "a service method cannot have generic or lifetime parameters: its arguments \
                 and reply are decoded into concrete types",
            );
        }
        if let Some(where_clause) = &sig.generics.where_clause {
            errors.push(where_clause, "a service method cannot have a where clause");
        }
        if let Some(variadic) = &sig.variadic {
            errors.push(variadic, "a service method cannot be variadic");
        }
        let ident_text = sig.ident.unraw().to_string();
        if CLIENT_ITEMS.contains(&ident_text.as_str()) {
            errors.push(
                &sig.ident,
                format!(
                    "a method named `{ident_text}` collides with `{ident_text}` of the generated \
                     client; give the Rust method another name and keep the wire name with \
                     #[prpc(name = \"{ident_text}\")]"
                ),
            );
        }

        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(FnArg::Receiver(receiver))
                if matches!(&receiver.kind, ReceiverKind::Reference(_, None, None))
                    && receiver.mutability.is_none() => {}
            Some(FnArg::Receiver(receiver)) => errors.push(
                receiver,
                "service methods take `&self`: the server shares one instance of the \
                 implementation across concurrent calls",
            ),
            _ => errors.push(
                &sig.ident,
                "service methods take `&self` as their first argument",
            ),
        }

        let mut args = Vec::new();
        for input in inputs {
            let FnArg::Typed(typed) = input else {
                // A second receiver is already a syntax error; nothing more to say.
                continue;
            };
            match &*typed.pat {
                Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                    check_owned(&typed.ty, Position::Argument, &mut errors);
                    let stream = stream_items(&typed.ty, &mut errors);
                    if stream.is_some() && args.iter().any(|arg: &Arg| arg.stream.is_some()) {
                        errors.push(
                            typed,
                            "a method takes at most one `prpc::Streaming` argument: a call \
                             carries one stream from the client",
                        );
                    } else if stream.is_none()
                        && encoding.is_protobuf()
                        && args.iter().any(|arg| arg.stream.is_none())
                    {
                        errors.push(
                            typed,
                            "a method of a protobuf service takes at most one argument, the \
                             request message; put these fields in that message",
                        );
                    }
                    args.push(Arg {
                        ident: pat.ident.clone(),
                        mutable: pat.mutability.is_some(),
                        ty: (*typed.ty).clone(),
                        stream,
                    });
                }
                other => errors.push(
                    other,
                    "arguments must be plain names: each becomes a named field of the method's \
                     request",
                ),
            }
        }

        let output: Type = match &sig.output {
            ReturnType::Default => parse_quote!(()),
            ReturnType::Type(_, ty) => {
                check_owned(ty, Position::Return, &mut errors);
                (**ty).clone()
            }
        };
        let (ok, failure) = match split_result(&output) {
            Some((ok, err)) if is_status(err) => (ok.clone(), Failure::Status),
            Some((ok, err)) => (ok.clone(), Failure::Typed(Box::new(err.clone()))),
            None => (output.clone(), Failure::Infallible),
        };
        let reply_stream = stream_items(&ok, &mut errors);
        if let (Some(_), Failure::Typed(err)) = (&reply_stream, &failure) {
            errors.push(
                err,
                "a streaming reply has no typed error for the whole call: stream \
                 `prpc::Streaming<Result<T, E>>` for a typed error per item, or return \
                 `Result<prpc::Streaming<T>, prpc::Status>` to refuse the call with a status",
            );
        }
        let streams = reply_stream.is_some() || args.iter().any(|arg| arg.stream.is_some());
        if let (true, Some(span)) = (streams, options.idempotent) {
            errors.add(syn::Error::new(
                span,
                "a streaming method cannot be `idempotent`: a stream is sent once and never \
                 retried, since its messages cannot be sent again",
            ));
        }
        let hash_key = options.hash_key.and_then(|name| {
            key_argument(&name, &sig.ident, &args, &mut errors).map(|arg| (arg, name))
        });
        errors.finish()?;

        let name_tokens = match &options.name {
            Some(name) => name.to_token_stream(),
            None => sig.ident.to_token_stream(),
        };
        let wire_name = options.name.map_or(ident_text, |name| name.value());
        Ok((
            MethodDef {
                attrs,
                ident: sig.ident,
                wire_name,
                idempotent: options.idempotent.is_some(),
                hash_key,
                args,
                ok,
                failure,
                output,
                reply_stream,
                default,
            },
            name_tokens,
        ))
    }
}

/// The argument `#[prpc(hash_key = "name")]` names, or an error at the name: one the method
/// does not have, or its stream, whose items are sent after the call has gone to an endpoint.
fn key_argument(name: &LitStr, method: &Ident, args: &[Arg], errors: &mut Errors) -> Option<Ident> {
    let value = name.value();
    let wanted = value.strip_prefix("r#").unwrap_or(&value);
    match args.iter().find(|arg| arg.ident.unraw() == wanted) {
        Some(arg) if arg.stream.is_some() => {
            errors.push(
                name,
                format!(
                    "the stream argument `{wanted}` cannot be a hash key: the call goes to an \
                     endpoint before any of its items are sent; name an argument of the request"
                ),
            );
            None
        }
        Some(arg) => Some(arg.ident.clone()),
        None => {
            let names: Vec<String> = args.iter().map(|arg| format!("`{}`", arg.ident)).collect();
            let known = if names.is_empty() {
                format!("`{method}` takes no arguments")
            } else {
                format!("its arguments are {}", names.join(", "))
            };
            errors.push(
                name,
                format!("`{wanted}` is not an argument of `{method}`: {known}"),
            );
            None
        }
    }
}

/// The items of `prpc::Streaming<T>` (also written `Streaming<T>`, `prpc::stream::Streaming<T>`
/// or with a leading `::`), or `None` for any other type. Refuses `Result<T, prpc::Status>`
/// items, which would read as a typed error per item.
fn stream_items(ty: &Type, errors: &mut Errors) -> Option<StreamItems> {
    let Type::Path(path) = ty else { return None };
    let names: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let streaming = matches!(
        names[..],
        ["Streaming"] | ["prpc", "Streaming"] | ["prpc", "stream", "Streaming"]
    );
    if path.qself.is_some() || !streaming {
        return None;
    }
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    let mut types = arguments.args.iter();
    let (Some(GenericArgument::Type(item)), None) = (types.next(), types.next()) else {
        return None;
    };
    let (ok, error) = match split_result(item) {
        Some((_, err)) if is_status(err) => {
            errors.push(
                err,
                "an item of a stream cannot be `Result<T, prpc::Status>`: a `Result` item \
                 carries a typed error per item; to end the stream with a status, build it \
                 with `prpc::Streaming::try_new`",
            );
            return None;
        }
        Some((ok, err)) => (ok.clone(), Some(err.clone())),
        None => (item.clone(), None),
    };
    Some(StreamItems {
        ty: item.clone(),
        ok,
        error,
    })
}

/// `Result<T, E>` written with both arguments: the `T` and the `E`.
fn split_result(ty: &Type) -> Option<(&Type, &Type)> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    let mut types = arguments.args.iter();
    match (types.next(), types.next(), types.next()) {
        (Some(GenericArgument::Type(ok)), Some(GenericArgument::Type(err)), None) => {
            Some((ok, err))
        }
        _ => None,
    }
}

/// `prpc::Status` or `::prpc::Status`, written out: the call's own status as the error. Only
/// the full path counts, so a user's own type named `Status` stays an application error.
fn is_status(ty: &Type) -> bool {
    let Type::Path(path) = ty else { return false };
    let segments: Vec<_> = path.path.segments.iter().collect();
    path.qself.is_none()
        && segments.len() == 2
        && segments[0].ident == "prpc"
        && segments[1].ident == "Status"
        && segments.iter().all(|segment| segment.arguments.is_none())
}

/// Whether `ty` is `()`: an empty message in a protobuf service.
pub(crate) fn is_unit(ty: &Type) -> bool {
    match ty {
        Type::Tuple(tuple) => tuple.elems.is_empty(),
        Type::Paren(paren) => is_unit(&paren.elem),
        Type::Group(group) => is_unit(&group.elem),
        _ => false,
    }
}

/// Whether `ty` is spelled as a byte string: `Vec<u8>` or `Bytes` (any path ending so). The
/// runtime checks the type itself, so a user's own type named `Bytes` stays as serde writes it.
pub(crate) fn is_byte_string(ty: &Type) -> bool {
    match ty {
        Type::Paren(paren) => is_byte_string(&paren.elem),
        Type::Group(group) => is_byte_string(&group.elem),
        Type::Path(path) if path.qself.is_none() => {
            let Some(last) = path.path.segments.last() else {
                return false;
            };
            match &last.arguments {
                syn::PathArguments::None => last.ident == "Bytes",
                syn::PathArguments::AngleBracketed(generic) if last.ident == "Vec" => {
                    matches!(
                        generic.args.first(),
                        Some(syn::GenericArgument::Type(Type::Path(element)))
                            if generic.args.len() == 1 && element.path.is_ident("u8")
                    )
                }
                _ => false,
            }
        }
        _ => false,
    }
}

#[derive(Clone, Copy)]
enum Position {
    Argument,
    Return,
}

/// Refuses types that cannot cross the network as they are: borrows, lifetimes other than
/// `'static`, `impl Trait`, `Self`, `_`.
fn check_owned(ty: &Type, position: Position, errors: &mut Errors) {
    let borrowed = match position {
        Position::Argument => {
            "borrowed arguments are not supported: the server decodes each argument into a \
             value it owns; take an owned type (`String` rather than `&str`, `Vec<T>` rather \
             than `&[T]`)"
        }
        Position::Return => {
            "borrowed return types are not supported: the reply is encoded after the handler \
             returns; return an owned type"
        }
    };
    match ty {
        Type::Reference(reference) => errors.push(reference, borrowed),
        Type::ImplTrait(impl_trait) => errors.push(
            impl_trait,
            "`impl Trait` is not supported in a service method: name the concrete type",
        ),
        Type::Infer(infer) => errors.push(infer, "name the type: `_` is not supported"),
        Type::Array(array) => check_owned(&array.elem, position, errors),
        Type::Slice(slice) => check_owned(&slice.elem, position, errors),
        Type::Paren(paren) => check_owned(&paren.elem, position, errors),
        Type::Group(group) => check_owned(&group.elem, position, errors),
        Type::Tuple(tuple) => {
            for elem in &tuple.elems {
                check_owned(elem, position, errors);
            }
        }
        Type::Path(path) => {
            if let Some(qself) = &path.qself {
                check_owned(&qself.ty, position, errors);
            }
            for segment in &path.path.segments {
                if segment.ident == "Self" {
                    errors.push(
                        &segment.ident,
                        "`Self` is not supported in a service method's types: name the \
                         concrete type",
                    );
                }
                let PathArguments::AngleBracketed(arguments) = &segment.arguments else {
                    continue;
                };
                for argument in &arguments.args {
                    match argument {
                        GenericArgument::Lifetime(lifetime) if lifetime.ident != "static" => {
                            errors.push(lifetime, borrowed);
                        }
                        GenericArgument::Type(inner) => check_owned(inner, position, errors),
                        _ => {}
                    }
                }
            }
        }
        _ => {}
    }
}
