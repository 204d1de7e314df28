//! What `prpc bench` prints: a summary, a latency histogram drawn in text, percentiles and
//! calls by status code, laid out as ghz lays them out; or the same as one JSON object.

use std::fmt::Write;
use std::time::Duration;

use hdrhistogram::Histogram;
use prpc::{Code, Format};
use serde_json::json;

/// Buckets of the drawn histogram, evenly spaced from the fastest call to the slowest.
const BUCKETS: u64 = 10;
/// Width of the longest bar.
const BAR_WIDTH: u64 = 40;
/// The percentiles reported.
const PERCENTILES: [(f64, &str); 4] =
    [(50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (99.9, "p99.9")];

/// The outcome of one run.
pub(crate) struct Report {
    pub(crate) target: String,
    pub(crate) method: String,
    pub(crate) format: Format,
    pub(crate) concurrency: u32,
    pub(crate) connections: usize,
    pub(crate) elapsed: Duration,
    /// Every call's latency in nanoseconds, failed ones included.
    pub(crate) latencies: Histogram<u64>,
    /// Failed calls per code, with the first message seen.
    pub(crate) errors: Vec<(Code, u64, String)>,
}

impl Report {
    fn calls(&self) -> u64 {
        self.latencies.len()
    }

    fn failed(&self) -> u64 {
        self.errors.iter().map(|(_, count, _)| count).sum()
    }

    fn calls_per_second(&self) -> f64 {
        self.calls() as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// `(upper bound in ns, calls)` of each bucket of the drawn histogram.
    fn buckets(&self) -> Vec<(u64, u64)> {
        if self.latencies.is_empty() {
            return Vec::new();
        }
        let fastest = self.latencies.min();
        let slowest = self.latencies.max();
        let step = ((slowest - fastest) / BUCKETS).max(1);
        let mut buckets: Vec<(u64, u64)> = (1..=BUCKETS)
            .map(|index| (fastest + step * index, 0))
            .take_while(|&(upper, _)| upper < slowest + step)
            .collect();
        for value in self.latencies.iter_recorded() {
            let at = self.latencies.median_equivalent(value.value_iterated_to());
            let index = buckets
                .iter()
                .position(|&(upper, _)| at <= upper)
                .unwrap_or(buckets.len() - 1);
            buckets[index].1 += value.count_at_value();
        }
        buckets
    }

    /// The report for people.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let latencies = &self.latencies;
        let ms = |nanos: f64| format!("{:.3} ms", nanos / 1e6);
        let _ = writeln!(out, "Summary:");
        let _ = writeln!(out, "  Target:       {} {}", self.target, self.method);
        let _ = writeln!(
            out,
            "  Load:         {} in flight over {} connection(s), {}",
            self.concurrency,
            self.connections,
            format_name(self.format)
        );
        let _ = writeln!(out, "  Calls:        {}", self.calls());
        let _ = writeln!(out, "  Total:        {:.2} s", self.elapsed.as_secs_f64());
        if !latencies.is_empty() {
            let _ = writeln!(out, "  Slowest:      {}", ms(latencies.max() as f64));
            let _ = writeln!(out, "  Fastest:      {}", ms(latencies.min() as f64));
            let _ = writeln!(out, "  Average:      {}", ms(latencies.mean()));
        }
        let _ = writeln!(out, "  Calls/s:      {:.2}", self.calls_per_second());

        let buckets = self.buckets();
        let tallest = buckets
            .iter()
            .map(|&(_, count)| count)
            .max()
            .unwrap_or(0)
            .max(1);
        let widest = buckets
            .iter()
            .map(|&(_, count)| count.to_string().len())
            .max()
            .unwrap_or(1);
        let _ = writeln!(out, "\nLatency histogram:");
        for (upper, count) in buckets {
            let bar = "∎".repeat((count * BAR_WIDTH).div_ceil(tallest) as usize);
            let _ = writeln!(out, "  {:>10} [{count:>widest$}]  |{bar}", ms(upper as f64));
        }

        let _ = writeln!(out, "\nLatency distribution:");
        for (percentile, label) in PERCENTILES {
            let value = latencies.value_at_percentile(percentile) as f64;
            let _ = writeln!(out, "  {label:<5} in {}", ms(value));
        }

        let _ = writeln!(out, "\nStatus code distribution:");
        let ok = self.calls() - self.failed();
        let _ = writeln!(out, "  [ok]  {ok} calls");
        for (code, count, message) in &self.errors {
            let _ = writeln!(out, "  [{code}]  {count} calls  (first: {message})");
        }
        out
    }

    /// The report for machines: one JSON object.
    pub(crate) fn json(&self) -> String {
        let latencies = &self.latencies;
        let micros = |nanos: f64| (nanos / 10.0).round() / 100.0;
        let mut latency = serde_json::Map::new();
        if !latencies.is_empty() {
            latency.insert("min".into(), json!(micros(latencies.min() as f64)));
            latency.insert("mean".into(), json!(micros(latencies.mean())));
            latency.insert("max".into(), json!(micros(latencies.max() as f64)));
            for (percentile, label) in PERCENTILES {
                let value = latencies.value_at_percentile(percentile) as f64;
                latency.insert(label.into(), json!(micros(value)));
            }
        }
        let histogram: Vec<_> = self
            .buckets()
            .into_iter()
            .map(|(upper, count)| json!({ "le_us": micros(upper as f64), "count": count }))
            .collect();
        let errors: serde_json::Map<String, serde_json::Value> = self
            .errors
            .iter()
            .map(|(code, count, _)| (code.to_string(), json!(count)))
            .collect();
        json!({
            "target": self.target,
            "method": self.method,
            "format": format_name(self.format),
            "concurrency": self.concurrency,
            "connections": self.connections,
            "calls": self.calls(),
            "ok": self.calls() - self.failed(),
            "errors": errors,
            "seconds": self.elapsed.as_secs_f64(),
            "calls_per_second": self.calls_per_second(),
            "latency_us": latency,
            "histogram": histogram,
        })
        .to_string()
    }
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::MsgPack => "msgpack",
        Format::Json => "json",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(latencies_us: &[u64]) -> Report {
        let mut latencies = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for micros in latencies_us {
            latencies.record(micros * 1000).unwrap();
        }
        Report {
            target: "tcp://127.0.0.1:7000".into(),
            method: "Echo/echo".into(),
            format: Format::MsgPack,
            concurrency: 2,
            connections: 1,
            elapsed: Duration::from_secs(1),
            latencies,
            errors: vec![(Code::Unavailable, 1, "connection closed".into())],
        }
    }

    #[test]
    fn every_call_lands_in_one_bucket() {
        let report = report(&[100, 100, 150, 200, 1000]);
        let buckets = report.buckets();
        assert!(buckets.len() <= BUCKETS as usize);
        assert_eq!(buckets.iter().map(|&(_, count)| count).sum::<u64>(), 5);
        assert!(buckets.last().unwrap().0 >= 1_000_000 - 1000);
    }

    #[test]
    fn the_json_report_parses() {
        let report = report(&[100, 200]);
        let parsed: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(parsed["calls"], 2);
        assert_eq!(parsed["ok"], 1);
        assert_eq!(parsed["errors"]["unavailable"], 1);
        assert_eq!(parsed["calls_per_second"], 2.0);
        assert!(report.text().contains("[unavailable]  1 calls"));
    }
}
