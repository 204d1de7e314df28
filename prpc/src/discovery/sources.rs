//! The sources in the core: a fixed list ([`StaticDiscover`]) and DNS ([`DnsDiscover`]); and
//! [`Publishers`], the bookkeeping every source shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::{Discover, Endpoint, Publisher, Watch};
use crate::transport::{Address, AddressError, IntoAddress};

/// One [`Publisher`] per watched service, shared by every watch on it and dropped with the
/// last: what a [`Discover`] implementation keeps so that a hundred watches on one service
/// cost one subscription to its backend.
///
/// ```
/// use prpc::discovery::Publishers;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let publishers = Publishers::new("example");
/// let mut started = Vec::new(); // a real source hands each to the task that feeds it
/// let first = publishers.watch("math.Arith", |publisher| started.push(publisher));
/// let second = publishers.watch("math.Arith", |publisher| started.push(publisher));
/// assert_eq!(started.len(), 1); // one backend subscription for both
/// # drop((first, second));
/// # }
/// ```
#[derive(Debug)]
pub struct Publishers {
    source: &'static str,
    live: Mutex<HashMap<String, Weak<Publisher>>>,
}

impl Publishers {
    /// No publisher yet, for a source of this kind.
    pub fn new(source: &'static str) -> Self {
        Publishers {
            source,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// A watch on `service`: a new one on its live publisher if there is one, else a new
    /// publisher handed to `start` (which starts feeding it, typically on a task that holds
    /// it and stops once [`Publisher::closed`]).
    pub fn watch(&self, service: &str, start: impl FnOnce(Arc<Publisher>)) -> Watch {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(publisher) = live.get(service).and_then(Weak::upgrade)
            && !publisher.is_closed()
        {
            return publisher.subscribe();
        }
        live.retain(|_, publisher| publisher.strong_count() > 0);
        let (publisher, watch) = Publisher::new(self.source, service);
        let publisher = Arc::new(publisher);
        live.insert(service.to_owned(), Arc::downgrade(&publisher));
        drop(live);
        start(publisher);
        watch
    }

    /// The live publishers.
    pub fn each(&self, mut f: impl FnMut(&Publisher)) {
        let live: Vec<_> = {
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.values().filter_map(Weak::upgrade).collect()
        };
        for publisher in live {
            f(&publisher);
        }
    }
}

/// A fixed list of endpoints, the same for every service name; [`set`](StaticDiscover::set)
/// replaces it (every watch sees the new list).
///
/// ```
/// use prpc::discovery::{Discover, Endpoint, StaticDiscover};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fixed = StaticDiscover::new([Endpoint::new("10.0.0.7:7000")?]);
/// let mut watch = fixed.watch("math.Arith");
/// assert_eq!(watch.current().version, 1);
/// fixed.set([Endpoint::new("10.0.0.7:7000")?, Endpoint::new("10.0.0.8:7000")?]);
/// assert_eq!(watch.changed().await?.endpoints.len(), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct StaticDiscover {
    endpoints: Mutex<Vec<Endpoint>>,
    publishers: Publishers,
    // Watches of a static list live as long as the list: it holds their publishers.
    held: Mutex<Vec<Arc<Publisher>>>,
}

impl StaticDiscover {
    /// This list.
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        StaticDiscover {
            endpoints: Mutex::new(endpoints.into_iter().collect()),
            publishers: Publishers::new("static"),
            held: Mutex::new(Vec::new()),
        }
    }

    /// A list of addresses, each an endpoint of weight 1.
    pub fn from_addresses<A: IntoAddress>(
        addresses: impl IntoIterator<Item = A>,
    ) -> Result<Self, AddressError> {
        let endpoints = addresses
            .into_iter()
            .map(Endpoint::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(endpoints))
    }

