//! TLS over TCP: `tls://host:port` addresses, with [rustls].
//!
//! [`ClientTls`] and [`ServerTls`] gather what each side needs (trust roots, a certificate and
//! its key, ALPN protocols) and build rustls configurations from it; [`TlsConnector`] dials
//! with the client's, [`TlsListener`] accepts with the server's. `Client::builder().tls(..)`
//! and `Server::builder().tls(..)` use them for `tls://` addresses.
//!
//! Every configuration built here names rustls' *ring* crypto provider itself, so the
//! process-wide default provider neither matters nor has to be installed. ring builds with a
//! C compiler alone and stays small; aws-lc-rs, rustls' default, needs cmake and builds far
//! larger. A program that needs another provider (FIPS through aws-lc-rs, say) builds its own
//! `rustls::ClientConfig` for [`TlsConnector::new`], or serves streams from its own acceptor
//! with `Router::serve_with_incoming`.
//!
//! A TLS handshake takes round trips, and a client may never finish one. [`TlsListener`]
//! therefore runs handshakes in tasks of their own, each bounded by a timeout, and keeps
//! accepting TCP connections while they run; a failed handshake is logged and dropped, never
//! returned as an accept error.
//!
//! ```no_run
//! # #[prpc::service] pub trait Ping { async fn ping(&self) -> u8; }
//! # struct Pong;
//! # impl Ping for Pong { async fn ping(&self) -> u8 { 1 } }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use prpc::transport::tls::{ClientTls, ServerTls};
//!
//! let server = prpc::Server::builder()
//!     .add_service(PingServer::new(Pong))
//!     .tls(ServerTls::from_pem_files("server.crt", "server.key"))
//!     .bind("tls://0.0.0.0:7443")
//!     .await?;
//! tokio::spawn(server.serve());
//!
//! // The server's certificate must carry the name dialed ("api.example.com").
//! let client = prpc::Client::builder()
//!     .tls(ClientTls::new().ca_pem_file("ca.crt"))
//!     .connect("tls://api.example.com:7443")
//!     .await?;
//! assert_eq!(PingClient::new(client).ping().await?, 1);
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::{TlsAcceptor, client, server};

use super::{Address, Connector, Listener};

// The versions prpc's TLS types come from, re-exported so that a program builds its own
// configurations and inspects streams (ALPN, peer certificates) without a second copy.
pub use rustls;
pub use tokio_rustls;

/// The ALPN protocol prpc speaks, offered and accepted by default.
pub const PRPC_ALPN: &[u8] = b"prpc";

/// How long a client has to finish its handshake by default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes a [`TlsListener`] runs at once by default.
pub const DEFAULT_MAX_HANDSHAKES: usize = 1024;

/// Why a TLS configuration could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
    /// PEM text that does not parse.
    Pem {
        /// Where the PEM came from.
        origin: PemOrigin,
        /// What is wrong with it.
        source: pem::Error,
    },
    /// PEM with no `CERTIFICATE` section where certificates were expected.
    NoCertificate {
        /// Where the PEM came from.
        origin: PemOrigin,
    },
    /// PEM with no private key section (PKCS#8, PKCS#1 or SEC1).
    NoPrivateKey {
        /// Where the PEM came from.
        origin: PemOrigin,
    },
    /// A certificate given as a trust root that cannot be one.
    BadRoot {
        /// Where the PEM came from.
        origin: PemOrigin,
        /// Why rustls refused it.
        source: rustls::Error,
    },
    /// The platform's trust store gave no usable certificate.
    NoPlatformRoots {
        /// What went wrong loading the store.
        errors: Vec<rustls_native_certs::Error>,
    },
    /// rustls refused the configuration (a key that does not match its certificate, say).
    Config(rustls::Error),
    /// The verifier of client certificates could not be built.
    ClientVerifier(rustls::server::VerifierBuilderError),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            TlsError::Pem { origin, source } => write!(f, "bad PEM in {origin}: {source}"),
            TlsError::NoCertificate { origin } => write!(f, "no certificate in {origin}"),
            TlsError::NoPrivateKey { origin } => write!(f, "no private key in {origin}"),
            TlsError::BadRoot { origin, source } => write!(
                f,
                "a certificate in {origin} cannot be a trust root: {source}"
            ),
            TlsError::NoPlatformRoots { errors } => write!(
                f,
                "no usable root certificate in the platform's trust store{}",
                first_error(errors)
            ),
            TlsError::Config(error) => write!(f, "tls configuration: {error}"),
            TlsError::ClientVerifier(error) => write!(f, "client certificate verifier: {error}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Read { source, .. } => Some(source),
            TlsError::Pem { source, .. } => Some(source),
            TlsError::BadRoot { source, .. } => Some(source),
            TlsError::Config(error) => Some(error),
            TlsError::ClientVerifier(error) => Some(error),
            TlsError::NoCertificate { .. }
            | TlsError::NoPrivateKey { .. }
            | TlsError::NoPlatformRoots { .. } => None,
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(error: rustls::Error) -> Self {
        TlsError::Config(error)
    }
}

