//! `/metrics`: a server's stats, and those of every cluster client in the process, encoded by
//! prometheus-client: in the OpenMetrics text format for a scraper that asks for it (as
//! Prometheus does), else in Prometheus's classic text format 0.0.4 (curl, `promtool check
//! metrics`), which names a counter's family with its `_total` and has no `# EOF`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `prpc_server_handled_total` | counter | `service`, `method`, `code` |
//! | `prpc_server_handling_seconds` | histogram | `service`, `method` |
//! | `prpc_server_in_flight` | gauge | `service`, `method` |
//! | `prpc_server_connections` | gauge | |
//! | `prpc_server_connections_opened_total` | counter | |
//! | `prpc_server_received_bytes_total`, `prpc_server_sent_bytes_total` | counter | |
//! | `prpc_server_idempotency_entries` | gauge | |
//! | `prpc_server_memory_budget_bytes`, `prpc_server_memory_budget_held_bytes` | gauge | |
//! | `prpc_server_uptime_seconds` | gauge | |
//! | `prpc_client_attempts_total`, `_retries_total`, `_hedges_total` | counter | `service` |
//! | `prpc_client_endpoint_attempts_total` | counter | `service`, `endpoint` |
//! | `prpc_client_endpoint_connected` | gauge | `service`, `endpoint` |
//! | `prpc_client_breaker_state` | gauge (1 for the current state) | `service`, `endpoint`, `state` |
//! | `prpc_client_discovery_healthy`, `prpc_client_discovery_endpoints` | gauge | `service` |

use std::fmt::Write as _;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{self, HeaderMap, HeaderValue};
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use prpc::cluster::{BreakerState, ClusterSnapshot};
use prpc::stats::{BUCKET_BOUNDS, CODES, ServerSnapshot};

use crate::reply::Response;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of Prometheus's classic text format.
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `/metrics` answer for `stats` and the process's clusters, in the format `headers`
/// accept.
pub(crate) fn response(stats: &ServerSnapshot, headers: &HeaderMap) -> Response {
    let text = render(stats, &prpc::cluster::clusters());
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/openmetrics-text"));
    let (text, content_type) = if openmetrics {
        (text, OPENMETRICS)
    } else {
        (classic(&text), CLASSIC)
    };
    let mut response = hyper::Response::new(http_body_util::Full::new(Bytes::from(text)));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// OpenMetrics text as Prometheus's classic text format: a counter family's `# HELP` and
/// `# TYPE` name its samples' `_total` name, and `# UNIT` and `# EOF` go. (The samples, and
/// the escaping of label values, are the same in both; the text comes from [`render`], which
/// writes no exemplars, `_created` samples or OpenMetrics-only types.)
fn classic(openmetrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in openmetrics.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.strip_suffix(" counter"))
        {
            counters.insert(name.to_owned());
        }
    }
    let mut text = String::with_capacity(openmetrics.len() + 64 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find(|prefix| line.starts_with(prefix));
        match descriptor {
            Some(prefix) => {
                let rest = &line[prefix.len()..];
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                text.push_str(prefix);
                text.push_str(name);
                if counters.contains(name) {
                    text.push_str("_total");
                }
                text.push(' ');
                text.push_str(tail);
            }
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

/// The exposition text of a server's stats and these clusters.
pub(crate) fn render(stats: &ServerSnapshot, clusters: &[ClusterSnapshot]) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Collected {
        server: stats.clone(),
        clusters: clusters.to_vec(),
    }));
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

/// A snapshot, encoded on a scrape.
#[derive(Debug)]
struct Collected {
    server: ServerSnapshot,
    clusters: Vec<ClusterSnapshot>,
}

/// A label value, escaped as the text format wants (prometheus-client writes values as they
/// are): names and endpoints may come from the network.
struct Escaped<'a>(&'a str);

impl EncodeLabelValue for Escaped<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A histogram of the server's buckets, as prometheus-client encodes one.
#[derive(Debug)]
struct Seconds<'a>(&'a prpc::stats::HistogramSnapshot);

