//! What ADDR names, and the channel that reaches it.
//!
//! An address a client dials (`host:port`, `tcp://`, `unix://`, `tls://`) is one connection;
//! `registry://host:port/SERVICE` and `etcd://host:port/SERVICE` are a service found through
//! discovery, called through a balanced [`Cluster`]. Both end as a [`Remote`], so every
//! command but `bench` (which opens connections of its own) is written once.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use prpc::cluster::Cluster;
use prpc::discovery::Discover;
use prpc::transport::Address;
use prpc::transport::tls::ClientTls;
use prpc::{BoxChannel, Client};

use crate::exit::Failure;

/// ADDR as written on the command line.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// One server.
    Direct(Address),
    /// A service found through discovery.
    Discovered {
        /// Where its endpoints are listed.
        source: Source,
        /// `host:port` of the registry or etcd.
        authority: String,
        /// The service name the registry lists.
        service: String,
    },
}

/// Where a discovered service's endpoints are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// prpc's built-in registry.
    Registry,
    /// etcd, through its JSON gateway.
    Etcd,
}

impl Source {
    fn scheme(self) -> &'static str {
        match self {
            Source::Registry => "registry",
            Source::Etcd => "etcd",
        }
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let discovered = [Source::Registry, Source::Etcd]
            .into_iter()
            .find_map(|source| {
                Some((
                    source,
                    text.strip_prefix(source.scheme())?.strip_prefix("://")?,
                ))
            });
        let Some((source, rest)) = discovered else {
            return text
                .parse()
                .map(Target::Direct)
                .map_err(|error| format!("{error}"));
        };
        match rest.split_once('/') {
            Some((authority, service)) if !authority.is_empty() && !service.is_empty() => {
                Ok(Target::Discovered {
                    source,
                    authority: authority.to_owned(),
                    service: service.to_owned(),
                })
            }
            _ => Err(format!(
                "\"{text}\" is not an address: write {}://host:port/SERVICE",
                source.scheme()
            )),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Direct(address) => write!(f, "{address}"),
            Target::Discovered {
                source,
                authority,
                service,
            } => write!(f, "{}://{authority}/{service}", source.scheme()),
        }
    }
}

/// The connect timeout, and the deadline of every call but `bench`'s, when `--timeout` is not
/// given.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the command connects: the flags every command shares.
#[derive(Debug, Clone)]
pub(crate) struct Connect {
    /// `--timeout`: each call's deadline, and the connect timeout.
    pub(crate) timeout: Option<Duration>,
    /// Certificate authorities for `tls://`.
    pub(crate) cacert: Option<PathBuf>,
}

/// A channel to what ADDR names, and the name to put in messages.
pub(crate) struct Remote {
    pub(crate) channel: BoxChannel,
    pub(crate) target: Target,
}

impl Connect {
    /// `--timeout`, or the default.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The client settings of every connection: calls with `deadline`, if any.
    pub(crate) fn client(
        &self,
        target: &Target,
        deadline: Option<Duration>,
    ) -> Result<prpc::client::Builder, Failure> {
        let mut builder = Client::builder().connect_timeout(self.timeout());
        if let Some(deadline) = deadline {
            builder = builder.timeout(deadline);
        }
        match (&self.cacert, target) {
            (None, _) => Ok(builder),
            (Some(cacert), Target::Direct(Address::Tls { .. })) => {
                Ok(builder.tls(ClientTls::new().ca_pem_file(cacert.clone())))
            }
            (Some(_), _) => Err(Failure::input(format!(
                "--cacert is for tls:// addresses, not {target}"
            ))),
        }
    }

    /// One connection to `target`'s server, or a cluster over its discovered endpoints; calls
    /// have the deadline `--timeout` sets (ten seconds by default).
    pub(crate) async fn channel(&self, target: &Target) -> Result<Remote, Failure> {
        let deadline = Some(self.timeout());
        let channel = match target {
            Target::Direct(address) => {
                BoxChannel::new(self.connect(target, address, deadline).await?)
            }
            Target::Discovered {
                source,
                authority,
                service,
            } => BoxChannel::new(
                self.cluster(target, *source, authority, service, deadline)
                    .await?,
            ),
        };
        Ok(Remote {
            channel,
            target: target.clone(),
        })
    }

    /// One connection to `address`, its calls with `deadline`.
    pub(crate) async fn connect(
        &self,
        target: &Target,
        address: &Address,
        deadline: Option<Duration>,
    ) -> Result<Client, Failure> {
        self.client(target, deadline)?
            .connect(address.clone())
            .await
            .map_err(|error| Failure::call(target, None, &error))
    }

    /// A balanced client over the endpoints discovery lists for the service, once discovery
    /// has listed at least one.
    pub(crate) async fn cluster(
        &self,
        target: &Target,
        source: Source,
        authority: &str,
        service: &str,
        deadline: Option<Duration>,
    ) -> Result<Arc<Cluster>, Failure> {
        let discover: Box<dyn Discover> = match source {
            Source::Registry => Box::new(
                prpc_registry::RegistryClient::new(authority)
                    .map_err(|error| Failure::input(format!("{target}: {error}")))?,
            ),
            Source::Etcd => Box::new(
                prpc_etcd::EtcdRegistry::new(&format!("http://{authority}"))
                    .map_err(|error| Failure::input(format!("{target}: {error}")))?,
            ),
        };
        let cluster = Cluster::builder()
            .client(self.client(target, deadline)?)
            .build(discover.as_ref(), service);
        let mut watch = cluster.watch().clone();
        let listed = tokio::time::timeout(self.timeout(), watch.ready()).await;
        match listed {
            Ok(Ok(snapshot)) if !snapshot.is_empty() => Ok(Arc::new(cluster)),
            Ok(Ok(_)) => Err(Failure::unavailable(format!(
                "{} at {authority} lists no instance of {service}",
                source.scheme()
            ))),
            Ok(Err(_)) | Err(_) => {
                let why = watch
                    .stats()
                    .last_error
                    .unwrap_or_else(|| format!("no answer within {:?}", self.timeout()));
                Err(Failure::unavailable(format!(
                    "cannot list {service} at {} {authority}: {why}",
                    source.scheme()
                )))
            }
        }
    }
}
