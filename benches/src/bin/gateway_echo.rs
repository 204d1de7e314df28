//! The JSON gateway of `prpc-http` under load (issue 16), against the same method called as
//! prpc: a `#[prpc::service]` echo of a string, served on a port attached to prpc-http, and
//! loaded either over HTTP/1.1 (`POST /Echo/echo` with `{"text": "..."}`) or by the
//! generated client. `benches/gateway.sh` runs the two in turn.
//!
//! ```text
//! gateway_echo server [127.0.0.1:0] [--runtime current|multi]
//! gateway_echo client ADDR [--via gateway|json|msgpack] [--connections 64] [--in-flight 64]
//!                     [--size 64] [--seconds 5] [--warmup 1] [--runtime current|multi]
//! ```
//! Otherwise the command line and the report line of every echo program (see
//! `prpc_benches::driver`): `--size` is the length of the string (ASCII, so its bytes too).
//!
//! `--via gateway` (the default) is the load tool: one hyper HTTP/1.1 client connection per
//! `--connections`, kept alive, each caller sending its next request as soon as the previous
//! answer's body is read. Every answer must be `200` with the string echoed (anything else
//! ends the run with a panic, so every call counted is a `200`). The client encodes the
//! arguments and decodes the answer with serde_json, as an HTTP client of the gateway would.
//! `--via json` and `--via msgpack` call the same method through the generated client, one
//! `prpc::Client` per connection, in that body format.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use prpc::{Client, Format, Server};
use prpc_benches::counters::process_cpu_time;
use prpc_benches::driver::{self, Caller};
use prpc_benches::options::{self, Options, Role};
use serde::Serialize;
use tokio::sync::Mutex;

/// A string in, the same string out.
#[prpc::service]
pub trait Echo {
    /// The text, back.
    async fn echo(&self, text: String) -> String;
    /// The server's CPU time so far, in nanoseconds.
    async fn cpu(&self) -> u64;
}

struct Echoer;

impl Echo for Echoer {
    async fn echo(&self, text: String) -> String {
        text
    }

    async fn cpu(&self) -> u64 {
        process_cpu_time().as_nanos() as u64
    }
}

/// How the client calls the method.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// HTTP/1.1 to the JSON gateway.
    Gateway,
    /// The generated client, with this body format.
    Prpc(Format),
}

fn main() {
    let (via, options) = parse_args();
    match options.role {
        Role::Server => options.runtime.run(serve(options)),
        Role::Client => options.runtime.run(drive(options, via)),
    }
}

/// `--via` here, the rest as every echo program takes it.
fn parse_args() -> (Via, Options) {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut via = Via::Gateway;
    if let Some(at) = args.iter().position(|arg| arg == "--via") {
        let value = args.get(at + 1).cloned().unwrap_or_default();
        via = match value.as_str() {
            "gateway" => Via::Gateway,
            "json" => Via::Prpc(Format::Json),
            "msgpack" => Via::Prpc(Format::MsgPack),
            other => {
                eprintln!("--via is gateway, json or msgpack, not {other:?}");
                std::process::exit(2);
            }
        };
        args.drain(at..at + 2);
    }
    match Options::parse(args) {
        Ok(options) => (via, options),
        Err(error) => {
            eprintln!("{error}\n{}", options::USAGE);
            std::process::exit(2);
        }
    }
}

async fn serve(options: Options) {
    let server = Server::builder()
        .add_service(EchoServer::new(Echoer))
        .bind(&options.addr)
        .await
        .expect("bind");
    let bound = server.local_addr().socket_addr().expect("a TCP address");
    let server = prpc_http::Http::new()
        .attach(server)
        .await
        .expect("attach prpc-http");
    options::announce(bound);
    server.serve().await.expect("serve");
}

async fn drive(options: Options, via: Via) {
    let mut sockets = Vec::new();
    match via {
        Via::Gateway => {
            let mut callers = Vec::new();
            for _ in 0..options.connections {
                let (stream, socket) = driver::connect(&options.addr).await;
                callers.push(GatewayCaller::handshake(stream, &options.addr).await);
                sockets.push(socket);
            }
            driver::drive(&options, callers, sockets).await;
        }
        Via::Prpc(format) => {
            let mut callers = Vec::new();
            for _ in 0..options.connections {
                let (stream, socket) = driver::connect(&options.addr).await;
                let client = Client::builder().from_stream(stream);
                callers.push(PrpcCaller {
                    client: EchoClient::new(client).with_format(format),
                });
                sockets.push(socket);
            }
            driver::drive(&options, callers, sockets).await;
        }
    }
}

/// One generated client over one `prpc::Client` (one connection).
#[derive(Clone)]
struct PrpcCaller {
    client: EchoClient,
}

impl Caller for PrpcCaller {
    async fn echo(&self, body: Bytes) -> usize {
        let text = String::from_utf8(body.to_vec()).expect("an ASCII body");
        self.client.echo(text).await.expect("echo call").len()
    }

    async fn server_cpu(&self) -> Duration {
        Duration::from_nanos(self.client.cpu().await.expect("cpu call"))
    }
}

/// One kept-alive HTTP/1.1 connection to the gateway. HTTP/1.1 carries one request at a
/// time, so the callers of a connection take turns (the script runs one caller per
/// connection, and the lock is never contended).
#[derive(Clone)]
struct GatewayCaller {
    sender: Arc<Mutex<SendRequest<Full<Bytes>>>>,
    host: Arc<str>,
}

#[derive(Serialize)]
struct EchoArguments<'a> {
    text: &'a str,
}

impl GatewayCaller {
    async fn handshake(stream: tokio::net::TcpStream, host: &str) -> GatewayCaller {
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("gateway connection: {error}");
            }
        });
        GatewayCaller {
            sender: Arc::new(Mutex::new(sender)),
            host: host.into(),
        }
    }

    /// `POST /Echo/METHOD` with `arguments`; the answer's body, which must come with `200`.
    async fn post(&self, method: &str, arguments: Vec<u8>) -> Bytes {
        let request = Request::post(format!("/Echo/{method}"))
            .header(HOST, &*self.host)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(arguments)))
            .expect("a request");
        let response = {
            let mut sender = self.sender.lock().await;
            sender.ready().await.expect("the connection is open");
            sender.send_request(request).await.expect("a response")
        };
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the response body")
            .to_bytes();
        assert_eq!(
            status,
            StatusCode::OK,
            "gateway answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    }
}

impl Caller for GatewayCaller {
    async fn echo(&self, body: Bytes) -> usize {
        let text = std::str::from_utf8(&body).expect("an ASCII body");
        let arguments = serde_json::to_vec(&EchoArguments { text }).expect("JSON arguments");
        let answer = self.post("echo", arguments).await;
        let echoed: String = serde_json::from_slice(&answer).expect("a JSON string");
        echoed.len()
    }

    async fn server_cpu(&self) -> Duration {
        let answer = self.post("cpu", b"{}".to_vec()).await;
        Duration::from_nanos(serde_json::from_slice(&answer).expect("a JSON number"))
    }
}
