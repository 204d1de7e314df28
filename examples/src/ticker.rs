//! Streaming calls: a server stream of ticks every 100 ms, read five at a time, and a client
//! stream of numbers the server sums. A server and a client in one process; it exits by itself.
//!
//! Run it with `cargo run -p prpc-examples --bin ticker`.

use std::time::Duration;

use prpc::Streaming;
use serde::{Deserialize, Serialize};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::IntervalStream;

/// One tick of the clock.
#[derive(Debug, Serialize, Deserialize)]
pub struct Tick {
    /// How many ticks came before this one.
    pub sequence: u64,
    /// Milliseconds since the stream began.
    pub elapsed_ms: u64,
}

/// A clock over the network.
#[prpc::service(name = "demo.Ticker")]
pub trait Ticker {
    /// A tick every `period_ms`, until the client stops reading: a server stream.
    async fn ticks(&self, period_ms: u64) -> Streaming<Tick>;
    /// The sum of the numbers the client sends, once it has sent them all: a client stream.
    async fn sum(&self, numbers: Streaming<i64>) -> i64;
}

struct Clock;

impl Ticker for Clock {
    async fn ticks(&self, period_ms: u64) -> Streaming<Tick> {
        let start = tokio::time::Instant::now();
        let interval = tokio::time::interval(Duration::from_millis(period_ms.max(1)));
        let mut sequence = 0;
        // The stream is never-ending; the client ends the call by dropping its side.
        Streaming::new(IntervalStream::new(interval).map(move |now| {
            let tick = Tick {
                sequence,
                elapsed_ms: u64::try_from((now - start).as_millis()).unwrap_or(u64::MAX),
            };
            sequence += 1;
            tick
        }))
    }

    async fn sum(&self, mut numbers: Streaming<i64>) -> i64 {
        let mut sum = 0;
        while let Ok(Some(number)) = numbers.message().await {
            sum += number;
        }
        sum
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = prpc::Server::builder()
        .add_service(TickerServer::new(Clock))
        .bind("127.0.0.1:0")
        .await?;
    let addr = server.local_addr();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());
    println!("server listening on {addr}");

    let client = TickerClient::connect(addr).await?;

    // Read five ticks, then drop the stream: that cancels the call and stops the handler.
    let mut ticks = client.ticks(100).await?;
    for _ in 0..5 {
        let Some(tick) = ticks.message().await? else {
            break;
        };
        println!("tick {} at {} ms", tick.sequence, tick.elapsed_ms);
    }
    drop(ticks);

    // Send 1..=100 as a stream; the reply comes once the server has read them all.
    let sum = client.sum(tokio_stream::iter(1..=100)).await?;
    println!("sum of 1..=100 sent as a stream = {sum}");
    assert_eq!(sum, 5050);

    shutdown.shutdown();
    tokio::time::timeout(Duration::from_secs(5), serving).await???;
    println!("server shut down");
    Ok(())
}
