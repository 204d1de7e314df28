//! `prpc`: list, describe, call, health-check and load-test any prpc server from a shell, and
//! run or read the built-in registry.
//!
//! ```text
//! prpc list ADDR
//! prpc describe ADDR [SERVICE[/METHOD]]
//! prpc call ADDR SERVICE/METHOD [JSON | - | --data @FILE] [-H key:value]...
//! prpc health ADDR [SERVICE]
//! prpc bench ADDR SERVICE/METHOD JSON -c CONCURRENCY (-n CALLS | -d DURATION) [--connections N] [--json]
//! prpc registry serve ADDR [--max-instances N] ...
//! prpc registry list ADDR [SERVICE]
//! ```
//!
//! ADDR is any address a prpc client dials (`host:port`, `tcp://`, `unix://`, `tls://`), or a
//! service found through discovery: `registry://host:port/SERVICE` (the built-in registry) or
//! `etcd://host:port/SERVICE`, called through a balanced [`Cluster`](prpc::cluster::Cluster).
//!
//! Every failure is one line on stderr, `prpc: ...`, and an exit code that says its class
//! (see [`exit`]): 0 success, 1 bad input, 2 bad usage, 3 not serving, 10 + the status code
//! of a failed call.

mod bench;
mod call;
mod exit;
mod input;
mod inspect;
mod registry;
mod signature;
mod target;
mod transcode;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

use crate::exit::Failure;
use crate::target::{Connect, Target};

/// Command-line client for prpc servers.
#[derive(Debug, Parser)]
#[command(name = "prpc", version, about, max_term_width = 100)]
struct Cli {
    /// Deadline of each call, and of opening the connection (`500ms`, `2s`, `1m`); 10s when
    /// left out (`bench`'s calls then have none).
    #[arg(long, global = true, value_name = "DURATION", value_parser = input::duration)]
    timeout: Option<Duration>,

    /// PEM file of the certificate authorities a `tls://` server's certificate must chain to
    /// (default: the platform's trust store).
    #[arg(long, global = true, value_name = "FILE")]
    cacert: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the server's services and their methods.
    List {
        /// Where the server is.
        addr: Target,
    },
    /// Shows the methods of the server's services as signatures, with the types they use.
    Describe {
        /// Where the server is.
        addr: Target,
        /// One service, or one method as SERVICE/METHOD.
        what: Option<String>,
    },
    /// Calls one method with arguments in JSON and prints its reply in JSON.
    Call(call::CallArgs),
    /// Asks whether the server, or one of its services, is serving.
    Health {
        /// Where the server is.
        addr: Target,
        /// The service asked about (the whole server when left out).
        service: Option<String>,
    },
    /// Calls one method over and over and reports calls/s and latency.
    Bench(bench::BenchArgs),
    /// Runs the built-in registry, or reads one.
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage(error),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return exit::report(&Failure::input(format!("no tokio runtime: {error}"))),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(failure) => exit::report(&failure),
    }
}

/// A value that does not parse (an address, a duration, a header) is bad input: one line and
/// exit 1. Other usage errors, `--help` and `--version` print as clap prints them.
fn usage(error: clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let text = error.to_string();
            let line = text.lines().next().unwrap_or_default();
            exit::report(&Failure::input(line.trim_start_matches("error: ")))
        }
        _ => {
            let _ = error.print();
            ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let connect = Connect {
        timeout: cli.timeout,
        cacert: cli.cacert,
    };
    match cli.command {
        Command::List { addr } => inspect::list(&connect.channel(&addr).await?).await,
        Command::Describe { addr, what } => {
            inspect::describe(&connect.channel(&addr).await?, what.as_deref()).await
        }
        Command::Call(args) => call::call(&connect, args).await,
        Command::Health { addr, service } => {
            call::health(
                &connect.channel(&addr).await?,
                service.as_deref().unwrap_or(""),
            )
            .await
        }
        Command::Bench(args) => bench::bench(&connect, args).await,
        Command::Registry(command) => registry::run(&connect, command).await,
    }
}
