//! The echo of `macro_echo` (a `#[prpc::service]` trait, its generated client, MessagePack),
//! with the client over a `prpc::cluster::Cluster` of one endpoint instead of a direct
//! `prpc::Client`: what the balanced client costs per call. Same command line, output and
//! server as `macro_echo` (either program's client loads either's server), so
//! `benches/compare.sh` runs it as the framework `cluster` beside `macro`
//! (`FRAMEWORKS="macro cluster" SCENARIOS=b benches/compare.sh`); `benches/cluster.sh` runs
//! the two clients in turn against one `macro_echo` server.
//!
//! Each connection is a cluster of its own over the one address (round robin, the default
//! failover, retry budget and breaker), so `--connections N` opens N connections as
//! `macro_echo` does. The cluster dials itself, so the report's socket counters stay zero.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use prpc::cluster::Cluster;
use prpc::discovery::{Endpoint, StaticDiscover};
use prpc_benches::counters::process_cpu_time;
use prpc_benches::driver::{self, Caller};
use prpc_benches::options::{Options, Role};

/// Bytes in, the same bytes out (the trait `macro_echo` serves).
#[prpc::service]
pub trait Echo {
    /// The payload, back.
    async fn echo(&self, payload: Bytes) -> Bytes;
    /// The server's CPU time so far, in nanoseconds.
    async fn cpu(&self) -> u64;
}

struct Echoer;

impl Echo for Echoer {
    async fn echo(&self, payload: Bytes) -> Bytes {
        payload
    }

    async fn cpu(&self) -> u64 {
        process_cpu_time().as_nanos() as u64
    }
}

/// `macro_echo`'s server, so that `compare.sh` can start this program as it starts the
/// others.
async fn serve(options: Options) {
    let server = prpc::Server::builder()
        .add_service(EchoServer::new(Echoer))
        .bind(&options.addr)
        .await
        .expect("bind");
    let bound = server.local_addr().to_string();
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening {}", bound.trim_start_matches("tcp://"));
        let _ = stdout.flush();
    }
    server.serve().await.expect("serve");
}

/// One generated client over one cluster.
#[derive(Clone)]
struct ClusterCaller {
    client: EchoClient<Cluster>,
}

impl Caller for ClusterCaller {
    async fn echo(&self, body: Bytes) -> usize {
        self.client.echo(body).await.expect("echo call").len()
    }

    async fn server_cpu(&self) -> Duration {
        Duration::from_nanos(self.client.cpu().await.expect("cpu call"))
    }
}

fn main() {
    let options = Options::from_args();
    match options.role {
        Role::Server => options.runtime.run(serve(options)),
        Role::Client => options.runtime.run(drive(options)),
    }
}

async fn drive(options: Options) {
    let endpoint = Endpoint::new(options.addr.as_str()).expect("an address");
    let mut callers = Vec::new();
    let mut sources = Vec::new();
    for _ in 0..options.connections {
        let source = StaticDiscover::new([endpoint.clone()]);
        let cluster = Cluster::builder()
            .balance("round_robin".parse().expect("an algorithm"))
            .build(&source, "Echo");
        sources.push(source);
        callers.push(ClusterCaller {
            client: EchoClient::new(cluster),
        });
    }
    driver::drive(&options, callers, Vec::new()).await;
}
