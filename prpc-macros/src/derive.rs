//! `#[derive(Describe)]`: a type's reflection shape from its definition.
//!
//! The shape follows serde's default representation, with the names serde would use for the
//! common attributes that cost nothing to read (`rename` and `skip` on fields and variants);
//! the others are documented as not read. prpc-build derives it on protobuf messages too,
//! with the message's shape computed from its descriptor and given as an expression in
//! `#[describe(proto = ".pkg.Message", shape = "...")]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Expr, Fields, LitStr, Token, parse_quote};

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let body = match proto_shape(&input.attrs)? {
        Some(shape) => shape,
        None => {
            let name = ident.unraw().to_string();
            let shape = match &input.data {
                Data::Struct(data) => struct_shape(&name, &data.fields),
                Data::Enum(data) => {
                    let variants = data
                        .variants
                        .iter()
                        .filter(|variant| !serde_skips(&variant.attrs))
                        .map(|variant| {
                            let name = serde_name(&variant.attrs)
                                .unwrap_or_else(|| variant.ident.unraw().to_string());
                            match &variant.fields {
                                Fields::Unit => {
                                    quote!(::prpc::reflection::Variant::unit(#name))
                                }
                                fields => {
                                    let shape = struct_shape(&name, fields);
                                    quote!(::prpc::reflection::Variant::with(#name, #shape))
                                }
                            }
                        });
                    quote!(::prpc::reflection::Shape::enumeration(#name, ::std::vec![#(#variants),*]))
                }
                Data::Union(data) => {
                    return Err(syn::Error::new_spanned(
                        data.union_token,
                        "a union has no shape on the wire: describe it by hand",
                    ));
                }
            };
            quote!(::prpc::reflection::recursive::<Self>(#name, || #shape))
        }
    };

    let mut generics = input.generics.clone();
    for param in generics.type_params_mut() {
        param.bounds.push(parse_quote!(::prpc::Describe));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::prpc::Describe for #ident #ty_generics #where_clause {
            fn shape() -> ::prpc::reflection::Shape {
                #[allow(unused_imports)]
                use ::prpc::__private::{DescribedShape as _, NamedShape as _};
                #body
            }
        }
    })
}

/// An expression for the shape of a struct (or variant) named `name` with these fields:
/// an object for named fields, the one field's shape for a newtype, a tuple for more, `null`
/// for none.
fn struct_shape(name: &str, fields: &Fields) -> TokenStream {
    match fields {
        Fields::Named(named) => {
            let fields = named
                .named
                .iter()
                .filter(|field| !serde_skips(&field.attrs))
                .map(|field| {
                    let ident = field.ident.as_ref().expect("named fields have names");
                    let key = serde_name(&field.attrs).unwrap_or_else(|| ident.unraw().to_string());
                    let shape = shape_of(&field.ty);
                    quote!(::prpc::reflection::Field::new(#key, #shape))
                });
            quote!(::prpc::reflection::Shape::object(#name, ::std::vec![#(#fields),*]))
        }
        Fields::Unnamed(unnamed) if unnamed.unnamed.len() == 1 => shape_of(&unnamed.unnamed[0].ty),
        Fields::Unnamed(unnamed) => {
            let items = unnamed.unnamed.iter().map(|field| shape_of(&field.ty));
            quote!(::prpc::reflection::Shape::tuple(::std::vec![#(#items),*]))
        }
        Fields::Unit => quote!(::prpc::reflection::Shape::Null),
    }
}

/// An expression for the shape of `ty`: its `Describe` impl's, else its name. Needs
/// `DescribedShape` and `NamedShape` in scope.
pub(crate) fn shape_of(ty: &syn::Type) -> TokenStream {
    quote_spanned!(ty.span()=> (&::prpc::__private::ShapeOf::<#ty>::new()).shape())
}

/// `#[serde(rename = "...")]` among `attrs`, if there is one.
fn serde_name(attrs: &[Attribute]) -> Option<String> {
    let mut name = None;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        // Anything this reader does not follow leaves the Rust name: the derive never fails
        // on serde's own syntax.
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") && meta.input.peek(Token![=]) {
                name = Some(meta.value()?.parse::<LitStr>()?.value());
                Ok(())
            } else {
                skip_meta(&meta)
            }
        });
    }
    name
}

/// Whether `attrs` hold `#[serde(skip)]` or `#[serde(skip_serializing)]`: the field or
/// variant is never written.
fn serde_skips(attrs: &[Attribute]) -> bool {
    let mut skips = false;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") || meta.path.is_ident("skip_serializing") {
                skips = true;
            }
            skip_meta(&meta)
        });
    }
    skips
}

/// Consumes the value or the nested list of a serde option this reader does not follow.
fn skip_meta(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_meta(&inner))?;
    }
    Ok(())
}

/// For a message prpc-build generated: the shape expression of the
/// `#[describe(proto = "...", shape = "...")]` that is this type's own. prost-build gives a
/// message the attributes of the messages it is nested in too (a path matches what is under
/// it), so its own is the one with the deepest path.
fn proto_shape(attrs: &[Attribute]) -> syn::Result<Option<TokenStream>> {
    let mut own: Option<(usize, LitStr)> = None;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("describe")) {
        let mut proto = None;
        let mut shape = None;
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("proto") {
                proto = Some(meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("shape") {
                shape = Some(meta.value()?.parse::<LitStr>()?);
            } else {
                return Err(meta.error("expected `proto = \"...\"` or `shape = \"...\"`"));
            }
            Ok(())
        })?;
        let (Some(proto), Some(shape)) = (proto, shape) else {
            return Err(syn::Error::new_spanned(
                attr,
                "#[describe] takes both `proto = \"...\"` and `shape = \"...\"`",
            ));
        };
        let depth = proto.value().matches('.').count();
        if own.as_ref().is_none_or(|(deepest, _)| depth > *deepest) {
            own = Some((depth, shape));
        }
    }
    own.map(|(_, shape)| shape.parse::<Expr>().map(|expr| quote!(#expr)))
        .transpose()
}
