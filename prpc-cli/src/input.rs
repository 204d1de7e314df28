//! What the user hands the command: durations, metadata headers, method names and the
//! arguments' JSON, from the command line, a file or stdin.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::exit::Failure;

/// A duration as people write it: `250ms`, `2s`, `1.5s`, `1m`, `1h`; a bare number is seconds.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "\"{text}\" is not a duration (write 500ms, 2s, 1m)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a duration (write 500ms, 2s, 1m)"))?;
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| format!("\"{text}\" is out of range"))
}

/// A metadata entry as `-H key:value` writes it.
pub(crate) fn header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("\"{text}\" is not a header (write key:value)")),
    }
}

/// `SERVICE/METHOD`, split at the last `/` (service names keep their dots: `math.Arith/add`).
pub(crate) fn method(text: &str) -> Result<(String, String), String> {
    match text.rsplit_once('/') {
        Some((service, method)) if !service.is_empty() && !method.is_empty() => {
            Ok((service.to_owned(), method.to_owned()))
        }
        _ => Err(format!("\"{text}\" is not SERVICE/METHOD")),
    }
}

/// Where a call's arguments come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arguments {
    /// The JSON text itself.
    Inline(String),
    /// A file: `--data @FILE`.
    File(String),
    /// Standard input: `-`, or nothing given while stdin is not a terminal.
    Stdin,
    /// Nothing: a method without arguments (`{}`).
    Empty,
}

impl Arguments {
    /// From the positional argument and `--data`, whichever was given.
    pub(crate) fn from_flags(positional: Option<String>, data: Option<String>) -> Self {
        match positional.or(data) {
            Some(text) if text == "-" => Arguments::Stdin,
            Some(text) => match text.strip_prefix('@') {
                Some(path) => Arguments::File(path.to_owned()),
                None => Arguments::Inline(text),
            },
            None if std::io::stdin().is_terminal() => Arguments::Empty,
            None => Arguments::Stdin,
        }
    }

    /// The arguments as a JSON object (an empty text is `{}`).
    pub(crate) fn read(self) -> Result<Value, Failure> {
        let (text, origin) = match self {
            Arguments::Inline(text) => (text, "the arguments".to_owned()),
            Arguments::File(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|error| Failure::input(format!("reading {path}: {error}")))?;
                (text, path)
            }
            Arguments::Stdin => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|error| Failure::input(format!("reading stdin: {error}")))?;
                (text, "stdin".to_owned())
            }
            Arguments::Empty => return Ok(Value::Object(Default::default())),
        };
        if text.trim().is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        match serde_json::from_str(&text) {
            Ok(value @ Value::Object(_)) => Ok(value),
            Ok(_) => Err(Failure::input(format!(
                "{origin} must be a JSON object of the method's arguments by name, as {{\"a\": 1}}"
            ))),
            Err(error) => Err(Failure::input(format!("{origin} are not JSON: {error}"))),
        }
    }
}

/// The body of a call with these arguments in `format`.
pub(crate) fn encode(
    arguments: &impl serde::Serialize,
    format: prpc::Format,
) -> Result<Bytes, Failure> {
    format
        .encode(arguments)
        .map_err(|error| Failure::input(format!("encoding the arguments: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_people_write_them() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(duration("1m"), Ok(Duration::from_secs(60)));
        assert!(duration("soon").is_err());
        assert!(duration("2 parsecs").is_err());
    }

    #[test]
    fn headers_and_methods() {
        assert_eq!(header("tenant: a:b"), Ok(("tenant".into(), "a:b".into())));
        assert!(header("no-colon").is_err());
        assert_eq!(
            method("math.Arith/add"),
            Ok(("math.Arith".into(), "add".into()))
        );
        assert!(method("add").is_err());
    }

    #[test]
    fn where_arguments_come_from() {
        assert_eq!(
            Arguments::from_flags(Some("-".into()), None),
            Arguments::Stdin
        );
        assert_eq!(
            Arguments::from_flags(None, Some("@args.json".into())),
            Arguments::File("args.json".into())
        );
        assert_eq!(
            Arguments::Inline("{\"a\": 1}".into()).read().ok(),
            Some(serde_json::json!({"a": 1}))
        );
        assert!(Arguments::Inline("[1]".into()).read().is_err());
        assert!(Arguments::Inline("{".into()).read().is_err());
    }
}
