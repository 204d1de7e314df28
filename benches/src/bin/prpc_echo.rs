//! Loopback echo benchmark for prpc: run the server and the client as separate processes
//! (pinned to different cores by `benches/echo.sh`).
//!
//! ```text
//! prpc_echo server 127.0.0.1:7070 [--runtime current|multi]
//! prpc_echo client 127.0.0.1:7070 --in-flight 128 --size 64 --seconds 5 [--runtime ...]
//! ```
//! The client prints one line: calls/s and latency percentiles in microseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use prpc::{Call, Client, Format, Request, Response, Server, Service, ServiceFuture, Status};

/// Bytes in, the same bytes out.
struct Echo;

impl Service for Echo {
    fn name(&self) -> &str {
        "Echo"
    }

    fn methods(&self) -> Vec<String> {
        vec!["echo".into()]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        Box::pin(async move {
            match &*request.method {
                "echo" => Ok(Response::new(request.body)),
                other => Err(Status::unimplemented(format!("no method {other}"))),
            }
        })
    }
}

struct Options {
    role: String,
    addr: String,
    in_flight: usize,
    size: usize,
    seconds: u64,
    multi_thread: bool,
}

fn parse() -> Options {
    let mut args = std::env::args().skip(1);
    let role = args.next().unwrap_or_default();
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7070".into());
    let mut options = Options {
        role,
        addr,
        in_flight: 1,
        size: 64,
        seconds: 5,
        multi_thread: false,
    };
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--in-flight" => options.in_flight = value.parse().expect("--in-flight N"),
            "--size" => options.size = value.parse().expect("--size BYTES"),
            "--seconds" => options.seconds = value.parse().expect("--seconds N"),
            "--runtime" => options.multi_thread = value == "multi",
            other => panic!("unknown flag {other}"),
        }
    }
    options
}

fn main() {
    let options = parse();
    let runtime = if options.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("runtime");
    match options.role.as_str() {
        "server" => runtime.block_on(serve(&options)),
        "client" => runtime.block_on(drive(&options)),
        _ => eprintln!("usage: prpc_echo server|client ADDR [flags]"),
    }
}

async fn serve(options: &Options) {
    let server = Server::builder()
        .add_service(Echo)
        .bind(&options.addr)
        .await
        .expect("bind");
    eprintln!("prpc echo server on {}", server.local_addr());
    server.serve().await.expect("serve");
}

async fn drive(options: &Options) {
    let client = Client::connect(&options.addr).await.expect("connect");
    let body = Bytes::from(vec![0x5a; options.size]);
    let call = Call::new("Echo", "echo", Format::Raw, body);
    // Warm up: connection, allocator, caches.
    for _ in 0..1000 {
        client.call(call.clone()).await.expect("warm-up call");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..options.in_flight)
        .map(|_| {
            let client = client.clone();
            let call = call.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3).expect("histogram");
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let reply = client.call(call.clone()).await.expect("call");
                    debug_assert_eq!(reply.body.len(), call.body.len());
                    let _ = histogram.record(sent.elapsed().as_nanos() as u64);
                }
                histogram
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Histogram::<u64>::new(3).expect("histogram");
    for worker in workers {
        total.add(worker.await.expect("worker")).expect("merge");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let micros = |q: f64| total.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "in_flight={} size={} calls/s={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1}",
        options.in_flight,
        options.size,
        total.len() as f64 / elapsed,
        micros(0.5),
        micros(0.99),
        micros(0.999),
    );
}
