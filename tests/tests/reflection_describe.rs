//! `prpc.Reflection/describe_services` over real sockets: what a client that has never seen a
//! service learns about calling it, in JSON and MessagePack, for a serde service (types that
//! derive `prpc::Describe` and one that does not) and for a service prpc-build generated from
//! a `.proto` file; and `list_services` as before.

use std::collections::HashMap;

use prpc::reflection::{
    self, Field, MethodDescription, ServiceDescription, Shape, StreamDirection, Variant,
};
use prpc::{Client, Describe, Format, Status, Streaming};
use serde::{Deserialize, Serialize};

pub mod echo {
    prpc::include_proto!("echo");
}

pub mod acme {
    pub mod common {
        pub mod v1 {
            prpc::include_proto!("acme.common.v1");
        }
    }
    pub mod library {
        pub mod v1 {
            prpc::include_proto!("acme.library.v1");
        }
    }
}

#[derive(Serialize, Deserialize, prpc::Describe)]
pub struct Item {
    pub name: String,
    #[serde(rename = "priceCents")]
    pub price_cents: u64,
    pub tags: Vec<String>,
}

#[derive(Serialize, Deserialize, prpc::Describe)]
pub enum Size {
    Small,
    Large,
    Custom { width: u32 },
}

#[derive(Serialize, Deserialize, prpc::Describe)]
pub enum ShopError {
    SoldOut,
    Unknown(String),
}

/// Does not implement `Describe`: described by its name.
#[derive(Serialize, Deserialize)]
pub struct Wrapping(pub u8);

#[prpc::service(name = "shop.Shop")]
pub trait Shop {
    #[prpc(idempotent)]
    async fn price(
        &self,
        item: Item,
        size: Option<Size>,
        discounts: HashMap<String, f64>,
    ) -> Result<u64, ShopError>;
    async fn wrap(&self, wrapping: Wrapping) -> Wrapping;
    async fn restock(&self, r#type: String, counts: Streaming<u32>) -> u32;
    async fn watch(&self, names: Vec<String>) -> Streaming<Result<Item, ShopError>>;
    async fn ping(&self);
}

struct Store;

impl Shop for Store {
    async fn price(
        &self,
        item: Item,
        _size: Option<Size>,
        _discounts: HashMap<String, f64>,
    ) -> Result<u64, ShopError> {
        Ok(item.price_cents)
    }

    async fn wrap(&self, wrapping: Wrapping) -> Wrapping {
        wrapping
    }

    async fn restock(&self, _type: String, _counts: Streaming<u32>) -> u32 {
        0
    }

    async fn watch(&self, _names: Vec<String>) -> Streaming<Result<Item, ShopError>> {
        Streaming::from_iter(Vec::new())
    }

