//! The loopback echo through the path users write: a `#[prpc::service]` trait, its generated
//! client and server, arguments in the default format (MessagePack). Same command line and
//! output as `prpc_echo` (see there); `benches/compare.sh` runs it as the framework `macro`.
//!
//! It compiles against the API of earlier commits too (where `from_stream` returned a
//! `Result` and `local_addr` a `SocketAddr`), so that `benches/baseline.sh REV macro_echo`
//! can build it at REV for a before/after run.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use prpc::{Client, Server};
use prpc_benches::counters::process_cpu_time;
use prpc_benches::driver::{self, Caller};
use prpc_benches::options::{Options, Role};
use prpc_benches::record::Record;

/// Bytes in, the same bytes out.
#[prpc::service]
pub trait Echo {
    /// The payload, back.
    async fn echo(&self, payload: Bytes) -> Bytes;
    /// The server's CPU time so far, in nanoseconds.
    async fn cpu(&self) -> u64;
    /// The record, back (scenario (e)).
    async fn echo_record(&self, record: Record) -> Record;
}

struct Echoer;

impl Echo for Echoer {
    async fn echo(&self, payload: Bytes) -> Bytes {
        payload
    }

    async fn cpu(&self) -> u64 {
        process_cpu_time().as_nanos() as u64
    }

    async fn echo_record(&self, record: Record) -> Record {
        record
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
        .add_service(EchoServer::new(Echoer))
        .bind(&options.addr)
        .await
        .expect("bind");
    // `tcp://127.0.0.1:PORT` (or, before addresses had schemes, `127.0.0.1:PORT`).
    announce(&server.local_addr().to_string());
    server.serve().await.expect("serve");
}

/// `listening ADDR` on stdout, as `prpc_benches::options::announce` prints it.
fn announce(bound: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening {}", bound.trim_start_matches("tcp://"));
    let _ = stdout.flush();
}

/// A client made from a stream, whichever the API returns.
trait IntoClient {
    fn into_client(self) -> Client;
}

impl IntoClient for Client {
    fn into_client(self) -> Client {
        self
    }
}

impl IntoClient for Result<Client, prpc::Error> {
    fn into_client(self) -> Client {
        self.expect("prpc client")
    }
}

/// One generated client over one `prpc::Client` (one connection).
#[derive(Clone)]
struct MacroCaller {
    client: EchoClient,
}

impl Caller for MacroCaller {
    async fn echo(&self, body: Bytes) -> usize {
        self.client.echo(body).await.expect("echo call").len()
    }

    async fn echo_record(&self, record: &Record, encoded: &Bytes) -> usize {
        let echoed = self
            .client
            .echo_record(record.clone())
            .await
            .expect("echo_record call");
        if echoed.id == record.id && echoed.ratings.len() == record.ratings.len() {
            encoded.len()
        } else {
            0
        }
    }

    async fn server_cpu(&self) -> Duration {
        Duration::from_nanos(self.client.cpu().await.expect("cpu call"))
    }
}

async fn drive(options: Options) {
    let mut callers = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..options.connections {
        let (stream, socket) = driver::connect(&options.addr).await;
        let client = Client::builder().from_stream(stream).into_client();
        callers.push(MacroCaller {
            client: EchoClient::new(client),
        });
        sockets.push(socket);
    }
    driver::drive(&options, callers, sockets).await;
}
