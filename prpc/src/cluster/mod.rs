//! The balanced client: [`Cluster`], a client that calls a service rather than an address.
//!
//! Its endpoints come from [`discovery`](crate::discovery); a [`balance`](crate::balance)
//! algorithm picks one per attempt; each endpoint has a multiplexed connection of its own,
//! opened on the first call that needs it; retries follow prpc's rules
//! ([`retry`](crate::retry)) and go where the [`FailMode`] says. The cluster is a
//! [`Channel`](crate::Channel), so generated clients run over it unchanged.
//!
//! The module also holds the per-endpoint [`Breaker`]: a circuit breaker that stops sending
//! calls to an endpoint that keeps failing, and lets a few through again after a while to
//! learn whether it recovered.

mod balanced;
mod breaker;
mod broadcast;
mod channel;
mod fail_mode;
mod hedge;
mod members;
mod stats;

pub use breaker::{Breaker, BreakerConfig, BreakerState, BreakerStats, Open, Permit, StateChange};
pub use channel::{Builder, Cluster};
pub use fail_mode::{FailMode, ParseFailModeError};
pub use members::EndpointStats;
pub use stats::{ClusterSnapshot, clusters};
