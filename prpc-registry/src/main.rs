//! `prpc-registry serve ADDR`: the built-in registry as a process of its own.

use std::process::ExitCode;
use std::time::Duration;

use prpc_registry::{Limits, Standalone};

const USAGE: &str = "usage: prpc-registry serve ADDR [--max-instances N] [--max-per-peer N] [--max-watchers N] [--max-ttl SECONDS] [--warm-up SECONDS]

Runs prpc's built-in registry on ADDR (host:port, tcp://host:port or unix:///path).
Prints `listening on ADDRESS` once it accepts connections; stops gracefully on Ctrl-C or SIGTERM.
--warm-up (default 5) holds back watches after a start until registrants are back: set it
above a third of the longest registration TTL.";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("prpc-registry: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("serve") => {}
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return Ok(());
        }
        _ => return Err(USAGE.to_owned()),
    }
    let address = args.next().ok_or(USAGE)?;
    let mut limits = Limits::default();
    let mut warm_up = None;
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{flag} {value}: not a number"))?;
        match flag.as_str() {
            "--max-instances" => limits.max_instances = number as usize,
            "--max-per-peer" => limits.max_per_peer = number as usize,
            "--max-watchers" => limits.max_watchers = number as usize,
            "--max-ttl" => limits.max_ttl = Duration::from_secs(number),
            "--warm-up" => warm_up = Some(Duration::from_secs(number)),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    let mut standalone = Standalone::new(limits);
    if let Some(warm_up) = warm_up {
        standalone = standalone.warm_up(warm_up);
    }
    standalone
        .serve(&address, |bound| println!("listening on {bound}"))
        .await
        .map_err(|error| error.to_string())
}
