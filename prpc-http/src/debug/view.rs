//! What the page says, apart from how it is written out: headed sections of facts and tables
//! built from the server's stats, its registrations, the process's clusters and the charts'
//! history. The HTML and the plain text are two renderings of this one [`Page`], so they never
//! disagree.
//!
//! Text that came from outside (names, peers, tags, error messages) has its control
//! characters escaped here ([`shown`]); the HTML rendering escapes markup on top.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use prpc::Code;
use prpc::cluster::{BreakerState, ClusterSnapshot, EndpointStats};
use prpc::discovery::{RegistrationState, SourceStats};
use prpc::health::ServingStatus;
use prpc::server::RegistrationView;
use prpc::stats::{MethodSnapshot, ServerSnapshot};

use super::display::{age, bytes, latency, shown};
use super::history::{Charts, Rate};

/// Rows a table shows at most (a server may hold thousands of connections); the rest are
/// counted.
const MAX_ROWS: usize = 200;

/// The whole page.
#[derive(Debug)]
pub(super) struct Page {
    pub(super) facts: Vec<Fact>,
    pub(super) charts: Vec<Chart>,
    pub(super) sections: Vec<Section>,
}

/// A named value: `uptime 3 m 12 s`.
#[derive(Debug)]
pub(super) struct Fact {
    pub(super) name: &'static str,
    pub(super) value: Cell,
}

/// A heading, some facts and a table.
#[derive(Debug)]
pub(super) struct Section {
    pub(super) heading: String,
    pub(super) facts: Vec<Fact>,
    pub(super) table: Option<Table>,
}

#[derive(Debug)]
pub(super) struct Table {
    pub(super) columns: Vec<Column>,
    pub(super) rows: Vec<Vec<Cell>>,
    /// Rows left out past [`MAX_ROWS`].
    pub(super) more: usize,
    /// What an empty table says instead.
    pub(super) empty: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Column {
    pub(super) name: &'static str,
    /// Numbers align right.
    pub(super) numeric: bool,
}

const fn text(name: &'static str) -> Column {
    Column {
        name,
        numeric: false,
    }
}

const fn number(name: &'static str) -> Column {
    Column {
        name,
        numeric: true,
    }
}

#[derive(Debug, Clone)]
pub(super) enum Cell {
    Text(String),
    /// A state worth a colour: a breaker's, a source's, a registration's.
    Marked(String, Tone),
    /// A small chart.
    Trend(Trend),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tone {
    Good,
    Warn,
    Bad,
}

/// Values over the last minutes, oldest first, by age; `None` where there is no value (no
/// calls, no latency).
#[derive(Debug, Clone, Default)]
pub(super) struct Trend {
    pub(super) points: Vec<(Duration, Option<f64>)>,
    /// The time the chart spans, ending now.
    pub(super) span: Duration,
    pub(super) unit: Unit,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Unit {
    #[default]
    PerSecond,
    Millis,
}

impl Unit {
    pub(super) fn format(self, value: f64) -> String {
        match self {
            Unit::PerSecond => format!("{value:.1}/s"),
            Unit::Millis => latency(Duration::from_secs_f64(value / 1000.0)),
        }
    }
}

impl Trend {
    fn of(charts: &Charts, rates: &[Rate], unit: Unit) -> Self {
        let points = charts
            .ages
            .iter()
            .zip(rates)
            .map(|(age, rate)| {
                let value = match unit {
                    Unit::PerSecond => Some(rate.calls_per_second),
                    Unit::Millis => rate.p99.map(|p99| p99.as_secs_f64() * 1000.0),
                };
                (*age, value)
            })
            .collect();
        Trend {
            points,
            span: charts.span,
            unit,
        }
    }

    /// The highest value.
    pub(super) fn max(&self) -> Option<f64> {
        self.points
            .iter()
            .filter_map(|(_, value)| *value)
            .reduce(f64::max)
    }

