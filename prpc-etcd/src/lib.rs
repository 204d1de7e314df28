//! etcd discovery and registration for prpc: [`EtcdRegistry`] implements both
//! [`Register`](prpc::discovery::Register) (a server puts itself in etcd, kept alive by a
//! lease) and [`Discover`] (a client reads and watches who is
//! there).
//!
//! # Key layout
//!
//! Each registration is one key, `<prefix><service>/<instance>` (the prefix is
//! `/prpc/services/` unless [`Builder::prefix`] says otherwise), whose value is the
//! [`Endpoint`](prpc::discovery::Endpoint) as JSON:
//!
//! ```text
//! /prpc/services/math.Arith/tcp://10.0.0.7:7000#3f2a9c01b7d2
//!   {"instance":"tcp://10.0.0.7:7000#3f2a9c01b7d2","address":"tcp://10.0.0.7:7000",
//!    "weight":1,"tags":{"version":"1.4"}}
//! ```
//!
//! - **Registering** grants a lease with the registration's TTL (whole seconds, rounded up)
//!   and puts the key under it; renewing keeps the lease alive; deregistering revokes it, which
//!   deletes the key at once. A registrant that dies stops renewing, and etcd deletes the key
//!   when its lease lapses. A lease etcd no longer knows (lapsed, or etcd lost its data)
//!   makes the next renewal register again.
//! - **Discovering** a service reads every key under `<prefix><service>/`, then watches that
//!   range from the revision after the read. A watch that breaks resumes from the revision
//!   after the last one it saw, so no change is missed and none applied twice; if etcd has
//!   compacted those revisions away, the range is read afresh. While etcd cannot be reached
//!   the watchers keep their last set and their stats say so. A value that is not an
//!   endpoint is skipped with a warning.
//!
//! - **Keeping the key**: each renewal also reads the registration's key, and puts it back
//!   under the lease if someone else deleted or replaced it while the lease lived (logged as
//!   a warning), so a server that is up stays discoverable.
//!
//! Other programs may write keys under the prefix: any value that decodes as an endpoint
//! is one.
//!
//! # Failure detection
//!
//! Every call to etcd is bounded by [`Builder::request_timeout`] (5 s), renewals included. A
//! watch is not (it is silent while nothing changes), so two checks guard it:
//!
//! - an etcd that hangs with its connection open (a stopped or wedged process, a member cut
//!   off from its cluster) is found by asking it to count the watched keys on another
//!   connection once the watch has been silent for [`Builder::watch_check_interval`] (10 s):
//!   if that read fails or takes longer than the request timeout, the watch is given up,
//!   reported unhealthy, and resumed. So a hang is noticed within the interval plus the
//!   request timeout, **15 s** with the defaults.
//! - a network path that dies without a word (a dropped NAT entry, a pulled cable) is found
//!   by TCP keepalive, set on every connection to etcd: probes after 10 s idle, every 5 s,
//!   3 unanswered close it, so within about **25 s**.
//!
//! The watch also asks for etcd's progress notifications; an etcd started with a short
//! `--experimental-watch-progress-notify-interval` sends them often enough that a quiet watch
//! is rarely checked at all.
//!
//! # Why the JSON gateway
//!
//! etcd serves its v3 API twice on its client port: as gRPC, and as JSON over HTTP/1.1 (the
//! "gRPC gateway": `/v3/kv/range`, `/v3/lease/grant`, `/v3/watch`, ...). The gRPC client
//! crates need `protoc` at build time and bring tonic and HTTP/2 along; prpc never asks its
//! users to install `protoc`, and the six calls this crate makes are plain JSON, so it speaks
//! the gateway with hyper's HTTP/1.1 client alone. Keys and values travel as base64 and
//! 64-bit numbers as strings, as the gateway writes them. Plain `http://` URLs only: there
//! is no TLS to etcd yet.
//!
//! The cost: a clean debug build of this crate compiles 58 crates in 20 s on a 2-core
//! machine, 15 crates and about 3.5 s more than `prpc` alone without default features
//! (hyper and its `http` types, hyper-util, http-body-util, base64, serde_json).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use prpc::discovery::Discover;
//! use prpc_etcd::EtcdRegistry;
//!
//! # async fn example(service: impl prpc::Service) -> Result<(), Box<dyn std::error::Error>> {
//! let etcd = EtcdRegistry::new("http://127.0.0.1:2379")?;
//!
//! // A server registers itself while it serves, and withdraws on graceful shutdown.
//! let server = prpc::Server::builder()
//!     .add_service(service)
//!     .register(etcd.clone(), "math.Arith", 1, [("version", "1.4")])
//!     .registration_ttl(Duration::from_secs(10))
//!     .bind("0.0.0.0:7000")
//!     .await?;
//! tokio::spawn(server.serve());
//!
//! // A client watches who is there.
//! let mut watch = etcd.watch("math.Arith");
//! let snapshot = watch.ready().await?;
//! for endpoint in &snapshot.endpoints {
//!     println!("{} weighs {}", endpoint.address, endpoint.weight);
//! }
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod discover;
mod gateway;
mod http;
mod objects;
mod register;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prpc::discovery::{Discover, Publishers, Watch};

