//! A server and a client speaking over TLS, with certificates made at startup: a private CA,
//! and a certificate for "localhost" that it signs. A real deployment loads PEM files
//! instead (`ServerTls::from_pem_files`, `ClientTls::ca_pem_file`).
//!
//! Run it with `cargo run -p prpc-examples --bin tls`.

use std::time::Duration;

use prpc::transport::Address;
use prpc::transport::tls::{ClientTls, ServerTls};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Greetings over the network.
#[prpc::service]
pub trait Greeter {
    /// A greeting for `name`.
    async fn hello(&self, name: String) -> String;
}

struct Polite;

impl Greeter for Polite {
    async fn hello(&self, name: String) -> String {
        format!("hello, {name}")
    }
}

/// The CA's certificate, and the server's certificate and key, as PEM.
struct Certificates {
    ca: String,
    server_cert: String,
    server_key: String,
}

/// A private CA and a server certificate for "localhost" signed by it. (A certificate that is
/// its own CA cannot serve: rustls refuses a trust anchor used as a server's certificate.)
fn certificates() -> Result<Certificates, rcgen::Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "prpc example CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let server_key = KeyPair::generate()?;
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()])?;
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, &ca)?;
    Ok(Certificates {
        ca: ca.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let certificates = certificates()?;

    // Bound to the loopback IP; clients dial it as "localhost", the name the certificate
    // carries.
    let server = prpc::Server::builder()
        .add_service(GreeterServer::new(Polite))
        .tls(ServerTls::from_pem(
            &certificates.server_cert,
            &certificates.server_key,
        ))
        .bind("tls://127.0.0.1:0")
        .await?;
    let port = server
        .local_addr()
        .port()
        .ok_or("a tls:// server has a port")?;
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());
    let address = Address::tls("localhost", port);
    println!("server listening on {address}");

    let client = prpc::Client::builder()
        .tls(ClientTls::new().ca_pem(&certificates.ca))
        .connect(&address)
        .await?;
    let client = GreeterClient::new(client);
    let greeting = client.hello("tls".to_owned()).await?;
    println!("hello(\"tls\") = {greeting:?}");
    assert_eq!(greeting, "hello, tls");

    shutdown.shutdown();
    tokio::time::timeout(Duration::from_secs(5), serving).await???;
    println!("server shut down");
    Ok(())
}
