//! How the generated code turns arguments and replies into bodies and back, for each
//! [`Encoding`]. The client and the server both go through here, so they cannot disagree.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Type;
use syn::ext::IdentExt as _;

use crate::parse::{Encoding, MethodDef, StreamItems, is_byte_string, is_unit};

/// Names of the generated code's local variables. They have mixed-site hygiene, so an argument
/// called `format` or `body` cannot shadow them.
pub(crate) struct Locals {
    pub(crate) format: Ident,
    pub(crate) body: Ident,
    pub(crate) request: Ident,
    pub(crate) service: Ident,
    pub(crate) result: Ident,
    pub(crate) value: Ident,
    pub(crate) error: Ident,
    pub(crate) status: Ident,
    pub(crate) call: Ident,
    pub(crate) item: Ident,
    pub(crate) message: Ident,
}

impl Locals {
    pub(crate) fn new() -> Self {
        let local = |name: &str| Ident::new(name, Span::mixed_site());
        Locals {
            format: local("format"),
            body: local("body"),
            request: local("request"),
            service: local("service"),
            result: local("result"),
            value: local("value"),
            error: local("error"),
            status: local("status"),
            call: local("call"),
            item: local("item"),
            message: local("message"),
        }
    }
}

/// The struct a serde method's arguments travel in: one named field per argument, so a JSON
/// body reads `{"a":1,"b":2}` and either side may add fields later.
const ARGS_STRUCT: &str = "__PrpcArgs";