impl From<rustls::server::VerifierBuilderError> for TlsError {
    fn from(error: rustls::server::VerifierBuilderError) -> Self {
        TlsError::ClientVerifier(error)
    }
}

fn first_error(errors: &[rustls_native_certs::Error]) -> String {
    errors
        .first()
        .map(|error| format!(" ({error})"))
        .unwrap_or_default()
}

/// Where PEM text came from, as errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemOrigin {
    /// Bytes given in memory.
    Memory,
    /// A file.
    File(PathBuf),
}

impl fmt::Display for PemOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemOrigin::Memory => f.write_str("the PEM given in memory"),
            PemOrigin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// PEM text in memory or in a file, read when a configuration is built so that the builders
/// stay infallible.
#[derive(Clone)]
enum Pem {
    Memory(Arc<[u8]>),
    File(PathBuf),
}

impl Pem {
    fn memory(pem: impl AsRef<[u8]>) -> Self {
        Pem::Memory(pem.as_ref().into())
    }

    fn origin(&self) -> PemOrigin {
        match self {
            Pem::Memory(_) => PemOrigin::Memory,
            Pem::File(path) => PemOrigin::File(path.clone()),
        }
    }

    fn read(&self) -> Result<Cow<'_, [u8]>, TlsError> {
        match self {
            Pem::Memory(bytes) => Ok(Cow::Borrowed(bytes)),
            Pem::File(path) => {
                std::fs::read(path)
                    .map(Cow::Owned)
                    .map_err(|source| TlsError::Read {
                        path: path.clone(),
                        source,
                    })
            }
        }
    }

    /// Every certificate in the PEM; at least one.
    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certificates = CertificateDer::pem_slice_iter(&self.read()?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Pem {
                origin: self.origin(),
                source,
            })?;
        if certificates.is_empty() {
            return Err(TlsError::NoCertificate {
                origin: self.origin(),
            });
        }
        Ok(certificates)
    }

    /// The first private key in the PEM.
    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(&self.read()?).map_err(|source| match source {
            pem::Error::NoItemsFound => TlsError::NoPrivateKey {
                origin: self.origin(),
            },
            source => TlsError::Pem {
                origin: self.origin(),
                source,
            },
        })
    }

    /// The certificates of the PEM added to `roots`.
    fn add_roots(&self, roots: &mut RootCertStore) -> Result<(), TlsError> {
        for certificate in self.certificates()? {
            roots.add(certificate).map_err(|source| TlsError::BadRoot {
                origin: self.origin(),
                source,
            })?;
        }
        Ok(())
    }
}

// Key material stays out of logs: in-memory PEM shows as its length only.
impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::Memory(bytes) => write!(f, "<{} bytes of PEM>", bytes.len()),
            Pem::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A certificate chain and the private key of its first certificate.
#[derive(Debug, Clone)]
struct Identity {
    chain: Pem,
    key: Pem,
}

