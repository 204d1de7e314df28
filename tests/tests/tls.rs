//! TLS (`tls://`): calls over it, certificate and name checks, mutual TLS, ALPN, and a
//! listener that a stalled handshake does not block. Certificates are made here with rcgen:
//! a CA, a server certificate for "localhost" and a client certificate, both signed by it.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use prpc::server::ShutdownHandle;
use prpc::transport::tls::rustls::{self, CertificateError};
use prpc::transport::tls::{ClientTls, ServerTls};
use prpc::transport::{Address, Connector};
use prpc::{Call, Client, Error, Format, Server};
use prpc_tests::{Counters, PATIENCE, Probe};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;

/// A CA and the certificates it signed, as PEM, with the files the file-taking APIs read.
struct Pki {
    _dir: tempfile::TempDir,
    ca_pem: String,
    ca_file: PathBuf,
    server_cert_file: PathBuf,
    server_key_file: PathBuf,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let (server_cert_pem, server_key_pem) = leaf(
            &ca,
            vec!["localhost".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert_pem, client_key_pem) =
            leaf(&ca, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth);

        let dir = tempfile::tempdir().unwrap();
        let write = |file: &str, pem: &str| {
            let path = dir.path().join(file);
            std::fs::write(&path, pem).unwrap();
            path
        };
        Pki {
            ca_file: write("ca.pem", &ca.pem()),
            server_cert_file: write("server.pem", &server_cert_pem),
            server_key_file: write("server.key", &server_key_pem),
            ca_pem: ca.pem(),
            client_cert_pem,
            client_key_pem,
            _dir: dir,
        }
    }

    fn server_tls(&self) -> ServerTls {
        ServerTls::from_pem_files(&self.server_cert_file, &self.server_key_file)
    }

    fn trusting_client(&self) -> ClientTls {
        ClientTls::new().ca_pem_file(&self.ca_file)
    }
}

/// A certificate for `names` signed by `ca`, and its key, as PEM.
fn leaf(
    ca: &CertifiedIssuer<'_, KeyPair>,
    names: Vec<String>,
    purpose: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "prpc test");
    params.extended_key_usages = vec![purpose];
    let certificate = params.signed_by(&key, ca).unwrap();
    (certificate.pem(), key.serialize_pem())
}

/// A TLS server with a probe service, on an ephemeral loopback port.
struct TlsServer {
    port: u16,
    counters: Arc<Counters>,
    shutdown: ShutdownHandle,
    serving: JoinHandle<io::Result<()>>,
}

impl TlsServer {
    async fn start(tls: ServerTls) -> TlsServer {
        let (probe, counters) = Probe::new("probe");
        let server = Server::builder()
            .add_service(probe)
            .tls(tls)
            .bind("tls://127.0.0.1:0")
            .await
            .unwrap();
        let Address::Tls { host, port } = server.local_addr() else {
            panic!(
                "a tls:// server's address is tls://, not {}",
                server.local_addr()
            );
        };
        assert_eq!(host, "127.0.0.1");
        assert_ne!(port, 0, "the real port, not the one asked for");
        let shutdown = server.shutdown_handle();
        let serving = tokio::spawn(server.serve());
        TlsServer {
            port,
            counters,
            shutdown,
            serving,
        }
    }

    /// The address under the name its certificate carries.
    fn localhost(&self) -> String {
        format!("tls://localhost:{}", self.port)
    }

    async fn stop(self) {
        self.shutdown.shutdown();
        tokio::time::timeout(PATIENCE, self.serving)
            .await
            .expect("serving ends after shutdown")
            .unwrap()
            .unwrap();
    }
}

/// Connects with `tls` and makes one echo call.
async fn echo_over(tls: ClientTls, address: &str) -> Result<Bytes, Error> {
    tokio::time::timeout(PATIENCE, async {
        let client = Client::builder().tls(tls).connect(address).await?;
        let call = Call::new(
            "probe",
            "echo",
            Format::Raw,
            Bytes::from_static(b"over tls"),
        );
        Ok(client.call(call).await?.body)
    })
    .await
    .expect("a TLS call ends, one way or the other, in time")
}

/// The rustls error under a failed connect, which says why the handshake failed.
fn handshake_error(error: &Error) -> &rustls::Error {
    let Error::Connect { source, .. } = error else {
        panic!("expected a connect error, got {error}");
    };
    source
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a TLS handshake error: {source}"))
}

