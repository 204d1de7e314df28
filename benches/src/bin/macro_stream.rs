//! The stream benchmarks (`benches/stream.sh`) through the path users write: a
//! `#[prpc::service]` trait with streaming methods, its generated client and server, items in
//! the default format (MessagePack). Same command line, methods and report as `prpc_stream`
//! (see `prpc_benches::streams`); stream.sh runs it as the framework `macro`.
//!
//! ```text
//! macro_stream server [ADDR] [--runtime current|multi]
//! macro_stream client ADDR --scenario server-stream|client-stream|mixed [--size BYTES] ...
//! ```

use std::time::Duration;

use bytes::Bytes;
use prpc::{Client, Server, Streaming};
use prpc_benches::driver::{self, Caller};
use prpc_benches::options::{self, Role};
use prpc_benches::streams::{
    self, Receiver, Scenario, ServerStats, StreamCaller, StreamOptions, record_received,
};

/// The stream programs' service.
#[prpc::service]
pub trait Streams {
    /// The payload, back.
    async fn echo(&self, payload: Bytes) -> Bytes;
    /// Messages of `size` bytes, without end.
    async fn stream(&self, size: u32) -> Streaming<Bytes>;
    /// Counts the chunks it takes; answers how many once they end.
    async fn upload(&self, chunks: Streaming<Bytes>) -> u64;
    /// `ServerStats`, encoded.
    async fn stats(&self) -> Bytes;
}

struct Service;

impl Streams for Service {
    async fn echo(&self, payload: Bytes) -> Bytes {
        payload
    }

    async fn stream(&self, size: u32) -> Streaming<Bytes> {
        let body = Bytes::from(vec![0x5a; size as usize]);
        Streaming::new(futures::stream::repeat_with(move || body.clone()))
    }

    async fn upload(&self, mut chunks: Streaming<Bytes>) -> u64 {
        let mut taken = 0;
        while let Ok(Some(chunk)) = chunks.message().await {
            record_received(chunk.len());
            taken += 1;
        }
        taken
    }

    async fn stats(&self) -> Bytes {
        Bytes::copy_from_slice(&ServerStats::now().encode())
    }
}

fn main() {
    let options = StreamOptions::from_args();
    match options.common.role {
        Role::Server => options.common.runtime.run(serve(options)),
        Role::Client => options.common.runtime.run(drive(options)),
    }
}

async fn serve(options: StreamOptions) {
    let server = Server::builder()
        .add_service(StreamsServer::new(Service))
        .bind(&options.common.addr)
        .await
        .expect("bind");
    options::announce(server.local_addr().socket_addr().expect("a TCP address"));
    server.serve().await.expect("serve");
}

/// One generated client over one `prpc::Client` (one connection).
#[derive(Clone)]
struct MacroCaller {
    client: StreamsClient,
}

struct MacroReceiver(Streaming<Bytes>);

impl Receiver for MacroReceiver {
    async fn next(&mut self) -> usize {
        match self.0.message().await {
            Ok(Some(item)) => item.len(),
            Ok(None) => panic!("server stream ended"),
            Err(error) => panic!("server stream failed: {error}"),
        }
    }
}

impl StreamCaller for MacroCaller {
    type Receiver = MacroReceiver;

    async fn server_stream(&self, size: usize) -> MacroReceiver {
        let size = u32::try_from(size).expect("message size under 4 GiB");
        MacroReceiver(self.client.stream(size).await.expect("stream call"))
    }

    async fn start_upload(&self, chunk: Bytes) {
        let client = self.client.clone();
        let chunks = futures::stream::repeat_with(move || chunk.clone());
        // The call answers at the end of its stream: it runs until the process ends.
        tokio::spawn(async move { client.upload(chunks).await });
    }

    async fn stats(&self) -> ServerStats {
        ServerStats::decode(&self.client.stats().await.expect("stats call"))
    }
}

impl Caller for MacroCaller {
    async fn echo(&self, body: Bytes) -> usize {
        self.client.echo(body).await.expect("echo call").len()
    }

    async fn server_cpu(&self) -> Duration {
        StreamCaller::stats(self).await.cpu
    }
}

async fn drive(options: StreamOptions) {
    let (stream, socket) = driver::connect(&options.common.addr).await;
    let caller = MacroCaller {
        client: StreamsClient::new(Client::builder().from_stream(stream)),
    };
    match options.scenario {
        Scenario::Mixed => streams::mixed(&options, caller, socket).await,
        _ => streams::drive(&options, caller, socket).await,
    }
}
