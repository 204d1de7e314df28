//! How a client opens its connection, and opens it again when it is lost: a [`Connector`]
//! and the address it dials, behind one object-safe trait so that [`Client`](super::Client)
//! names no transport.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::config::ClientConfig;
use super::connection::Connection;
use crate::error::Error;
use crate::timer::Timer;
use crate::transport::{Address, AnyStream, Connector};

/// The future of [`Dial::dial`].
pub(super) type DialFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<Connection>, Error>> + Send + 'a>>;

/// Opens a client's connections.
pub(super) trait Dial: Send + Sync + 'static {
    /// Where it dials.
    fn address(&self) -> &Address;

    /// Opens a connection and starts its tasks.
    fn dial<'a>(&'a self, config: &'a ClientConfig, timer: &'a Timer) -> DialFuture<'a>;
}

/// A connector, the address it dials and how long a dial may take.
pub(super) struct Dialer<C> {
    pub(super) connector: C,
    pub(super) address: Address,
    pub(super) timeout: Duration,
}

impl<C: Connector> Dial for Dialer<C> {
    fn address(&self) -> &Address {
        &self.address
    }

    fn dial<'a>(&'a self, config: &'a ClientConfig, timer: &'a Timer) -> DialFuture<'a> {
        Box::pin(async move {
            let stream = tokio::time::timeout(self.timeout, self.connector.connect(&self.address))
                .await
                .map_err(|_| Error::ConnectTimeout {
                    addr: self.address.to_string(),
                    timeout: self.timeout,
                    sent: None,
                })?
                .map_err(|source| Error::Connect {
                    addr: self.address.to_string(),
                    source: source.into(),
                    sent: None,
                })?;
            Ok(Connection::spawn(
                AnyStream::new(stream),
                config.clone(),
                timer.clone(),
            ))
        })
    }
}