impl EncodeMetric for Seconds<'_> {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .0
            .counts
            .iter()
            .enumerate()
            .map(|(index, count)| {
                (
                    BUCKET_BOUNDS.get(index).copied().unwrap_or(f64::MAX),
                    *count,
                )
            })
            .collect();
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.0.sum.as_secs_f64(),
            self.0.count,
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Encodes one metric family: a descriptor, then each labelled value.
fn family<'v, M: EncodeMetric + 'v, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    values: impl IntoIterator<Item = ([(&'static str, Escaped<'v>); N], M)>,
) -> Result<(), std::fmt::Error> {
    let mut values = values.into_iter().peekable();
    if values.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in values {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes one unlabelled metric.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, value.metric_type())?;
    value.encode(metric)
}

/// The service and method labels of a method's values.
fn names(m: &prpc::stats::MethodSnapshot) -> (Escaped<'_>, Escaped<'_>) {
    (Escaped(&m.service), Escaped(&m.method))
}

impl prometheus_client::collector::Collector for Collected {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let server = &self.server;
        // Calls to unlisted methods are counted under empty names: `method=""`.
        let methods = || server.methods.iter();
        family(
            &mut encoder,
            "prpc_server_handled",
            "Calls a server answered, by service, method and status code.",
            MetricType::Counter,
            // `ok` always (so a rate has a series from the start), other codes once seen.
            methods().flat_map(|m| {
                CODES
                    .iter()
                    .filter(|code| **code == prpc::Code::Ok || m.count(**code) > 0)
                    .map(move |code| {
                        let (service, method) = names(m);
                        (
                            [
                                ("service", service),
                                ("method", method),
                                ("code", Escaped(code.as_str())),
                            ],
                            ConstCounter::new(m.count(*code)),
                        )
                    })
            }),
        )?;
        family(
            &mut encoder,
            "prpc_server_handling_seconds",
            "How long a server took to answer calls, from arrival to answer.",
            MetricType::Histogram,
            methods().map(|m| {
                let (service, method) = names(m);
                (
                    [("service", service), ("method", method)],
                    Seconds(&m.latency),
                )
            }),
        )?;
        family(
            &mut encoder,
            "prpc_server_in_flight",
            "Calls a server is running now.",
            MetricType::Gauge,
            methods().map(|m| {
                let (service, method) = names(m);
                (
                    [("service", service), ("method", method)],
                    ConstGauge::new(i64::try_from(m.in_flight).unwrap_or(i64::MAX)),
                )
            }),
        )?;
        single(
            &mut encoder,
            "prpc_server_connections",
            "Connections open now.",
            ConstGauge::new(server.connections.len() as i64),
        )?;
        single(
            &mut encoder,
            "prpc_server_connections_opened",
            "Connections opened since the server started.",
            ConstCounter::new(server.connections_opened),
        )?;
        single(
            &mut encoder,
            "prpc_server_received_bytes",
            "Bytes read from connections.",
            ConstCounter::new(server.bytes_in),
        )?;
        single(
            &mut encoder,
            "prpc_server_sent_bytes",
            "Bytes written to connections.",
            ConstCounter::new(server.bytes_out),
        )?;
        if let Some(entries) = server.idempotency_entries {
            single(
                &mut encoder,
                "prpc_server_idempotency_entries",
                "Calls the idempotency store tracks, claimed or finished.",
                ConstGauge::new(i64::try_from(entries).unwrap_or(i64::MAX)),
            )?;
        }
        single(
            &mut encoder,
            "prpc_server_memory_budget_bytes",
            "The server's memory budget: bytes its connections may hold in large frames and \
             unanswered requests.",
            ConstGauge::new(i64::try_from(server.memory_budget).unwrap_or(i64::MAX)),
        )?;
        single(
            &mut encoder,
            "prpc_server_memory_budget_held_bytes",
            "Bytes of the memory budget held now by large frames and unanswered requests.",
            ConstGauge::new(i64::try_from(server.memory_budget_held).unwrap_or(i64::MAX)),
        )?;
        single(
            &mut encoder,
            "prpc_server_uptime_seconds",
            "Seconds since the server started.",
            ConstGauge::new(server.uptime.as_secs_f64()),
        )?;
        self.encode_clients(&mut encoder)
    }
}

