//! The `prpc` binary against real servers on loopback: a `#[prpc::service]` started here,
//! the registry started by `prpc registry serve`, and servers that do not speak prpc.
//!
//! Every failure is checked the way a user meets it: one line on stderr starting with
//! `prpc: `, no panic, no Rust debug dump, and the documented exit code.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, prpc::Describe)]
pub struct Point {
    pub x: i64,
    pub y: i64,
}

#[derive(Debug, Serialize, Deserialize, prpc::Describe)]
pub enum MathError {
    DivideByZero,
}

#[prpc::service(name = "math.Arith")]
pub trait Arith {
    /// a + b.
    #[prpc(idempotent)]
    async fn add(&self, a: i64, b: i64) -> i64;
    /// a / b, or the typed error.
    async fn div(&self, a: i64, b: i64) -> Result<i64, MathError>;
    /// The point moved by `by` on both axes.
    async fn shift(&self, point: Point, by: i64) -> Point;
    /// The `tenant` metadata of the call.
    async fn tenant(&self) -> String;
    /// Answers after `ms` milliseconds.
    async fn sleep(&self, ms: u64);
    /// The same bytes back.
    async fn echo(&self, payload: Bytes) -> Bytes;
}

struct Calculator;

impl Arith for Calculator {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn div(&self, a: i64, b: i64) -> Result<i64, MathError> {
        a.checked_div(b).ok_or(MathError::DivideByZero)
    }

    async fn shift(&self, point: Point, by: i64) -> Point {
        Point {
            x: point.x + by,
            y: point.y + by,
        }
    }

