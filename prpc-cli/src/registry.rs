//! `prpc registry serve` and `prpc registry list`: the built-in registry, run or read.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use prpc_registry::{Limits, RegistryApiClient, Standalone};

use crate::exit::Failure;
use crate::input;
use crate::inspect::print;
use crate::target::{Connect, Target};

/// What `prpc registry` does.
#[derive(Debug, Subcommand)]
pub(crate) enum RegistryCommand {
    /// Runs the built-in registry on ADDR until Ctrl-C or SIGTERM; prints `listening on
    /// ADDRESS` once it takes connections.
    Serve {
        /// Where to listen: host:port, tcp://host:port or unix:///path.
        addr: String,
        /// Registrations in all.
        #[arg(long, value_name = "N")]
        max_instances: Option<usize>,
        /// Registrations from one client address.
        #[arg(long, value_name = "N")]
        max_per_peer: Option<usize>,
        /// Open watches.
        #[arg(long, value_name = "N")]
        max_watchers: Option<usize>,
        /// The longest TTL a registration may ask for (`30s`).
        #[arg(long, value_name = "DURATION", value_parser = input::duration)]
        max_ttl: Option<Duration>,
        /// How long watches are held back after a start, for registrants to come back: above
        /// a third of the longest registration TTL (`5s`).
        #[arg(long, value_name = "DURATION", value_parser = input::duration)]
        warm_up: Option<Duration>,
    },
    /// Lists the services a registry knows, or the endpoints of one.
    List {
        /// Where the registry is.
        addr: Target,
        /// The service whose endpoints to list.
        service: Option<String>,
    },
}

/// Runs `command`.
pub(crate) async fn run(connect: &Connect, command: RegistryCommand) -> Result<ExitCode, Failure> {
    match command {
        RegistryCommand::Serve {
            addr,
            max_instances,
            max_per_peer,
            max_watchers,
            max_ttl,
            warm_up,
        } => {
            let mut limits = Limits::default();
            limits.max_instances = max_instances.unwrap_or(limits.max_instances);
            limits.max_per_peer = max_per_peer.unwrap_or(limits.max_per_peer);
            limits.max_watchers = max_watchers.unwrap_or(limits.max_watchers);
            limits.max_ttl = max_ttl.unwrap_or(limits.max_ttl);
            let mut standalone = Standalone::new(limits);
            if let Some(warm_up) = warm_up {
                standalone = standalone.warm_up(warm_up);
            }
            standalone
                .serve(&addr, |bound| {
                    let mut stdout = std::io::stdout().lock();
                    let _ = writeln!(stdout, "listening on {bound}");
                    let _ = stdout.flush();
                })
                .await
                .map_err(|error| Failure::unavailable(error.to_string()))?;
            Ok(ExitCode::SUCCESS)
        }
        RegistryCommand::List { addr, service } => list(connect, &addr, service).await,
    }
}

/// Prints a table of the registry's services, or of one service's endpoints.
async fn list(
    connect: &Connect,
    target: &Target,
    service: Option<String>,
) -> Result<ExitCode, Failure> {
    let Target::Direct(address) = target else {
        return Err(Failure::input(format!(
            "{target}: give the registry's own address (host:port), not a discovered service"
        )));
    };
    let api = RegistryApiClient::new(
        connect
            .connect(target, address, Some(connect.timeout()))
            .await?,
    );
    let rows = match service {
        None => {
            let services = api
                .services()
                .await
                .map_err(|error| Failure::call(target, Some("prpc.Registry/services"), &error))?;
            let mut rows = vec![row(["SERVICE", "INSTANCES", "VERSION"])];
            rows.extend(services.into_iter().map(|summary| {
                vec![
                    summary.name,
                    summary.instances.to_string(),
                    summary.version.to_string(),
                ]
            }));
            rows
        }
        Some(service) => {
            let set = api
                .list(service)
                .await
                .map_err(|error| Failure::call(target, Some("prpc.Registry/list"), &error))?;
            let mut rows = vec![row(["INSTANCE", "ADDRESS", "WEIGHT", "ZONE", "TAGS"])];
            rows.extend(set.endpoints.into_iter().map(|endpoint| {
                let tags: Vec<String> = endpoint
                    .tags
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect();
                vec![
                    endpoint.instance,
                    endpoint.address.to_string(),
                    endpoint.weight.to_string(),
                    endpoint.zone.unwrap_or_else(|| "-".into()),
                    if tags.is_empty() {
                        "-".into()
                    } else {
                        tags.join(",")
                    },
                ]
            }));
            rows
        }
    };
    print(&table(&rows))
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.map(str::to_owned).to_vec()
}

/// Rows as left-aligned columns two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