impl Collected {
    fn encode_clients(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let clusters = || self.clusters.iter();
        let per_cluster = |value: fn(&ClusterSnapshot) -> u64| {
            clusters().map(move |c| {
                (
                    [("service", Escaped(&c.service))],
                    ConstCounter::new(value(c)),
                )
            })
        };
        family(
            encoder,
            "prpc_client_attempts",
            "Attempts a cluster client sent to endpoints.",
            MetricType::Counter,
            per_cluster(|c| c.attempts),
        )?;
        family(
            encoder,
            "prpc_client_retries",
            "Attempts after a call's first (failover, failtry, backup requests).",
            MetricType::Counter,
            per_cluster(|c| c.retries),
        )?;
        family(
            encoder,
            "prpc_client_hedges",
            "Backup requests a cluster client sent.",
            MetricType::Counter,
            per_cluster(|c| c.hedges),
        )?;
        let addresses: Vec<Vec<String>> = clusters()
            .map(|c| {
                c.endpoints
                    .iter()
                    .map(|e| e.endpoint.address.to_string())
                    .collect()
            })
            .collect();
        let endpoints = || {
            clusters().zip(&addresses).flat_map(|(c, addresses)| {
                c.endpoints
                    .iter()
                    .zip(addresses)
                    .map(move |(endpoint, address)| (&c.service, address, endpoint))
            })
        };
        family(
            encoder,
            "prpc_client_endpoint_attempts",
            "Attempts a cluster client sent to each endpoint.",
            MetricType::Counter,
            endpoints().map(|(service, address, e)| {
                (
                    [
                        ("service", Escaped(service)),
                        ("endpoint", Escaped(address)),
                    ],
                    ConstCounter::new(e.calls),
                )
            }),
        )?;
        family(
            encoder,
            "prpc_client_endpoint_connected",
            "Whether a cluster client has a connection to the endpoint (1) or not (0).",
            MetricType::Gauge,
            endpoints().map(|(service, address, e)| {
                (
                    [
                        ("service", Escaped(service)),
                        ("endpoint", Escaped(address)),
                    ],
                    ConstGauge::new(i64::from(e.connected)),
                )
            }),
        )?;
        family(
            encoder,
            "prpc_client_breaker_state",
            "The circuit breaker's state of each endpoint: 1 for the current one.",
            MetricType::Gauge,
            endpoints().flat_map(|(service, address, e)| {
                [
                    (BreakerState::Closed, "closed"),
                    (BreakerState::Open, "open"),
                    (BreakerState::HalfOpen, "half_open"),
                ]
                .into_iter()
                .map(move |(state, name)| {
                    (
                        [
                            ("service", Escaped(service)),
                            ("endpoint", Escaped(address)),
                            ("state", Escaped(name)),
                        ],
                        ConstGauge::new(i64::from(e.breaker.state == state)),
                    )
                })
            }),
        )?;
        family(
            encoder,
            "prpc_client_discovery_healthy",
            "Whether a cluster client's discovery source answers (1) or it keeps its last set (0).",
            MetricType::Gauge,
            clusters().map(|c| {
                (
                    [("service", Escaped(&c.service))],
                    ConstGauge::new(i64::from(c.discovery.healthy)),
                )
            }),
        )?;
        family(
            encoder,
            "prpc_client_discovery_endpoints",
            "Endpoints a cluster client's discovery source lists.",
            MetricType::Gauge,
            clusters().map(|c| {
                (
                    [("service", Escaped(&c.service))],
                    ConstGauge::new(c.discovery.endpoints as i64),
                )
            }),
        )
    }
}
