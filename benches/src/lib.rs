//! Benchmarks for prpc.
