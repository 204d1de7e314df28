//! A handler learns its caller's address: `Request::peer` and `Context::peer` carry the IP
//! address and port of a TCP or TLS connection the server accepted, and nothing for transports
//! without one.

use std::net::SocketAddr;

use bytes::Bytes;
use prpc::transport::tls::{ClientTls, ServerTls, rustls, tokio_rustls};
use prpc::{Call, Client, Format, Request, Response, Server, Service, ServiceFuture, Streaming};
use tokio::net::TcpStream;

#[prpc::service(name = "test.Whoami")]
pub trait Whoami {
    /// The caller's address as the call's context has it.
    async fn peer(&self) -> Option<String>;
    /// The same, as the one item of a stream.
    async fn peer_stream(&self) -> Streaming<Option<String>>;
}

struct Peers;

fn context_peer() -> Option<String> {
    prpc::context::current()
        .expect("a handler runs in its call's context")
        .peer
        .map(|peer| peer.to_string())
}

impl Whoami for Peers {
    async fn peer(&self) -> Option<String> {
        context_peer()
    }

    async fn peer_stream(&self) -> Streaming<Option<String>> {
        Streaming::from_iter([context_peer()])
    }
}

/// A hand-written service that answers with the request's peer and the context's, as
/// `request|context` (`-` for none).
struct RawPeers;

impl Service for RawPeers {
    fn name(&self) -> &str {
        "raw"
    }

    fn methods(&self) -> Vec<String> {
        vec!["peer".to_owned()]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        let from_request = request.peer;
        Box::pin(async move {
            let from_context = prpc::context::current().and_then(|call| call.peer);
            let text = |peer: Option<SocketAddr>| peer.map_or("-".to_owned(), |p| p.to_string());
            let body = format!("{}|{}", text(from_request), text(from_context));
            Ok(Response::new(Bytes::from(body)))
        })
    }
}

fn server() -> prpc::server::Builder {
    Server::builder()
        .add_service(WhoamiServer::new(Peers))
        .add_service(RawPeers)
}

async fn raw_peer(client: &Client) -> String {
    let call = Call::new("raw", "peer", Format::Raw, Bytes::new());
    let reply = client.call(call).await.unwrap();
    String::from_utf8(reply.body.to_vec()).unwrap()
}

/// A client over a TCP connection dialed here, and the local address it came from.
async fn dial(server: SocketAddr) -> (WhoamiClient, Client, SocketAddr) {
    let stream = TcpStream::connect(server).await.unwrap();
    let local = stream.local_addr().unwrap();
    let client = Client::builder().from_stream(stream);
    (WhoamiClient::new(client.clone()), client, local)
}

#[tokio::test]
async fn a_tcp_handler_sees_the_address_its_client_called_from() {
    let server = server().bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().socket_addr().unwrap();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());

    // Two connections: each call sees its own connection's port.
    let (first, first_raw, first_local) = dial(addr).await;
    let (second, second_raw, second_local) = dial(addr).await;
    assert_ne!(first_local, second_local);
    for (client, raw, local) in [
        (&first, &first_raw, first_local),
        (&second, &second_raw, second_local),
    ] {
        let expected = local.to_string();
        assert_eq!(client.peer().await.unwrap(), Some(expected.clone()));
        assert_eq!(raw_peer(raw).await, format!("{expected}|{expected}"));
        // A stream's request carries it too.
        let mut items = client.peer_stream().await.unwrap();
        assert_eq!(items.message().await.unwrap(), Some(Some(expected)));
        assert_eq!(items.message().await.unwrap(), None);
    }

    shutdown.shutdown();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_tls_handler_sees_the_address_its_client_called_from() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_pem, key_pem) = (certified.cert.pem(), certified.signing_key.serialize_pem());
    let server = server()
        .tls(ServerTls::from_pem(&cert_pem, &key_pem))
        .bind("tls://127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().socket_addr().unwrap();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());

    // The TLS stream is built here over a TCP connection whose local address is known.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let config = ClientTls::new().ca_pem(&cert_pem).build().unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let client = WhoamiClient::new(Client::builder().from_stream(stream));
    assert_eq!(client.peer().await.unwrap(), Some(local.to_string()));

    shutdown.shutdown();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_unix_socket_handler_sees_no_peer() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix://{}", dir.path().join("whoami.sock").display());
    let server = server().bind(&address).await.unwrap();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());

    let raw = Client::connect(&address).await.unwrap();
    let client = WhoamiClient::new(raw.clone());
    assert_eq!(client.peer().await.unwrap(), None);
    assert_eq!(raw_peer(&raw).await, "-|-");

    shutdown.shutdown();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_stream_given_to_serve_connection_has_no_peer() {
    let router = server().build();
    let (client_end, server_end) = tokio::io::duplex(4096);
    tokio::spawn(router.serve_connection(server_end));
    let raw = Client::builder().from_stream(client_end);
    assert_eq!(WhoamiClient::new(raw.clone()).peer().await.unwrap(), None);
    assert_eq!(raw_peer(&raw).await, "-|-");
}

#[test]
fn a_request_made_in_process_has_no_peer() {
    let request = Request::new("peer", Format::Raw, Bytes::new());
    assert_eq!(request.peer, None);
}
