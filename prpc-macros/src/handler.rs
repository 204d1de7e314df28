//! The trait users implement, as the macro re-emits it: each `async fn` becomes a `fn` whose
//! future is `Send`, so the server can move a call to a task (and thread) of its own.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::parse::{MethodDef, ServiceDef};

pub(crate) fn expand(service: &ServiceDef) -> TokenStream {
    let ServiceDef {
        attrs,
        vis,
        ident,
        supertraits,
        ..
    } = service;
    let supertraits = supertraits.iter();
    let methods = service.methods.iter().map(method);
    quote! {
        #(#attrs)*
        #vis trait #ident: #(#supertraits +)* ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#methods)*
        }
    }
}

fn method(method: &MethodDef) -> TokenStream {
    let MethodDef {
        attrs,
        ident,
        args,
        output,
        default,
        ..
    } = method;
    let args = args.iter().map(|arg| {
        let (ident, ty) = (&arg.ident, &arg.ty);
        // `mut` means something only where there is a body to mutate in.
        if arg.mutable && default.is_some() {
            quote!(mut #ident: #ty)
        } else {
            quote!(#ident: #ty)
        }
    });
    // Errors about the future (not `Send`, wrong output) point at the method's return type.
    let future = quote_spanned! {output.span()=>
        impl ::core::future::Future<Output = #output> + ::core::marker::Send
    };
    let body = match default {
        Some(block) => quote!({ async move #block }),
        None => quote!(;),
    };
    quote! {
        #(#attrs)*
        fn #ident(&self, #(#args),*) -> #future #body
    }
}
