//! The README's quickstart: a server and a client in one process, no external services.
//!
//! Run it with `cargo run -p prpc-examples --bin quickstart`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What can go wrong dividing.
#[derive(Debug, Serialize, Deserialize)]
pub enum MathError {
    /// The divisor was zero.
    DivideByZero,
}

/// Arithmetic over the network.
#[prpc::service]
pub trait Arith {
    /// The sum of two numbers.
    async fn add(&self, a: i32, b: i32) -> i32;
    /// The quotient, or why there is none.
    async fn div(&self, a: f64, b: f64) -> Result<f64, MathError>;
}

struct Calculator;

impl Arith for Calculator {
    async fn add(&self, a: i32, b: i32) -> i32 {
        a + b
    }

    async fn div(&self, a: f64, b: f64) -> Result<f64, MathError> {
        if b == 0.0 {
            Err(MathError::DivideByZero)
        } else {
            Ok(a / b)
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = prpc::Server::builder()
        .add_service(ArithServer::new(Calculator))
        .bind("127.0.0.1:0")
        .await?;
    let addr = server.local_addr();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());
    println!("server listening on {addr}");

    let client = ArithClient::connect(addr).await?;
    let sum = client.add(1, 2).await?;
    println!("add(1, 2) = {sum}");
    assert_eq!(sum, 3);

    let quotient = client.div(7.0, 2.0).await?;
    println!("div(7, 2) = {quotient:?}");
    assert!(matches!(quotient, Ok(q) if q == 3.5));

    let by_zero = client.div(1.0, 0.0).await?;
    println!("div(1, 0) = {by_zero:?}");
    assert!(matches!(by_zero, Err(MathError::DivideByZero)));

    // Many calls at once share the one connection.
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let client = client.clone();
        calls.spawn(async move { client.add(i, i).await });
    }
    let mut total = 0i64;
    while let Some(sum) = calls.join_next().await {
        total += i64::from(sum??);
    }
    println!("1000 concurrent calls, sum of results {total}");
    assert_eq!(total, 999_000);

    services(&client).await?;

    shutdown.shutdown();
    tokio::time::timeout(Duration::from_secs(5), serving).await???;
    println!("server shut down");
    Ok(())
}

/// What the server says it offers (the built-in reflection call).
async fn services(client: &ArithClient) -> prpc::Result<()> {
    for service in prpc::reflection::list_services(client.channel()).await? {
        println!("service {}: {}", service.name, service.methods.join(", "));
    }
    Ok(())
}
