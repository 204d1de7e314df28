//! The stream benchmarks (`benches/stream.sh`) in tonic: gRPC server and client streaming
//! over HTTP/2, stubs generated from `proto/stream.proto` by tonic-prost-build, `bytes`
//! fields as `bytes::Bytes`, tonic's defaults otherwise (its flow-control windows among
//! them), with `TCP_NODELAY` on both sides. Same command line and report as `prpc_stream`.
//!
//! ```text
//! tonic_stream server [ADDR] [--runtime current|multi]
//! tonic_stream client ADDR --scenario server-stream|client-stream|mixed [--size BYTES] ...
//! ```
//!
//! The client is one `tonic::transport::Channel` (one HTTP/2 connection), shared by its
//! streams and callers by cloning, as tonic intends.

use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use hyper_util::rt::TokioIo;
use prpc_benches::driver::{self, Caller};
use prpc_benches::options::{self, Role};
use prpc_benches::streams::{
    self, Receiver, Scenario, ServerStats, StreamCaller, StreamOptions, record_received,
};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server, Uri};
use tonic::{Request, Response, Status};

mod pb {
    tonic::include_proto!("stream");
}

use pb::streams_client::StreamsClient;
use pb::streams_server::{Streams, StreamsServer};
use pb::{Chunk, StatsReply, StatsRequest, StreamRequest, UploadReply};

struct StreamsService;

#[tonic::async_trait]
impl Streams for StreamsService {
    async fn echo(&self, request: Request<Chunk>) -> Result<Response<Chunk>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    type StreamStream = Pin<Box<dyn Stream<Item = Result<Chunk, Status>> + Send + 'static>>;

    async fn stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let data = Bytes::from(vec![0x5a; request.into_inner().size as usize]);
        let chunks = futures::stream::repeat_with(move || Ok(Chunk { data: data.clone() }));
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn upload(
        &self,
        request: Request<tonic::Streaming<Chunk>>,
    ) -> Result<Response<UploadReply>, Status> {
        let mut chunks = request.into_inner();
        while let Some(chunk) = chunks.message().await? {
            record_received(chunk.data.len());
        }
        Ok(Response::new(UploadReply {}))
    }

    async fn stats(&self, _: Request<StatsRequest>) -> Result<Response<StatsReply>, Status> {
        let stats = ServerStats::now();
        Ok(Response::new(StatsReply {
            received_bytes: stats.received_bytes,
            received_messages: stats.received_messages,
            cpu_nanos: stats.cpu.as_nanos() as u64,
            clock_nanos: stats.clock.as_nanos() as u64,
        }))
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
    let listener = TcpListener::bind(&options.common.addr).await.expect("bind");
    options::announce(listener.local_addr().expect("local address"));
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(StreamsServer::new(StreamsService))
        .serve_with_incoming(incoming)
        .await
        .expect("serve");
}

#[derive(Clone)]
struct TonicCaller(StreamsClient<Channel>);

struct TonicReceiver(tonic::Streaming<Chunk>);

impl Receiver for TonicReceiver {
    async fn next(&mut self) -> usize {
        match self.0.message().await {
            Ok(Some(chunk)) => chunk.data.len(),
            Ok(None) => panic!("server stream ended"),
            Err(status) => panic!("server stream failed: {status}"),
        }
    }
}

impl StreamCaller for TonicCaller {
    type Receiver = TonicReceiver;

    async fn server_stream(&self, size: usize) -> TonicReceiver {
        // Generated clients take `&mut self`; a clone of one shares its channel.
        let mut client = self.0.clone();
        let size = u32::try_from(size).expect("message size under 4 GiB");
        let reply = client
            .stream(StreamRequest { size })
            .await
            .expect("stream call");
        TonicReceiver(reply.into_inner())
    }

    async fn start_upload(&self, chunk: Bytes) {
        let mut client = self.0.clone();
        let chunks = futures::stream::repeat_with(move || Chunk {
            data: chunk.clone(),
        });
        // The call's future sends the stream and answers at its end: it runs until the
        // process ends.
        tokio::spawn(async move { client.upload(chunks).await });
    }

    async fn stats(&self) -> ServerStats {
        let mut client = self.0.clone();
        let reply = client.stats(StatsRequest {}).await.expect("stats call");
        let reply = reply.into_inner();
        ServerStats {
            received_bytes: reply.received_bytes,
            received_messages: reply.received_messages,
            cpu: Duration::from_nanos(reply.cpu_nanos),
            clock: Duration::from_nanos(reply.clock_nanos),
        }
    }
}

impl Caller for TonicCaller {
    async fn echo(&self, body: Bytes) -> usize {
        let mut client = self.0.clone();
        let reply = client.echo(Chunk { data: body }).await.expect("echo call");
        reply.into_inner().data.len()
    }

    async fn server_cpu(&self) -> Duration {
        self.stats().await.cpu
    }
}

async fn drive(options: StreamOptions) {
    let addr = options.common.addr.clone();
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
    // The connector opens the socket itself (TCP_NODELAY on) and keeps a handle to it for
    // the socket counters.
    let opened: Arc<Mutex<Option<OwnedFd>>> = Arc::default();
    let connector = {
        let opened = opened.clone();
        tower::service_fn(move |_: Uri| {
            let addr = addr.clone();
            let opened = opened.clone();
            async move {
                let (stream, socket) = driver::connect(&addr).await;
                *opened.lock().expect("socket") = Some(socket);
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        })
    };
    let channel = endpoint
        .connect_with_connector(connector)
        .await
        .expect("connect");
    let socket = opened.lock().expect("socket").take().expect("one socket");
    let caller = TonicCaller(StreamsClient::new(channel));
    match options.scenario {
        Scenario::Mixed => streams::mixed(&options, caller, socket).await,
        _ => streams::drive(&options, caller, socket).await,
    }
}
