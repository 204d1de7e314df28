//! Loopback echo benchmark for prpc: bytes in, the same bytes out. The server and the client
//! run as separate processes (pinned to different cores by `benches/compare.sh`, which runs
//! this beside the same echo in tarpc, tonic and a raw framed baseline).
//!
//! ```text
//! prpc_echo server [127.0.0.1:7070] [--runtime current|multi]
//! prpc_echo client 127.0.0.1:7070 [--connections 1] [--in-flight 128] [--size 64]
//!                  [--seconds 5] [--warmup 1] [--runtime current|multi]
//! ```
//! The server prints `listening ADDR`; the client prints one line of `key=value` fields,
//! starting `in_flight= size= calls/s= p50_us= p99_us= p999_us=` (see
//! `prpc_benches::driver` for all of them).
//!
//! The service is hand-written over `prpc::Service` with `Format::Raw` bodies, so the body
//! travels as is. Method `cpu` answers the server's CPU time in nanoseconds (8 bytes,
//! big-endian); the client reads it before and after the measured run.
//!
//! With `PRPC_ECHO_HTTP=1` in its environment the server is attached to `prpc-http`
//! (`Http::new().attach(server)`), so its port serves HTTP beside prpc frames: what frames
//! cost through that layer (`benches/compare.sh` runs this as the framework `http`; the
//! client is the same).

use std::time::Duration;

use bytes::Bytes;
use prpc::{
    ByteString, Call, Client, Format, Request, Response, Server, Service, ServiceFuture, Status,
};
use prpc_benches::counters::process_cpu_time;
use prpc_benches::driver::{self, Caller};
use prpc_benches::options::{self, Options, Role};

const SERVICE: &str = "Echo";

/// Bytes in, the same bytes out.
struct Echo;

impl Service for Echo {
    fn name(&self) -> &str {
        SERVICE
    }

    fn methods(&self) -> Vec<String> {
        vec!["echo".into(), "cpu".into()]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        Box::pin(async move {
            match &*request.method {
                "echo" => Ok(Response::new(request.body)),
                "cpu" => {
                    let nanos = process_cpu_time().as_nanos() as u64;
                    Ok(Response::new(Bytes::copy_from_slice(&nanos.to_be_bytes())))
                }
                other => Err(Status::unimplemented(format!("no method {other}"))),
            }
        })
    }
}

fn main() {
    let options = Options::from_args();
    match options.role {
        Role::Server => options.runtime.run(serve(options)),
        Role::Client => options.runtime.run(drive(options)),
    }
}

async fn serve(options: Options) {
    let server = Server::builder()
        // PRPC_STATS=0: the server's stats off, for what they cost (compare.sh nostats).
        .stats(std::env::var_os("PRPC_STATS").is_none_or(|value| value != "0"))
        .add_service(Echo)
        .bind(&options.addr)
        .await
        .expect("bind");
    let bound = server.local_addr().socket_addr().expect("a TCP address");
    if std::env::var_os("PRPC_ECHO_HTTP").is_some_and(|value| value == "1") {
        let server = prpc_http::Http::new()
            .attach(server)
            .await
            .expect("attach prpc-http");
        options::announce(bound);
        server.serve().await.expect("serve");
    } else {
        options::announce(bound);
        server.serve().await.expect("serve");
    }
}

/// One `prpc::Client` (one connection).
#[derive(Clone)]
struct PrpcCaller {
    client: Client,
}

impl Caller for PrpcCaller {
    async fn echo(&self, body: Bytes) -> usize {
        // Built in place, as a generated stub builds its calls.
        let call = Call::new(
            ByteString::from_static(SERVICE),
            ByteString::from_static("echo"),
            Format::Raw,
            body,
        );
        let reply = self.client.call(call).await.expect("echo call");
        reply.body.len()
    }

    async fn server_cpu(&self) -> Duration {
        let call = Call::new(
            ByteString::from_static(SERVICE),
            ByteString::from_static("cpu"),
            Format::Raw,
            Bytes::new(),
        );
        let reply = self.client.call(call).await.expect("cpu call");
        let nanos = reply.body[..]
            .try_into()
            .map(u64::from_be_bytes)
            .expect("8-byte cpu reply");
        Duration::from_nanos(nanos)
    }
}

async fn drive(options: Options) {
    let mut callers = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..options.connections {
        let (stream, socket) = driver::connect(&options.addr).await;
        let client = Client::builder().from_stream(stream);
        callers.push(PrpcCaller { client });
        sockets.push(socket);
    }
    driver::drive(&options, callers, sockets).await;
}
