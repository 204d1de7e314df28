//! The echo of `macro_echo` (a `#[prpc::service]` trait, its generated client, MessagePack),
//! with the client over a `prpc::cluster::Cluster` of one endpoint instead of a direct
//! `prpc::Client`: what the balanced client costs per call. Same command line and output as
//! `macro_echo` (whose server it loads: `cluster_echo client ADDR` against
//! `macro_echo server`); `benches/cluster.sh` runs the two clients in turn.
//!
//! Each connection is a cluster of its own over the one address (round robin, the default
//! failover, retry budget and breaker), so `--connections N` opens N connections as
//! `macro_echo` does. The cluster dials itself, so the report's socket counters stay zero.

use std::time::Duration;

use bytes::Bytes;
use prpc::cluster::Cluster;
use prpc::discovery::{Endpoint, StaticDiscover};
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
        Role::Server => panic!("cluster_echo only loads a server: run macro_echo server"),
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