    /// The newest value.
    pub(super) fn last(&self) -> Option<f64> {
        self.points.last().and_then(|(_, value)| *value)
    }
}

/// A chart of the whole server.
#[derive(Debug)]
pub(super) struct Chart {
    pub(super) title: &'static str,
    pub(super) trend: Trend,
}

/// Everything the page shows, read at one moment.
pub(super) struct Inputs<'a> {
    pub(super) stats: &'a ServerSnapshot,
    pub(super) charts: &'a Charts,
    /// Each service the server has, and its health; `""` is the server's own.
    pub(super) health: Vec<(String, Option<ServingStatus>)>,
    pub(super) registrations: &'a [RegistrationView],
    pub(super) clusters: &'a [ClusterSnapshot],
}

pub(super) fn page(inputs: &Inputs<'_>) -> Page {
    let stats = inputs.stats;
    let calls: u64 = stats.methods.iter().map(MethodSnapshot::calls).sum();
    let errors: u64 = stats.methods.iter().map(MethodSnapshot::errors).sum();
    let in_flight: u64 = stats.methods.iter().map(|method| method.in_flight).sum();
    let facts = vec![
        fact("uptime", age(stats.uptime)),
        fact(
            "calls",
            format!("{calls} answered, {errors} errors, {in_flight} in flight"),
        ),
        fact(
            "connections",
            format!(
                "{} open, {} since start",
                stats.connections.len(),
                stats.connections_opened
            ),
        ),
        fact(
            "bytes",
            format!(
                "{} in, {} out",
                bytes(stats.bytes_in),
                bytes(stats.bytes_out)
            ),
        ),
    ];
    let charts = vec![
        Chart {
            title: "calls/s",
            trend: Trend::of(inputs.charts, &inputs.charts.total, Unit::PerSecond),
        },
        Chart {
            title: "p99 latency",
            trend: Trend::of(inputs.charts, &inputs.charts.total, Unit::Millis),
        },
    ];
    let mut sections = vec![
        methods(stats, inputs.charts),
        connections(stats),
        health(&inputs.health),
        registrations(inputs.registrations),
    ];
    if inputs.clusters.is_empty() {
        sections.push(Section {
            heading: "Clients".to_owned(),
            facts: vec![fact("clusters", "none in this process".to_owned())],
            table: None,
        });
    }
    sections.extend(inputs.clusters.iter().map(cluster));
    sections.push(Section {
        heading: "Idempotency store".to_owned(),
        facts: vec![fact(
            "replies held",
            stats.idempotency_entries.map_or_else(
                || "not counted (no store, or a shared store such as Redis)".to_owned(),
                |entries| entries.to_string(),
            ),
        )],
        table: None,
    });
    Page {
        facts,
        charts,
        sections,
    }
}

fn fact(name: &'static str, value: String) -> Fact {
    Fact {
        name,
        value: Cell::Text(value),
    }
}

fn table(columns: Vec<Column>, mut rows: Vec<Vec<Cell>>, empty: &'static str) -> Table {
    let more = rows.len().saturating_sub(MAX_ROWS);
    rows.truncate(MAX_ROWS);
    Table {
        columns,
        rows,
        more,
        empty,
    }
}

fn methods(stats: &ServerSnapshot, charts: &Charts) -> Section {
    let columns = vec![
        text("service"),
        text("method"),
        number("calls"),
        number("errors"),
        text("by code"),
        number("in flight"),
        number("p50"),
        number("p99"),
        text("calls/s"),
        text("p99 latency"),
    ];
    let rows = stats
        .methods
        .iter()
        .enumerate()
        // Calls to names the server does not have are shown only when there were some.
        .filter(|(_, method)| !method.method.is_empty() || method.calls() + method.in_flight > 0)
        .map(|(index, method)| {
            let rates = charts.methods.get(index).map_or(&[][..], Vec::as_slice);
            vec![
                Cell::Text(shown(&method.service)),
                Cell::Text(if method.method.is_empty() {
                    "(unknown names)".to_owned()
                } else {
                    shown(&method.method)
                }),
                Cell::Text(method.calls().to_string()),
                Cell::Text(method.errors().to_string()),
                Cell::Text(by_code(&method.codes)),
                Cell::Text(method.in_flight.to_string()),
                Cell::Text(
                    method
                        .latency
                        .quantile(0.5)
                        .map_or_else(String::new, latency),
                ),
                Cell::Text(
                    method
                        .latency
                        .quantile(0.99)
                        .map_or_else(String::new, latency),
                ),
                Cell::Trend(Trend::of(charts, rates, Unit::PerSecond)),
                Cell::Trend(Trend::of(charts, rates, Unit::Millis)),
            ]
        })
        .collect();
    Section {
        heading: "Methods".to_owned(),
        facts: Vec::new(),
        table: Some(table(columns, rows, "no methods (stats are off)")),
    }
}

/// `ok 120, not_found 3`.
fn by_code(codes: &[(Code, u64)]) -> String {
    let mut text = String::new();
    for (code, count) in codes {
        if !text.is_empty() {
            text.push_str(", ");
        }
        let _ = write!(text, "{} {count}", code.as_str());
    }
    text
}

fn connections(stats: &ServerSnapshot) -> Section {
    let mut open: Vec<_> = stats.connections.iter().collect();
    open.sort_by_key(|connection| std::cmp::Reverse(connection.age));
    let rows = open
        .into_iter()
        .map(|connection| {
            vec![
                Cell::Text(
                    connection
                        .peer
                        .as_ref()
                        .map_or_else(|| "(unknown)".to_owned(), |peer| shown(&peer.to_string())),
                ),
                Cell::Text(age(connection.age)),
                Cell::Text(connection.calls.to_string()),
                Cell::Text(bytes(connection.bytes_in)),
                Cell::Text(bytes(connection.bytes_out)),
            ]
        })
        .collect();
    let columns = vec![
        text("peer"),
        number("age"),
        number("calls"),
        number("bytes in"),
        number("bytes out"),
    ];
    Section {
        heading: "Connections".to_owned(),
        facts: Vec::new(),
        table: Some(table(columns, rows, "no connection open")),
    }
}

fn health(services: &[(String, Option<ServingStatus>)]) -> Section {
    let rows = services
        .iter()
        .map(|(service, status)| {
            let status = match status {
                Some(ServingStatus::Serving) => Cell::Marked("serving".to_owned(), Tone::Good),
                Some(ServingStatus::NotServing) => {
                    Cell::Marked("not serving".to_owned(), Tone::Bad)
                }
                None => Cell::Text(String::new()),
            };
            let name = if service.is_empty() {
                "(the server)".to_owned()
            } else {
                shown(service)
            };
            vec![Cell::Text(name), status]
        })
        .collect();
    Section {
        heading: "Health".to_owned(),
        facts: Vec::new(),
        table: Some(table(
            vec![text("service"), text("status")],
            rows,
            "no services",
        )),
    }
}

fn registrations(views: &[RegistrationView]) -> Section {
    let rows = views
        .iter()
        .map(|view| {
            let registration = &view.registration;
            let state = match &view.state {
                RegistrationState::Registered => Cell::Marked("registered".to_owned(), Tone::Good),
                RegistrationState::Pending => Cell::Marked("pending".to_owned(), Tone::Warn),
                RegistrationState::Failing(error) => {
                    Cell::Marked(format!("failing: {}", shown(&error.to_string())), Tone::Bad)
                }
                RegistrationState::Deregistered => {
                    Cell::Marked("deregistered".to_owned(), Tone::Warn)
                }
                other => Cell::Text(shown(&format!("{other:?}"))),
            };
            vec![
                Cell::Text(shown(&registration.service)),
                Cell::Text(shown(&registration.endpoint.address.to_string())),
                Cell::Text(shown(&registration.endpoint.instance)),
                Cell::Text(age(registration.ttl)),
                state,
                Cell::Text(if view.serving { "yes" } else { "no" }.to_owned()),
            ]
        })
        .collect();
    let columns = vec![
        text("service"),
        text("address"),
        text("instance"),
        number("ttl"),
        text("state"),
        text("serving"),
    ];
    Section {
        heading: "Registrations".to_owned(),
        facts: Vec::new(),
        table: Some(table(columns, rows, "not registered with a registry")),
    }
}

fn cluster(cluster: &ClusterSnapshot) -> Section {
    let facts = vec![
        fact("balancer", cluster.algorithm.name().to_owned()),
        fact(
            "fail mode",
            format!("{:?}", cluster.fail_mode).to_lowercase(),
        ),
        fact(
            "attempts",
            format!(
                "{} ({} retries, {} backup requests)",
                cluster.attempts, cluster.retries, cluster.hedges
            ),
        ),
        Fact {
            name: "discovery",
            value: discovery(&cluster.discovery),
        },
    ];
    // Breakers keep tokio's clock (so that tests can pause it).
    let now = tokio::time::Instant::now();
    let rows = cluster
        .endpoints
        .iter()
        .map(|endpoint| endpoint_row(endpoint, now))
        .collect();
    let columns = vec![
        text("endpoint"),
        number("weight"),
        text("zone, tags"),
        text("connection"),
        number("in flight"),
        number("calls"),
        text("breaker"),
        number("for"),
        number("failures"),
        number("trips"),
    ];
    Section {
        heading: format!("Client of {}", shown(&cluster.service)),
        facts,
        table: Some(table(columns, rows, "no endpoints")),
    }
}

/// `static, version 3, 2 endpoints, healthy`, or failing since when and why.
fn discovery(source: &SourceStats) -> Cell {
    let mut text = format!(
        "{}, version {}, {} endpoint{}",
        source.source,
        source.version,
        source.endpoints,
        if source.endpoints == 1 { "" } else { "s" }
    );
    if let Some(changed) = source.last_change {
        let _ = write!(text, ", changed {} ago", age(since(changed)));
    }
    if source.failures > 0 {
        let _ = write!(
            text,
            ", {} failures, {} resyncs",
            source.failures, source.resyncs
        );
    }
    if source.healthy {
        return Cell::Marked(format!("{text}; healthy"), Tone::Good);
    }
    let _ = write!(text, "; failing");
    if let Some(failing) = source.failing_since {
        let _ = write!(text, " for {}", age(since(failing)));
    }
    if let Some(error) = &source.last_error {
        let _ = write!(text, ": {}", shown(error));
    }
    Cell::Marked(text, Tone::Bad)
}

fn since(then: SystemTime) -> Duration {
    SystemTime::now().duration_since(then).unwrap_or_default()
}

fn endpoint_row(endpoint: &EndpointStats, now: tokio::time::Instant) -> Vec<Cell> {
    let about = &endpoint.endpoint;
    let mut place = about.zone.as_deref().map(shown).unwrap_or_default();
    for (key, value) in &about.tags {
        if !place.is_empty() {
            place.push_str(", ");
        }
        let _ = write!(place, "{}={}", shown(key), shown(value));
    }
    let connection = if endpoint.backing_off {
        Cell::Marked("backing off".to_owned(), Tone::Bad)
    } else if endpoint.connected {
        Cell::Marked("connected".to_owned(), Tone::Good)
    } else {
        Cell::Text("idle".to_owned())
    };
    let breaker = &endpoint.breaker;
    let state = match breaker.state {
        BreakerState::Closed => Cell::Marked("closed".to_owned(), Tone::Good),
        BreakerState::HalfOpen => Cell::Marked("half-open".to_owned(), Tone::Warn),
        BreakerState::Open => Cell::Marked(
            match breaker
                .open_until
                .and_then(|until| until.checked_duration_since(now))
            {
                Some(left) => format!("open, trials in {}", age(left)),
                None => "open".to_owned(),
            },
            Tone::Bad,
        ),
    };
    let address = about.address.to_string();
    let name = if about.instance == address {
        shown(&address)
    } else {
        format!("{} ({})", shown(&about.instance), shown(&address))
    };
    vec![
        Cell::Text(name),
        Cell::Text(about.weight.to_string()),
        Cell::Text(place),
        connection,
        Cell::Text(
            endpoint
                .in_flight
                .map_or_else(String::new, |n| n.to_string()),
        ),
        Cell::Text(endpoint.calls.to_string()),
        state,
        Cell::Text(age(now.saturating_duration_since(breaker.since))),
        Cell::Text(format!("{} of {}", breaker.failures, breaker.calls)),
        Cell::Text(breaker.trips.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_listed_by_name() {
        assert_eq!(
            by_code(&[(Code::Ok, 120), (Code::NotFound, 3)]),
            "ok 120, not_found 3"
        );
    }
}
