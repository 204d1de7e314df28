//! Shared helpers for prpc integration tests.