impl Identity {
    fn load(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        Ok((self.chain.certificates()?, self.key.private_key()?))
    }
}

/// Where a client's trusted roots come from.
#[derive(Debug, Clone)]
enum Roots {
    Pem(Pem),
    Platform,
}

fn ring() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn alpn_list<P: Into<Vec<u8>>>(protocols: impl IntoIterator<Item = P>) -> Vec<Vec<u8>> {
    protocols.into_iter().map(Into::into).collect()
}

/// The client side's TLS settings: which certificate authorities to trust, an optional
/// client certificate (mutual TLS), and the ALPN protocols to offer. Without roots given, the
/// platform's trust store is used. Files are read when the configuration is built (on
/// `connect`).
///
/// ```no_run
/// # async fn demo() -> Result<(), prpc::Error> {
/// use prpc::transport::tls::ClientTls;
///
/// let tls = ClientTls::new()
///     .ca_pem_file("/etc/prpc/ca.crt")
///     .identity_pem_files("/etc/prpc/client.crt", "/etc/prpc/client.key");
/// let client = prpc::Client::builder()
///     .tls(tls)
///     .connect("tls://api.internal:7443")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientTls {
    roots: Vec<Roots>,
    identity: Option<Identity>,
    alpn: Vec<Vec<u8>>,
}

impl Default for ClientTls {
    fn default() -> Self {
        ClientTls::new()
    }
}

impl ClientTls {
    /// Platform roots, no client certificate, ALPN `prpc`.
    pub fn new() -> Self {
        ClientTls {
            roots: Vec::new(),
            identity: None,
            alpn: vec![PRPC_ALPN.to_vec()],
        }
    }

    /// Trusts every certificate in `pem` (in addition to other roots given).
    pub fn ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.roots.push(Roots::Pem(Pem::memory(pem)));
        self
    }

    /// Trusts every certificate in the PEM file at `path` (in addition to other roots given).
    pub fn ca_pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.roots.push(Roots::Pem(Pem::File(path.into())));
        self
    }

    /// Trusts the platform's store (the default when no roots are given; call it to use the
    /// store along with roots of your own).
    pub fn platform_roots(mut self) -> Self {
        self.roots.push(Roots::Platform);
        self
    }

    /// Presents this certificate chain (leaf first) and its private key to servers that ask
    /// for one (mutual TLS).
    pub fn identity_pem(
        mut self,
        cert_chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Self {
        self.identity = Some(Identity {
            chain: Pem::memory(cert_chain_pem),
            key: Pem::memory(key_pem),
        });
        self
    }

    /// [`identity_pem`](ClientTls::identity_pem) with both read from PEM files.
    pub fn identity_pem_files(
        mut self,
        cert_chain_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
    ) -> Self {
        self.identity = Some(Identity {
            chain: Pem::File(cert_chain_path.into()),
            key: Pem::File(key_path.into()),
        });
        self
    }

    /// The ALPN protocols offered, most preferred first (default `["prpc"]`); an empty list
    /// offers none.
    pub fn alpn_protocols<P: Into<Vec<u8>>>(
        mut self,
        protocols: impl IntoIterator<Item = P>,
    ) -> Self {
        self.alpn = alpn_list(protocols);
        self
    }

    /// The rustls configuration, TLS 1.2 and 1.3 on the ring provider. Reads the files given
    /// (and the platform's store when asked, or when no roots were given).
    pub fn build(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let mut roots = RootCertStore::empty();
        if self.roots.is_empty() {
            add_platform_roots(&mut roots)?;
        }
        for source in &self.roots {
            match source {
                Roots::Pem(pem) => pem.add_roots(&mut roots)?,
                Roots::Platform => add_platform_roots(&mut roots)?,
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            Some(identity) => {
                let (chain, key) = identity.load()?;
                builder.with_client_auth_cert(chain, key)?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        Ok(Arc::new(config))
    }

    /// A connector dialing with this configuration.
    pub fn connector(&self) -> Result<TlsConnector, TlsError> {
        Ok(TlsConnector::new(self.build()?))
    }
}

/// Adds the platform's trusted roots; stores often hold a few certificates rustls cannot
/// parse, which are skipped as long as some are usable.
fn add_platform_roots(roots: &mut RootCertStore) -> Result<(), TlsError> {
    let loaded = rustls_native_certs::load_native_certs();
    for error in &loaded.errors {
        tracing::debug!(%error, "loading the platform's trust store");
    }
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        return Err(TlsError::NoPlatformRoots {
            errors: loaded.errors,
        });
    }
    Ok(())
}

/// Dials `tls://host:port`: TCP (Nagle off), then a TLS handshake that checks the server's
/// certificate carries `host` (a name or an IP address).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use prpc::transport::tls::{ClientTls, TlsConnector};
///
/// let connector: TlsConnector = ClientTls::new().ca_pem_file("ca.crt").connector()?;
/// let client = prpc::Client::builder()
///     .connect_with(connector, "tls://localhost:7443")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TlsConnector {
    config: Arc<rustls::ClientConfig>,
}

impl TlsConnector {
    /// A connector with a rustls configuration of your own (its provider, verifier and ALPN
    /// protocols are used as they are).
    pub fn new(config: Arc<rustls::ClientConfig>) -> Self {
        TlsConnector { config }
    }
}

impl Connector for TlsConnector {
    type Io = client::TlsStream<TcpStream>;

    async fn connect(&self, address: &Address) -> io::Result<Self::Io> {
        let Address::Tls { host, port } = address else {
            return Err(super::wrong_transport(address, "tls"));
        };
        let server_name = ServerName::try_from(host.clone()).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("\"{host}\" cannot be a TLS server name: {error}"),
            )
        })?;
        let stream = TcpStream::connect((host.as_str(), *port)).await?;
        stream.set_nodelay(true)?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(server_name, stream)
            .await
    }
}

