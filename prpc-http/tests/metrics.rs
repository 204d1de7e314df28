//! `/metrics` on the admin listener of a real server under calls, checked by Prometheus's
//! own `promtool check metrics` (scripts/test installs it) and by the values a scrape reads.

mod common;

use std::process::Stdio;

use prpc::{Request, Response, Service, ServiceFuture, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[prpc::service(name = "math.Arith")]
pub trait Arith {
    async fn add(&self, a: i64, b: i64) -> i64;
}

struct Calculator;

impl Arith for Calculator {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

/// A hand-written service whose names need escaping in the exposition format.
struct Quoted;

impl Service for Quoted {
    fn name(&self) -> &str {
        "odd\"name\\with\nbreaks"
    }

    fn methods(&self) -> Vec<String> {
        vec!["m\"1".to_owned()]
    }

    fn call(&self, _request: Request) -> ServiceFuture {
        Box::pin(async { Ok::<_, Status>(Response::new("1".into())) })
    }
}

async fn get(addr: &str, path: &str) -> (String, String) {
    get_accepting(addr, path, "*/*").await
}

async fn get_accepting(addr: &str, path: &str, accept: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: x\r\naccept: {accept}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

/// Runs `promtool check metrics` on `text`: its verdict and what it printed.
async fn promtool(text: String) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool runs (scripts/test installs the prometheus package)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), said)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_what_happened() {
    let server = prpc::Server::builder()
        .add_service(ArithServer::new(Calculator))
        .add_service(Quoted)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let admin_addr = common::serve_with_admin(server).await;

    let client = ArithClient::connect(addr.clone()).await.unwrap();
    for _ in 0..3 {
        assert_eq!(client.add(1, 2).await.unwrap(), 3);
    }
    let raw = prpc::Client::connect(addr.clone()).await.unwrap();
    let call = prpc::Call::new(
        "odd\"name\\with\nbreaks",
        "m\"1",
        prpc::Format::Json,
        "{}".into(),
    );
    prpc::Channel::call(&raw, call).await.unwrap();
    // A cluster client in the process shows under prpc_client_*.
    let discovery =
        prpc::discovery::StaticDiscover::new([
            prpc::discovery::Endpoint::new(addr.clone()).unwrap()
        ]);
    let cluster = prpc::cluster::Cluster::builder().build(&discovery, "math.Arith");
    assert_eq!(
        ArithClient::new(cluster.clone()).add(2, 2).await.unwrap(),
        4
    );

    // What Prometheus asks for: OpenMetrics.
    let (head, openmetrics) = get_accepting(
        &admin_addr,
        "/metrics",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    assert!(
        openmetrics.contains("# TYPE prpc_server_handled counter"),
        "{openmetrics}"
    );
    // What curl and promtool get: the classic text format.
    let (head, text) = get(&admin_addr, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(
        text.contains("# TYPE prpc_server_handled_total counter"),
        "{text}"
    );
    if std::env::var_os("PRPC_PRINT_METRICS").is_some() {
        println!("{text}");
    }
    let (valid, said) = promtool(text.clone()).await;
    assert!(valid, "promtool: {said}\n{text}");

    assert!(
        text.contains(
            r#"prpc_server_handled_total{service="math.Arith",method="add",code="ok"} 4"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"prpc_server_handling_seconds_count{service="math.Arith",method="add"} 4"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"prpc_server_handling_seconds_bucket{le="+Inf",service="math.Arith",method="add"} 4"#
        ) || text.contains(
            r#"prpc_server_handling_seconds_bucket{service="math.Arith",method="add",le="+Inf"} 4"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"service="odd\"name\\with\nbreaks",method="m\"1",code="ok"} 1"#),
        "{text}"
    );
    assert!(text.contains("prpc_server_connections 3"), "{text}");
    assert!(
        text.contains(r#"prpc_client_attempts_total{service="math.Arith"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"prpc_client_breaker_state{service="math.Arith",endpoint="#),
        "{text}"
    );
    // Not on the public port.
    let (head, _) = get(addr.to_string().trim_start_matches("tcp://"), "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    drop(cluster);
}

/// A service whose `wait` blocks until the gate closes.
struct Gate(std::sync::Arc<tokio::sync::Semaphore>);

impl Service for Gate {
    fn name(&self) -> &str {
        "gate"
    }

    fn methods(&self) -> Vec<String> {
        vec!["wait".to_owned()]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        let gate = self.0.clone();
        Box::pin(async move {
            // Closed, not granted: the waiter goes on.
            let _ = gate.acquire().await;
            Ok::<_, Status>(Response::new(request.body))
        })
    }
}

/// The memory budget and what of it is held are gauges: a call blocked in its handler holds
/// its share until it is answered.
#[tokio::test]
async fn metrics_show_the_memory_budget_and_what_is_held() {
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let server = prpc::Server::builder()
        .add_service(Gate(gate.clone()))
        .max_frame_size(64 * 1024)
        .memory_budget(1 << 20)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let router = server.router();
    let admin_addr = common::serve_with_admin(server).await;

    let client = prpc::Client::connect(addr.clone()).await.unwrap();
    let call = prpc::Call::new("gate", "wait", prpc::Format::Raw, vec![b'x'; 1000].into());
    let blocked = tokio::spawn(async move { prpc::Channel::call(&client, call).await });
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let held = loop {
        let held = router.stats().memory_budget_held;
        if held > 0 {
            break held;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call never held the budget"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    // Its body and 512 bytes for the call, and any metadata the client sent.
    assert!(held >= 1000 + 512, "{held}");

    let (_, text) = get(&admin_addr, "/metrics").await;
    let (valid, said) = promtool(text.clone()).await;
    assert!(valid, "promtool: {said}\n{text}");
    assert!(
        text.contains("# TYPE prpc_server_memory_budget_bytes gauge"),
        "{text}"
    );
    assert!(
        text.contains("\nprpc_server_memory_budget_bytes 1048576\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("\nprpc_server_memory_budget_held_bytes {held}\n")),
        "{text}"
    );

    // Answered, the call gives its share back.
    gate.close();
    assert_eq!(blocked.await.unwrap().unwrap().body.len(), 1000);
    let (_, text) = get(&admin_addr, "/metrics").await;
    assert!(
        text.contains("\nprpc_server_memory_budget_held_bytes 0\n"),
        "{text}"
    );
}
