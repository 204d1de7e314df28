//! The page as HTML: semantic tables, small inline SVG charts, a little CSS, no script. It
//! refreshes itself through `<meta http-equiv="refresh">`.

use std::fmt::Write as _;
use std::time::Duration;

use super::display::age;
use super::view::{Cell, Chart, Fact, Page, Section, Table, Tone, Trend, Unit};

/// Seconds between the page's refreshes.
const REFRESH_SECONDS: u32 = 5;

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d1d1f;background:#fff}\
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.4em 0 .4em}\
dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;margin:.3em 0}\
dt{color:#666}dd{margin:0}\
table{border-collapse:collapse;font-variant-numeric:tabular-nums}\
th,td{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}\
th{background:#f4f4f6;font-weight:600}td.n,th.n{text-align:right}\
.good{color:#137333}.warn{color:#b06000}.bad{color:#c5221f;font-weight:600}\
.charts{display:flex;flex-wrap:wrap;gap:1.5em}figure{margin:0}\
figcaption{color:#444;font-size:.9em}svg{display:block}\
svg .line{fill:none;stroke:#1a73e8;stroke-width:1.5}svg .p99{stroke:#d93025}\
svg .axis{stroke:#bbb;stroke-width:1}svg text{font-size:10px;fill:#666}\
.note{color:#666}";

/// The page as an HTML document.
pub(super) fn render(page: &Page) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <title>prpc debug</title><style>{STYLE}</style></head>\n<body>\n\
         <h1>prpc server</h1>\n\
         <p class=\"note\">Refreshes every {REFRESH_SECONDS} s. \
         The same as text: <a href=\"?format=text\">?format=text</a>; \
         for Prometheus: <a href=\"/metrics\">/metrics</a>.</p>\n"
    );
    facts(&mut out, &page.facts);
    out.push_str("<section><h2>Calls over time</h2><div class=\"charts\">\n");
    for chart in &page.charts {
        figure(&mut out, chart);
    }
    out.push_str("</div></section>\n");
    for section in &page.sections {
        self::section(&mut out, section);
    }
    out.push_str("</body></html>\n");
    out
}

fn facts(out: &mut String, facts: &[Fact]) {
    if facts.is_empty() {
        return;
    }
    out.push_str("<dl>");
    for fact in facts {
        let _ = write!(out, "<dt>{}</dt><dd>", fact.name);
        cell(out, &fact.value);
        out.push_str("</dd>");
    }
    out.push_str("</dl>\n");
}

fn section(out: &mut String, section: &Section) {
    let _ = writeln!(out, "<section><h2>{}</h2>", escape(&section.heading));
    facts(out, &section.facts);
    if let Some(table) = &section.table {
        self::table(out, table);
    }
    out.push_str("</section>\n");
}

fn table(out: &mut String, table: &Table) {
    if table.rows.is_empty() {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(table.empty));
        return;
    }
    out.push_str("<table><thead><tr>");
    for column in &table.columns {
        let class = if column.numeric { " class=\"n\"" } else { "" };
        let _ = write!(out, "<th scope=\"col\"{class}>{}</th>", escape(column.name));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for (column, value) in table.columns.iter().zip(row) {
            out.push_str(if column.numeric {
                "<td class=\"n\">"
            } else {
                "<td>"
            });
            cell(out, value);
            out.push_str("</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    if table.more > 0 {
        let _ = writeln!(out, "<p class=\"note\">and {} more</p>", table.more);
    }
}

fn cell(out: &mut String, cell: &Cell) {
    match cell {
        Cell::Text(text) => out.push_str(&escape(text)),
        Cell::Marked(text, tone) => {
            let class = match tone {
                Tone::Good => "good",
                Tone::Warn => "warn",
                Tone::Bad => "bad",
            };
            let _ = write!(out, "<span class=\"{class}\">{}</span>", escape(text));
        }
        Cell::Trend(trend) => sparkline(out, trend),
    }
}

/// A chart of the whole server, with its scale and a caption that says the numbers.
fn figure(out: &mut String, chart: &Chart) {
    const WIDTH: f64 = 480.0;
    const HEIGHT: f64 = 120.0;
    let trend = &chart.trend;
    let max = trend.max().unwrap_or(0.0);
    let class = class_of(trend);
    let _ = write!(
        out,
        "<figure><svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         aria-label=\"{title}\">\
         <line class=\"axis\" x1=\"0\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\"/>\
         <line class=\"axis\" x1=\"0\" y1=\"12\" x2=\"{WIDTH}\" y2=\"12\" stroke-dasharray=\"2 3\"/>\
         <text x=\"2\" y=\"10\">{top}</text>\
         <text x=\"2\" y=\"{label}\">{start} ago</text>\
         <text x=\"{right}\" y=\"{label}\" text-anchor=\"end\">now</text>",
        w = WIDTH,
        h = HEIGHT + 14.0,
        title = escape(chart.title),
        base = HEIGHT,
        top = escape(&trend.unit.format(max)),
        label = HEIGHT + 12.0,
        start = age(trend.span),
        right = WIDTH - 2.0,
    );
    polylines(out, trend, class, WIDTH, HEIGHT, 12.0, max);
    let now = trend
        .last()
        .map_or_else(|| "none".to_owned(), |value| trend.unit.format(value));
    let _ = writeln!(
        out,
        "</svg><figcaption>{}: {} now, {} at most</figcaption></figure>",
        escape(chart.title),
        escape(&now),
        escape(&trend.unit.format(max)),
    );
}

/// A chart small enough for a table cell; its title (a tooltip) says the newest value.
fn sparkline(out: &mut String, trend: &Trend) {
    const WIDTH: f64 = 120.0;
    const HEIGHT: f64 = 22.0;
    let max = trend.max().unwrap_or(0.0);
    let _ = write!(
        out,
        "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\">\
         <line class=\"axis\" x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\"/>"
    );
    if let Some(last) = trend.last() {
        let _ = write!(
            out,
            "<title>{} now, {} at most</title>",
            escape(&trend.unit.format(last)),
            escape(&trend.unit.format(max))
        );
    }
    polylines(out, trend, class_of(trend), WIDTH, HEIGHT, 2.0, max);
    out.push_str("</svg>");
}

fn class_of(trend: &Trend) -> &'static str {
    match trend.unit {
        Unit::PerSecond => "line",
        Unit::Millis => "line p99",
    }
}

/// The trend as lines over `width` × `height` (the top `margin` left free), the window's
/// start at the left and now at the right; a gap where there is no value.
fn polylines(
    out: &mut String,
    trend: &Trend,
    class: &str,
    width: f64,
    height: f64,
    margin: f64,
    max: f64,
) {
    let window = trend.span.as_secs_f64().max(1.0);
    let x = |age: Duration| (width * (1.0 - age.as_secs_f64() / window)).clamp(0.0, width);
    let y = |value: f64| {
        if max > 0.0 {
            height - (value / max) * (height - margin)
        } else {
            height
        }
    };
    for run in trend.points.split(|(_, value)| value.is_none()) {
        let points: Vec<String> = run
            .iter()
            .filter_map(|(age, value)| value.map(|value| format!("{:.1},{:.1}", x(*age), y(value))))
            .collect();
        match points.as_slice() {
            [] => {}
            // A lone point is a dot.
            [point] => {
                let (cx, cy) = point.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    out,
                    "<circle class=\"{class}\" cx=\"{cx}\" cy=\"{cy}\" r=\"1.5\"/>"
                );
            }
            points => {
                let _ = write!(
                    out,
                    "<polyline class=\"{class}\" points=\"{}\"/>",
                    points.join(" ")
                );
            }
        }
    }
}

/// `text` safe inside HTML text and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debug::view::Column;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<script>alert('x' & \"y\")</script>"),
            "&lt;script&gt;alert(&#39;x&#39; &amp; &quot;y&quot;)&lt;/script&gt;"
        );
    }

    #[test]
    fn names_from_the_network_cannot_inject_markup() {
        let page = Page {
            facts: Vec::new(),
            charts: Vec::new(),
            sections: vec![Section {
                heading: "Client of <script>alert(1)</script>".to_owned(),
                facts: Vec::new(),
                table: Some(Table {
                    columns: vec![Column {
                        name: "peer",
                        numeric: false,
                    }],
                    rows: vec![vec![Cell::Marked(
                        "<img src=x onerror=alert(1)>".to_owned(),
                        Tone::Bad,
                    )]],
                    more: 0,
                    empty: "",
                }),
            }],
        };
        let html = render(&page);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
    }

    #[test]
    fn gaps_break_the_line() {
        let trend = Trend {
            points: vec![
                (Duration::from_secs(10), Some(1.0)),
                (Duration::from_secs(8), Some(2.0)),
                (Duration::from_secs(6), None),
                (Duration::from_secs(4), Some(2.0)),
                (Duration::from_secs(2), Some(1.0)),
                (Duration::from_secs(0), Some(0.0)),
            ],
            span: Duration::from_secs(12),
            unit: Unit::PerSecond,
        };
        let mut out = String::new();
        sparkline(&mut out, &trend);
        assert_eq!(out.matches("<polyline").count(), 2, "{out}");
        assert!(
            out.contains("<title>0.0/s now, 2.0/s at most</title>"),
            "{out}"
        );
    }
}
