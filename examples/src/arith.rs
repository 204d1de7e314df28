//! A `#[prpc::service]` tour: a renamed service, an idempotent method, a typed application
//! error, per-call options (format, timeout, compression, metadata) and reflection. `serve`
//! also serves docs/PROTOCOL.md section 11.5's `Ticker`, with that section's stream windows,
//! so that the worked examples and `tests/conformance/cases.txt` run against this binary.
//!
//! ```text
//! cargo run -p prpc-examples --bin arith                       # server and client in one process
//! cargo run -p prpc-examples --bin arith -- serve 127.0.0.1:7000
//! cargo run -p prpc-examples --bin arith -- call 127.0.0.1:7000
//! ```

mod shutdown;

use prpc::transport::Address;
use std::fmt;
use std::time::Duration;

use prpc::{CallOptions, Compression, Format};
use serde::{Deserialize, Serialize};

/// Why a division has no answer. It reaches the caller as this type, not as a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MathError {
    /// The divisor was zero.
    DivisionByZero,
    /// The result does not fit.
    Overflow {
        /// The operation that overflowed.
        operation: String,
    },
}

impl fmt::Display for MathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MathError::DivisionByZero => f.write_str("division by zero"),
            MathError::Overflow { operation } => write!(f, "{operation} overflows"),
        }
    }
}

/// Integer and floating-point arithmetic, served as `math.Arith`.
#[prpc::service(name = "math.Arith")]
pub trait Arith {
    /// The sum; safe to retry, so marked idempotent.
    #[prpc(idempotent)]
    async fn add(&self, a: i64, b: i64) -> Result<i64, MathError>;
    /// The quotient.
    #[prpc(idempotent)]
    async fn div(&self, a: f64, b: f64) -> Result<f64, MathError>;
    /// The sum of many numbers (a large argument, worth compressing).
    #[prpc(name = "Sum")]
    async fn sum(&self, values: Vec<i64>) -> i64;
}

/// docs/PROTOCOL.md section 11.5's stream: the numbers below `n`, then the trailer's
/// metadata `count` = how many were sent.
#[prpc::service(name = "Ticker")]
pub trait Ticker {
    /// A server stream of `0..n`.
    async fn count(&self, n: u32) -> prpc::Streaming<u32>;
}

struct Counter;

impl Ticker for Counter {
    async fn count(&self, n: u32) -> prpc::Streaming<u32> {
        let mut trailer = prpc::Metadata::new();
        trailer.insert("count", n.to_string());
        prpc::Streaming::from_iter(0..n).with_trailer(trailer)
    }
}

struct Calculator;

impl Arith for Calculator {
    async fn add(&self, a: i64, b: i64) -> Result<i64, MathError> {
        a.checked_add(b).ok_or_else(|| MathError::Overflow {
            operation: format!("{a} + {b}"),
        })
    }

    async fn div(&self, a: f64, b: f64) -> Result<f64, MathError> {
        if b == 0.0 {
            Err(MathError::DivisionByZero)
        } else {
            Ok(a / b)
        }
    }

    async fn sum(&self, values: Vec<i64>) -> i64 {
        values.iter().sum()
    }
}

async fn serve(addr: &str) -> std::io::Result<prpc::Server> {
    prpc::Server::builder()
        .add_service(ArithServer::new(Calculator))
        .add_service(TickerServer::new(Counter))
        // Section 11.5's windows: 1 MiB a stream, 16 MiB the connection.
        .stream_windows(1 << 20, 16 << 20)
        .bind(addr)
        .await
}

async fn call(addr: Address) -> Result<(), Box<dyn std::error::Error>> {
    let client = ArithClient::connect(addr).await?;

    // A plain call: transport errors in the outer Result, the application error in the inner.
    println!("add(2, 40) = {:?}", client.add(2, 40).await?);
    println!("add(i64::MAX, 1) = {:?}", client.add(i64::MAX, 1).await?);
    match client.div(1.0, 0.0).await? {
        Ok(quotient) => println!("div(1, 0) = {quotient}"),
        Err(MathError::DivisionByZero) => println!("div(1, 0): the server says division by zero"),
        Err(other) => println!("div(1, 0): {other}"),
    }

    // Per-call options live on a view of the client; the method signatures do not change.
    let tuned = client
        .clone()
        .with_format(Format::Json)
        .with_timeout(Duration::from_secs(2))
        .with_options(
            CallOptions::new()
                .compression(Compression::Gzip)
                .metadata("tenant", "example"),
        );
    let values: Vec<i64> = (1..=100_000).collect();
    println!(
        "Sum(1..=100000) in gzipped JSON = {}",
        tuned.sum(values).await?
    );

    println!(
        "{} has methods {:?}; idempotent: {:?}",
        ArithClient::SERVICE,
        ArithClient::METHODS,
        ArithClient::IDEMPOTENT_METHODS
    );
    for service in prpc::reflection::list_services(client.channel()).await? {
        println!(
            "server offers {}: {}",
            service.name,
            service.methods.join(", ")
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", addr] => {
            let server = serve(addr).await?;
            println!("serving math.Arith on {}", server.local_addr());
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
            eprintln!("usage: arith [serve ADDR | call ADDR]");
            std::process::exit(2);
        }
    }
    Ok(())
}