#[tokio::test]
async fn a_call_runs_over_tls_with_the_ca_trusted_from_a_file() {
    let pki = Pki::new("main");
    let server = TlsServer::start(pki.server_tls()).await;

    let body = echo_over(pki.trusting_client(), &server.localhost())
        .await
        .unwrap();
    assert_eq!(body, "over tls");
    assert_eq!(server.counters.finished.load(Ordering::SeqCst), 1);
    // The same CA given as PEM bytes.
    let body = echo_over(ClientTls::new().ca_pem(&pki.ca_pem), &server.localhost())
        .await
        .unwrap();
    assert_eq!(body, "over tls");
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_not_connected() {
    let pki = Pki::new("main");
    let stranger = Pki::new("stranger");
    let server = TlsServer::start(pki.server_tls()).await;

    let error = echo_over(stranger.trusting_client(), &server.localhost())
        .await
        .unwrap_err();
    assert!(
        matches!(
            handshake_error(&error),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ),
        "{error}"
    );
    // Without roots of its own a client trusts the platform's store, which lacks the test CA
    // (or is empty on a bare machine): refused either way.
    let error = Client::connect(server.localhost()).await.unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert_eq!(server.counters.started.load(Ordering::SeqCst), 0);

    // Failed handshakes cost the server nothing: a trusting client is served after them.
    let body = echo_over(pki.trusting_client(), &server.localhost())
        .await
        .unwrap();
    assert_eq!(body, "over tls");
    server.stop().await;
}

#[tokio::test]
async fn a_name_the_certificate_lacks_is_refused() {
    let pki = Pki::new("main");
    let server = TlsServer::start(pki.server_tls()).await;

    // The same server, dialed by IP: its certificate names only "localhost".
    let by_ip = format!("tls://127.0.0.1:{}", server.port);
    let error = echo_over(pki.trusting_client(), &by_ip).await.unwrap_err();
    assert!(
        matches!(
            handshake_error(&error),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{error}"
    );
    assert_eq!(server.counters.started.load(Ordering::SeqCst), 0);
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_serves_only_clients_with_a_trusted_certificate() {
    let pki = Pki::new("main");
    let stranger = Pki::new("stranger");
    let server = TlsServer::start(pki.server_tls().client_ca_pem(&pki.ca_pem)).await;

    // TLS 1.3 clients finish their side of the handshake before the server checks their
    // certificate, so the refusal may come at connect or at the first call; the call never
    // reaches a handler either way.
    let anonymous = echo_over(pki.trusting_client(), &server.localhost()).await;
    assert!(
        anonymous.is_err(),
        "a client without a certificate was served"
    );
    let foreign = pki
        .trusting_client()
        .identity_pem(&stranger.client_cert_pem, &stranger.client_key_pem);
    let foreign = echo_over(foreign, &server.localhost()).await;
    assert!(foreign.is_err(), "a certificate of another CA was accepted");
    assert_eq!(server.counters.started.load(Ordering::SeqCst), 0);

    let known = pki
        .trusting_client()
        .identity_pem(&pki.client_cert_pem, &pki.client_key_pem);
    assert_eq!(
        echo_over(known, &server.localhost()).await.unwrap(),
        "over tls"
    );
    server.stop().await;
}

#[tokio::test]
async fn prpc_is_the_alpn_protocol_negotiated() {
    let pki = Pki::new("main");
    let server = TlsServer::start(pki.server_tls()).await;
    let address = Address::tls("localhost", server.port);

    let connector = pki.trusting_client().connector().unwrap();
    let stream = connector.connect(&address).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"prpc"[..]));

    // A client offering only protocols the server does not speak is refused.
    let connector = pki
        .trusting_client()
        .alpn_protocols(["h2"])
        .connector()
        .unwrap();
    let refused = connector.connect(&address).await;
    assert!(
        refused.is_err(),
        "a client that cannot speak prpc was let in"
    );
    server.stop().await;
}

/// Opens a TCP connection to the server and sends nothing: a handshake that never comes.
async fn silent_client(port: u16) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap()
}

/// Waits (bounded by [`PATIENCE`]) for the server to close `stream`.
async fn closed_by_server(mut stream: tokio::net::TcpStream) {
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
        .await
        .expect("a silent client is dropped after the handshake timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "the server sent {read:?}");
}

#[tokio::test]
async fn a_silent_client_does_not_hold_up_other_handshakes() {
    let pki = Pki::new("main");
    // A timeout far longer than the call below takes: the call must not wait for it.
    let server = TlsServer::start(pki.server_tls().handshake_timeout(PATIENCE * 3)).await;

    let silent = silent_client(server.port).await;
    let body = echo_over(pki.trusting_client(), &server.localhost())
        .await
        .unwrap();
    assert_eq!(body, "over tls");
    drop(silent);
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_handshake_is_dropped_at_its_timeout() {
    let pki = Pki::new("main");
    // One handshake at a time: the silent client holds the only place until its timeout, and
    // the next client waits in the backlog instead of being turned away.
    let tls = pki
        .server_tls()
        .handshake_timeout(Duration::from_millis(200))
        .max_handshakes(1);
    let server = TlsServer::start(tls).await;

    let silent = silent_client(server.port).await;
    let body = echo_over(pki.trusting_client(), &server.localhost())
        .await
        .unwrap();
    assert_eq!(body, "over tls");
    closed_by_server(silent).await;
    server.stop().await;
}

#[tokio::test]
async fn missing_tls_settings_and_unreadable_files_are_reported() {
    let bound = Server::builder().bind("tls://127.0.0.1:0").await;
    let error = bound.err().expect("tls:// without Builder::tls");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("Builder::tls"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let bound = Server::builder()
        .tls(ServerTls::from_pem_files(&missing, &missing))
        .bind("tls://127.0.0.1:0")
        .await;
    let error = bound
        .err()
        .expect("a server certificate that cannot be read");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("missing.pem"), "{error}");

    let error = Client::builder()
        .tls(ClientTls::new().ca_pem_file(&missing))
        .connect("tls://localhost:1")
        .await
        .unwrap_err();
    let Error::Connect { source, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(source.kind(), io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("missing.pem"), "{error}");
}

/// TLS settings on a server bound in plain text would leave it unencrypted without a word:
/// binding refuses instead.
#[tokio::test]
async fn tls_settings_refuse_a_plain_text_address() {
    let pki = Pki::new("plain");
    for address in ["127.0.0.1:0", "tcp://127.0.0.1:0"] {
        let bound = Server::builder().tls(pki.server_tls()).bind(address).await;
        let error = bound.err().expect("a plain-text bind with TLS settings");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{address}");
        assert!(error.to_string().contains("tls://"), "{error}");
    }
    // The same on the client: TLS settings and a plain-text address dial nothing.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = plain.local_addr().unwrap().to_string();
    let error = Client::builder()
        .tls(pki.trusting_client())
        .connect(address.as_str())
        .await
        .unwrap_err();
    let Error::Connect { source, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(source.kind(), io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("tls://"), "{error}");
}