/// The server side's TLS settings: its certificate chain and key, optionally the roots that
/// client certificates must chain to (mutual TLS), the ALPN protocols accepted, and how
/// handshakes are bounded. Files are read when the server binds.
///
/// ```no_run
/// # async fn demo(service: impl prpc::Service) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use prpc::transport::tls::ServerTls;
///
/// let tls = ServerTls::from_pem_files("server.crt", "server.key")
///     .client_ca_pem_file("clients-ca.crt")
///     .handshake_timeout(Duration::from_secs(5));
/// let server = prpc::Server::builder()
///     .add_service(service)
///     .tls(tls)
///     .bind("tls://0.0.0.0:7443")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ServerTls {
    identity: Identity,
    client_roots: Vec<Pem>,
    alpn: Vec<Vec<u8>>,
    handshake_timeout: Duration,
    max_handshakes: usize,
}

impl ServerTls {
    /// The server's certificate chain (leaf first) and its private key, as PEM.
    pub fn from_pem(cert_chain_pem: impl AsRef<[u8]>, key_pem: impl AsRef<[u8]>) -> Self {
        ServerTls::with_identity(Identity {
            chain: Pem::memory(cert_chain_pem),
            key: Pem::memory(key_pem),
        })
    }

    /// [`from_pem`](ServerTls::from_pem) with both read from PEM files.
    pub fn from_pem_files(
        cert_chain_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
    ) -> Self {
        ServerTls::with_identity(Identity {
            chain: Pem::File(cert_chain_path.into()),
            key: Pem::File(key_path.into()),
        })
    }

    fn with_identity(identity: Identity) -> Self {
        ServerTls {
            identity,
            client_roots: Vec::new(),
            alpn: vec![PRPC_ALPN.to_vec()],
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
        }
    }

