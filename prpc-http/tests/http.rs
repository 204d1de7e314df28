//! HTTP on a prpc server's port, over real sockets: the JSON gateway, health, the service
//! list, `CONNECT /_prpc`, the admin listener, and bad HTTP input, each while the same port
//! goes on serving prpc.

use std::fmt;
use std::time::Duration;

use prpc::health::ServingStatus;
use prpc::{Code, Error};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MathError {
    DivisionByZero,
}

impl fmt::Display for MathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("division by zero")
    }
}

#[prpc::service(name = "math.Arith")]
pub trait Arith {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn div(&self, a: i64, b: i64) -> Result<i64, MathError>;
    async fn sleep(&self, ms: u64) -> u64;
    /// The caller's `tenant` metadata and address, as the handler sees them.
    async fn whoami(&self) -> (Option<String>, bool);
}

struct Calculator;

impl Arith for Calculator {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn div(&self, a: i64, b: i64) -> Result<i64, MathError> {
        a.checked_div(b).ok_or(MathError::DivisionByZero)
    }

    async fn sleep(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    async fn whoami(&self) -> (Option<String>, bool) {
        let context = prpc::context::current().expect("a call has a context");
        let tenant = context
            .metadata
            .get("tenant")
            .map(|value| String::from_utf8_lossy(&value).into_owned());
        (tenant, context.peer.is_some())
    }
}

struct Running {
    addr: String,
    admin: Option<String>,
    health: prpc::health::HealthReporter,
    shutdown: prpc::server::ShutdownHandle,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

async fn start(http: prpc_http::Http) -> Running {
    let server = prpc::Server::builder()
        .add_service(ArithServer::new(Calculator))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server
        .local_addr()
        .to_string()
        .trim_start_matches("tcp://")
        .to_owned();
    let health = server.router().health();
    let shutdown = server.shutdown_handle();
    let server = http.attach(server).await.unwrap();
    let serving = tokio::spawn(server.serve());
    Running {
        addr,
        admin: None,
        health,
        shutdown,
        serving: Some(serving),
    }
}

async fn start_with_admin(http: prpc_http::Http) -> Running {
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap().to_string();
    let mut running = start(http.admin_listener(admin)).await;
    running.admin = Some(admin_addr);
    running
}

/// An HTTP answer: status, headers (lowercase names), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends raw bytes, reads until the server closes, parses the answer.
async fn raw(addr: &str, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut bytes))
        .await
        .expect("the server answers and closes")
        .unwrap();
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    raw(addr, request.as_bytes()).await
}

async fn get(addr: &str, path: &str) -> Answer {
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    raw(addr, request.as_bytes()).await
}

async fn prpc_add(addr: &str) -> Result<i64, Error> {
    let client = ArithClient::connect(addr).await?;
    client.add(20, 22).await
}

