//! `HttpConnect` through a real forward proxy (tinyproxy, installed by `scripts/test`): calls
//! reach a prpc server's port through the proxy's tunnel and the server's own `CONNECT
//! /_prpc`, and refusals come back as errors that name who refused, with the status.

use std::io;
use std::sync::Arc;

use prpc::transport::Address;
use prpc_http::{Http, HttpConnect};
use prpc_tests::tinyproxy::Tinyproxy;

#[prpc::service]
pub trait Greeter {
    /// A greeting for `name`.
    async fn greet(&self, name: String) -> String;
}

struct Polite;

impl Greeter for Polite {
    async fn greet(&self, name: String) -> String {
        format!("hello, {name}")
    }
}

/// A prpc server on a loopback port served through prpc-http (prpc frames and HTTP, so
/// `CONNECT /_prpc` too), serving until the test ends.
async fn start_server() -> Address {
    let server = prpc::Server::builder()
        .add_service(GreeterServer::new(Polite))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = Http::new().attach(server).await.expect("attach HTTP");
    let address = server.local_addr();
    tokio::spawn(server.serve());
    address
}

/// The port of a TCP address.
fn port(address: &Address) -> u16 {
    address.port().expect("a TCP address")
}

/// The `io::Error` under a client's connect error.
fn connect_error(error: prpc::Error) -> Arc<io::Error> {
    match error {
        prpc::Error::Connect { source, .. } => source,
        other => panic!("expected a connect error, got {other}"),
    }
}

#[tokio::test]
async fn calls_go_through_tinyproxy() {
    let server = start_server().await;
    let proxy = Tinyproxy::start(&[port(&server)]);
    let channel = prpc::Client::builder()
        .connect_with(HttpConnect::new().proxy(proxy.addr()), server.clone())
        .await
        .expect("connect through tinyproxy");
    let client = GreeterClient::new(channel);
    assert_eq!(client.greet("proxy".into()).await.unwrap(), "hello, proxy");
    assert_eq!(client.greet("again".into()).await.unwrap(), "hello, again");

    // One tunnel, asked of the proxy, carrying both calls.
    assert_eq!(
        proxy.connect_requests(),
        [format!("CONNECT 127.0.0.1:{} HTTP/1.1", port(&server))]
    );
}

#[tokio::test]
async fn calls_go_straight_to_the_port_without_a_proxy() {
    let server = start_server().await;
    let channel = prpc::Client::builder()
        .connect_with(HttpConnect::new(), server.clone())
        .await
        .expect("connect with CONNECT");
    let client = GreeterClient::new(channel);
    assert_eq!(
        client.greet("direct".into()).await.unwrap(),
        "hello, direct"
    );

    // The same port still speaks prpc from the first byte.
    let plain = GreeterClient::connect(server)
        .await
        .expect("connect plainly");
    assert_eq!(plain.greet("plain".into()).await.unwrap(), "hello, plain");
}

#[tokio::test]
async fn a_proxy_that_refuses_the_port_is_named_with_its_403() {
    let server = start_server().await;
    // CONNECT allowed to no port at all.
    let proxy = Tinyproxy::start(&[]);
    let error = prpc::Client::builder()
        .connect_with(HttpConnect::new().proxy(proxy.addr()), server.clone())
        .await
        .map(|_| ())
        .expect_err("the proxy refuses the port");
    let error = connect_error(error);
    assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(
        error.to_string(),
        format!(
            "proxy tcp://{} refused CONNECT 127.0.0.1:{}: 403 Access violation",
            proxy.addr(),
            port(&server)
        )
    );
}

#[tokio::test]
async fn proxy_credentials_are_sent_and_their_absence_is_permission_denied() {
    let server = start_server().await;
    let proxy = Tinyproxy::start_with(&[port(&server)], &["BasicAuth prpc s3cret"]);

    let error = prpc::Client::builder()
        .connect_with(HttpConnect::new().proxy(proxy.addr()), server.clone())
        .await
        .map(|_| ())
        .expect_err("the proxy wants credentials");
    let error = connect_error(error);
    assert_eq!(error.kind(), io::ErrorKind::PermissionDenied, "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "proxy tcp://{} refused CONNECT 127.0.0.1:{}: 407 Proxy Authentication Required \
             (set credentials with proxy_basic_auth)",
            proxy.addr(),
            port(&server)
        )
    );

    // tinyproxy answers wrong credentials with 401.
    let wrong = prpc::Client::builder()
        .connect_with(
            HttpConnect::new()
                .proxy(proxy.addr())
                .proxy_basic_auth("prpc", "wrong"),
            server.clone(),
        )
        .await
        .map(|_| ())
        .expect_err("wrong credentials");
    let wrong = connect_error(wrong);
    assert_eq!(wrong.kind(), io::ErrorKind::PermissionDenied, "{wrong}");
    assert!(
        wrong.to_string().contains("refused the credentials"),
        "{wrong}"
    );

    let channel = prpc::Client::builder()
        .connect_with(
            HttpConnect::new()
                .proxy(proxy.addr())
                .proxy_basic_auth("prpc", "s3cret"),
            server,
        )
        .await
        .expect("connect with credentials");
    let client = GreeterClient::new(channel);
    assert_eq!(client.greet("user".into()).await.unwrap(), "hello, user");
}

#[tokio::test]
async fn a_server_that_refuses_the_path_is_named_behind_the_proxy() {
    let server = start_server().await;
    let proxy = Tinyproxy::start(&[port(&server)]);
    let error = prpc::Client::builder()
        .connect_with(
            HttpConnect::new().proxy(proxy.addr()).path("/elsewhere"),
            server.clone(),
        )
        .await
        .map(|_| ())
        .expect_err("the server refuses the path");
    let error = connect_error(error);
    assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(
        error.to_string(),
        format!(
            "server {server} (through proxy tcp://{}) refused CONNECT /elsewhere: 404 Not Found",
            proxy.addr()
        )
    );
}
