//! The echo of the peer comparison in tonic (latest release): gRPC over HTTP/2 with stubs
//! generated from `proto/echo.proto` by tonic-prost-build (protox parses it: no protoc), and
//! `bytes` fields as `bytes::Bytes`. tonic's defaults otherwise, with `TCP_NODELAY` on both
//! sides. Same command line and report as `prpc_echo`.
//!
//! ```text
//! tonic_echo server [ADDR] [--runtime current|multi]
//! tonic_echo client ADDR [--connections N] [--in-flight N] [--size BYTES] [--seconds S] ...
//! ```
//!
//! Each connection is one `tonic::transport::Channel` (one HTTP/2 connection); the callers on
//! it share it as tonic intends, by cloning the channel.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use prpc_benches::counters::process_cpu_time;
use prpc_benches::driver::{self, Caller};
use prpc_benches::options::{self, Options, Role};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server, Uri};
use tonic::{Request, Response, Status};

mod pb {
    tonic::include_proto!("echo");
}

use pb::echo_client::EchoClient;
use pb::echo_server::{Echo, EchoServer};
use pb::{CpuReply, CpuRequest, Payload};

struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(&self, request: Request<Payload>) -> Result<Response<Payload>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn cpu(&self, _: Request<CpuRequest>) -> Result<Response<CpuReply>, Status> {
        let nanos = process_cpu_time().as_nanos() as u64;
        Ok(Response::new(CpuReply { nanos }))
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
    let listener = TcpListener::bind(&options.addr).await.expect("bind");
    options::announce(listener.local_addr().expect("local address"));
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(EchoServer::new(EchoService))
        .serve_with_incoming(incoming)
        .await
        .expect("serve");
}

#[derive(Clone)]
struct TonicCaller(EchoClient<Channel>);

impl Caller for TonicCaller {
    async fn echo(&self, body: Bytes) -> usize {
        // Generated clients take `&mut self`; a clone of one shares its channel.
        let mut client = self.0.clone();
        let reply = client
            .echo(Payload { data: body })
            .await
            .expect("echo call");
        reply.into_inner().data.len()
    }

    async fn server_cpu(&self) -> Duration {
        let mut client = self.0.clone();
        let reply = client.cpu(CpuRequest {}).await.expect("cpu call");
        Duration::from_nanos(reply.into_inner().nanos)
    }
}

async fn drive(options: Options) {
    let addr = options.addr.clone();
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
    let opened: Arc<Mutex<Vec<OwnedFd>>> = Arc::default();
    let mut callers = Vec::new();
    for _ in 0..options.connections {
        // The connector opens the socket itself (TCP_NODELAY on) and keeps a handle to it
        // for the socket counters.
        let addr = addr.clone();
        let opened = opened.clone();
        let connector = tower::service_fn(move |_: Uri| {
            let addr = addr.clone();
            let opened = opened.clone();
            async move {
                let (stream, socket) = driver::connect(&addr).await;
                opened.lock().expect("socket list").push(socket);
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        });
        let channel = endpoint
            .connect_with_connector(connector)
            .await
            .expect("connect");
        callers.push(TonicCaller(EchoClient::new(channel)));
    }
    let sockets = std::mem::take(&mut *opened.lock().expect("socket list"));
    assert_eq!(sockets.len(), callers.len(), "one socket per channel");
    driver::drive(&options, callers, sockets).await;
}
