//! How single values read on the page: latencies, ages, sizes, and text from outside with
//! its control characters escaped.

use std::time::Duration;

/// `text` with control characters escaped (`\n`), so that a name cannot break a line of
/// the text rendering or hide in the HTML.
pub(super) fn shown(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A latency: `850 µs`, `12.5 ms`, `1.20 s`.
pub(super) fn latency(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 0.001 {
        format!("{:.0} µs", seconds * 1e6)
    } else if seconds < 0.01 {
        format!("{:.2} ms", seconds * 1e3)
    } else if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

/// An age, to the second: `45 s`, `12 m 5 s`, `3 h 12 m`, `2 d 4 h`.
pub(super) fn age(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3_600 => format!("{} m {} s", seconds / 60, seconds % 60),
        3_600..86_400 => format!("{} h {} m", seconds / 3_600, seconds % 3_600 / 60),
        _ => format!("{} d {} h", seconds / 86_400, seconds % 86_400 / 3_600),
    }
}

/// A size: `512 B`, `12.3 KiB`, `4.0 MiB`.
pub(super) fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    let mut value = count as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(shown("math.Arith"), "math.Arith");
        assert_eq!(shown("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(latency(Duration::from_micros(850)), "850 µs");
        assert_eq!(latency(Duration::from_micros(2_500)), "2.50 ms");
        assert_eq!(latency(Duration::from_millis(125)), "125.0 ms");
        assert_eq!(latency(Duration::from_millis(1_200)), "1.20 s");
        assert_eq!(age(Duration::from_secs(45)), "45 s");
        assert_eq!(age(Duration::from_secs(725)), "12 m 5 s");
        assert_eq!(age(Duration::from_secs(3 * 3_600 + 720)), "3 h 12 m");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(12_595), "12.3 KiB");
        assert_eq!(bytes(4 << 20), "4.0 MiB");
    }
}