    async fn tenant(&self) -> String {
        prpc::context::current()
            .and_then(|call| call.metadata.get("tenant"))
            .map(|value| String::from_utf8_lossy(&value).into_owned())
            .unwrap_or_default()
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    async fn echo(&self, payload: Bytes) -> Bytes {
        payload
    }
}

/// A math.Arith server on its own runtime, stopped when dropped.
struct Served {
    addr: String,
    _runtime: tokio::runtime::Runtime,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn serve_on(addr: &str) -> Served {
    let runtime = runtime();
    let server = runtime
        .block_on(
            prpc::Server::builder()
                .add_service(ArithServer::new(Calculator))
                .bind(addr),
        )
        .unwrap();
    let addr = server.local_addr().to_string();
    runtime.spawn(server.serve());
    Served {
        addr,
        _runtime: runtime,
    }
}

fn serve() -> Served {
    serve_on("127.0.0.1:0")
}

/// What one run of the binary did.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ran(output: Output) -> Ran {
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_prpc"));
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `prpc ARGS` with nothing on stdin.
fn prpc(args: &[&str]) -> Ran {
    ran(command(args).stdin(Stdio::null()).output().unwrap())
}

/// Runs `prpc ARGS` with `input` on stdin.
fn prpc_with_stdin(args: &[&str], input: &str) -> Ran {
    let mut child = command(args).stdin(Stdio::piped()).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    ran(child.wait_with_output().unwrap())
}

#[track_caller]
fn assert_ok(ran: &Ran) {
    assert_eq!(
        ran.code, 0,
        "stdout: {}\nstderr: {}",
        ran.stdout, ran.stderr
    );
}

/// One line on stderr, `prpc: ` first, mentioning `says`; no panic, no debug dump; the exit
/// code `code`.
#[track_caller]
fn assert_fails(ran: &Ran, code: i32, says: &str) {
    let stderr = &ran.stderr;
    assert_eq!(ran.code, code, "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.starts_with("prpc: "), "{stderr}");
    assert!(stderr.contains(says), "{stderr} does not say {says}");
    for dump in [
        "panicked",
        "RUST_BACKTRACE",
        " { ",
        "Os {",
        "Some(",
        "kind:",
    ] {
        assert!(!stderr.contains(dump), "{dump} in {stderr}");
    }
    assert!(ran.stdout.is_empty(), "stdout: {}", ran.stdout);
}

#[test]
fn list_shows_services_and_methods() {
    let server = serve();
    let ran = prpc(&["list", &server.addr]);
    assert_ok(&ran);
    assert!(
        ran.stdout
            .starts_with("math.Arith\n  add\n  div\n  shift\n  tenant\n  sleep\n  echo\n"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("prpc.Reflection\n  list_services\n"));
}

#[test]
fn describe_writes_signatures_and_types() {
    let server = serve();
    let ran = prpc(&["describe", &server.addr, "math.Arith"]);
    assert_ok(&ran);
    let expected = "math.Arith
  add(a: integer, b: integer) -> integer  [idempotent]
  div(a: integer, b: integer) -> integer throws MathError
  shift(point: Point, by: integer) -> Point
  tenant() -> string
  sleep(ms: integer) -> null
  echo(payload: bytes) -> bytes

  type MathError = \"DivideByZero\"
  type Point = { x: integer, y: integer }
";
    assert_eq!(ran.stdout, expected);

    let ran = prpc(&["describe", &server.addr, "math.Arith/add"]);
    assert_ok(&ran);
    assert_eq!(
        ran.stdout,
        "math.Arith\n  add(a: integer, b: integer) -> integer  [idempotent]\n"
    );

    let ran = prpc(&["describe", &server.addr]);
    assert_ok(&ran);
    assert!(
        ran.stdout.contains("prpc.Health\n  check("),
        "{}",
        ran.stdout
    );
}

#[test]
fn describe_of_an_unknown_service_or_method_fails() {
    let server = serve();
    let ran = prpc(&["describe", &server.addr, "math.Nope"]);
    assert_fails(&ran, 22, "no service \"math.Nope\"");
    let ran = prpc(&["describe", &server.addr, "math.Arith/nope"]);
    assert_fails(&ran, 22, "no method \"nope\"");
}

#[test]
fn call_with_arguments_inline_from_stdin_and_from_a_file() {
    let server = serve();
    let ran = prpc(&[
        "call",
        &server.addr,
        "math.Arith/add",
        r#"{"a": 1, "b": 2}"#,
    ]);
    assert_ok(&ran);
    // stdout is a pipe: compact JSON.
    assert_eq!(ran.stdout, "3\n");

    let ran = prpc_with_stdin(
        &["call", &server.addr, "math.Arith/shift"],
        r#"{"point": {"x": 1, "y": 2}, "by": 10}"#,
    );
    assert_ok(&ran);
    assert_eq!(ran.stdout, "{\"x\":11,\"y\":12}\n");

    let ran = prpc_with_stdin(
        &["call", &server.addr, "math.Arith/add", "-"],
        r#"{"a":2,"b":2}"#,
    );
    assert_ok(&ran);
    assert_eq!(ran.stdout, "4\n");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("args.json");
    std::fs::write(&file, r#"{"a": 40, "b": 2}"#).unwrap();
    let data = format!("@{}", file.display());
    let ran = prpc(&["call", &server.addr, "math.Arith/add", "--data", &data]);
    assert_ok(&ran);
    assert_eq!(ran.stdout, "42\n");
}

#[test]
fn call_sends_metadata_headers() {
    let server = serve();
    let ran = prpc(&[
        "call",
        &server.addr,
        "math.Arith/tenant",
        "-H",
        "tenant: acme",
        "-H",
        "other:x",
    ]);
    assert_ok(&ran);
    assert_eq!(ran.stdout, "\"acme\"\n");
}

#[test]
fn call_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("unix://{}", dir.path().join("arith.sock").display());
    let server = serve_on(&addr);
    let ran = prpc(&["call", &server.addr, "math.Arith/add", r#"{"a":1,"b":1}"#]);
    assert_ok(&ran);
    assert_eq!(ran.stdout, "2\n");
}

#[test]
fn a_timeout_that_expires_is_deadline_exceeded() {
    let server = serve();
    let ran = prpc(&[
        "call",
        &server.addr,
        "math.Arith/sleep",
        r#"{"ms": 3000}"#,
        "--timeout",
        "200ms",
    ]);
    assert_fails(&ran, 14, "math.Arith/sleep");
    assert!(ran.stderr.contains("deadline_exceeded"), "{}", ran.stderr);
}

#[test]
fn an_application_error_shows_its_value() {
    let server = serve();
    let ran = prpc(&["call", &server.addr, "math.Arith/div", r#"{"a":1,"b":0}"#]);
    assert_fails(&ran, 110, "\"DivideByZero\"");
}

#[test]
fn unknown_services_and_methods_are_unimplemented() {
    let server = serve();
    let ran = prpc(&["call", &server.addr, "math.Arith/nope", "{}"]);
    assert_fails(&ran, 22, "unimplemented");
    let ran = prpc(&["call", &server.addr, "math.Nope/add", "{}"]);
    assert_fails(&ran, 22, "unimplemented");
}

#[test]
fn arguments_that_do_not_match_show_the_signature() {
    let server = serve();
    let ran = prpc(&[
        "call",
        &server.addr,
        "math.Arith/add",
        r#"{"a":"one","b":2}"#,
    ]);
    assert_fails(&ran, 13, "add(a: integer, b: integer) -> integer");
    let ran = prpc(&["call", &server.addr, "math.Arith/add", r#"{"b":2}"#]);
    assert_fails(&ran, 13, "invalid_argument");
}

#[test]
fn bad_input_is_refused_before_calling() {
    let server = serve();
    let ran = prpc(&["call", &server.addr, "math.Arith/add", r#"{"a":"#]);
    assert_fails(&ran, 1, "not JSON");
    let ran = prpc(&["call", &server.addr, "math.Arith/add", "[1, 2]"]);
    assert_fails(&ran, 1, "JSON object");
    let ran = prpc(&[
        "call",
        &server.addr,
        "math.Arith/add",
        "--data",
        "@/no/such/file",
    ]);
    assert_fails(&ran, 1, "/no/such/file");
    let ran = prpc(&["call", "ftp://example.com:21", "math.Arith/add", "{}"]);
    assert_fails(&ran, 1, "unknown scheme");
    let ran = prpc(&["call", "registry://127.0.0.1:1", "math.Arith/add", "{}"]);
    assert_fails(&ran, 1, "registry://host:port/SERVICE");
    let ran = prpc(&["call", &server.addr, "add", "{}"]);
    assert_fails(&ran, 1, "SERVICE/METHOD");
    let ran = prpc(&["call", &server.addr, "math.Arith/add", "-H", "novalue"]);
    assert_fails(&ran, 1, "key:value");
    let ran = prpc(&["--timeout", "soon", "list", &server.addr]);
    assert_fails(&ran, 1, "not a duration");
}

#[test]
fn an_unreachable_address_is_unavailable() {
    // A port just closed: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    for args in [
        vec!["list", addr.as_str()],
        vec!["describe", addr.as_str()],
        vec!["call", addr.as_str(), "math.Arith/add", "{}"],
        vec!["health", addr.as_str()],
        vec!["bench", addr.as_str(), "math.Arith/add", "{}", "-n", "10"],
    ] {
        let ran = prpc(&args);
        assert_fails(&ran, 24, "cannot reach");
    }
}

/// A TCP server on its own thread that answers every connection with `answer` (after reading
/// what the client sent), or echoes when `answer` is `None`.
fn not_prpc(answer: Option<&'static [u8]>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                match answer {
                    Some(answer) => {
                        let _ = stream.read(&mut buffer);
                        let _ = stream.write_all(answer);
                    }
                    None => {
                        while let Ok(read @ 1..) = stream.read(&mut buffer) {
                            if stream.write_all(&buffer[..read]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_server_that_is_not_prpc_is_named_so() {
    let http = not_prpc(Some(
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ));
    let echo = not_prpc(None);
    for addr in [&http, &echo] {
        for args in [
            vec!["list", addr.as_str()],
            vec!["call", addr.as_str(), "math.Arith/add", "{}"],
            vec!["health", addr.as_str()],
        ] {
            let mut args = args;
            args.extend(["--timeout", "2s"]);
            let ran = prpc(&args);
            assert!(
                ran.code >= 10,
                "{args:?}: exit {}: {}",
                ran.code,
                ran.stderr
            );
            assert_fails(&ran, ran.code, "prpc server");
        }
    }
}

#[test]
fn health_is_serving() {
    let server = serve();
    let ran = prpc(&["health", &server.addr]);
    assert_ok(&ran);
    assert_eq!(ran.stdout, "SERVING\n");
    let ran = prpc(&["health", &server.addr, "math.Arith"]);
    assert_ok(&ran);
    assert_eq!(ran.stdout, "SERVING\n");
    let ran = prpc(&["health", &server.addr, "math.Nope"]);
    assert!(ran.code != 0, "{}", ran.stdout);
}

#[test]
fn bench_reports_in_json() {
    let server = serve();
    let ran = prpc(&[
        "bench",
        &server.addr,
        "math.Arith/echo",
        r#"{"payload": [1, 2, 3]}"#,
        "-c",
        "4",
        "-n",
        "200",
        "--connections",
        "2",
        "--json",
    ]);
    assert_ok(&ran);
    let report: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(report["calls"], 200);
    assert_eq!(report["ok"], 200);
    assert_eq!(report["errors"], serde_json::json!({}));
    assert_eq!(report["format"], "msgpack");
    assert_eq!(report["concurrency"], 4);
    assert_eq!(report["connections"], 2);
    assert!(report["calls_per_second"].as_f64().unwrap() > 0.0);
    for percentile in ["p50", "p90", "p99", "p99.9"] {
        assert!(report["latency_us"][percentile].as_f64().unwrap() > 0.0);
    }
    let histogram = report["histogram"].as_array().unwrap();
    let counted: u64 = histogram.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 200);
}

#[test]
fn bench_draws_a_report_and_counts_errors_by_code() {
    let server = serve();
    let ran = prpc(&[
        "bench",
        &server.addr,
        "math.Arith/div",
        r#"{"a": 1, "b": 1}"#,
        "-c",
        "2",
        "-d",
        "300ms",
    ]);
    assert_ok(&ran);
    for part in [
        "Summary:",
        "Calls/s:",
        "Latency histogram:",
        "∎",
        "p99.9 in",
        "[ok]",
    ] {
        assert!(ran.stdout.contains(part), "{part} missing:\n{}", ran.stdout);
    }
    // Not a terminal: no progress bar on stderr.
    assert!(ran.stderr.is_empty(), "{}", ran.stderr);

    let ran = prpc(&[
        "bench",
        &server.addr,
        "math.Arith/sleep",
        r#"{"ms": 500}"#,
        "-c",
        "2",
        "-n",
        "1",
        "--timeout",
        "100ms",
    ]);
    assert_fails(&ran, 14, "deadline_exceeded");
}

/// `prpc registry serve` on an ephemeral port, killed when dropped.
struct Registry {
    child: Child,
    addr: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn registry() -> Registry {
    let mut child = Command::new(env!("CARGO_BIN_EXE_prpc"))
        .args(["registry", "serve", "127.0.0.1:0", "--warm-up", "0s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on tcp://")
        .unwrap_or_else(|| panic!("registry said {line:?}"))
        .to_owned();
    Registry { child, addr }
}

/// Runs `prpc ARGS` until it succeeds with stdout containing `wanted`, for up to five seconds.
fn eventually(args: &[&str], wanted: &str) -> Ran {
    let started = Instant::now();
    loop {
        let ran = prpc(args);
        if (ran.code == 0 && ran.stdout.contains(wanted))
            || started.elapsed() > Duration::from_secs(5)
        {
            return ran;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn registry_serve_list_and_calls_through_it() {
    let registry = registry();
    let runtime = runtime();
    let client = prpc_registry::RegistryClient::new(registry.addr.as_str()).unwrap();
    let server = runtime
        .block_on(
            prpc::Server::builder()
                .add_service(ArithServer::new(Calculator))
                .register(client, "math.Arith", 1, [("version", "1")])
                .bind("127.0.0.1:0"),
        )
        .unwrap();
    let server_addr = server.local_addr().to_string();
    runtime.spawn(server.serve());

    let ran = eventually(&["registry", "list", &registry.addr], "math.Arith");
    assert_ok(&ran);
    assert!(
        ran.stdout
            .starts_with("SERVICE     INSTANCES  VERSION\nmath.Arith  1"),
        "{}",
        ran.stdout
    );

    let ran = prpc(&["registry", "list", &registry.addr, "math.Arith"]);
    assert_ok(&ran);
    assert!(ran.stdout.contains(&server_addr), "{}", ran.stdout);
    assert!(ran.stdout.contains("version=1"), "{}", ran.stdout);

    let through = format!("registry://{}/math.Arith", registry.addr);
    let ran = prpc(&["call", &through, "math.Arith/add", r#"{"a":20,"b":22}"#]);
    assert_ok(&ran);
    assert_eq!(ran.stdout, "42\n");
    let ran = prpc(&[
        "bench",
        &through,
        "math.Arith/add",
        r#"{"a":1,"b":2}"#,
        "-n",
        "20",
        "--json",
    ]);
    assert_ok(&ran);
    let report: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(report["ok"], 20);

    let nobody = format!("registry://{}/math.Nobody", registry.addr);
    let ran = prpc(&["call", &nobody, "math.Nobody/add", "{}", "--timeout", "2s"]);
    assert_fails(&ran, 24, "no instance of math.Nobody");
}

#[test]
fn a_registry_address_that_is_unreachable_is_unavailable() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let through = format!("registry://127.0.0.1:{port}/math.Arith");
    let ran = prpc(&["call", &through, "math.Arith/add", "{}", "--timeout", "1s"]);
    assert_fails(&ran, 24, "cannot list math.Arith");
    let ran = prpc(&["registry", "list", &format!("127.0.0.1:{port}")]);
    assert_fails(&ran, 24, "cannot reach");
}

/// A server built with prpc's default features, so without JSON: the fixture package
/// `tests/fixtures/msgpack_server`, built once (offline, with the workspace's Cargo.lock), then
/// started; killed when dropped.
struct MsgPackServer {
    addr: String,
    child: Child,
}

impl Drop for MsgPackServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn msgpack_server() -> MsgPackServer {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let binary = BUILT.get_or_init(|| {
        let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("fixtures")
            .join("msgpack_server");
        let package = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("msgpack_server");
        std::fs::create_dir_all(package.join("src")).unwrap();
        let prpc = checkout.join("prpc").canonicalize().unwrap();
        let manifest = std::fs::read_to_string(fixture.join("Cargo.toml"))
            .unwrap()
            .replace("PRPC_PATH", prpc.to_str().unwrap());
        std::fs::write(package.join("Cargo.toml"), manifest).unwrap();
        std::fs::copy(fixture.join("src/main.rs"), package.join("src/main.rs")).unwrap();
        std::fs::copy(checkout.join("Cargo.lock"), package.join("Cargo.lock")).unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let built = Command::new(cargo)
            .args(["build", "--offline", "--quiet"])
            .current_dir(&package)
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "building the fixture: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        package.join("target/debug/msgpack_server")
    });
    let mut child = Command::new(binary)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut addr = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut addr)
        .unwrap();
    MsgPackServer {
        addr: addr.trim().to_owned(),
        child,
    }
}

#[test]
fn a_server_without_json_answers_a_json_call_as_the_protocol_says() {
    let server = msgpack_server();
    let runtime = runtime();
    runtime.block_on(async {
        let client = prpc::Client::connect(server.addr.as_str()).await.unwrap();
        let call = |format: prpc::Format, body: Bytes| {
            client.call(prpc::Call::new("plain.Store", "hello", format, body))
        };
        let error = call(prpc::Format::Json, Bytes::from_static(br#"{"name":"Ada"}"#))
            .await
            .unwrap_err();
        let status = error.status().unwrap();
        assert_eq!(status.code(), prpc::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            r#"format json is not enabled in this build (cargo feature "json" of prpc)"#
        );
        // The same server answers the same call in MessagePack.
        let body = prpc::Format::MsgPack
            .encode(&serde_json::json!({"name": "Ada"}))
            .unwrap();
        let reply = call(prpc::Format::MsgPack, body).await.unwrap();
        let hello: String = reply.format.decode(&reply.body).unwrap();
        assert_eq!(hello, "Hello, Ada!");
    });
}

#[test]
fn call_falls_back_to_msgpack_for_a_server_without_json() {
    let server = msgpack_server();
    let ran = prpc(&[
        "call",
        &server.addr,
        "plain.Store/hello",
        r#"{"name":"Ada"}"#,
    ]);
    assert_ok(&ran);
    assert_eq!(ran.stdout, "\"Hello, Ada!\"\n");
    // Bytes are base64 both ways, as in JSON: had "AAEC" gone as a MessagePack string, the
    // server would have echoed its four ASCII bytes ("QUFFQw==").
    let ran = prpc(&[
        "call",
        &server.addr,
        "plain.Store/echo",
        r#"{"payload":"AAEC"}"#,
    ]);
    assert_ok(&ran);
    assert_eq!(ran.stdout, "\"AAEC\"\n");
    let ran = prpc(&[
        "call",
        &server.addr,
        "plain.Store/echo",
        r#"{"payload":[0,1,2]}"#,
    ]);
    assert_ok(&ran);
    assert_eq!(ran.stdout, "\"AAEC\"\n");
    // A typed error's value, which came in MessagePack, is shown as JSON.
    let ran = prpc(&[
        "call",
        &server.addr,
        "plain.Store/refuse",
        r#"{"why":"full"}"#,
    ]);
    assert_fails(&ran, 110, r#"{"Because":"full"}"#);
    // Arguments the method cannot take: refused, and the signature shown.
    let ran = prpc(&["call", &server.addr, "plain.Store/hello", r#"{"name":7}"#]);
    assert_fails(&ran, 13, "the method is hello(name: string) -> string");
    let ran = prpc(&[
        "call",
        &server.addr,
        "plain.Store/echo",
        r#"{"payload":"AA!"}"#,
    ]);
    assert_fails(&ran, 1, "argument payload is bytes, so a string is base64");
}