#[tokio::test]
async fn the_gateway_calls_methods_with_json_arguments() {
    let server = start(prpc_http::Http::new()).await;
    let answer = post(
        &server.addr,
        "/math.Arith/add",
        &[("content-type", "application/json")],
        r#"{"a": 2, "b": 3}"#,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.body, "5");
    // The same port serves prpc frames.
    assert_eq!(prpc_add(&server.addr).await.unwrap(), 42);
}

#[tokio::test]
async fn gateway_metadata_comes_from_prefixed_headers() {
    let server = start(prpc_http::Http::new()).await;
    let answer = post(
        &server.addr,
        "/math.Arith/whoami",
        &[("prpc-md-tenant", "acme")],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json(), serde_json::json!(["acme", true]));
}

#[tokio::test]
async fn the_timeout_header_sets_the_deadline() {
    let server = start(prpc_http::Http::new()).await;
    let answer = post(
        &server.addr,
        "/math.Arith/sleep",
        &[("prpc-timeout", "50ms")],
        r#"{"ms": 5000}"#,
    )
    .await;
    assert_eq!(answer.status, 504, "{answer:?}");
    assert_eq!(answer.json()["code"], "deadline_exceeded");
    let answer = post(
        &server.addr,
        "/math.Arith/sleep",
        &[("prpc-timeout", "soon")],
        r#"{"ms": 1}"#,
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("prpc-timeout")
    );
    let answer = post(
        &server.addr,
        "/math.Arith/sleep",
        &[("prpc-timeout", "5s")],
        r#"{"ms": 1}"#,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn application_errors_are_422_with_their_value() {
    let server = start(prpc_http::Http::new()).await;
    let answer = post(&server.addr, "/math.Arith/div", &[], r#"{"a": 1, "b": 0}"#).await;
    assert_eq!(answer.status, 422, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["code"], "application");
    assert_eq!(body["details"], "DivisionByZero");
}

type BadCall = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    u16,
    &'static str,
);

#[tokio::test]
async fn bad_gateway_calls_get_a_4xx_with_a_json_reason() {
    let server = start(prpc_http::Http::new()).await;
    let addr = &server.addr;
    // (path, headers, body, status, words the reason holds)
    let cases: &[BadCall] = &[
        ("/math.Arith/add", &[], "{not json", 400, "not JSON"),
        ("/math.Arith/add", &[], "[1, 2]", 400, "JSON object"),
        ("/math.Arith/add", &[], r#"{"a": "two", "b": 3}"#, 400, ""),
        ("/math.Arith/add", &[], r#"{"a": 2}"#, 400, ""),
        (
            "/math.Arith/add",
            &[("content-type", "text/plain")],
            "{}",
            415,
            "application/json",
        ),
        ("/math.Nope/add", &[], "{}", 404, "math.Nope"),
        ("/math.Arith/nope", &[], "{}", 404, "nope"),
        ("/a/b/c", &[], "{}", 404, "no route"),
    ];
    for (path, headers, body, status, reason) in cases {
        let answer = post(addr, path, headers, body).await;
        assert_eq!(answer.status, *status, "{path} {body}: {answer:?}");
        let json = answer.json();
        assert!(json["code"].is_string(), "{json}");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(reason), "{path} {body}: {message}");
    }
    let answer = get(addr, "/math.Arith/add").await;
    assert_eq!(answer.status, 405, "{answer:?}");
    assert_eq!(answer.header("allow"), Some("POST"));
    // A body over the limit.
    let server = start(prpc_http::Http::new().max_body(64)).await;
    let big = format!(r#"{{"a": 1, "b": 2, "pad": "{}"}}"#, "x".repeat(100));
    let answer = post(&server.addr, "/math.Arith/add", &[], &big).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(prpc_add(&server.addr).await.unwrap(), 42);
}

#[tokio::test]
async fn health_is_served_as_prpc_and_as_healthz() {
    let server = start(prpc_http::Http::new()).await;
    let answer = get(&server.addr, "/healthz").await;
    assert_eq!(
        (answer.status, answer.json()),
        (200, serde_json::json!({"status": "SERVING"}))
    );
    let client = prpc::Client::connect(server.addr.as_str()).await.unwrap();
    assert_eq!(
        prpc::health::check(&client, "math.Arith").await.unwrap(),
        ServingStatus::Serving
    );

    server.health.set_not_serving("math.Arith");
    let answer = get(&server.addr, "/healthz?service=math.Arith").await;
    assert_eq!(
        (answer.status, answer.json()),
        (503, serde_json::json!({"status": "NOT_SERVING"}))
    );
    assert_eq!(
        prpc::health::check(&client, "math.Arith").await.unwrap(),
        ServingStatus::NotServing
    );
    // The server as a whole still serves.
    assert_eq!(get(&server.addr, "/healthz").await.status, 200);

    let answer = get(&server.addr, "/healthz?service=math.Nope").await;
    assert_eq!(answer.status, 404, "{answer:?}");
    let unknown = prpc::health::check(&client, "math.Nope").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn services_are_listed() {
    let server = start(prpc_http::Http::new()).await;
    let answer = get(&server.addr, "/_prpc/services").await;
    assert_eq!(answer.status, 200);
    let services = answer.json();
    let names: Vec<&str> = services
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["math.Arith", "prpc.Health", "prpc.Reflection"]);
    assert_eq!(
        services[0]["methods"],
        serde_json::json!(["add", "div", "sleep", "whoami"])
    );
}

/// Reads an HTTP response head off `stream`, byte by byte (nothing past it).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = stream.read_u8().await.unwrap();
        head.push(byte);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn connect_upgrades_to_prpc_frames() {
    let server = start(prpc_http::Http::new()).await;
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    stream
        .write_all(format!("CONNECT /_prpc HTTP/1.1\r\nhost: {}\r\n\r\n", server.addr).as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let client = ArithClient::new(prpc::Client::builder().from_stream(stream));
    assert_eq!(client.add(1, 2).await.unwrap(), 3);
    let (tenant, has_peer) = client.whoami().await.unwrap();
    assert_eq!(tenant, None);
    assert!(has_peer, "a tunnelled call knows its peer");
}

#[tokio::test]
async fn connect_to_another_path_or_host_is_refused() {
    let server = start(prpc_http::Http::new()).await;
    for target in ["/elsewhere", "example.com:443"] {
        let answer = raw(
            &server.addr,
            format!("CONNECT {target} HTTP/1.1\r\nhost: example.com\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert_eq!(answer.status, 404, "{target}: {answer:?}");
        assert!(
            answer.json()["message"]
                .as_str()
                .unwrap()
                .contains("/_prpc")
        );
    }
    assert_eq!(prpc_add(&server.addr).await.unwrap(), 42);
}

#[tokio::test]
async fn malformed_and_oversized_heads_get_a_text_reason() {
    let server = start(prpc_http::Http::new().max_header_bytes(1024).max_headers(8)).await;
    let addr = &server.addr;
    let answer = raw(addr, b"GET /health z HTTP/1.1\r\n\r\n").await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("malformed"), "{answer:?}");

    let huge = format!(
        "GET /healthz HTTP/1.1\r\nx-big: {}\r\n\r\n",
        "a".repeat(4096)
    );
    let answer = raw(addr, huge.as_bytes()).await;
    assert_eq!(answer.status, 431, "{answer:?}");
    assert!(answer.body.contains("1024 bytes"), "{answer:?}");

    let many: String = (0..20).map(|i| format!("x-{i}: 1\r\n")).collect();
    let answer = raw(
        addr,
        format!("GET /healthz HTTP/1.1\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 431, "{answer:?}");
    assert!(answer.body.contains("header lines"), "{answer:?}");
    assert_eq!(prpc_add(addr).await.unwrap(), 42);
}

#[tokio::test]
async fn a_slowloris_head_times_out_while_prpc_is_served() {
    let server = start(prpc_http::Http::new().header_timeout(Duration::from_millis(300))).await;
    let mut slow = TcpStream::connect(&server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nx-a: 1\r\n")
        .await
        .unwrap();
    // Meanwhile, prpc calls go through.
    assert_eq!(prpc_add(&server.addr).await.unwrap(), 42);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = slow.write_all(b"x-b: 2\r\n").await;
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut bytes))
        .await
        .expect("the slow connection is closed")
        .unwrap();
    let answer = parse(&bytes);
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(answer.body.contains("300 ms"), "{answer:?}");
}

#[tokio::test]
async fn the_admin_listener_serves_health_but_no_gateway() {
    let server = start_with_admin(prpc_http::Http::new().main_port(false)).await;
    let admin = server.admin.as_deref().unwrap();
    assert_eq!(get(admin, "/healthz").await.status, 200);
    assert_eq!(get(admin, "/_prpc/services").await.status, 200);
    let answer = post(admin, "/math.Arith/add", &[], r#"{"a": 1, "b": 2}"#).await;
    assert_eq!(answer.status, 404, "{answer:?}");
    // The main port speaks prpc only: an HTTP request there gets no HTTP answer.
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut bytes)).await;
    assert!(
        !bytes.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(prpc_add(&server.addr).await.unwrap(), 42);
    // Shutting down: health says so before the listeners close.
    server.health.set_not_serving("");
    assert_eq!(get(admin, "/healthz").await.status, 503);
    server.health.set_serving("");
    assert_eq!(get(admin, "/healthz").await.status, 200);
    // A server shutting down is not serving, whatever was set.
    server.shutdown.shutdown();
    assert_eq!(server.health.status(""), Some(ServingStatus::NotServing));
    assert_eq!(
        server.health.status("math.Arith"),
        Some(ServingStatus::NotServing)
    );
}

#[tokio::test]
async fn silent_sockets_never_stop_the_port_from_taking_prpc() {
    let server = start(
        prpc_http::Http::new()
            .max_pending(2)
            .first_byte_timeout(Duration::from_secs(30)),
    )
    .await;
    // More silent connections than may be pending: the port still accepts, and prpc works.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(&server.addr).await.unwrap());
    }
    let added = tokio::time::timeout(Duration::from_secs(5), prpc_add(&server.addr)).await;
    assert_eq!(added.expect("a prpc call is answered").unwrap(), 42);
}

#[tokio::test]
async fn a_prpc_client_silent_at_first_is_still_served() {
    let server = start(prpc_http::Http::new().first_byte_timeout(Duration::from_millis(100))).await;
    let stream = TcpStream::connect(&server.addr).await.unwrap();
    // Silent for longer than the first-byte timeout, as a client connected ahead of its
    // first call is.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let client = ArithClient::new(prpc::Client::builder().from_stream(stream));
    assert_eq!(client.add(1, 1).await.unwrap(), 2);
}

#[tokio::test]
async fn a_trickling_body_times_out_and_the_admin_listener_keeps_its_own_slots() {
    let server = start_with_admin(
        prpc_http::Http::new()
            .header_timeout(Duration::from_millis(300))
            .max_connections(1),
    )
    .await;
    let admin = server.admin.as_deref().unwrap();
    let mut slow = TcpStream::connect(&server.addr).await.unwrap();
    slow.write_all(b"POST /math.Arith/add HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    // The one HTTP slot of the public port is taken; the admin listener's health is not.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(admin, "/healthz").await.status, 200);
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut bytes))
        .await
        .expect("the trickling request is answered")
        .unwrap();
    let answer = parse(&bytes);
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(answer.json()["message"].as_str().unwrap().contains("body"));
    // The slot is free again.
    assert_eq!(get(&server.addr, "/healthz").await.status, 200);
}

#[tokio::test]
async fn shutdown_waits_for_a_gateway_call_in_flight() {
    let mut server = start(prpc_http::Http::new()).await;
    let addr = server.addr.clone();
    let call =
        tokio::spawn(async move { post(&addr, "/math.Arith/sleep", &[], r#"{"ms": 500}"#).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = std::time::Instant::now();
    server.shutdown.shutdown();
    let serving = server.serving.take().unwrap();
    serving.await.unwrap().unwrap();
    // serve() returned only once the call in flight (400 ms more to run) had its answer.
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(350),
        "serve() returned {waited:?} after shutdown, before the gateway call was answered"
    );
    let answer = call.await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "500"));
}