/// The field of the arguments struct for one argument: a byte string (`Vec<u8>`, `Bytes`) is
/// written as bytes, not as serde's array of integers.
fn args_field(arg: &crate::parse::Arg) -> TokenStream {
    let (ident, ty) = (&arg.ident, &arg.ty);
    if is_byte_string(ty) {
        quote!(#[serde(with = "::prpc::__private::byte_string")] #ident: #ty)
    } else {
        quote!(#ident: #ty)
    }
}

/// The method's argument when it has exactly one (apart from a stream) and it is a byte
/// string: the generated code then writes and reads its arguments without serde where the
/// format allows (see `prpc::__private::byte_string::encode_arg`), the same bytes serde would.
fn sole_byte_string(method: &MethodDef) -> Option<&crate::parse::Arg> {
    let mut args = method.body_args();
    match (args.next(), args.next()) {
        (Some(arg), None) if is_byte_string(&arg.ty) => Some(arg),
        _ => None,
    }
}

impl Encoding {
    /// An expression encoding the value behind the reference `value`, of type `ty`, into a
    /// `Bytes` body, yielding `Result<Bytes, BodyError>`.
    pub(crate) fn encode(self, locals: &Locals, ty: &Type, value: &TokenStream) -> TokenStream {
        let format = &locals.format;
        match self {
            Encoding::Serde if is_byte_string(ty) => {
                quote!(::prpc::__private::byte_string::encode(#format, #value))
            }
            Encoding::Serde => quote!(#format.encode(#value)),
            Encoding::Protobuf => quote!(#format.encode_message(#value)),
            // `()` is the empty message: `{}` in JSON, where serde would write `null`.
            Encoding::ProtobufJson if is_unit(ty) => {
                quote!(::prpc::__private::encode_empty(#format))
            }
            Encoding::ProtobufJson => quote!(::prpc::__private::encode_proto(#format, #value)),
        }
    }

    /// An expression encoding `value` (a local of type `ty`, moved when that saves a copy)
    /// into a method's reply body, yielding `Result<B, BodyError>` with `B` a `prpc::Body` or
    /// `Bytes`: as [`encode`](Self::encode) does, but a large `Bytes` or `Vec<u8>` is not
    /// copied where the format allows (`prpc::__private::byte_string::encode_body`).
    pub(crate) fn encode_body(self, locals: &Locals, ty: &Type, value: &Ident) -> TokenStream {
        let format = &locals.format;
        match self {
            Encoding::Serde if is_byte_string(ty) => {
                quote!(::prpc::__private::byte_string::encode_body(#format, #value))
            }
            _ => self.encode(locals, ty, &quote!(&#value)),
        }
    }

    /// An expression decoding the `&Bytes` expression `body` as `ty`, yielding
    /// `Result<ty, BodyError>`.
    pub(crate) fn decode(self, locals: &Locals, ty: &Type, body: &TokenStream) -> TokenStream {
        let format = &locals.format;
        match self {
            // A byte string may be a slice of the body: decoded with the body at hand.
            Encoding::Serde if is_byte_string(ty) => quote! {
                ::prpc::__private::byte_string::decode::<#ty>(#format, #body)
            },
            Encoding::Serde => quote!(#format.decode::<#ty>(#body)),
            Encoding::Protobuf => quote!(#format.decode_message::<#ty>(#body)),
            Encoding::ProtobufJson if is_unit(ty) => {
                quote!(::prpc::__private::decode_empty(#format, #body))
            }
            Encoding::ProtobufJson => {
                quote!(::prpc::__private::decode_proto::<#ty>(#format, #body))
            }
        }
    }

    /// Client side: statements that bind `locals.body` to the encoded arguments (all but a
    /// stream), or return
    /// the encoding error. `locals.format` is in scope.
    pub(crate) fn encode_args(self, locals: &Locals, method: &MethodDef) -> TokenStream {
        let (body, format) = (&locals.body, &locals.format);
        match self {
            Encoding::Serde => {
                let args_struct = Ident::new(ARGS_STRUCT, Span::call_site());
                let idents = method.body_args().map(|arg| &arg.ident);
                let fields = method.body_args().map(args_field);
                let encode = self.encode(
                    locals,
                    &syn::parse_quote!(#args_struct),
                    &quote!(&#args_struct { #(#idents),* }),
                );
                // Spanned at the method: errors from the derive (an argument type that is not
                // serde) point there and at the type, not at the attribute.
                let definition = quote_spanned! {method.ident.span()=>
                    #[derive(::prpc::__private::serde::Serialize)]
                    #[serde(crate = "::prpc::__private::serde")]
                    struct #args_struct { #(#fields),* }
                };
                match sole_byte_string(method) {
                    // One byte string: written without a serializer where the format allows.
                    Some(arg) => {
                        let ident = &arg.ident;
                        let key = ident.unraw().to_string();
                        // The argument is moved in (a large one becomes part of the body
                        // as it is) and handed back where serde must write it.
                        quote! {
                            let #body = match ::prpc::__private::byte_string::encode_arg(
                                #format, #key, #ident,
                            ) {
                                ::core::result::Result::Ok(#body) => #body,
                                ::core::result::Result::Err(#ident) => {
                                    #definition
                                    ::prpc::Body::from(#encode?)
                                }
                            };
                        }
                    }
                    None => quote! {
                        #definition
                        let #body = ::prpc::Body::from(#encode?);
                    },
                }
            }
            Encoding::Protobuf | Encoding::ProtobufJson => {
                let encode = match method.body_args().next() {
                    Some(arg) => {
                        let ident = &arg.ident;
                        self.encode(locals, &arg.ty, &quote!(&#ident))
                    }
                    None => self.encode(locals, &syn::parse_quote!(()), &quote!(&())),
                };
                quote!(let #body = ::prpc::Body::from(#encode?);)
            }
        }
    }

    /// Server side: statements that bind every argument but a stream, by its own name, from
    /// `locals.request.body`, or return the decoding error (an invalid_argument status).
    pub(crate) fn decode_args(self, locals: &Locals, method: &MethodDef) -> TokenStream {
        let request = &locals.request;
        let format = &locals.format;
        let body = quote!(&#request.body);
        match self {
            Encoding::Serde => {
                let args_struct = Ident::new(ARGS_STRUCT, Span::call_site());
                let idents = method.body_args().map(|arg| &arg.ident);
                let fields = method.body_args().map(args_field);
                let decode = if method.body_args().any(|arg| is_byte_string(&arg.ty)) {
                    // A byte string may be a slice of the body: decoded with the body at hand.
                    quote! {
                        ::prpc::__private::byte_string::decode_from_body::<#args_struct>(
                            #format, #body,
                        )
                    }
                } else {
                    self.decode(locals, &syn::parse_quote!(#args_struct), &body)
                };
                let definition = quote_spanned! {method.ident.span()=>
                    #[derive(::prpc::__private::serde::Deserialize)]
                    #[serde(crate = "::prpc::__private::serde")]
                    struct #args_struct { #(#fields),* }
                };
                match sole_byte_string(method) {
                    // One byte string: read without a deserializer where the body allows.
                    Some(arg) => {
                        let (ident, ty) = (&arg.ident, &arg.ty);
                        let key = ident.unraw().to_string();
                        quote! {
                            let #ident: #ty = match ::prpc::__private::byte_string::decode_arg::<
                                #ty,
                            >(#format, #body, #key) {
                                ::core::option::Option::Some(#ident) => #ident,
                                ::core::option::Option::None => {
                                    #definition
                                    let #args_struct { #ident } = #decode?;
                                    #ident
                                }
                            };
                        }
                    }
                    None => quote! {
                        #definition
                        let #args_struct { #(#idents),* } = #decode?;
                    },
                }
            }
            Encoding::Protobuf | Encoding::ProtobufJson => match method.body_args().next() {
                Some(arg) => {
                    let (ident, ty) = (&arg.ident, &arg.ty);
                    let decode = self.decode(locals, ty, &body);
                    quote!(let #ident: #ty = #decode?;)
                }
                None => {
                    // Still decoded, so a body in the wrong format is refused like any other.
                    let decode = self.decode(locals, &syn::parse_quote!(()), &body);
                    quote!(#decode?;)
                }
            },
        }
    }

    /// A closure `Fn(item) -> Result<Message, Status>` that encodes one item of a stream in
    /// `locals.format` (captured): an item `Err(e)` of a stream with typed item errors as an
    /// application-error message, so the stream goes on. An item that does not encode ends
    /// the stream with the status `unencodable` makes of `encode_error`, a `BodyError`.
    pub(crate) fn encode_item(
        self,
        locals: &Locals,
        items: &StreamItems,
        unencodable: &TokenStream,
    ) -> TokenStream {
        let Locals {
            item, value, error, ..
        } = locals;
        let ty = &items.ty;
        let encoded = match &items.error {
            None => {
                let encode = self.encode(locals, &items.ok, &quote!(&#item));
                quote!(#encode.map(::prpc::__private::Message::new))
            }
            Some(err) => {
                let encode_ok = self.encode(locals, &items.ok, &quote!(#value));
                let encode_err = self.encode(locals, err, &quote!(#error));
                // `value` goes unused when it is `()` in JSON: `{}` says it all.
                quote! {
                    match &#item {
                        #[allow(unused_variables)]
                        ::core::result::Result::Ok(#value) => {
                            #encode_ok.map(::prpc::__private::Message::new)
                        }
                        #[allow(unused_variables)]
                        ::core::result::Result::Err(#error) => {
                            #encode_err.map(::prpc::__private::Message::application_error)
                        }
                    }
                }
            }
        };
        quote! {
            move |#item: #ty| -> ::core::result::Result<::prpc::__private::Message, ::prpc::Status> {
                (#encoded).map_err(|encode_error| #unencodable)
            }
        }
    }

    /// A closure `Fn(Message) -> Result<item, prpc::Error>` that decodes one received item in
    /// `locals.format` (captured): an application-error message as `Err(e)` for a stream with
    /// typed item errors. A message that does not decode is `prpc::Error::Body`; an
    /// application error on a stream without typed item errors is the status
    /// `untyped_error` makes of `locals.message`, so it is never taken for an item.
    pub(crate) fn decode_item(
        self,
        locals: &Locals,
        items: &StreamItems,
        untyped_error: &TokenStream,
    ) -> TokenStream {
        let message = &locals.message;
        let ty = &items.ty;
        let body = quote!(&#message.body);
        let decode_ok = self.decode(locals, &items.ok, &body);
        let decoded = match &items.error {
            None => quote! {
                if #message.application_error {
                    return ::core::result::Result::Err(#untyped_error);
                }
                #decode_ok.map_err(::prpc::Error::Body)
            },
            Some(err) => {
                let decode_err = self.decode(locals, err, &body);
                quote! {
                    if #message.application_error {
                        #decode_err
                            .map(::core::result::Result::Err)
                            .map_err(::prpc::Error::Body)
                    } else {
                        #decode_ok
                            .map(::core::result::Result::Ok)
                            .map_err(::prpc::Error::Body)
                    }
                }
            }
        };
        quote! {
            move |#message: ::prpc::__private::Message| -> ::core::result::Result<#ty, ::prpc::Error> {
                #decoded
            }
        }
    }
}