    /// Requires a client certificate that chains to a certificate in `pem` (mutual TLS); a
    /// client without one is refused during the handshake.
    pub fn client_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.client_roots.push(Pem::memory(pem));
        self
    }

    /// [`client_ca_pem`](ServerTls::client_ca_pem) read from a PEM file.
    pub fn client_ca_pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_roots.push(Pem::File(path.into()));
        self
    }

    /// The ALPN protocols accepted, most preferred first (default `["prpc"]`). A client that
    /// offers protocols, none of them here, is refused; one that offers none is served.
    pub fn alpn_protocols<P: Into<Vec<u8>>>(
        mut self,
        protocols: impl IntoIterator<Item = P>,
    ) -> Self {
        self.alpn = alpn_list(protocols);
        self
    }

    /// How long a client has, from its TCP connection, to finish the handshake (default
    /// 10 s); a slower one is dropped.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Handshakes run at once (default 1,024, at least 1); past it the listener takes no new
    /// TCP connection until one finishes, and the kernel's backlog holds the rest.
    pub fn max_handshakes(mut self, max: usize) -> Self {
        self.max_handshakes = max.max(1);
        self
    }

    /// The rustls configuration, TLS 1.2 and 1.3 on the ring provider. Reads the files given.
    pub fn build(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = ring();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if self.client_roots.is_empty() {
            builder.with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            for pem in &self.client_roots {
                pem.add_roots(&mut roots)?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
            builder.with_client_cert_verifier(verifier)
        };
        let (chain, key) = self.identity.load()?;
        let mut config = builder.with_single_cert(chain, key)?;
        config.alpn_protocols = self.alpn.clone();
        Ok(Arc::new(config))
    }
}

/// What a handshake task hands back: the stream and its peer, or nothing when it failed.
type Handshaken = Option<(server::TlsStream<TcpStream>, SocketAddr)>;

/// Accepts TLS connections on a TCP listener (what `Server::builder().tls(..).bind("tls://..")`
/// serves). Handshakes run concurrently in tasks owned by the listener, each bounded by the
/// handshake timeout, so a client that connects and stalls delays nobody; dropping the
/// listener ends the handshakes still running.
///
/// ```no_run
/// # async fn demo(service: impl prpc::Service) -> Result<(), Box<dyn std::error::Error>> {
/// use prpc::transport::tls::{ServerTls, TlsListener};
///
/// let tcp = tokio::net::TcpListener::bind("127.0.0.1:7443").await?;
/// let listener = TlsListener::new(tcp, &ServerTls::from_pem_files("server.crt", "server.key"))?;
/// println!("listening on {}", listener.local_addr()?);
/// let router = prpc::Server::builder().add_service(service).build();
/// router.serve_with_listener(listener).await?;
/// # Ok(()) }
/// ```
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Handshaken>,
    handshake_timeout: Duration,
    max_handshakes: usize,
}

impl TlsListener {
    /// Accepts on `tcp` with the configuration `tls` builds (reading its files now).
    pub fn new(tcp: TcpListener, tls: &ServerTls) -> Result<Self, TlsError> {
        Ok(TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(tls.build()?),
            handshakes: JoinSet::new(),
            handshake_timeout: tls.handshake_timeout,
            max_handshakes: tls.max_handshakes,
        })
    }

    /// The address the TCP listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

impl fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener")
            .field("tcp", &self.tcp)
            .field("handshakes", &self.handshakes.len())
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_handshakes", &self.max_handshakes)
            .finish_non_exhaustive()
    }
}

impl Listener for TlsListener {
    type Io = server::TlsStream<TcpStream>;

    // Cancel-safe, as the server's accept loop needs: both futures raced here are, and a
    // handshake finished while nobody waits stays in the set for the next call.
    async fn accept(&mut self) -> io::Result<Option<(Self::Io, Option<Address>)>> {
        loop {
            let room = self.handshakes.len() < self.max_handshakes;
            tokio::select! {
                finished = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    match finished {
                        Some(Ok(Some((stream, peer)))) => {
                            let peer = Address::tls(peer.ip().to_string(), peer.port());
                            return Ok(Some((stream, Some(peer))));
                        }
                        // Failed handshakes were logged by their task.
                        Some(Ok(None)) | None => {}
                        Some(Err(error)) => tracing::error!(%error, "a tls handshake task failed"),
                    }
                }
                accepted = self.tcp.accept(), if room => {
                    let (stream, peer) = accepted?;
                    self.handshakes.spawn(handshake(
                        self.acceptor.clone(),
                        stream,
                        peer,
                        self.handshake_timeout,
                    ));
                }
            }
        }
    }
}

