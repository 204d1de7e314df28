//! A service generated from a `.proto` file (proto/echo.proto, compiled by build.rs with
//! prpc-build): the same handler trait, `EchoServer` and `EchoClient` as `#[prpc::service]`,
//! called in protobuf (the default) and in the proto3 JSON mapping, with a handler status.
//!
//! ```text
//! cargo run -p prpc-examples --bin proto_echo                       # server and client in one process
//! cargo run -p prpc-examples --bin proto_echo -- serve 127.0.0.1:7001
//! cargo run -p prpc-examples --bin proto_echo -- call 127.0.0.1:7001
//! ```

mod shutdown;

use prpc::transport::Address;

use bytes::Bytes;
use prpc::{Call, Client, Format, Status};

/// The `echo` package of proto/echo.proto: messages, and the `Echo` service's trait, server
/// and client.
pub mod echo {
    prpc::include_proto!("echo");
}

use echo::{Echo, EchoClient, EchoReply, EchoRequest, EchoServer};

struct Repeater;

impl Echo for Repeater {
    async fn echo(&self, request: EchoRequest) -> Result<EchoReply, Status> {
        if request.text.is_empty() {
            // The caller receives this status as it is: code, message.
            return Err(Status::invalid_argument("there is nothing to echo"));
        }
        Ok(EchoReply {
            text: request.text.repeat(request.times.max(1) as usize),
        })
    }
}

async fn serve(addr: &str) -> std::io::Result<prpc::Server> {
    prpc::Server::builder()
        .add_service(EchoServer::new(Repeater))
        .bind(addr)
        .await
}

async fn call(addr: Address) -> Result<(), Box<dyn std::error::Error>> {
    let client = EchoClient::connect(&addr).await?;
    let request = EchoRequest {
        text: "hello ".into(),
        times: 2,
    };

    // Protobuf, the default for proto services.
    let reply = client.echo(request.clone()).await?;
    println!("echo (protobuf) = {:?}", reply.text);

    // The same call in the proto3 JSON mapping.
    let reply = client
        .clone()
        .with_format(Format::Json)
        .echo(request)
        .await?;
    println!("echo (json) = {:?}", reply.text);

    // A handler's status arrives as prpc::Error::Status.
    match client.echo(EchoRequest::default()).await {
        Ok(reply) => println!("echo of nothing = {:?}", reply.text),
        Err(error) => println!("echo of nothing: {error}"),
    }

    // What a client in another language sends: the JSON mapping on prpc's frames, addressed
    // as `echo.Echo` / `Echo` (the names in the .proto file).
    let raw = Client::connect(addr).await?;
    let reply = raw
        .call(Call::new(
            EchoClient::SERVICE,
            "Echo",
            Format::Json,
            Bytes::from_static(br#"{"text":"hi ","times":3}"#),
        ))
        .await?;
    println!("raw JSON call: {}", String::from_utf8_lossy(&reply.body));
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", addr] => {
            let server = serve(addr).await?;
            println!("serving {} on {}", EchoClient::SERVICE, server.local_addr());
            // SIGTERM or Ctrl-C: goaway, the calls in flight answered, then exit.
            server.serve_with_shutdown(shutdown::signal()).await?;
        }
        ["call", addr] => call(addr.parse()?).await?,
        [] => {
            let server = serve("127.0.0.1:0").await?;
            let addr = server.local_addr();
            let shutdown = server.shutdown_handle();
            let serving = tokio::spawn(server.serve());
            call(addr).await?;
            shutdown.shutdown();
            serving.await??;
        }
        _ => {
            eprintln!("usage: proto_echo [serve ADDR | call ADDR]");
            std::process::exit(2);
        }
    }
    Ok(())
}
