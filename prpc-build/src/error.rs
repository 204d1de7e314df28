//! What can go wrong in a build, each with the `.proto` file, line and reason where there is
//! one, so cargo prints something a person can act on.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use miette::Diagnostic;

/// Where in a `.proto` file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The file: its path on disk when it was found under an include directory, else its name
    /// as imported (`acme/v1/types.proto`).
    pub file: PathBuf,
    /// The line, counted from 1, when known.
    pub line: Option<usize>,
    /// The column, counted from 1, when known.
    pub column: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// Why a build failed.
///
/// Its `Display` reads `file:line:column: reason` whenever the problem is in a `.proto` file,
/// e.g. `proto/store.proto:6:3: rpc get_item of service shop.Store becomes the Rust method ...`.
/// So does its `Debug` (`{:?}`), which is what cargo shows when `main` returns the error: a
/// build script `fn main() -> Result<(), Box<dyn std::error::Error>>` that stops at `?`
/// prints `Error: proto/app.proto:7:3: expected ';' ...`. The alternate form (`{:#?}`) shows
/// the fields.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file is not valid protobuf or could not be read: a syntax error, an unknown type, an
    /// import that is in no include directory.
    #[error("{}", located(.location.as_ref(), .reason))]
    Invalid {
        /// Where, when the parser could tell.
        location: Option<Location>,
        /// The parser's message.
        reason: String,
    },
    /// Valid protobuf that prpc cannot generate code for: names that would clash in the
    /// generated Rust.
    #[error("{location}: {reason}")]
    Unsupported {
        /// Where.
        location: Location,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The generated code could not be written.
    #[error("writing {}: {source}", .path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
    /// The code generators refused the configuration (e.g. an extern path given twice), or
    /// there is nowhere to write (`OUT_DIR` unset outside a build script and no `out_dir`).
    #[error("{reason}")]
    Config {
        /// The generator's message.
        reason: String,
    },
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return fmt::Display::fmt(self, f);
        }
        match self {
            Error::Invalid { location, reason } => f
                .debug_struct("Invalid")
                .field("location", location)
                .field("reason", reason)
                .finish(),
            Error::Unsupported { location, reason } => f
                .debug_struct("Unsupported")
                .field("location", location)
                .field("reason", reason)
                .finish(),
            Error::Write { path, source } => f
                .debug_struct("Write")
                .field("path", path)
                .field("source", source)
                .finish(),
            Error::Config { reason } => f.debug_struct("Config").field("reason", reason).finish(),
        }
    }
}

impl Error {
    /// Where in a `.proto` file the problem is, if it is in one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Invalid { location, .. } => location.as_ref(),
            Error::Unsupported { location, .. } => Some(location),
            Error::Write { .. } | Error::Config { .. } => None,
        }
    }

    /// A protox error, with its file found under `includes` and its line and column read from
    /// the source it points into.
    pub(crate) fn from_protox(error: &protox::Error, includes: &[PathBuf]) -> Error {
        let message = error.to_string();
        let hint = crate::hint::import_hint(&message, includes);
        let reason = match (hint, error.help()) {
            // protox's help for a qualified name is about scopes, which misleads when the
            // type exists in a file that is not imported.
            (Some(hint @ crate::hint::ImportHint::DefinedIn(_)), _) => format!("{message}; {hint}"),
            (Some(hint), Some(help)) => format!("{message} ({help}); {hint}"),
            (Some(hint), None) => format!("{message}; {hint}"),
            (None, Some(help)) => format!("{message} ({help})"),
            (None, None) => message,
        };
        let location = error.file().map(|name| {
            let (line, column) = line_and_column(error).unzip();
            Location {
                file: on_disk(name, includes),
                line,
                column,
            }
        });
        if error.is_parse() {
            if let Some(location) = &location {
                if let Some(edition) = fs::read_to_string(&location.file)
                    .ok()
                    .and_then(|source| edition_of(&source))
                {
                    return Error::Unsupported {
                        location: location.clone(),
                        reason: format!(
                            "protobuf editions (`edition = \"{edition}\"`) are not supported: \
                             protox {PROTOX_VERSION}, the parser prpc-build uses, reads proto2 \
                             and proto3 files only; declare `syntax = \"proto3\"` instead"
                        ),
                    };
                }
            }
        }
        Error::Invalid { location, reason }
    }
}

/// The protox release prpc-build is built with, named when it refuses what protox cannot
/// read (no release reads editions as of 0.10).
const PROTOX_VERSION: &str = "0.10";

/// The edition a `.proto` file declares, if its first statement is `edition = "..."`.
fn edition_of(source: &str) -> Option<String> {
    let mut rest = source;
    // Comments may come first.
    loop {
        rest = rest.trim_start();
        if let Some(line_comment) = rest.strip_prefix("//") {
            rest = line_comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(block_comment) = rest.strip_prefix("/*") {
            rest = block_comment
                .split_once("*/")
                .map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    let rest = rest
        .strip_prefix("edition")?
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let (edition, _) = rest[1..].split_once(quote)?;
    Some(edition.to_owned())
}

fn located(location: Option<&Location>, reason: &str) -> String {
    match location {
        Some(location) => format!("{location}: {reason}"),
        None => reason.to_owned(),
    }
}

/// The file a `.proto` name refers to: the first include directory holding it, as protox
/// searches them, or the name itself.
pub(crate) fn on_disk(name: &str, includes: &[PathBuf]) -> PathBuf {
    includes
        .iter()
        .map(|include| include.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| Path::new(name).to_owned())
}

/// The 1-based line and column of the diagnostic's main label: where the problem is, not the
/// earlier definition it conflicts with (a duplicate field number is reported at the reuse).
fn line_and_column(diagnostic: &dyn Diagnostic) -> Option<(usize, usize)> {
    let source = diagnostic.source_code()?;
    let labels: Vec<_> = diagnostic.labels()?.collect();
    let is_earlier_definition = |label: &miette::LabeledSpan| {
        label
            .label()
            .is_some_and(|text| text.ends_with("defined here") && text != "defined again here")
    };
    let label = labels
        .iter()
        .find(|label| !is_earlier_definition(label))
        .or_else(|| labels.first())?;
    let contents = source.read_span(label.inner(), 0, 0).ok()?;
    Some((contents.line() + 1, contents.column() + 1))
}
