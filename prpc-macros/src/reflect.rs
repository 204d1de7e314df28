//! `FooServer`'s `prpc::Service::describe`: each method's arguments, reply and error as
//! reflection shows them, from the trait's signatures. The macro cannot see the fields of the
//! types it names, so each type's shape comes from its `prpc::Describe` impl, or is its name
//! where it has none (chosen by method resolution in the generated code: see
//! `prpc::__private::ShapeOf`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::Type;
use syn::ext::IdentExt;

use crate::derive::shape_of;
use crate::parse::{Encoding, Failure, MethodDef, ServiceDef, is_byte_string, is_unit};

/// The body of `fn describe(&self) -> Vec<prpc::reflection::MethodDescription>`.
pub(crate) fn describe(service: &ServiceDef) -> TokenStream {
    let methods = service
        .methods
        .iter()
        .map(|method| describe_method(service.encoding, method));
    quote! {
        #[allow(unused_imports)]
        use ::prpc::__private::{DescribedShape as _, NamedShape as _};
        ::std::vec![#(#methods),*]
    }
}

fn describe_method(encoding: Encoding, method: &MethodDef) -> TokenStream {
    let wire_name = &method.wire_name;
    let arguments = method.args.iter().map(|arg| {
        let name = arg.ident.unraw().to_string();
        match &arg.stream {
            Some(items) => {
                let shape = shape(encoding, &items.ty);
                quote!(.stream_argument(#name, #shape))
            }
            None => {
                let shape = shape(encoding, &arg.ty);
                quote!(.argument(#name, #shape))
            }
        }
    });
    // A streamed reply is described by its items; a typed error per item is the error.
    let (returns, error) = match &method.reply_stream {
        Some(items) => (&items.ok, items.error.as_ref()),
        None => match &method.failure {
            Failure::Typed(error) => (&method.ok, Some(&**error)),
            Failure::Infallible | Failure::Status => (&method.ok, None),
        },
    };
    let returns = shape(encoding, returns);
    let error = error.map(|error| {
        let shape = shape(encoding, error);
        quote!(.error(#shape))
    });
    let direction = match (
        method.request_stream().is_some(),
        method.reply_stream.is_some(),
    ) {
        (false, false) => None,
        (true, false) => Some(quote!(Client)),
        (false, true) => Some(quote!(Server)),
        (true, true) => Some(quote!(Bidi)),
    };
    let streaming = direction
        .map(|direction| quote!(.streaming(::prpc::reflection::StreamDirection::#direction)));
    let idempotent = method.idempotent;
    quote! {
        ::prpc::reflection::MethodDescription::new(#wire_name)
            #(#arguments)*
            .returns(#returns)
            #error
            #streaming
            .idempotent(#idempotent)
    }
}

/// The shape of a value of `ty` in this encoding: in a protobuf service `()` is the empty
/// message, `{}`; in a serde service a byte string (`Vec<u8>` too) is bytes, as it travels
/// (PROTOCOL.md §5.1), not the array of integers `Vec<u8>` describes itself as.
fn shape(encoding: Encoding, ty: &Type) -> TokenStream {
    if encoding == Encoding::Serde && is_byte_string(ty) {
        quote!(::prpc::reflection::Shape::Bytes)
    } else if encoding.is_protobuf() && is_unit(ty) {
        quote! {
            ::prpc::reflection::Shape::object("google.protobuf.Empty", ::std::vec::Vec::new())
        }
    } else {
        shape_of(ty)
    }
}
