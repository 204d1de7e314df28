//! What a one-service app builds: the crates prpc's default features pull in, held to a list.
//!
//! Build cost is a feature (issue 23): a clean build of a one-service app must not be slower
//! than the same app in tarpc, which builds 60 crates. A new default dependency, or a feature
//! of one that pulls in more, shows up here first; before adding it to the list, measure it
//! with `bash benches/build_cost.sh` and say what it cost in the commit. Optional features
//! (`cluster`, `tls`, the codecs, ...) are not counted: a minimal app does not build them.

use std::collections::BTreeSet;
use std::process::Command;

/// The packages `cargo build -p prpc` compiles with default features, prpc included.
const DEFAULT_BUILD: &[&str] = &[
    "autocfg",
    "bytes",
    "bytestring",
    "fastrand",
    "futures-core",
    "futures-sink",
    "libc",
    "mio",
    "num-traits",
    "once_cell",
    "pin-project-lite",
    "proc-macro2",
    "prpc",
    "prpc-macros",
    "quote",
    "rmp",
    "rmp-serde",
    "serde",
    "serde_core",
    "serde_derive",
    "slab",
    "socket2",
    "syn",
    "tokio",
    "tokio-macros",
    "tokio-util",
    "tracing",
    "tracing-core",
    "unicode-ident",
    "xxhash-rust",
];

/// The package names in `cargo tree -p prpc` over normal and build dependencies (what a build
/// compiles; dev-dependencies are not), for prpc's default features alone.
fn default_build() -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "prpc",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "--offline", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("cargo tree prints UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_default_build_compiles_only_the_listed_crates() {
    let built = default_build();
    let listed: BTreeSet<String> = DEFAULT_BUILD.iter().map(|&name| name.to_owned()).collect();
    let added: Vec<&String> = built.difference(&listed).collect();
    let gone: Vec<&String> = listed.difference(&built).collect();
    assert!(
        added.is_empty() && gone.is_empty(),
        "prpc's default build changed: new crates {added:?}, crates no longer built {gone:?}. \
         Measure a new one with benches/build_cost.sh before listing it in \
         tests/tests/dependencies.rs; drop a gone one from the list."
    );
    // tarpc's one-service app builds 60 crates (benches/README.md, "Build cost"); the app
    // itself is one more than this list.
    assert!(built.len() < 60, "{} crates", built.len());
}
