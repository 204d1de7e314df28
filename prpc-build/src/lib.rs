//! Generates prpc services from `.proto` files in `build.rs` (not implemented yet: see the
//! project's issue tracker).
