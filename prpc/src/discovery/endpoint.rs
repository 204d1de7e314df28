//! One server instance a client may call: [`Endpoint`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::transport::{Address, AddressError, IntoAddress};

/// One server instance of a service: where to dial it and what a balancer may weigh.
///
/// Two endpoints are the same instance when their [`instance`](Endpoint::instance) ids are
/// equal; a snapshot holds each instance once. In registry messages and etcd values an
/// endpoint travels as a map with the fields below, the address as its text
/// (`tcp://10.0.0.7:7000`, `unix:///run/a.sock`, `tls://api.example.com:443`).
///
/// ```
/// use prpc::discovery::Endpoint;
///
/// let endpoint = Endpoint::new("10.0.0.7:7000")?
///     .weight(5)
///     .zone("eu-west-1a")
///     .tag("version", "1.4.2");
/// assert_eq!(endpoint.instance, "tcp://10.0.0.7:7000");
/// assert_eq!(endpoint.address.port(), Some(7000));
/// assert_eq!(endpoint.tags["version"], "1.4.2");
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Endpoint {
    /// The instance's id, unique within its service (by default the address's text).
    pub instance: String,
    /// Where to dial it.
    #[serde(with = "address_text")]
    pub address: Address,
    /// Its share of the load relative to the others (1 by default; 0 takes none).
    #[serde(default = "one")]
    pub weight: u32,
    /// The zone it runs in, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Free-form labels (version, shard, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

impl Endpoint {
    /// An endpoint at `address` with weight 1, no zone and no tags, whose instance id is the
    /// address's text.
    pub fn new(address: impl IntoAddress) -> Result<Self, AddressError> {
        let address = address.into_address()?;
        Ok(Endpoint {
            instance: address.to_string(),
            address,
            weight: 1,
            zone: None,
            tags: BTreeMap::new(),
        })
    }

    /// With this instance id.
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = instance.into();
        self
    }

    /// With this weight.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// In this zone.
    pub fn zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    /// With one more tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.instance == self.address.to_string() {
            write!(f, "{}", self.address)
        } else {
            write!(f, "{} at {}", self.instance, self.address)
        }
    }
}

/// An [`Address`] in serde as its text.
mod address_text {
    use super::*;

    pub(super) fn serialize<S: Serializer>(address: &Address, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(address)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