use crate::http::{Client, Target};

/// The key prefix registrations go under unless [`Builder::prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "/prpc/services/";

/// Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): internal, not a public
/// API, and not covered by semver.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::objects::{ObjectSplitter, SplitError};
}

/// etcd as a registry: servers [`Register`](prpc::discovery::Register) with it, clients
/// [`Discover`] through it. Clones share one client (and its connections).
///
/// See the [crate docs](crate) for the keys it writes and how it watches.
///
/// ```no_run
/// use prpc::discovery::Discover;
/// use prpc_etcd::EtcdRegistry;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let etcd = EtcdRegistry::new("http://10.0.0.2:2379,http://10.0.0.3:2379")?;
/// let mut watch = etcd.watch("math.Arith");
/// let snapshot = watch.ready().await?;
/// println!("{} instances", snapshot.len());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct EtcdRegistry {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    client: Client,
    urls: Vec<String>,
    prefix: String,
    request_timeout: Duration,
    watch_check_interval: Duration,
    publishers: Publishers,
}

impl Inner {
    /// The etcd URLs, for messages.
    fn describe(&self) -> String {
        self.urls.join(",")
    }
}

impl EtcdRegistry {
    /// etcd at these client URLs (`http://host:port`, several separated by commas, as
    /// `etcdctl --endpoints` takes them), with the default prefix and timeouts.
    ///
    /// ```
    /// let etcd = prpc_etcd::EtcdRegistry::new("http://127.0.0.1:2379")?;
    /// # Ok::<(), prpc_etcd::ConfigError>(())
    /// ```
    pub fn new(urls: &str) -> Result<EtcdRegistry, ConfigError> {
        urls.split(',')
            .fold(EtcdRegistry::builder(), Builder::url)
            .build()
    }

    /// A builder, to set the prefix, several URLs or the timeouts.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let etcd = prpc_etcd::EtcdRegistry::builder()
    ///     .url("http://10.0.0.2:2379")
    ///     .url("http://10.0.0.3:2379")
    ///     .prefix("/team-a/services/")
    ///     .request_timeout(Duration::from_secs(2))
    ///     .build()?;
    /// assert_eq!(etcd.prefix(), "/team-a/services/");
    /// # Ok::<(), prpc_etcd::ConfigError>(())
    /// ```
    pub fn builder() -> Builder {
        Builder {
            urls: Vec::new(),
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            watch_check_interval: Duration::from_secs(10),
        }
    }

    /// The key prefix registrations go under (always ending in `/`).
    ///
    /// ```
    /// let etcd = prpc_etcd::EtcdRegistry::new("http://127.0.0.1:2379")?;
    /// assert_eq!(etcd.prefix(), "/prpc/services/");
    /// # Ok::<(), prpc_etcd::ConfigError>(())
    /// ```
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The key of `instance` of `service`.
    ///
    /// ```
    /// let etcd = prpc_etcd::EtcdRegistry::new("http://127.0.0.1:2379")?;
    /// assert_eq!(
    ///     etcd.key("math.Arith", "tcp://10.0.0.7:7000").as_deref(),
    ///     Ok("/prpc/services/math.Arith/tcp://10.0.0.7:7000"),
    /// );
    /// assert!(etcd.key("math/Arith", "a").is_err()); // a service name holds no `/`
    /// # Ok::<(), prpc_etcd::ConfigError>(())
    /// ```
    pub fn key(&self, service: &str, instance: &str) -> Result<String, String> {
        Ok(format!("{}{instance}", self.service_prefix(service)?))
    }

    /// `<prefix><service>/`: the keys of the service's instances, and no other's. A `/` in
    /// the name would let one service's range take in another's instances.
    fn service_prefix(&self, service: &str) -> Result<String, String> {
        if service.is_empty() || service.contains('/') {
            return Err(format!(
                "service name {service:?} must be non-empty and hold no '/'"
            ));
        }
        Ok(format!("{}{service}/", self.inner.prefix))
    }
}

impl Discover for EtcdRegistry {
    fn watch(&self, service: &str) -> Watch {
        self.inner.publishers.watch(service, |publisher| {
            match self.service_prefix(service) {
                Ok(prefix) => {
                    tokio::spawn(discover::follow(self.inner.clone(), prefix, publisher));
                }
                // The watch reports why, then its source stops.
                Err(error) => publisher.failed(error),
            }
        })
    }
}

impl fmt::Debug for EtcdRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdRegistry")
            .field("urls", &self.inner.urls)
            .field("prefix", &self.inner.prefix)
            .finish()
    }
}