    /// Replaces the list; every watch gets the new one.
    pub fn set(&self, endpoints: impl IntoIterator<Item = Endpoint>) {
        let endpoints: Vec<Endpoint> = endpoints.into_iter().collect();
        *self.endpoints.lock().unwrap_or_else(|p| p.into_inner()) = endpoints.clone();
        self.publishers
            .each(|publisher| _ = publisher.publish(endpoints.clone()));
    }
}

impl Discover for StaticDiscover {
    fn watch(&self, service: &str) -> Watch {
        self.publishers.watch(service, |publisher| {
            let endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
            publisher.publish(endpoints.clone());
            drop(endpoints);
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            // Publishers nobody watches any more go: watching and dropping in a loop must
            // not grow the list.
            held.retain(|publisher| !publisher.is_closed());
            held.push(publisher);
        })
    }
}

/// One `tcp://host:port` resolved through the system's resolver, again every interval: each
/// address it resolves to is an endpoint of weight 1 (instance id `tcp://ip:port`).
///
/// A failed lookup, or one that finds no address, keeps the last set (see
/// [`Publisher::failed`]). The service name a watch is asked for is not used: the host is
/// the service. `tls://` is refused, since the certificate's name would be lost in an IP
/// address; put TLS endpoints in a registry or a static list.
///
/// ```
/// use std::time::Duration;
/// use prpc::discovery::{Discover, DnsDiscover};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dns = DnsDiscover::new("tcp://localhost:7000", Duration::from_secs(30))?;
/// let mut watch = dns.watch("math.Arith");
/// let snapshot = watch.ready().await?;
/// assert!(snapshot.endpoints.iter().all(|e| e.address.port() == Some(7000)));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DnsDiscover {
    host: String,
    port: u16,
    interval: Duration,
    publishers: Publishers,
}

impl DnsDiscover {
    /// Resolves `address` (`tcp://host:port` or `host:port`) now and every `interval`.
    pub fn new(address: impl IntoAddress, interval: Duration) -> Result<Self, AddressError> {
        let address = address.into_address()?;
        let Address::Tcp { host, port } = address else {
            return Err(AddressError::UnknownScheme {
                scheme: address.scheme().to_owned(),
                address: format!("{address} (DNS discovery resolves tcp:// addresses only)"),
            });
        };
        Ok(DnsDiscover {
            host,
            port,
            interval: interval.max(Duration::from_millis(10)),
            publishers: Publishers::new("dns"),
        })
    }
}

impl Discover for DnsDiscover {
    fn watch(&self, service: &str) -> Watch {
        self.publishers.watch(service, |publisher| {
            let (host, port, interval) = (self.host.clone(), self.port, self.interval);
            crate::task::spawn(async move {
                loop {
                    match tokio::net::lookup_host((host.as_str(), port)).await {
                        Ok(found) => {
                            let endpoints: Vec<Endpoint> = found
                                .map(|addr| {
                                    let address = Address::from(addr);
                                    Endpoint {
                                        instance: address.to_string(),
                                        address,
                                        weight: 1,
                                        zone: None,
                                        tags: Default::default(),
                                    }
                                })
                                .collect();
                            if endpoints.is_empty() {
                                publisher.failed(format!("{host} resolved to no address"));
                            } else {
                                publisher.publish(endpoints);
                            }
                        }
                        Err(error) => publisher.failed(format!("resolving {host}: {error}")),
                    }
                    tokio::select! {
                        () = tokio::time::sleep(interval) => {}
                        () = publisher.closed() => return,
                    }
                }
            });
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_static_list_holds_only_the_publishers_still_watched() {
        let fixed = StaticDiscover::from_addresses(["10.0.0.1:7000"]).unwrap();
        let kept = fixed.watch("kept");
        for _ in 0..10 {
            drop(fixed.watch("churn"));
        }
        let churn = fixed.watch("churn");
        assert_eq!(fixed.held.lock().unwrap().len(), 2);
        fixed.set([Endpoint::new("10.0.0.2:7000").unwrap()]);
        assert_eq!(kept.current().endpoints[0].address.port(), Some(7000));
        assert_eq!(churn.current().version, 2);
    }
}
