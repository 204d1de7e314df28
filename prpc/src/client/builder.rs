use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::Client;
use super::config::ClientConfig;
use super::connection::Connection;
use super::dial::{Dial, Dialer};
use crate::call::CallOptions;
use crate::compress::Compression;
use crate::compress::DEFAULT_COMPRESSION_THRESHOLD;
use crate::error::Error;
use crate::format::Format;
use crate::retry::RetryPolicy;
use crate::stream::FlowConfig;
use crate::timer::Timer;
#[cfg(unix)]
use crate::transport::UnixConnector;
#[cfg(feature = "tls")]
use crate::transport::tls::ClientTls;
use crate::transport::{
    Address, AddressError, AnyStream, Connector, IntoAddress, Io, TcpConnector,
};
use crate::wire::{DEFAULT_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE};

/// Settings of a [`Client`]. Defaults: MessagePack, no compression, no call timeout, a 5 s
/// connect timeout, 16 MiB frames, 1,024 calls on the wire, a ping after 30 s without
/// traffic and 20 s for its pong, retries only for idempotent methods.
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    pub(super) config: ClientConfig,
    connect_timeout: Duration,
    /// The timing wheel of the client's connections; a new one per client when unset (a
    /// balanced client shares one among its endpoints).
    timer: Option<Timer>,
    /// How `tls://` addresses are dialed; the platform's trust store when unset.
    #[cfg(feature = "tls")]
    tls: Option<ClientTls>,
}

impl Builder {
    pub(super) fn new() -> Self {
        Builder {
            config: ClientConfig {
                defaults: CallOptions::new().format(Format::default()),
                compression_threshold: DEFAULT_COMPRESSION_THRESHOLD,
                max_frame_size: DEFAULT_MAX_FRAME_SIZE,
                max_in_flight: 1024,
                keepalive_interval: Duration::from_secs(30),
                keepalive_timeout: Duration::from_secs(20),
                flow: FlowConfig::default(),
            },
            connect_timeout: Duration::from_secs(5),
            timer: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Bytes of messages a server may have in flight and unread on one stream (default
    /// 4 MiB) and on all of a connection's streams together (default 16 MiB): a stream the
    /// caller stops reading makes the server wait once these are full.
    pub fn stream_windows(mut self, stream: u32, connection: u32) -> Self {
        self.config.flow = FlowConfig {
            stream_window: stream.max(1),
            connection_window: connection.max(1),
        };
        self
    }

    /// How long opening a connection may take (the TCP handshake, and TLS's when dialing
    /// `tls://`).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Default timeout of every call (a call's own timeout wins). Carried to the server as
    /// the call's deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.defaults.timeout = Some(timeout);
        self
    }

    /// Default body format.
    pub fn format(mut self, format: Format) -> Self {
        self.config.defaults.format = Some(format);
        self
    }

    /// Default compression for bodies at or over the threshold.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.config.defaults.compression = Some(compression);
        self
    }

    /// Bodies smaller than this go uncompressed (default 1 KiB).
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.config.compression_threshold = bytes;
        self
    }

    /// Metadata sent with every call.
    pub fn metadata(mut self, key: impl AsRef<str>, value: impl AsRef<[u8]>) -> Self {
        self.config.defaults.metadata.insert(key, value);
        self
    }

    /// Largest frame sent or accepted, and largest body decompressed (default 16 MiB).
    pub fn max_frame_size(mut self, bytes: u32) -> Self {
        self.config.max_frame_size = bytes.max(MIN_MAX_FRAME_SIZE);
        self
    }

