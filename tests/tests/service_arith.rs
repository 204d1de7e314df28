//! `#[prpc::service]` end to end over real sockets: the contract from DESIGN.md, every serde
//! format, typed application errors, and how the server answers calls it cannot run.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use prpc::{Call, Client, Code, Error, Format};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MathError {
    DivisionByZero,
    Overflow { a: i32, b: i32 },
}

impl fmt::Display for MathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MathError::DivisionByZero => f.write_str("division by zero"),
            MathError::Overflow { a, b } => write!(f, "{a} + {b} overflows i32"),
        }
    }
}

/// An application error without `Display`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub field: String,
    pub reason: String,
}

/// Arithmetic, plus methods that exercise each shape the macro supports.
#[prpc::service]
pub trait Arith {
    /// Adds.
    async fn add(&self, a: i32, b: i32) -> i32;
    async fn div(&self, a: f64, b: f64) -> Result<f64, MathError>;
    async fn checked_add(&self, a: i32, b: i32) -> Result<i32, MathError>;
    /// Adds to the running total; no reply.
    async fn accumulate(&self, amount: i64);
    async fn total(&self) -> i64;
    async fn validate(&self, name: String) -> Result<(), Rejected>;
    /// Arguments named like the generated code's locals must not be confused with them.
    async fn echo(
        &self,
        format: String,
        body: Vec<u8>,
        request: Option<String>,
        service: u8,
        call: (bool, char),
    ) -> (String, Vec<u8>, Option<String>, u8, (bool, char));
}

#[derive(Default)]
struct Calculator {
    total: AtomicI64,
}

impl Arith for Calculator {
    async fn add(&self, a: i32, b: i32) -> i32 {
        a + b
    }

    async fn div(&self, a: f64, b: f64) -> Result<f64, MathError> {
        if b == 0.0 {
            Err(MathError::DivisionByZero)
        } else {
            Ok(a / b)
        }
    }

    async fn checked_add(&self, a: i32, b: i32) -> Result<i32, MathError> {
        a.checked_add(b).ok_or(MathError::Overflow { a, b })
    }

    async fn accumulate(&self, amount: i64) {
        self.total.fetch_add(amount, Ordering::SeqCst);
    }

    async fn total(&self) -> i64 {
        self.total.load(Ordering::SeqCst)
    }

    async fn validate(&self, name: String) -> Result<(), Rejected> {
        if name.is_empty() {
            Err(Rejected {
                field: "name".into(),
                reason: "empty".into(),
            })
        } else {
            Ok(())
        }
    }

    async fn echo(
        &self,
        format: String,
        body: Vec<u8>,
        request: Option<String>,
        service: u8,
        call: (bool, char),
    ) -> (String, Vec<u8>, Option<String>, u8, (bool, char)) {
        (format, body, request, service, call)
    }
}

async fn serve_arith() -> SocketAddr {
    let server = prpc::Server::builder()
        .add_service(ArithServer::new(Calculator::default()))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = server.local_addr().socket_addr().unwrap();
    tokio::spawn(server.serve());
    addr
}

/// The snippet from DESIGN.md, as written.
#[tokio::test]
async fn the_documented_contract_works() -> Result<(), Box<dyn std::error::Error>> {
    let server = prpc::Server::builder()
        .add_service(ArithServer::new(Calculator::default()))
        .bind("127.0.0.1:0")
        .await?;
    let addr = server.local_addr();
    tokio::spawn(server.serve());

    let client = ArithClient::connect(&addr).await?;
    assert_eq!(client.add(1, 2).await?, 3);
    assert_eq!(client.div(1.0, 4.0).await?, Ok(0.25));

    let over_any_channel = ArithClient::new(Client::connect(addr).await?);
    assert_eq!(over_any_channel.add(40, 2).await?, 42);
    Ok(())
}

