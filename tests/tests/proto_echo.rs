//! proto/echo.proto compiled twice by tests/build.rs: with JSON and both sides, and protobuf
//! only without a client. Code generated with different options speaks the same protocol.

use prpc::{Code, Format, Status};

/// With the JSON mapping, client and server.
pub mod echo {
    prpc::include_proto!("echo");
}

/// Protobuf only, `build_client(false)`: the handler trait and `EchoServer`, no `EchoClient`.
pub mod server_only {
    include!(concat!(env!("OUT_DIR"), "/server_only/echo.rs"));
}

struct Repeater;

impl server_only::Echo for Repeater {
    async fn echo(
        &self,
        request: server_only::EchoRequest,
    ) -> Result<server_only::EchoReply, Status> {
        if request.text.is_empty() {
            return Err(Status::invalid_argument("nothing to echo"));
        }
        Ok(server_only::EchoReply {
            text: request.text.repeat(request.times.max(1) as usize),
        })
    }
}

#[tokio::test]
async fn a_client_generated_with_json_calls_a_protobuf_only_server() {
    let server = prpc::Server::builder()
        .add_service(server_only::EchoServer::new(Repeater))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().socket_addr().unwrap();
    tokio::spawn(server.serve());

    let client = echo::EchoClient::connect(addr).await.unwrap();
    let reply = client
        .echo(echo::EchoRequest {
            text: "ab".into(),
            times: 3,
        })
        .await
        .unwrap();
    assert_eq!(reply.text, "ababab");
    let error = client.echo(echo::EchoRequest::default()).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(error.status().unwrap().message(), "nothing to echo");

    // This server has no JSON mapping: a JSON call is refused, not misread.
    let error = client
        .clone()
        .with_format(Format::Json)
        .echo(echo::EchoRequest {
            text: "ab".into(),
            times: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error}");
    assert_eq!(echo::EchoClient::IDEMPOTENT_METHODS, ["Echo"]);
}
