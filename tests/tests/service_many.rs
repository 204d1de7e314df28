//! Several generated services on one server and one connection, renamed services and methods,
//! and the reflection call that lists them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use prpc::reflection::ServiceInfo;
use prpc::{Call, Client, Code, Format};

#[prpc::service(name = "math.Arith")]
pub trait Arith {
    #[prpc(idempotent)]
    async fn add(&self, a: i32, b: i32) -> i32;
    #[prpc(name = "Negate")]
    async fn negate(&self, a: i32) -> i32;
}

/// A supertrait a service trait may keep.
pub trait Named {
    fn who(&self) -> String;
}

#[prpc::service(name = "hello.Greeter")]
pub trait Greeter: Named {
    async fn greet(&self, name: String) -> String;
    /// A default body that calls another method of the service.
    async fn greet_twice(&self, name: String) -> String {
        let once = self.greet(name).await;
        format!("{once} {once}")
    }
}

#[prpc::service]
pub trait Counter {
    #[prpc(idempotent, name = "Get")]
    async fn get(&self) -> u64;
    async fn increment(&self, by: u64) -> u64;
}

/// Types named like the generated code's type parameters.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct T(pub u8);

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct C(pub String);

#[prpc::service]
pub trait Letters {
    async fn swap(&self, t: T, c: C) -> (C, T);
}

struct Calculator;

impl Arith for Calculator {
    async fn add(&self, a: i32, b: i32) -> i32 {
        a + b
    }

    async fn negate(&self, a: i32) -> i32 {
        -a
    }
}

struct Host;

impl Named for Host {
    fn who(&self) -> String {
        "host".into()
    }
}

impl Greeter for Host {
    async fn greet(&self, name: String) -> String {
        format!("hello {name} from {}", self.who())
    }
}

#[derive(Default)]
struct Tally(AtomicU64);

impl Counter for Tally {
    async fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    async fn increment(&self, by: u64) -> u64 {
        self.0.fetch_add(by, Ordering::SeqCst) + by
    }
}

struct Swapper;

impl Letters for Swapper {
    async fn swap(&self, t: T, c: C) -> (C, T) {
        (c, t)
    }
}

async fn serve_all() -> SocketAddr {
    let server = prpc::Server::builder()
        .add_service(ArithServer::new(Calculator))
        .add_service(GreeterServer::new(Host))
        .add_service(CounterServer::new(Tally::default()))
        .add_service(LettersServer::new(Swapper))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = server.local_addr().socket_addr().unwrap();
    tokio::spawn(server.serve());
    addr
}

#[tokio::test]
async fn several_services_share_one_server_and_one_connection() {
    let addr = serve_all().await;
    let connection = Client::connect(addr).await.unwrap();
    let arith = ArithClient::new(connection.clone());
    let greeter = GreeterClient::new(connection.clone());
    let counter = CounterClient::new(connection.clone());
    let letters = LettersClient::new(connection);

    let (sum, negated, greeting, twice, counted) = tokio::join!(
        arith.add(2, 3),
        arith.negate(9),
        greeter.greet("ada".into()),
        greeter.greet_twice("bob".into()),
        counter.increment(4),
    );
    assert_eq!(sum.unwrap(), 5);
    assert_eq!(negated.unwrap(), -9);
    assert_eq!(greeting.unwrap(), "hello ada from host");
    assert_eq!(twice.unwrap(), "hello bob from host hello bob from host");
    assert_eq!(counted.unwrap(), 4);
    assert_eq!(counter.get().await.unwrap(), 4);
    assert_eq!(
        letters.swap(T(1), C("c".into())).await.unwrap(),
        (C("c".into()), T(1))
    );
}

#[tokio::test]
async fn reflection_lists_every_service_and_its_methods() {
    let addr = serve_all().await;
    let client = Client::connect(addr).await.unwrap();
    let services = prpc::reflection::list_services(&client).await.unwrap();
    let info = |name: &str, methods: &[&str]| ServiceInfo {
        name: name.into(),
        methods: methods.iter().map(|method| method.to_string()).collect(),
    };
    assert_eq!(
        services,
        [
            info("Counter", &["Get", "increment"]),
            info("Letters", &["swap"]),
            info("hello.Greeter", &["greet", "greet_twice"]),
            info("math.Arith", &["add", "Negate"]),
            info(prpc::health::SERVICE, &[prpc::health::CHECK]),
            info(
                prpc::reflection::SERVICE,
                &[
                    prpc::reflection::LIST_SERVICES,
                    prpc::reflection::DESCRIBE_SERVICES
                ]
            ),
        ]
    );
}

#[tokio::test]
async fn renamed_services_and_methods_answer_only_to_their_wire_names() {
    let addr = serve_all().await;
    let raw = Client::connect(addr).await.unwrap();
    let call = |service: &'static str, method: &'static str| {
        Call::new(
            service,
            method,
            Format::Json,
            Bytes::from_static(br#"{"a":5}"#),
        )
    };

    let reply = raw.call(call("math.Arith", "Negate")).await.unwrap();
    assert_eq!(&reply.body[..], b"-5");

    let error = raw.call(call("math.Arith", "negate")).await.unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented);
    let error = raw.call(call("Arith", "Negate")).await.unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented);

    assert_eq!(ArithClient::SERVICE, "math.Arith");
    assert_eq!(ArithClient::METHODS, ["add", "Negate"]);
    assert_eq!(ArithClient::IDEMPOTENT_METHODS, ["add"]);
    assert_eq!(CounterClient::IDEMPOTENT_METHODS, ["Get"]);
    assert!(GreeterClient::IDEMPOTENT_METHODS.is_empty());
}