#[tokio::test]
async fn every_serde_format_carries_every_method_shape() {
    let addr = serve_arith().await;
    let client = ArithClient::connect(addr).await.unwrap();
    for format in [Format::Json, Format::MsgPack] {
        let client = client.clone().with_format(format);
        assert_eq!(client.options().format, Some(format));
        assert_eq!(client.add(-7, 3).await.unwrap(), -4, "{format}");
        assert_eq!(client.div(9.0, 3.0).await.unwrap(), Ok(3.0), "{format}");
        assert_eq!(client.checked_add(1, 1).await.unwrap(), Ok(2), "{format}");
        assert_eq!(
            client.validate("ok".into()).await.unwrap(),
            Ok(()),
            "{format}"
        );

        let before = client.total().await.unwrap();
        client.accumulate(5).await.unwrap();
        assert_eq!(client.total().await.unwrap(), before + 5, "{format}");

        let echoed = client
            .echo(
                "ünïcode".into(),
                vec![0, 1, 255],
                Some("r".into()),
                9,
                (true, 'λ'),
            )
            .await
            .unwrap();
        assert_eq!(
            echoed,
            (
                "ünïcode".into(),
                vec![0, 1, 255],
                Some("r".into()),
                9,
                (true, 'λ')
            ),
            "{format}"
        );
    }
}

#[tokio::test]
async fn the_channel_default_format_is_used_when_the_client_sets_none() {
    let addr = serve_arith().await;
    let json_channel = Client::builder()
        .format(Format::Json)
        .connect(addr)
        .await
        .unwrap();
    let client = ArithClient::new(json_channel);
    assert_eq!(client.options().format, None);
    assert_eq!(client.add(2, 2).await.unwrap(), 4);
    assert_eq!(
        client.div(1.0, 0.0).await.unwrap(),
        Err(MathError::DivisionByZero)
    );
}

