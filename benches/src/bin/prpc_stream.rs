//! The stream benchmarks (`benches/stream.sh`) for prpc through its raw layer: a hand-written
//! `prpc::Service` with `Format::Raw` messages (no serialization), as `prpc_echo` is for
//! unary calls. Command line, methods and report: `prpc_benches::streams`.
//!
//! ```text
//! prpc_stream server [ADDR] [--runtime current|multi]
//! prpc_stream client ADDR --scenario server-stream|client-stream|mixed [--size BYTES] ...
//! ```
//!
//! `stream`'s request body is the message size (u32, big-endian); its messages are that many
//! bytes, the same `Bytes` sent again and again. `stats` answers
//! `prpc_benches::streams::ServerStats` encoded.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use prpc::stream::{Message, MessageStream, Messages};
use prpc::{
    ByteString, Call, Client, Format, Request, Response, Server, Service, ServiceFuture, Status,
};
use prpc_benches::driver::{self, Caller};
use prpc_benches::options::{self, Role};
use prpc_benches::streams::{
    self, Receiver, Scenario, ServerStats, StreamCaller, StreamOptions, record_received,
};

const SERVICE: &str = "Streams";

struct Streams;

impl Service for Streams {
    fn name(&self) -> &str {
        SERVICE
    }

    fn methods(&self) -> Vec<String> {
        ["echo", "stream", "upload", "stats"]
            .map(String::from)
            .into()
    }

    fn call(&self, mut request: Request) -> ServiceFuture {
        Box::pin(async move {
            match &*request.method {
                "echo" => Ok(Response::new(request.body)),
                "stream" => {
                    let size = request.body[..]
                        .try_into()
                        .map(u32::from_be_bytes)
                        .map_err(|_| Status::invalid_argument("stream takes a u32 size"))?;
                    Ok(Response::stream(
                        forever(Bytes::from(vec![0x5a; size as usize])),
                        Default::default(),
                    ))
                }
                "upload" => {
                    let mut messages = request
                        .messages
                        .take()
                        .ok_or_else(|| Status::invalid_argument("upload is a client stream"))?;
                    while let Some(message) = next(&mut messages).await {
                        let message =
                            message.map_err(|error| Status::internal(error.to_string()))?;
                        record_received(message.body.len());
                    }
                    Ok(Response::new(Bytes::new()))
                }
                "stats" => Ok(Response::new(Bytes::copy_from_slice(
                    &ServerStats::now().encode(),
                ))),
                other => Err(Status::unimplemented(format!("no method {other}"))),
            }
        })
    }
}

/// `body` as a message, again and again.
fn forever(body: Bytes) -> MessageStream {
    Box::pin(futures::stream::repeat_with(move || {
        Ok(Message::new(body.clone()))
    }))
}

async fn next(messages: &mut Messages) -> Option<Result<Message, prpc::Error>> {
    poll_fn(|cx| Pin::new(&mut *messages).poll_next(cx)).await
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
        .add_service(Streams)
        .bind(&options.common.addr)
        .await
        .expect("bind");
    options::announce(server.local_addr().socket_addr().expect("a TCP address"));
    server.serve().await.expect("serve");
}

/// One `prpc::Client` (one connection).
#[derive(Clone)]
struct PrpcCaller {
    client: Client,
}

impl PrpcCaller {
    fn call(method: &'static str, body: Bytes) -> Call {
        Call::new(
            ByteString::from_static(SERVICE),
            ByteString::from_static(method),
            Format::Raw,
            body,
        )
    }
}

struct PrpcReceiver(Messages);

impl Receiver for PrpcReceiver {
    async fn next(&mut self) -> usize {
        match next(&mut self.0).await {
            Some(Ok(message)) => message.body.len(),
            Some(Err(error)) => panic!("server stream failed: {error}"),
            None => panic!("server stream ended"),
        }
    }
}

impl StreamCaller for PrpcCaller {
    type Receiver = PrpcReceiver;

    async fn server_stream(&self, size: usize) -> PrpcReceiver {
        let size = u32::try_from(size).expect("message size under 4 GiB");
        let call = PrpcCaller::call("stream", Bytes::copy_from_slice(&size.to_be_bytes()));
        let reply = self
            .client
            .call(call.stream(None))
            .await
            .expect("stream call");
        PrpcReceiver(reply.messages.expect("a stream's reply has messages"))
    }

    async fn start_upload(&self, chunk: Bytes) {
        let call = PrpcCaller::call("upload", Bytes::new()).stream(Some(forever(chunk)));
        let reply = self.client.call(call).await.expect("upload call");
        let messages = reply.messages.expect("a stream's reply has messages");
        // Kept until the process ends: dropping it would cancel the upload.
        tokio::spawn(messages.reply());
    }

    async fn stats(&self) -> ServerStats {
        let reply = self
            .client
            .call(PrpcCaller::call("stats", Bytes::new()))
            .await
            .expect("stats call");
        ServerStats::decode(&reply.body)
    }
}

impl Caller for PrpcCaller {
    async fn echo(&self, body: Bytes) -> usize {
        let reply = self
            .client
            .call(PrpcCaller::call("echo", body))
            .await
            .expect("echo call");
        reply.body.len()
    }

    async fn server_cpu(&self) -> Duration {
        self.stats().await.cpu
    }
}

async fn drive(options: StreamOptions) {
    let (stream, socket) = driver::connect(&options.common.addr).await;
    let caller = PrpcCaller {
        client: Client::builder().from_stream(stream),
    };
    match options.scenario {
        Scenario::Mixed => streams::mixed(&options, caller, socket).await,
        _ => streams::drive(&options, caller, socket).await,
    }
}
