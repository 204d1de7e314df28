//! The balanced client's parts: a client that calls a service rather than an address, over
//! endpoints from [`discovery`](crate::discovery), one connection per endpoint, picked per
//! call by a balancer, will live here.
//!
//! For now the module holds its per-endpoint [`Breaker`]: a circuit breaker that stops
//! sending calls to an endpoint that keeps failing, and lets a few through again after a
//! while to learn whether it recovered.

mod breaker;

pub use breaker::{Breaker, BreakerConfig, BreakerState, BreakerStats, Open, Permit, StateChange};