/// Settings of an [`EtcdRegistry`], from [`EtcdRegistry::builder`].
///
/// ```
/// let etcd = prpc_etcd::EtcdRegistry::builder().url("http://127.0.0.1:2379").build()?;
/// # Ok::<(), prpc_etcd::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    urls: Vec<String>,
    prefix: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    watch_check_interval: Duration,
}

impl Builder {
    /// One more etcd client URL (`http://host:port`). With several, the registry uses the
    /// one that answered last and moves on when it cannot connect.
    ///
    /// ```
    /// let builder = prpc_etcd::EtcdRegistry::builder().url("http://127.0.0.1:2379");
    /// ```
    pub fn url(mut self, url: &str) -> Self {
        self.urls.push(url.trim().to_owned());
        self
    }

    /// The key prefix (`/prpc/services/` by default); a `/` is added if it does not end in
    /// one. Registrants and watchers of one fleet must agree on it.
    ///
    /// ```
    /// let etcd = prpc_etcd::EtcdRegistry::builder()
    ///     .url("http://127.0.0.1:2379")
    ///     .prefix("/staging")
    ///     .build()?;
    /// assert_eq!(etcd.prefix(), "/staging/");
    /// # Ok::<(), prpc_etcd::ConfigError>(())
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        if !self.prefix.ends_with('/') {
            self.prefix.push('/');
        }
        self
    }

    /// How long connecting to one etcd may take (2 seconds by default).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = prpc_etcd::EtcdRegistry::builder().connect_timeout(Duration::from_millis(500));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one call to etcd may take, connecting included (5 seconds by default); a
    /// watch, once open, is checked instead (see [`watch_check_interval`](Self::watch_check_interval)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = prpc_etcd::EtcdRegistry::builder().request_timeout(Duration::from_secs(2));
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long a watch may stay silent before etcd is checked (10 seconds by default, at
    /// least 1 ms): a check that fails or takes longer than the
    /// [request timeout](Self::request_timeout) gives the watch up as hung and resumes it. A
    /// hung etcd is noticed within this interval plus the request timeout; each check is one
    /// small read per watched service.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = prpc_etcd::EtcdRegistry::builder().watch_check_interval(Duration::from_secs(5));
    /// ```
    pub fn watch_check_interval(mut self, interval: Duration) -> Self {
        self.watch_check_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The registry; fails on a URL that is not `http://host[:port]`, or on none at all.
    ///
    /// ```
    /// let refused = prpc_etcd::EtcdRegistry::builder().url("https://10.0.0.2:2379").build();
    /// assert!(refused.is_err()); // no TLS to etcd yet
    /// ```
    pub fn build(self) -> Result<EtcdRegistry, ConfigError> {
        if self.urls.is_empty() {
            return Err(ConfigError::NoUrl);
        }
        let targets = self
            .urls
            .iter()
            .map(|url| parse_url(url))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EtcdRegistry {
            inner: Arc::new(Inner {
                client: Client::new(targets, self.connect_timeout, self.request_timeout),
                urls: self.urls,
                prefix: self.prefix,
                request_timeout: self.request_timeout,
                watch_check_interval: self.watch_check_interval,
                publishers: Publishers::new("etcd"),
            }),
        })
    }
}

/// An [`EtcdRegistry`] that cannot be built as configured.
///
/// ```
/// use prpc_etcd::{ConfigError, EtcdRegistry};
///
/// assert!(matches!(EtcdRegistry::new("10.0.0.2:2379"), Err(ConfigError::BadUrl { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No etcd URL was given.
    #[error("no etcd URL given")]
    NoUrl,
    /// A URL that is not `http://host[:port]`.
    #[error("etcd URL {url:?} is not http://host[:port] ({reason})")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn parse_url(url: &str) -> Result<Target, ConfigError> {
    let bad = |reason| ConfigError::BadUrl {
        url: url.to_owned(),
        reason,
    };
    let uri: hyper::Uri = url.parse().map_err(|_| bad("unparsable"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(bad("TLS to etcd is not supported yet")),
        _ => return Err(bad("the scheme must be http://")),
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("no path may follow the port"));
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    let host = authority.host();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = authority.port_u16().unwrap_or(80);
    // `host` keeps an IPv6 literal's brackets, which is what dialing `host:port` wants.
    Ok(Target {
        authority: format!("{host}:{port}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_with_a_host() {
        let target = parse_url("http://127.0.0.1:2379").unwrap();
        assert_eq!(target.authority, "127.0.0.1:2379");
        assert_eq!(
            parse_url("http://[::1]:2379/").unwrap().authority,
            "[::1]:2379"
        );
        assert_eq!(parse_url("http://etcd").unwrap().authority, "etcd:80");
        for bad in [
            "",
            "127.0.0.1:2379",
            "https://etcd:2379",
            "http://etcd:2379/v3",
            "ftp://x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            EtcdRegistry::builder().build().unwrap_err(),
            ConfigError::NoUrl
        );
    }
}
