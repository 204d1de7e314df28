//! Which packages a build generates code for, and what their code is called: the Rust module
//! prost-build gives each and the file it is written to. The pipeline, the JSON mapping, the
//! reflection shapes and the module tree all decide by these, so they sit below all four.

use std::collections::HashMap;

use prost_build::Module;
use prost_types::FileDescriptorSet;

use crate::Config;

/// The well-known types: always from a crate (`prost_types`, or `pbjson_types` with JSON),
/// never generated.
pub(crate) const WELL_KNOWN: &str = ".google.protobuf";

/// The generated code of each package, by its Rust module.
pub(crate) type Modules = HashMap<Module, String>;

/// The packages this build generates code for, by their Rust module.
pub(crate) fn generated_packages(
    config: &Config,
    fds: &FileDescriptorSet,
) -> HashMap<Module, String> {
    fds.file
        .iter()
        .filter(|file| !is_extern(config, file.package()))
        .map(|file| {
            (
                Module::from_protobuf_package_name(file.package()),
                file.package().to_owned(),
            )
        })
        .collect()
}

/// The file a package's code is written to: named as the `.proto` files name the package
/// (`google.type.rs`, whatever Rust calls its module), so that
/// `include_proto!("google.type")` finds it; `_.rs` for files without a package.
pub(crate) fn package_file_name(package: &str) -> String {
    if package.is_empty() {
        "_.rs".to_owned()
    } else {
        format!("{package}.rs")
    }
}

/// Whether the package's types come from a crate rather than from this build.
pub(crate) fn is_extern(config: &Config, package: &str) -> bool {
    let package = format!(".{package}");
    std::iter::once(WELL_KNOWN)
        .chain(config.extern_paths.iter().map(|(proto, _)| proto.as_str()))
        .any(|prefix| {
            package == prefix
                || package
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
}