#[tokio::test]
async fn a_serde_service_called_in_protobuf_fails_on_the_caller_side() {
    let addr = serve_arith().await;
    let client = ArithClient::connect(addr)
        .await
        .unwrap()
        .with_format(Format::Protobuf);
    let error = client.add(1, 2).await.unwrap_err();
    assert!(matches!(error, Error::Body(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "format protobuf cannot carry serde values"
    );
}

#[tokio::test]
async fn typed_application_errors_reach_the_caller_typed() {
    let addr = serve_arith().await;
    let client = ArithClient::connect(addr).await.unwrap();
    for format in [Format::Json, Format::MsgPack] {
        let client = client.clone().with_format(format);
        assert_eq!(
            client.div(1.0, 0.0).await.unwrap(),
            Err(MathError::DivisionByZero),
            "{format}"
        );
        assert_eq!(
            client.checked_add(i32::MAX, 1).await.unwrap(),
            Err(MathError::Overflow { a: i32::MAX, b: 1 }),
            "{format}"
        );
        assert_eq!(
            client.validate(String::new()).await.unwrap(),
            Err(Rejected {
                field: "name".into(),
                reason: "empty".into()
            }),
            "{format}"
        );
    }
}

#[tokio::test]
async fn application_errors_travel_as_application_statuses() {
    let addr = serve_arith().await;
    let raw = Client::connect(addr).await.unwrap();

    let body = Format::Json.encode(&serde_json_args(1.0, 0.0)).unwrap();
    let error = raw
        .call(Call::new("Arith", "div", Format::Json, body))
        .await
        .unwrap_err();
    let status = error.status().expect("the server answered");
    assert_eq!(status.code(), Code::Application);
    // The message is the error's Display; the details are the error, in the call's format.
    assert_eq!(status.message(), "division by zero");
    assert_eq!(&status.details()[..], br#""DivisionByZero""#);

    // Without Display, the message names the type.
    let body = Format::MsgPack
        .encode(&NameArgs {
            name: String::new(),
        })
        .unwrap();
    let error = raw
        .call(Call::new("Arith", "validate", Format::MsgPack, body))
        .await
        .unwrap_err();
    let status = error.status().expect("the server answered");
    assert_eq!(status.code(), Code::Application);
    assert!(
        status.message().ends_with("Rejected"),
        "{}",
        status.message()
    );
    let rejected: Rejected = Format::MsgPack.decode(status.details()).unwrap();
    assert_eq!(rejected.reason, "empty");
}

#[derive(Serialize)]
struct DivArgs {
    a: f64,
    b: f64,
}

fn serde_json_args(a: f64, b: f64) -> DivArgs {
    DivArgs { a, b }
}

#[derive(Serialize)]
struct NameArgs {
    name: String,
}

#[tokio::test]
async fn arguments_travel_as_a_struct_of_named_fields() {
    let addr = serve_arith().await;
    let raw = Client::connect(addr).await.unwrap();

    let reply = raw
        .call(Call::new(
            "Arith",
            "add",
            Format::Json,
            Bytes::from_static(br#"{"a":1,"b":2}"#),
        ))
        .await
        .unwrap();
    assert_eq!(&reply.body[..], b"3");

    // Field order does not matter, and fields the server does not know are ignored.
    let reply = raw
        .call(Call::new(
            "Arith",
            "add",
            Format::Json,
            Bytes::from_static(br#"{"b":2,"extra":true,"a":40}"#),
        ))
        .await
        .unwrap();
    assert_eq!(&reply.body[..], b"42");

    // No arguments: an empty struct. A unit reply is `null`.
    let reply = raw
        .call(Call::new(
            "Arith",
            "accumulate",
            Format::Json,
            Bytes::from_static(br#"{"amount":0}"#),
        ))
        .await
        .unwrap();
    assert_eq!(&reply.body[..], b"null");
    let reply = raw
        .call(Call::new(
            "Arith",
            "total",
            Format::Json,
            Bytes::from_static(b"{}"),
        ))
        .await
        .unwrap();
    assert_eq!(&reply.body[..], b"0");
}

#[tokio::test]
async fn an_unknown_method_is_unimplemented() {
    let addr = serve_arith().await;
    let raw = Client::connect(addr).await.unwrap();
    let error = raw
        .call(Call::new(
            "Arith",
            "sqrt",
            Format::Json,
            Bytes::from_static(b"{}"),
        ))
        .await
        .unwrap_err();
    let status = error.status().expect("the server answered");
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(status.message(), r#"no method "sqrt" on service "Arith""#);

    // The connection is still good afterwards.
    assert_eq!(ArithClient::new(raw).add(1, 1).await.unwrap(), 2);
}

#[tokio::test]
async fn arguments_that_do_not_decode_are_invalid_argument() {
    let addr = serve_arith().await;
    let raw = Client::connect(addr).await.unwrap();
    let cases = [
        (Format::Json, &br#"{"a":"one","b":2}"#[..]),
        (Format::Json, &br#"{"a":1}"#[..]),
        (Format::Json, &b"{not json"[..]),
        (Format::MsgPack, &[0xc1][..]),
        (Format::Raw, &b"1,2"[..]),
        (Format::Protobuf, &[0x08, 0x01][..]),
    ];
    for (format, body) in cases {
        let error = raw
            .call(Call::new(
                "Arith",
                "add",
                format,
                Bytes::copy_from_slice(body),
            ))
            .await
            .unwrap_err();
        let status = error.status().expect("the server answered");
        assert_eq!(status.code(), Code::InvalidArgument, "{format}: {status}");
    }
    assert_eq!(ArithClient::new(raw).add(2, 3).await.unwrap(), 5);
}

#[tokio::test]
async fn methods_and_names_are_listed() {
    let server = ArithServer::new(Calculator::default());
    let service: &dyn prpc::Service = &server;
    assert_eq!(service.name(), "Arith");
    assert_eq!(
        service.methods(),
        [
            "add",
            "div",
            "checked_add",
            "accumulate",
            "total",
            "validate",
            "echo"
        ]
    );
    assert_eq!(ArithClient::SERVICE, "Arith");
    assert_eq!(ArithClient::METHODS, service.methods());
    assert!(ArithClient::IDEMPOTENT_METHODS.is_empty());
}
