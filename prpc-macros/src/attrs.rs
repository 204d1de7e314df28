//! The macro's own attributes: `#[prpc::service(...)]` on the trait and `#[prpc(...)]` on its
//! methods.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitBool, LitStr};

/// Options of `#[prpc::service(name = "math.Arith", protobuf, json, client = false)]`.
#[derive(Default)]
pub(crate) struct ServiceArgs {
    /// The wire name, when renamed.
    pub(crate) name: Option<LitStr>,
    /// Bodies are prost messages in protobuf rather than serde values.
    pub(crate) protobuf: bool,
    /// Where `json` was written, if it was: protobuf messages may also travel as JSON.
    pub(crate) json: Option<Span>,
    /// `client = true|false`, if written: whether `FooClient` is generated (default yes).
    pub(crate) client: Option<LitBool>,
    /// `server = true|false`, if written: whether `FooServer` is generated (default yes).
    pub(crate) server: Option<LitBool>,
}

impl ServiceArgs {
    /// Parses one `key` or `key = value` of the attribute's arguments.
    pub(crate) fn parse_meta(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        if meta.path.is_ident("name") {
            if self.name.is_some() {
                return Err(meta.error("`name` is given twice"));
            }
            self.name = Some(wire_name(&meta)?);
            Ok(())
        } else if meta.path.is_ident("protobuf") {
            if self.protobuf {
                return Err(meta.error("`protobuf` is given twice"));
            }
            self.protobuf = true;
            Ok(())
        } else if meta.path.is_ident("json") {
            if self.json.is_some() {
                return Err(meta.error("`json` is given twice"));
            }
            self.json = Some(ident_span(&meta));
            Ok(())
        } else if meta.path.is_ident("client") {
            if self.client.is_some() {
                return Err(meta.error("`client` is given twice"));
            }
            self.client = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("server") {
            if self.server.is_some() {
                return Err(meta.error("`server` is given twice"));
            }
            self.server = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error(
                "unknown option of #[prpc::service]; expected `name = \"...\"`, `protobuf`, `json`, `client = false` or `server = false`",
            ))
        }
    }
}

/// Where the option's name was written.
fn ident_span(meta: &ParseNestedMeta<'_>) -> Span {
    meta.path
        .get_ident()
        .map_or_else(Span::call_site, |ident| ident.span())
}

/// Options of `#[prpc(name = "Add", idempotent, hash_key = "user_id")]` on a method.
#[derive(Default)]
pub(crate) struct MethodArgs {
    /// The wire name, when renamed.
    pub(crate) name: Option<LitStr>,
    /// Where `idempotent` was written, if it was.
    pub(crate) idempotent: Option<Span>,
    /// The argument whose value keys each call, as written; checked against the arguments
    /// by the parser.
    pub(crate) hash_key: Option<LitStr>,
}

impl MethodArgs {
    /// Takes every `#[prpc(...)]` out of `attrs`, leaving the others (docs, lints) in place.
    pub(crate) fn take(attrs: &mut Vec<Attribute>) -> syn::Result<MethodArgs> {
        let mut args = MethodArgs::default();
        let mut errors: Option<syn::Error> = None;
        attrs.retain(|attr| {
            if !attr.path().is_ident("prpc") {
                return true;
            }
            if let Err(error) = attr.parse_nested_meta(|meta| args.parse_meta(meta)) {
                match &mut errors {
                    Some(errors) => errors.combine(error),
                    None => errors = Some(error),
                }
            }
            false
        });
        match errors {
            Some(errors) => Err(errors),
            None => Ok(args),
        }
    }

    fn parse_meta(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        if meta.path.is_ident("name") {
            if self.name.is_some() {
                return Err(meta.error("`name` is given twice"));
            }
            self.name = Some(wire_name(&meta)?);
            Ok(())
        } else if meta.path.is_ident("idempotent") {
            if self.idempotent.is_some() {
                return Err(meta.error("`idempotent` is given twice"));
            }
            self.idempotent = Some(ident_span(&meta));
            Ok(())
        } else if meta.path.is_ident("hash_key") {
            if self.hash_key.is_some() {
                return Err(meta.error("`hash_key` is given twice"));
            }
            self.hash_key = Some(key_argument(&meta)?);
            Ok(())
        } else {
            Err(meta.error(
                "unknown option of #[prpc(...)] on a method; expected `name = \"...\"`, `idempotent` or `hash_key = \"argument\"`",
            ))
        }
    }
}

/// Reads `= "user_id"`: the name of an argument, in quotes as every value of the macro's
/// options is. A bare name or another literal is refused at the value, with the quoted form
/// to write instead; whether the method has that argument is the parser's to check.
fn key_argument(meta: &ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        let name: LitStr = value.parse()?;
        if name.value().is_empty() {
            return Err(syn::Error::new(
                name.span(),
                "`hash_key` names an argument of the method; it cannot be empty",
            ));
        }
        return Ok(name);
    }
    let written: syn::Expr = value.parse()?;
    let hint = match &written {
        syn::Expr::Path(path) => path.path.get_ident().map(|ident| ident.unraw()),
        _ => None,
    }
    .map_or_else(
        || "write `hash_key = \"user_id\"` for an argument `user_id`".to_owned(),
        |ident| format!("write `hash_key = \"{ident}\"`"),
    );
    Err(syn::Error::new_spanned(
        written,
        format!("`hash_key` takes the name of an argument as a string: {hint}"),
    ))
}

/// Reads `= "name"`, refusing names no caller could address.
fn wire_name(meta: &ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    let name: LitStr = meta.value()?.parse()?;
    let value = name.value();
    if value.is_empty() {
        return Err(syn::Error::new(name.span(), "a wire name cannot be empty"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(syn::Error::new(
            name.span(),
            "a wire name cannot contain whitespace or control characters",
        ));
    }
    Ok(name)
}
