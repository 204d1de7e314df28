//! The page as plain text, for `curl` and terminals: the same facts and tables with aligned
//! columns, and the charts as a line of block characters.

use std::fmt::Write as _;

use super::display::age;
use super::history::INTERVAL;
use super::view::{Cell, Fact, Page, Section, Table, Trend};

/// Points a text chart shows: the newest minute.
const TEXT_POINTS: usize = 30;

pub(super) fn render(page: &Page) -> String {
    let mut out = String::with_capacity(8 * 1024);
    out.push_str("prpc server\n");
    facts(&mut out, &page.facts);
    let _ = writeln!(
        out,
        "\n== Calls over time (a mark per {} s, newest right) ==",
        INTERVAL.as_secs()
    );
    let width = page
        .charts
        .iter()
        .map(|chart| chart.title.len())
        .max()
        .unwrap_or(0);
    for chart in &page.charts {
        let trend = &chart.trend;
        let now = trend
            .last()
            .map_or_else(|| "none".to_owned(), |value| trend.unit.format(value));
        let max = trend
            .max()
            .map_or_else(|| "none".to_owned(), |value| trend.unit.format(value));
        let _ = writeln!(
            out,
            "{:width$}  {}  {now} now, {max} at most in the last {}",
            chart.title,
            blocks(trend),
            age(trend.span),
        );
    }
    for section in &page.sections {
        self::section(&mut out, section);
    }
    out
}

fn facts(out: &mut String, facts: &[Fact]) {
    let width = facts.iter().map(|fact| fact.name.len()).max().unwrap_or(0);
    for fact in facts {
        let _ = writeln!(out, "{:width$}  {}", fact.name, cell(&fact.value));
    }
}

fn section(out: &mut String, section: &Section) {
    let _ = writeln!(out, "\n== {} ==", section.heading);
    facts(out, &section.facts);
    if let Some(table) = &section.table {
        self::table(out, table);
    }
}

fn table(out: &mut String, table: &Table) {
    if table.rows.is_empty() {
        let _ = writeln!(out, "{}", table.empty);
        return;
    }
    let rows: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|row| row.iter().map(cell).collect())
        .collect();
    let widths: Vec<usize> = table
        .columns
        .iter()
        .enumerate()
        .map(|(index, column)| {
            rows.iter()
                .map(|row| row.get(index).map_or(0, |text| text.chars().count()))
                .chain([column.name.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |out: &mut String, texts: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for ((column, width), value) in table.columns.iter().zip(&widths).zip(texts) {
            let pad = width.saturating_sub(value.chars().count());
            if column.numeric {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(value);
            } else {
                text.push_str(value);
                text.extend(std::iter::repeat_n(' ', pad));
            }
            text.push_str("  ");
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(out, &mut table.columns.iter().map(|column| column.name));
    for row in &rows {
        line(out, &mut row.iter().map(String::as_str));
    }
    if table.more > 0 {
        let _ = writeln!(out, "and {} more", table.more);
    }
}

fn cell(cell: &Cell) -> String {
    match cell {
        Cell::Text(text) | Cell::Marked(text, _) => text.clone(),
        Cell::Trend(trend) => blocks(trend),
    }
}

/// The newest [`TEXT_POINTS`] values as block characters, lowest `▁` to highest `█`, a
/// space where there is no value.
fn blocks(trend: &Trend) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = trend.max().unwrap_or(0.0);
    let start = trend.points.len().saturating_sub(TEXT_POINTS);
    trend.points[start..]
        .iter()
        .map(|(_, value)| match value {
            None => ' ',
            Some(_) if max <= 0.0 => LEVELS[0],
            Some(value) => {
                let level = (value / max * (LEVELS.len() - 1) as f64).round() as usize;
                LEVELS[level.min(LEVELS.len() - 1)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::debug::view::{Column, Unit};

    #[test]
    fn columns_line_up() {
        let table = Table {
            columns: vec![
                Column {
                    name: "method",
                    numeric: false,
                },
                Column {
                    name: "calls",
                    numeric: true,
                },
            ],
            rows: vec![
                vec![Cell::Text("add".to_owned()), Cell::Text("12345".to_owned())],
                vec![
                    Cell::Text("subtract".to_owned()),
                    Cell::Text("7".to_owned()),
                ],
            ],
            more: 0,
            empty: "",
        };
        let mut out = String::new();
        self::table(&mut out, &table);
        assert_eq!(out, "method    calls\nadd       12345\nsubtract      7\n");
    }

    #[test]
    fn charts_become_blocks() {
        let trend = Trend {
            points: vec![
                (Duration::from_secs(4), Some(0.0)),
                (Duration::from_secs(2), None),
                (Duration::from_secs(0), Some(7.0)),
            ],
            span: Duration::from_secs(6),
            unit: Unit::PerSecond,
        };
        assert_eq!(blocks(&trend), "▁ █");
    }
}
