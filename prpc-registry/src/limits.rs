//! The registry's bounds on what it accepts and holds.

use std::time::Duration;

use prpc::discovery::Endpoint;
use prpc::transport::Address;
use prpc::{Code, Status};

/// What a registry accepts and how much it holds: every bound a peer could push on.
///
/// Memory stays bounded by these: endpoints take at most `max_total_bytes` of names, addresses
/// and metadata (256 MiB; with the bookkeeping around each, about 1.5 KiB per typical
/// registration, measured: 10,000 registrations take about 15 MB), in at most
/// `max_instances` registrations; and at most `max_watchers` watches, each holding one shared
/// snapshot of its service and its connection's stream window.
///
/// ```
/// use std::time::Duration;
/// use prpc_registry::{Limits, Registry};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut limits = Limits::default();
/// limits.max_instances = 1_000;
/// limits.max_ttl = Duration::from_secs(60);
/// let registry = Registry::new(limits);
/// assert_eq!(registry.limits().max_instances, 1_000);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Registrations in all (100,000).
    pub max_instances: usize,
    /// Registrations of one service (10,000).
    pub max_per_service: usize,
    /// Services with registrations or watches (10,000), which keeps the `services` reply
    /// inside one frame.
    pub max_services: usize,
    /// Registrations from one peer IP address (10,000; an IPv6 peer counts by its /64), so
    /// one peer cannot fill the registry for everyone.
    pub max_per_peer: usize,
    /// Watches open at once (65,536).
    pub max_watchers: usize,
    /// The shortest TTL accepted (1 second).
    pub min_ttl: Duration,
    /// The longest TTL accepted (1 hour).
    pub max_ttl: Duration,
    /// Bytes of a service name or an instance id (255).
    pub max_name_bytes: usize,
    /// Tags of one endpoint (64).
    pub max_tags: usize,
    /// Bytes of an endpoint's zone and tags together, keys and values (8 KiB).
    pub max_endpoint_bytes: usize,
    /// Bytes of one service's endpoints together, as counted by [`Limits`] (names, address
    /// text, zone, tags: 4 MiB), so that a `list` reply or a watch's first event stays well
    /// inside one frame (16 MiB by default) in either format.
    pub max_service_bytes: usize,
    /// Bytes of every endpoint together (256 MiB).
    pub max_total_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_instances: 100_000,
            max_per_service: 10_000,
            max_services: 10_000,
            max_per_peer: 10_000,
            max_watchers: 65_536,
            min_ttl: Duration::from_secs(1),
            max_ttl: Duration::from_secs(3600),
            max_name_bytes: 255,
            max_tags: 64,
            max_endpoint_bytes: 8 * 1024,
            max_service_bytes: 4 << 20,
            max_total_bytes: 256 << 20,
        }
    }
}

impl Limits {
    /// Checks a service name or instance id.
    pub(crate) fn name(&self, what: &str, name: &str) -> Result<(), Status> {
        if name.is_empty() {
            return Err(invalid(format!("the {what} is empty")));
        }
        if name.len() > self.max_name_bytes {
            return Err(invalid(format!(
                "the {what} is {} bytes, over the limit of {}",
                name.len(),
                self.max_name_bytes
            )));
        }
        if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid(format!(
                "the {what} {name:?} holds whitespace or control characters"
            )));
        }
        Ok(())
    }

    /// Checks a registration; the TTL it gets.
    pub(crate) fn registration(
        &self,
        service: &str,
        endpoint: &Endpoint,
        ttl_ms: u64,
    ) -> Result<Duration, Status> {
        self.name("service name", service)?;
        self.name("instance id", &endpoint.instance)?;
        dialable(&endpoint.address)?;
        if endpoint.tags.len() > self.max_tags {
            return Err(invalid(format!(
                "the endpoint has {} tags, over the limit of {}",
                endpoint.tags.len(),
                self.max_tags
            )));
        }
        let labels = endpoint
            .zone
            .iter()
            .chain(endpoint.tags.iter().flat_map(|(key, value)| [key, value]));
        for label in labels {
            if label.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "the endpoint's zone or tags hold control characters: {label:?}"
                )));
            }
        }
        let metadata = endpoint.zone.as_ref().map_or(0, String::len)
            + endpoint
                .tags
                .iter()
                .map(|(key, value)| key.len() + value.len())
                .sum::<usize>();
        if metadata > self.max_endpoint_bytes {
            return Err(invalid(format!(
                "the endpoint's zone and tags take {metadata} bytes, over the limit of {}",
                self.max_endpoint_bytes
            )));
        }
        let ttl = Duration::from_millis(ttl_ms);
        if ttl < self.min_ttl || ttl > self.max_ttl {
            return Err(invalid(format!(
                "a TTL of {ttl_ms} ms is outside {} ms to {} ms",
                self.min_ttl.as_millis(),
                self.max_ttl.as_millis()
            )));
        }
        Ok(ttl)
    }
}

/// The bytes an endpoint is counted as: its names, address and metadata.
pub(crate) fn weight_in_bytes(service: &str, endpoint: &Endpoint) -> usize {
    service.len()
        + endpoint.instance.len()
        + endpoint.address.to_string().len()
        + endpoint.zone.as_ref().map_or(0, String::len)
        + endpoint
            .tags
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum::<usize>()
}

/// An address a client could dial: a host and a non-zero port, a socket path.
fn dialable(address: &Address) -> Result<(), Status> {
    let fine = match address {
        Address::Tcp { host, port } | Address::Tls { host, port } => {
            !host.is_empty()
                && host.len() <= 253
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
                && *port != 0
        }
        Address::Unix(path) => !path.as_os_str().is_empty() && path.as_os_str().len() <= 1024,
        Address::Memory(name) => !name.is_empty() && name.len() <= 255,
        _ => false,
    };
    if fine {
        Ok(())
    } else {
        Err(invalid(format!("the address {address} cannot be dialed")))
    }
}

pub(crate) fn invalid(message: String) -> Status {
    Status::new(Code::InvalidArgument, message)
}
