//! The whole pipeline on `.proto` files written to a temporary directory: what is generated
//! (`codegen`) and what is refused, and how (`errors`).

mod codegen;
mod errors;

use std::fs;
use std::path::{Path, PathBuf};

use crate::{Config, Error};

/// A temporary directory with `proto/` (the files) and `out/` (the generated code).
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(files: &[(&str, &str)]) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in files {
            let path = dir.path().join("proto").join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }
        Workspace { dir }
    }

    fn proto(&self, name: &str) -> PathBuf {
        self.dir.path().join("proto").join(name)
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn compile_with(&self, config: Config, protos: &[&str]) -> Result<(), Error> {
        let protos: Vec<PathBuf> = protos.iter().map(|name| self.proto(name)).collect();
        config
            .out_dir(self.out())
            .emit_rerun_if_changed(false)
            .compile_protos(&protos, &[self.dir.path().join("proto")])
    }

    fn compile(&self, protos: &[&str]) -> Result<(), Error> {
        self.compile_with(Config::new(), protos)
    }

    fn generated(&self, package: &str) -> String {
        fs::read_to_string(self.out().join(format!("{package}.rs"))).unwrap()
    }
}

/// The text without whitespace, to compare code whatever the formatter did with it.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect()
}

/// Asserts the error is at `file:line:column` and its message has `reason`.
fn assert_located(error: &Error, file: &Path, line: usize, column: usize, reason: &str) {
    let message = error.to_string();
    let expected = format!("{}:{line}:{column}: ", file.display());
    assert!(
        message.starts_with(&expected),
        "{message:?} should start with {expected:?}"
    );
    assert!(
        message.contains(reason),
        "{message:?} should contain {reason:?}"
    );
    let location = error.location().expect("a location");
    assert_eq!(location.file, file);
    assert_eq!((location.line, location.column), (Some(line), Some(column)));
}