/// One server-side handshake, bounded by `timeout`; failures are logged here.
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Handshaken {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "tls connection lost before its handshake");
        return None;
    }
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some((stream, peer)),
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "tls handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, ?timeout, "tls handshake timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Syntactically valid PEM whose contents are not a real certificate: enough for the
    // checks that run before rustls looks inside.
    const NOT_REALLY_A_CERT: &str =
        "-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n";

    #[test]
    fn pem_without_a_certificate_is_named() {
        let error = ClientTls::new().ca_pem("just text").build().unwrap_err();
        assert!(
            matches!(
                &error,
                TlsError::NoCertificate {
                    origin: PemOrigin::Memory
                }
            ),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "no certificate in the PEM given in memory"
        );
    }

    #[test]
    fn broken_pem_is_a_pem_error() {
        let broken = "-----BEGIN CERTIFICATE-----\nAAECAw==\n";
        let error = ClientTls::new().ca_pem(broken).build().unwrap_err();
        assert!(matches!(error, TlsError::Pem { .. }), "{error}");
    }

    #[test]
    fn an_unreadable_file_names_its_path() {
        let path = std::env::temp_dir().join("prpc-no-such-dir/ca.pem");
        let error = ClientTls::new().ca_pem_file(&path).build().unwrap_err();
        let TlsError::Read {
            path: named,
            source,
        } = &error
        else {
            panic!("{error}");
        };
        assert_eq!(named, &path);
        assert_eq!(source.kind(), io::ErrorKind::NotFound);
        assert!(error.to_string().contains("prpc-no-such-dir"), "{error}");
    }

    #[test]
    fn a_missing_private_key_is_named() {
        let error = ServerTls::from_pem(NOT_REALLY_A_CERT, "no key here")
            .build()
            .unwrap_err();
        assert!(matches!(error, TlsError::NoPrivateKey { .. }), "{error}");
    }

    #[test]
    fn a_certificate_that_is_not_one_cannot_be_a_root() {
        let error = ClientTls::new()
            .ca_pem(NOT_REALLY_A_CERT)
            .build()
            .unwrap_err();
        assert!(matches!(error, TlsError::BadRoot { .. }), "{error}");
    }

    #[test]
    fn debug_output_leaves_key_material_out() {
        let secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n";
        let client = ClientTls::new().identity_pem(NOT_REALLY_A_CERT, secret);
        let server = ServerTls::from_pem(NOT_REALLY_A_CERT, secret);
        for debug in [format!("{client:?}"), format!("{server:?}")] {
            assert!(!debug.contains("c2VjcmV0"), "{debug}");
            assert!(debug.contains("bytes of PEM"), "{debug}");
        }
    }

    #[test]
    fn alpn_defaults_to_prpc_and_can_be_replaced() {
        assert_eq!(ClientTls::new().alpn, [PRPC_ALPN]);
        let tls = ServerTls::from_pem("", "").alpn_protocols(["h2", "prpc"]);
        assert_eq!(tls.alpn, [b"h2".to_vec(), b"prpc".to_vec()]);
        assert_eq!(
            ServerTls::from_pem("", "").max_handshakes(0).max_handshakes,
            1
        );
    }

    #[tokio::test]
    async fn the_connector_dials_only_tls_addresses() {
        // Any configuration will do: the address is refused before it is used.
        let config = rustls::ClientConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth();
        let connector = TlsConnector::new(Arc::new(config));
        let error = connector
            .connect(&Address::tcp("127.0.0.1", 1))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
