//! Transports: calls over Unix sockets, in-memory streams and any stream of connections, and
//! the addresses that name them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use prpc::transport::{Address, TcpConnector, memory};
use prpc::{Call, Client, Error, Format, Server};
use prpc_tests::Probe;
use tokio::sync::mpsc;

fn echo(body: &'static [u8]) -> Call {
    Call::new("probe", "echo", Format::Raw, Bytes::from_static(body))
}

#[tokio::test]
async fn calls_run_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix://{}", dir.path().join("probe.sock").display());
    let (probe, counters) = Probe::new("probe");
    let server = Server::builder()
        .add_service(probe)
        .bind(&address)
        .await
        .unwrap();
    assert_eq!(server.local_addr(), address.parse::<Address>().unwrap());
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());

    let client = Client::connect(&address).await.unwrap();
    assert_eq!(client.address(), Some(&address.parse().unwrap()));
    let reply = client.call(echo(b"over unix")).await.unwrap();
    assert_eq!(&reply.body[..], b"over unix");
    assert_eq!(
        counters.finished.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    shutdown.shutdown();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_client_and_a_router_share_one_in_memory_stream() {
    let (probe, _) = Probe::new("probe");
    let router = Server::builder().add_service(probe).build();
    let (client_end, server_end) = tokio::io::duplex(4096);
    let serving = tokio::spawn(router.serve_connection(server_end));
    let client = Client::builder().from_stream(client_end);
    assert_eq!(client.address(), None);
    // Bodies larger than the pipe's buffer cross it too.
    let big = vec![7u8; 100_000];
    let reply = client
        .call(Call::new(
            "probe",
            "echo",
            Format::Raw,
            Bytes::from(big.clone()),
        ))
        .await
        .unwrap();
    assert_eq!(reply.body, big);
    drop(client);
    // The client's end closing ends the connection it was served on.
    tokio::time::timeout(prpc_tests::PATIENCE, serving)
        .await
        .expect("the connection ends when its client goes")
        .unwrap();
}

#[tokio::test]
async fn an_in_memory_client_reconnects_through_its_connector() {
    let (probe, _) = Probe::new("probe");
    let router = Server::builder()
        .add_service(probe)
        .idle_timeout(std::time::Duration::from_millis(100))
        .build();
    let (connector, listener) = memory::channel();
    tokio::spawn(router.serve_with_listener(listener));
    let client = Client::builder()
        .connect_with(connector, "memory://probe")
        .await
        .unwrap();
    assert_eq!(client.call(echo(b"one")).await.unwrap().body, "one");
    // The server closes the idle connection; the next call dials a new one.
    let deadline = tokio::time::Instant::now() + prpc_tests::PATIENCE;
    while client.is_open() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "idle connection kept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(client.call(echo(b"two")).await.unwrap().body, "two");
}

/// A stream of connections fed by a channel (what a user's own acceptor looks like).
struct Fed(mpsc::UnboundedReceiver<io::Result<tokio::io::DuplexStream>>);

impl futures_core::Stream for Fed {
    type Item = io::Result<tokio::io::DuplexStream>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[tokio::test]
async fn serve_with_incoming_serves_every_stream_and_survives_accept_errors() {
    let (probe, _) = Probe::new("probe");
    let router = Server::builder().add_service(probe).build();
    let shutdown = router.shutdown_handle();
    let (feed, incoming) = mpsc::unbounded_channel();
    let serving = tokio::spawn(router.serve_with_incoming(Fed(incoming)));
    feed.send(Err(io::Error::other("a failed accept"))).unwrap();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (client_end, server_end) = tokio::io::duplex(4096);
        feed.send(Ok(server_end)).unwrap();
        clients.push(Client::builder().from_stream(client_end));
    }
    for client in &clients {
        assert_eq!(client.call(echo(b"hi")).await.unwrap().body, "hi");
    }
    shutdown.shutdown();
    tokio::time::timeout(prpc_tests::PATIENCE, serving)
        .await
        .expect("serving ends after shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn bad_addresses_are_typed_errors() {
    assert!(matches!(
        Client::connect("http://example.com:80").await,
        Err(Error::InvalidAddress(_))
    ));
    assert!(matches!(
        Client::connect("no-port").await,
        Err(Error::InvalidAddress(_))
    ));
    // A connector asked to dial another transport says so.
    let error = Client::builder()
        .connect_with(TcpConnector, "unix:///nowhere.sock")
        .await
        .unwrap_err();
    let Error::Connect { source, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(source.kind(), io::ErrorKind::InvalidInput);
    // memory:// has no built-in listener to bind.
    let bound = Server::builder().bind("memory://x").await;
    assert_eq!(bound.err().unwrap().kind(), io::ErrorKind::InvalidInput);
}
