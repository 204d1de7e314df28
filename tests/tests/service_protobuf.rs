//! `#[prpc::service(protobuf)]`: prost messages as bodies, in protobuf, over real sockets.

use std::net::SocketAddr;

use prost::Message;
use prpc::{Call, Client, Code, Error, Format};

#[derive(Clone, PartialEq, prost::Message)]
pub struct SumRequest {
    #[prost(int64, repeated, tag = "1")]
    pub values: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SumReply {
    #[prost(int64, tag = "1")]
    pub sum: i64,
    #[prost(uint32, tag = "2")]
    pub count: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SumError {
    #[prost(string, tag = "1")]
    pub reason: String,
}

#[prpc::service(protobuf, name = "stats.Stats")]
pub trait Stats {
    async fn sum(&self, request: SumRequest) -> SumReply;
    async fn checked_sum(&self, request: SumRequest) -> Result<SumReply, SumError>;
    /// No argument and no reply: both bodies are empty messages.
    async fn reset(&self);
}

struct Summer;

impl Stats for Summer {
    async fn sum(&self, request: SumRequest) -> SumReply {
        SumReply {
            sum: request.values.iter().sum(),
            count: request.values.len() as u32,
        }
    }

    async fn checked_sum(&self, request: SumRequest) -> Result<SumReply, SumError> {
        let mut sum: i64 = 0;
        for value in &request.values {
            sum = sum.checked_add(*value).ok_or_else(|| SumError {
                reason: format!("overflow at {value}"),
            })?;
        }
        Ok(SumReply {
            sum,
            count: request.values.len() as u32,
        })
    }

    async fn reset(&self) {}
}

async fn serve_stats() -> SocketAddr {
    let server = prpc::Server::builder()
        .add_service(StatsServer::new(Summer))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = server.local_addr().socket_addr().unwrap();
    tokio::spawn(server.serve());
    addr
}

#[tokio::test]
async fn protobuf_services_round_trip_messages() {
    let addr = serve_stats().await;
    let client = StatsClient::connect(addr).await.unwrap();
    let reply = client
        .sum(SumRequest {
            values: vec![1, 2, 3, -10],
        })
        .await
        .unwrap();
    assert_eq!(reply, SumReply { sum: -4, count: 4 });
    client.reset().await.unwrap();

    // A format set on the client does not apply: the messages are protobuf.
    let json = client.clone().with_format(Format::Json);
    assert_eq!(
        json.sum(SumRequest { values: vec![5] }).await.unwrap().sum,
        5
    );
}

#[tokio::test]
async fn protobuf_application_errors_are_typed_messages() {
    let addr = serve_stats().await;
    let client = StatsClient::connect(addr).await.unwrap();
    assert_eq!(
        client
            .checked_sum(SumRequest {
                values: vec![i64::MAX, 1],
            })
            .await
            .unwrap(),
        Err(SumError {
            reason: "overflow at 1".into(),
        })
    );
    assert_eq!(
        client
            .checked_sum(SumRequest { values: vec![2, 2] })
            .await
            .unwrap(),
        Ok(SumReply { sum: 4, count: 2 })
    );
}

#[tokio::test]
async fn the_body_is_the_message_itself() {
    let addr = serve_stats().await;
    let raw = Client::connect(addr).await.unwrap();
    let request = SumRequest {
        values: vec![40, 2],
    };
    let reply = raw
        .call(Call::new(
            "stats.Stats",
            "sum",
            Format::Protobuf,
            request.encode_to_vec().into(),
        ))
        .await
        .unwrap();
    assert_eq!(
        SumReply::decode(&reply.body[..]).unwrap(),
        SumReply { sum: 42, count: 2 }
    );
}

#[tokio::test]
async fn other_formats_and_broken_messages_are_invalid_argument() {
    let addr = serve_stats().await;
    let raw = Client::connect(addr).await.unwrap();
    let cases = [
        (Format::Json, &br#"{"values":[1]}"#[..], "sum"),
        (Format::MsgPack, &[0x80][..], "sum"),
        (Format::Protobuf, &[0x0a, 0xff][..], "sum"),
        (Format::Json, &b"{}"[..], "reset"),
    ];
    for (format, body, method) in cases {
        let error = raw
            .call(Call::new(
                "stats.Stats",
                method,
                format,
                bytes::Bytes::copy_from_slice(body),
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Status(status) if status.code() == Code::InvalidArgument),
            "{format} {method}: {error:?}"
        );
    }
}
