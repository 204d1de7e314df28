//! A hint for a type that is not defined: usually it is, in a file the `.proto` file forgot to
//! import. The include directories are searched for a file defining it, so the error can say
//! which import to add.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The most `.proto` files read looking for a definition, so a huge include tree cannot make
/// a failing build slow.
const MAX_FILES: usize = 5_000;

/// What the search found.
pub(crate) enum ImportHint {
    /// The type is defined in this file, by its name under an include directory.
    DefinedIn(String),
    /// No file under the include directories defines it.
    Nowhere,
}

impl fmt::Display for ImportHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportHint::DefinedIn(name) => {
                write!(f, "it is defined in {name}: add `import \"{name}\";`")
            }
            ImportHint::Nowhere => write!(
                f,
                "no .proto file under the include directories defines it; if another file \
                 should, import that file"
            ),
        }
    }
}

/// A hint for protox's message, when it says a type name is not defined.
pub(crate) fn import_hint(message: &str, includes: &[PathBuf]) -> Option<ImportHint> {
    let name = undefined_name(message)?;
    let (package, type_name) = match name.rsplit_once('.') {
        Some((package, type_name)) => (package, type_name),
        None => ("", name),
    };
    let mut budget = MAX_FILES;
    for include in includes {
        if let Some(found) = search(include, include, package, type_name, &mut budget) {
            return Some(ImportHint::DefinedIn(found));
        }
    }
    Some(ImportHint::Nowhere)
}

/// The type name in `name 'X' is not defined` or `'X' resolves to 'Y', which is not defined`.
fn undefined_name(message: &str) -> Option<&str> {
    if !message.ends_with("is not defined") {
        return None;
    }
    let quoted = match message.split_once("resolves to '") {
        Some((_, rest)) => rest,
        None => message.split_once('\'')?.1,
    };
    let name = quoted.split_once('\'')?.0;
    Some(name.trim_start_matches('.'))
}

/// The name (relative to `root`, `/`-separated) of the first file under `dir` that defines
/// `type_name` in a package ending in `package`.
fn search(
    root: &Path,
    dir: &Path,
    package: &str,
    type_name: &str,
    budget: &mut usize,
) -> Option<String> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    entries.sort();
    for path in entries {
        if *budget == 0 {
            return None;
        }
        if path.is_dir() {
            if let Some(found) = search(root, &path, package, type_name, budget) {
                return Some(found);
            }
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            *budget -= 1;
            let Ok(source) = fs::read_to_string(&path) else {
                continue;
            };
            if defines(&source, package, type_name) {
                let relative = path.strip_prefix(root).ok()?;
                let parts: Vec<String> = relative
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy().into_owned())
                    .collect();
                return Some(parts.join("/"));
            }
        }
    }
    None
}

/// Whether `source` declares a package ending in `package` and a message or enum `type_name`.
/// A rough reading of the tokens, enough for a hint.
fn defines(source: &str, package: &str, type_name: &str) -> bool {
    let code: String = source
        .lines()
        .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    let tokens: Vec<&str> = code
        .split(|c: char| c.is_whitespace() || c == '{' || c == ';')
        .filter(|token| !token.is_empty())
        .collect();
    let declared = tokens
        .windows(2)
        .find(|pair| pair[0] == "package")
        .map_or("", |pair| pair[1]);
    let package_matches =
        package.is_empty() || declared == package || declared.ends_with(&format!(".{package}"));
    package_matches
        && tokens
            .windows(2)
            .any(|pair| matches!(pair[0], "message" | "enum") && pair[1] == type_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_from_both_messages() {
        assert_eq!(
            undefined_name("name 'Missing' is not defined"),
            Some("Missing")
        );
        assert_eq!(
            undefined_name("'a.B' resolves to 'x.a.B', which is not defined"),
            Some("x.a.B")
        );
        assert_eq!(undefined_name("field number '1' is already used"), None);
    }

    #[test]
    fn a_definition_is_found_by_package_and_name() {
        let source = "syntax = \"proto3\";\npackage acme.common.v1; // money\nmessage Money{}\n";
        assert!(defines(source, "acme.common.v1", "Money"));
        assert!(defines(source, "common.v1", "Money"));
        assert!(defines(source, "", "Money"));
        assert!(!defines(source, "other.v1", "Money"));
        assert!(!defines(source, "acme.common.v1", "Mone"));
    }
}
