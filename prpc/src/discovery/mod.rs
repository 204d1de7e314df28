//! Who is out there: the endpoints of a service, as a source knows them, and the server side
//! that puts them there.
//!
//! - [`Endpoint`]: one instance (address, weight, zone, tags, instance id).
//! - [`Discover`]: a source of versioned [`Snapshot`]s of a service's endpoints, which a
//!   consumer holds as a [`Watch`]. In the core: [`StaticDiscover`] (a fixed list) and
//!   [`DnsDiscover`] (a name re-resolved on an interval); the built-in registry
//!   (`prpc-registry`) and etcd (`prpc-etcd`) implement it in crates of their own.
//! - [`Register`]: a registry a server registers with; [`Registered`] keeps one registration
//!   alive (the server builder's [`register`](crate::server::Builder::register) does it for
//!   you, and withdraws it before a graceful shutdown drains).
//!
//! The client side ([`Discover`], its sources, [`Watch`]) needs the `cluster` feature; the
//! server side ([`Endpoint`], [`Register`]) is always there.
//!
//! A source that cannot be reached never empties its consumers' set: the last known
//! snapshot stays, the failure is logged and shows in [`SourceStats`], and the set is read
//! afresh when the source is back.
//!
//! ```
//! # #[cfg(feature = "cluster")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use prpc::discovery::{Discover, StaticDiscover};
//!
//! let source = StaticDiscover::from_addresses(["10.0.0.7:7000", "10.0.0.8:7000"])?;
//! let mut watch = source.watch("math.Arith");
//! let snapshot = watch.ready().await?;
//! assert_eq!(snapshot.endpoints.len(), 2);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "cluster"))]
//! # fn main() {}
//! ```

mod endpoint;
mod register;

pub use endpoint::Endpoint;
pub use register::{
    Lease, Register, RegisterError, RegisterFuture, Registered, Registration, RegistrationState,
};

crate::cfg_cluster! {
mod sources;
mod watch;

use std::sync::Arc;

pub use sources::{DnsDiscover, Publishers, StaticDiscover};
pub use watch::{Publisher, Snapshot, SourceStats, SourceStopped, Watch};

/// A source of a service's endpoints.
///
/// [`watch`](Discover::watch) returns at once; the source fills the watch in the background
/// (a watch's [`ready`](Watch::ready) waits for the first set) and keeps it current until the
/// last watch on that service is dropped. Implementations use [`Publishers`] to share one
/// backend subscription per service, and [`Publisher`] to publish.
///
/// ```
/// use prpc::discovery::{Discover, Endpoint, Publishers, Watch};
///
/// /// Every service is at one address.
/// struct Everything(Publishers);
///
/// impl Discover for Everything {
///     fn watch(&self, service: &str) -> Watch {
///         self.0.watch(service, |publisher| {
///             publisher.publish(vec![Endpoint::new("127.0.0.1:7000").unwrap()]);
///         })
///     }
/// }
///
/// let source = Everything(Publishers::new("everything"));
/// assert_eq!(source.watch("any").current().endpoints.len(), 1);
/// ```
pub trait Discover: Send + Sync + 'static {
    /// A watch on `service`'s endpoints. Call it within a tokio runtime.
    fn watch(&self, service: &str) -> Watch;
}

impl<D: Discover + ?Sized> Discover for Arc<D> {
    fn watch(&self, service: &str) -> Watch {
        (**self).watch(service)
    }
}

impl<D: Discover + ?Sized> Discover for Box<D> {
    fn watch(&self, service: &str) -> Watch {
        (**self).watch(service)
    }
}
}