    /// Calls on the wire at once (default 1,024); further calls wait for room, their timeout
    /// running. Keep it at or below the server's `max_in_flight`.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.config.max_in_flight = max.max(1);
        self
    }

    /// After `interval` without a frame from the server the client pings; if nothing arrives
    /// within `timeout` of the ping, the connection is declared dead and pending calls fail
    /// with [`Closed::Unresponsive`](crate::Closed::Unresponsive). The connection looks at
    /// this every `interval` (and `timeout` after a ping), and then also lets go of the spare
    /// buffers it keeps to read large replies into: one idle for an interval holds only its
    /// own read buffer (so a very long interval keeps them that long).
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.config.keepalive_interval = interval;
        self.config.keepalive_timeout = timeout;
        self
    }

    /// Retries every call with `policy` unless the call sets its own (see
    /// [`retry`](crate::retry); without this, only idempotent methods are retried).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.defaults.retry = Some(policy);
        self
    }

    /// TLS settings for `tls://` addresses: trusted roots, a client certificate, ALPN
    /// (without this, the platform's trust store and ALPN `prpc`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), prpc::Error> {
    /// use prpc::transport::tls::ClientTls;
    ///
    /// let client = prpc::Client::builder()
    ///     .tls(ClientTls::new().ca_pem_file("ca.crt"))
    ///     .connect("tls://localhost:7443")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Opens the connection to `addr` (`host:port`, `tcp://`, `unix://`; `tls://` with the
    /// `tls` feature). When it is lost later, the next call opens a new one to the same
    /// address.
    pub fn connect(
        self,
        addr: impl IntoAddress,
    ) -> impl Future<Output = Result<Client, Error>> + Send + 'static {
        // The address is all that depends on the caller's type: what dials it is compiled
        // once, in prpc, not in every app.
        self.connect_to(addr.into_address())
    }

    async fn connect_to(self, address: Result<Address, AddressError>) -> Result<Client, Error> {
        let address = address?;
        // TLS settings with a plain-text address would be a silent downgrade.
        #[cfg(feature = "tls")]
        if self.tls.is_some() && !matches!(address, Address::Tls { .. }) {
            return Err(cannot_dial(
                &address,
                "the client has TLS settings, so dial a tls:// address",
            ));
        }
        match &address {
            Address::Tcp { .. } => self.connect_with(TcpConnector, address).await,
            #[cfg(unix)]
            Address::Unix(_) => self.connect_with(UnixConnector, address).await,
            #[cfg(feature = "tls")]
            Address::Tls { .. } => {
                // Reads PEM files (and the platform's store) here, once per client: the
                // connector keeps the built configuration for every reconnect.
                let connector = self
                    .tls
                    .as_ref()
                    .map_or_else(|| ClientTls::new().connector(), ClientTls::connector)
                    .map_err(|error| cannot_dial(&address, error))?;
                self.connect_with(connector, address).await
            }
            _ => Err(cannot_dial(
                &address,
                format!(
                    "no built-in connector dials {} addresses (use connect_with)",
                    address.scheme()
                ),
            )),
        }
    }

    /// Opens the connection to `addr` through `connector`, which also reopens it when it is
    /// lost.
    pub fn connect_with<C: Connector>(
        self,
        connector: C,
        addr: impl IntoAddress,
    ) -> impl Future<Output = Result<Client, Error>> + Send + 'static {
        let dialer = addr.into_address().map(|address| {
            Arc::new(Dialer {
                connector,
                address,
                timeout: self.connect_timeout,
            }) as Arc<dyn Dial>
        });
        self.dial(dialer)
    }

    /// Opens the first connection through `dialer`.
    async fn dial(self, dialer: Result<Arc<dyn Dial>, AddressError>) -> Result<Client, Error> {
        let dialer = dialer?;
        let timer = self.timer.unwrap_or_default();
        let connection = dialer.dial(&self.config, &timer).await?;
        Ok(Client::from_connection(
            connection,
            self.config,
            timer,
            Some(dialer),
        ))
    }

    /// Connections made by this builder share `timer` (a balanced client's endpoints).
    #[cfg(feature = "cluster")]
    pub(crate) fn with_timer(mut self, timer: Timer) -> Self {
        self.timer = Some(timer);
        self
    }

    /// The options every call of the client starts from.
    #[cfg(feature = "cluster")]
    pub(crate) fn defaults(&self) -> &CallOptions {
        &self.config.defaults
    }

    /// Runs the client over an already connected stream (any transport; it cannot reconnect).
    pub fn from_stream(self, stream: impl Io) -> Client {
        let timer = Timer::default();
        let connection =
            Connection::spawn(AnyStream::new(stream), self.config.clone(), timer.clone());
        Client::from_connection(connection, self.config, timer, None)
    }
}

/// The error of an address the builder will not dial as it is set up.
fn cannot_dial(
    address: &Address,
    why: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Error {
    Error::Connect {
        addr: address.to_string(),
        source: Arc::new(io::Error::new(io::ErrorKind::InvalidInput, why)),
        sent: None,
    }
}