    async fn ping(&self) {}
}

struct Echoer;

impl echo::Echo for Echoer {
    async fn echo(&self, request: echo::EchoRequest) -> Result<echo::EchoReply, Status> {
        Ok(echo::EchoReply { text: request.text })
    }
}

/// A server with both services, and a client to it in `format`.
async fn connect(format: Format) -> Client {
    let server = prpc::Server::builder()
        .add_service(ShopServer::new(Store))
        .add_service(echo::EchoServer::new(Echoer))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::builder()
        .format(format)
        .connect(server.local_addr())
        .await
        .unwrap();
    tokio::spawn(server.serve());
    client
}

fn item_shape() -> Shape {
    Shape::object(
        "Item",
        vec![
            Field::new("name", Shape::String),
            Field::new("priceCents", Shape::Integer),
            Field::new("tags", Shape::array(Shape::String)),
        ],
    )
}

fn shop_error_shape() -> Shape {
    Shape::enumeration(
        "ShopError",
        vec![
            Variant::unit("SoldOut"),
            Variant::with("Unknown", Shape::String),
        ],
    )
}

fn shop_methods() -> Vec<MethodDescription> {
    let size = Shape::enumeration(
        "Size",
        vec![
            Variant::unit("Small"),
            Variant::unit("Large"),
            Variant::with(
                "Custom",
                Shape::object("Custom", vec![Field::new("width", Shape::Integer)]),
            ),
        ],
    );
    vec![
        MethodDescription::new("price")
            .argument("item", item_shape())
            .argument("size", Shape::optional(size))
            .argument("discounts", Shape::map(Shape::Number))
            .returns(Shape::Integer)
            .error(shop_error_shape())
            .idempotent(true),
        MethodDescription::new("wrap")
            .argument(
                "wrapping",
                Shape::Named {
                    name: "Wrapping".into(),
                },
            )
            .returns(Shape::Named {
                name: "Wrapping".into(),
            }),
        MethodDescription::new("restock")
            .argument("type", Shape::String)
            .stream_argument("counts", Shape::Integer)
            .returns(Shape::Integer)
            .streaming(StreamDirection::Client),
        MethodDescription::new("watch")
            .argument("names", Shape::array(Shape::String))
            .returns(item_shape())
            .error(shop_error_shape())
            .streaming(StreamDirection::Server),
        MethodDescription::new("ping").returns(Shape::Null),
    ]
}

fn find<'a>(services: &'a [ServiceDescription], name: &str) -> &'a ServiceDescription {
    services
        .iter()
        .find(|service| service.name == name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

#[tokio::test]
async fn serde_services_describe_their_methods_in_json_and_msgpack() {
    for format in [Format::Json, Format::MsgPack] {
        let client = connect(format).await;
        let services = reflection::describe_services(&client).await.unwrap();
        let names: Vec<&str> = services
            .iter()
            .map(|service| service.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["echo.Echo", "prpc.Health", "prpc.Reflection", "shop.Shop"],
            "{format:?}"
        );
        assert_eq!(
            find(&services, "shop.Shop").methods,
            shop_methods(),
            "{format:?}"
        );
        // The built-in services describe their own methods, so `prpc describe` shows how to
        // call them.
        let health = &find(&services, "prpc.Health").methods;
        assert_eq!(health.len(), 1, "{health:?}");
        let check = &health[0];
        assert_eq!(check.name, "check");
        assert_eq!(check.arguments.len(), 1);
        assert_eq!(check.arguments[0].name, "service");
        assert_eq!(check.arguments[0].shape, Shape::String);
        assert!(check.idempotent);
        let Shape::Object { fields, .. } = &check.returns else {
            panic!("check returns an object: {:?}", check.returns)
        };
        let Shape::Enum { variants, .. } = &fields[0].shape else {
            panic!("status is an enum: {fields:?}")
        };
        let statuses: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(statuses, ["SERVING", "NOT_SERVING"]);
        let own: Vec<&str> = find(&services, "prpc.Reflection")
            .methods
            .iter()
            .map(|method| method.name.as_str())
            .collect();
        assert_eq!(own, ["list_services", "describe_services"]);
    }
}

#[tokio::test]
async fn the_json_reply_reads_as_docs_protocol_md_says() {
    let client = connect(Format::Json).await;
    let reply = client
        .call(prpc::Call::new(
            reflection::SERVICE,
            reflection::DESCRIBE_SERVICES,
            Format::Json,
            bytes::Bytes::from_static(b"null"),
        ))
        .await
        .unwrap();
    let services: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let shop = services
        .as_array()
        .unwrap()
        .iter()
        .find(|service| service["name"] == "shop.Shop")
        .unwrap();
    let ping = &shop["methods"][4];
    assert_eq!(
        ping,
        &serde_json::json!({
            "name": "ping",
            "arguments": [],
            "returns": {"type": "null"},
            "error": null,
            "streaming": null,
            "idempotent": false,
        })
    );
    let restock = &shop["methods"][2];
    assert_eq!(restock["streaming"], "client");
    assert_eq!(
        restock["arguments"][1],
        serde_json::json!({"name": "counts", "shape": {"type": "integer"}, "stream": true})
    );
    let size = &shop["methods"][0]["arguments"][1]["shape"];
    assert_eq!(
        size,
        &serde_json::json!({
            "type": "optional",
            "inner": {
                "type": "enum",
                "name": "Size",
                "variants": [
                    {"name": "Small"},
                    {"name": "Large"},
                    {"name": "Custom", "shape": {
                        "type": "object",
                        "name": "Custom",
                        "fields": [{"name": "width", "shape": {"type": "integer"}}],
                    }},
                ],
            },
        })
    );
}

#[tokio::test]
async fn protobuf_services_describe_their_messages_in_the_proto3_json_mapping() {
    for format in [Format::Json, Format::MsgPack] {
        let client = connect(format).await;
        let services = reflection::describe_services(&client).await.unwrap();
        let request = Shape::object(
            "echo.EchoRequest",
            vec![
                Field::new("text", Shape::String),
                Field::new("times", Shape::Integer),
            ],
        );
        let reply = Shape::object("echo.EchoReply", vec![Field::new("text", Shape::String)]);
        assert_eq!(
            find(&services, "echo.Echo").methods,
            [MethodDescription::new("Echo")
                .argument("request", request)
                .returns(reply)
                .idempotent(true)],
            "{format:?}"
        );
    }
}

#[test]
fn generated_messages_have_their_proto3_json_shapes() {
    use acme::library::v1::Book;

    let Shape::Object { name, fields } = Book::shape() else {
        panic!("a message is an object");
    };
    assert_eq!(name, "acme.library.v1.Book");
    let field = |key: &str| {
        fields
            .iter()
            .find(|field| field.name == key)
            .unwrap_or_else(|| panic!("no field {key}"))
            .shape
            .clone()
    };
    let money = Shape::object(
        "acme.common.v1.Money",
        vec![
            Field::new(
                "currency",
                Shape::enumeration(
                    "acme.common.v1.Currency",
                    ["CURRENCY_UNSPECIFIED", "CURRENCY_EUR", "CURRENCY_USD"]
                        .map(Variant::unit)
                        .into(),
                ),
            ),
            Field::new("units", Shape::String),
            Field::new("nanos", Shape::Integer),
        ],
    );
    // JSON names, lowerCamelCase.
    assert_eq!(field("readingTime"), Shape::optional(Shape::String));
    assert_eq!(field("authors"), Shape::array(Shape::String));
    assert_eq!(field("price"), Shape::optional(money));
    assert_eq!(field("published"), Shape::optional(Shape::String));
    assert_eq!(field("labels"), Shape::map(Shape::String));
    assert_eq!(field("attributes"), Shape::optional(Shape::map(Shape::Any)));
    // Presence: proto3 `optional`, oneof members.
    assert_eq!(field("edition"), Shape::optional(Shape::Integer));
    assert_eq!(field("shelfPosition"), Shape::optional(Shape::String));
    // Bytes are base64 text.
    assert_eq!(field("cover"), Shape::String);
    assert_eq!(
        field("withdrawn"),
        Shape::optional(Shape::object("google.protobuf.Empty", Vec::new()))
    );
    let Shape::Optional { inner: loan } = field("loan") else {
        panic!("a message field is optional");
    };
    let Shape::Object { name, fields: loan } = *loan else {
        panic!("a loan is an object");
    };
    assert_eq!(name, "acme.library.v1.Book.Loan");
    assert_eq!(
        loan[2],
        Field::new(
            "state",
            Shape::enumeration(
                "acme.library.v1.Book.Loan.State",
                ["STATE_UNSPECIFIED", "STATE_ACTIVE", "STATE_OVERDUE"]
                    .map(Variant::unit)
                    .into(),
            )
        )
    );
    // A nested message has a shape of its own.
    assert_eq!(
        acme::library::v1::book::Review::shape(),
        Shape::object(
            "acme.library.v1.Book.Review",
            vec![
                Field::new("stars", Shape::Integer),
                Field::new("text", Shape::String),
            ],
        )
    );
}

#[tokio::test]
async fn list_services_still_lists_names_only() {
    let client = connect(Format::MsgPack).await;
    let services = reflection::list_services(&client).await.unwrap();
    let shop = services
        .iter()
        .find(|service| service.name == "shop.Shop")
        .unwrap();
    assert_eq!(shop.methods, ["price", "wrap", "restock", "watch", "ping"]);
    let own = services
        .iter()
        .find(|service| service.name == reflection::SERVICE)
        .unwrap();
    assert_eq!(own.methods, ["list_services", "describe_services"]);
}

#[derive(Serialize, Deserialize, prpc::Describe)]
pub enum MathError {
    DivisionByZero,
}

#[prpc::service(name = "math.Arith")]
pub trait Arith {
    #[prpc(idempotent)]
    async fn add(&self, a: i32, b: i32) -> i32;
    async fn div(&self, a: f64, b: f64) -> Result<f64, MathError>;
}

struct Calculator;

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
}

/// docs/PROTOCOL.md section 7.9's example reply is what a server answers.
#[tokio::test]
async fn the_example_reply_in_docs_protocol_md_is_exact() {
    let protocol = include_str!("../../docs/PROTOCOL.md");
    let section = &protocol[protocol
        .find("The reply for a server with the service `math.Arith`")
        .unwrap()..];
    let start = section.find("```json\n").unwrap() + "```json\n".len();
    let end = start + section[start..].find("```").unwrap();
    let documented: serde_json::Value = serde_json::from_str(&section[start..end]).unwrap();

    let server = prpc::Server::builder()
        .add_service(ArithServer::new(Calculator))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::builder()
        .format(Format::Json)
        .connect(server.local_addr())
        .await
        .unwrap();
    tokio::spawn(server.serve());
    let reply = client
        .call(prpc::Call::new(
            reflection::SERVICE,
            reflection::DESCRIBE_SERVICES,
            Format::Json,
            bytes::Bytes::from_static(b"null"),
        ))
        .await
        .unwrap();
    let mut answered: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    answered
        .as_array_mut()
        .unwrap()
        .retain(|service| !service["name"].as_str().unwrap().starts_with("prpc."));
    assert_eq!(answered, documented);
}
