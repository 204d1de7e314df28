//! The echo of the peer comparison in tarpc (latest release), over its fastest built-in
//! transport: `tarpc::serde_transport` with the bincode codec on TCP, bodies as
//! `bytes::Bytes` (serde bytes, so bincode writes one length-prefixed blob). Same command line
//! and report as `prpc_echo`.
//!
//! ```text
//! tarpc_echo server [ADDR] [--runtime current|multi]
//! tarpc_echo client ADDR [--connections N] [--in-flight N] [--size BYTES] [--seconds S] ...
//! ```

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use prpc_benches::counters::process_cpu_time;
use prpc_benches::driver::{self, Caller};
use prpc_benches::options::{self, Options, Role};
use prpc_benches::record::Record;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::{Framed, LengthDelimitedCodec};
use tarpc::{client, context, serde_transport};
use tokio::net::{TcpListener, TcpStream};

/// Frames up to 16 MiB, as prpc allows (the codec's default is 8 MiB).
const MAX_FRAME: usize = 16 * 1024 * 1024;

#[tarpc::service]
trait Echo {
    /// Bytes in, the same bytes out.
    async fn echo(body: Bytes) -> Bytes;
    /// The server process's CPU time so far, in nanoseconds.
    async fn cpu_nanos() -> u64;
    /// The record, back (scenario (e)).
    async fn echo_record(record: Record) -> Record;
}

#[derive(Clone)]
struct EchoService;

impl Echo for EchoService {
    async fn echo(self, _: context::Context, body: Bytes) -> Bytes {
        body
    }

    async fn cpu_nanos(self, _: context::Context) -> u64 {
        process_cpu_time().as_nanos() as u64
    }

    async fn echo_record(self, _: context::Context, record: Record) -> Record {
        record
    }
}

fn framed(stream: TcpStream) -> Framed<TcpStream, LengthDelimitedCodec> {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec();
    Framed::new(stream, codec)
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
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let transport = serde_transport::new(framed(stream), Bincode::default());
        let requests = BaseChannel::with_defaults(transport).execute(EchoService.serve());
        tokio::spawn(requests.for_each(|handler| async {
            tokio::spawn(handler);
        }));
    }
}

#[derive(Clone)]
struct TarpcCaller(EchoClient);

impl Caller for TarpcCaller {
    async fn echo(&self, body: Bytes) -> usize {
        let reply = self
            .0
            .echo(context::current(), body)
            .await
            .expect("echo call");
        reply.len()
    }

    async fn echo_record(&self, record: &Record, encoded: &Bytes) -> usize {
        let echoed = self
            .0
            .echo_record(context::current(), record.clone())
            .await
            .expect("echo_record call");
        if echoed.id == record.id && echoed.ratings.len() == record.ratings.len() {
            encoded.len()
        } else {
            0
        }
    }

    async fn server_cpu(&self) -> Duration {
        let nanos = self
            .0
            .cpu_nanos(context::current())
            .await
            .expect("cpu call");
        Duration::from_nanos(nanos)
    }
}

async fn drive(options: Options) {
    let mut callers = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..options.connections {
        let (stream, socket) = driver::connect(&options.addr).await;
        let transport = serde_transport::new(framed(stream), Bincode::default());
        let client = EchoClient::new(client::Config::default(), transport).spawn();
        callers.push(TarpcCaller(client));
        sockets.push(socket);
    }
    driver::drive(&options, callers, sockets).await;
}
