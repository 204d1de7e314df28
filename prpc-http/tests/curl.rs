//! The HTTP side as curl sees it: the real `curl` binary (scripts/test installs it) calling the
//! gateway and health, in plain text and on a TLS port that serves prpc too.

use std::process::Command;

use prpc::transport::tls::{ClientTls, ServerTls};

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

/// Runs curl (quiet, failing on no answer), and returns what it printed: the body, then the
/// status code on a line of its own.
async fn curl(args: Vec<String>) -> (String, u16) {
    let output = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
            .args(&args)
            .output()
            .expect("curl runs (scripts/test installs it)")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (body.to_owned(), code.parse().unwrap())
}

#[tokio::test]
async fn curl_calls_the_gateway_and_health() {
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
    let server = prpc_http::Http::new().attach(server).await.unwrap();
    tokio::spawn(server.serve());

    let (body, code) = curl(vec![
        "-H".into(),
        "content-type: application/json".into(),
        "-d".into(),
        r#"{"a": 40, "b": 2}"#.into(),
        format!("http://{addr}/math.Arith/add"),
    ])
    .await;
    assert_eq!((code, body.as_str()), (200, "42"));

    let (body, code) = curl(vec![format!("http://{addr}/healthz")]).await;
    assert_eq!((code, body.as_str()), (200, r#"{"status":"SERVING"}"#));

    // curl -d sends a form unless told otherwise: the gateway says what it takes.
    let (body, code) = curl(vec![
        "-d".into(),
        "a=1".into(),
        format!("http://{addr}/math.Arith/add"),
    ])
    .await;
    assert_eq!(code, 415, "{body}");
    assert!(body.contains("application/json"), "{body}");
    let (body, code) = curl(vec![
        "--json".into(),
        "3".into(),
        format!("http://{addr}/math.Arith/add"),
    ])
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("JSON object"), "{body}");
}

#[tokio::test]
async fn a_tls_port_serves_curl_and_prpc_told_apart_by_alpn() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("cert.pem");
    std::fs::write(&ca_file, &cert_pem).unwrap();

    let server = prpc::Server::builder()
        .add_service(ArithServer::new(Calculator))
        .tls(ServerTls::from_pem(&cert_pem, &key_pem).alpn_protocols(prpc_http::TLS_ALPN))
        .bind("tls://127.0.0.1:0")
        .await
        .unwrap();
    let port = server
        .local_addr()
        .to_string()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();
    let server = prpc_http::Http::new().attach(server).await.unwrap();
    tokio::spawn(server.serve());

    // curl offers h2 and http/1.1 by ALPN: the handshake picks http/1.1.
    let (body, code) = curl(vec![
        "--cacert".into(),
        ca_file.display().to_string(),
        "--resolve".into(),
        format!("localhost:{port}:127.0.0.1"),
        format!("https://localhost:{port}/healthz"),
    ])
    .await;
    assert_eq!((code, body.as_str()), (200, r#"{"status":"SERVING"}"#));

    // A prpc client on the same port picks prpc.
    let client = prpc::Client::builder()
        .tls(ClientTls::new().ca_pem_file(&ca_file))
        .connect(format!("tls://localhost:{port}"))
        .await
        .unwrap();
    let arith = ArithClient::new(client);
    assert_eq!(arith.add(2, 3).await.unwrap(), 5);
}
