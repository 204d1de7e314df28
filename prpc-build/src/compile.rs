//! The pipeline: `.proto` files → descriptors (protox) → checks → Rust (prost-build with the
//! service traits, then pbjson's serde impls) → one `{package}.rs` per package.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::{env, fs};

use prost::Message as _;
use prost_build::Module;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

use crate::check::{self, Generated};
use crate::service::ServiceTraits;
use crate::{Config, Error, Location};

/// The well-known types: always from a crate (`prost_types`, or `pbjson_types` with JSON),
/// never generated.
const WELL_KNOWN: &str = ".google.protobuf";
/// Where the well-known types come from when messages speak JSON.
const PBJSON_TYPES: &str = "::pbjson_types";

/// The generated code of each package, by its Rust module.
pub(crate) type Modules = HashMap<Module, String>;

/// Parses `protos` and everything they import into one descriptor set, with source info.
pub(crate) fn parse(
    protos: &[impl AsRef<Path>],
    includes: &[PathBuf],
    emit_rerun_if_changed: bool,
) -> Result<FileDescriptorSet, Error> {
    // protox reports a missing file as "not in any include path", which sends people looking
    // at the wrong thing.
    for proto in protos {
        let proto = proto.as_ref();
        if !proto.is_file() {
            return Err(Error::Invalid {
                location: Some(Location {
                    file: proto.to_owned(),
                    line: None,
                    column: None,
                }),
                reason: "no such file".into(),
            });
        }
    }
    let mut compiler =
        protox::Compiler::new(includes).map_err(|error| Error::from_protox(&error, includes))?;
    compiler.include_source_info(true).include_imports(true);
    compiler
        .open_files(protos)
        .map_err(|error| Error::from_protox(&error, includes))?;
    if emit_rerun_if_changed {
        for file in compiler.files() {
            if let Some(path) = file.path() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    Ok(compiler.file_descriptor_set())
}

/// Checks the set, generates its code and writes it.
pub(crate) fn generate(
    config: &Config,
    fds: FileDescriptorSet,
    includes: &[PathBuf],
) -> Result<(), Error> {
    let out_dir = match &config.out_dir {
        Some(out_dir) => out_dir.clone(),
        None => env::var_os("OUT_DIR")
            .map(PathBuf::from)
            .ok_or_else(|| Error::Config {
                reason: "OUT_DIR is not set: run in a build script, or give Config::out_dir".into(),
            })?,
    };
    let generates_code = |file: &FileDescriptorProto| !is_extern(config, file.package());
    let generated = Generated {
        client: config.client,
        server: config.server,
    };
    check::check(&fds, generates_code, generated, includes)?;
    let modules = generate_code(config, &fds)?;
    write_outputs(config, &fds, modules, &out_dir)
}

/// The Rust code of each package: prost-build's messages and service traits, then the JSON
/// mapping.
fn generate_code(config: &Config, fds: &FileDescriptorSet) -> Result<Modules, Error> {
    let mut prost = prost_config(config, fds);
    // The set as written stays for the descriptor set files; prost reads the fenced docs.
    let mut documented = fds.clone();
    crate::docs::fence_code_blocks(&mut documented);
    let requests = documented
        .file
        .into_iter()
        .map(|file| (Module::from_protobuf_package_name(file.package()), file))
        .collect();
    let mut modules = prost.generate(requests).map_err(|error| Error::Config {
        reason: error.to_string(),
    })?;
    if config.json {
        crate::json::append_serde_impls(config, fds, &mut modules)?;
    }
    Ok(modules)
}

/// Writes each package's `{package}.rs` (with its `{package}.fds.bin` when the set is
/// embedded), the module tree file and the descriptor set file that `config` asks for.
fn write_outputs(
    config: &Config,
    fds: &FileDescriptorSet,
    mut modules: Modules,
    out_dir: &Path,
) -> Result<(), Error> {
    fs::create_dir_all(out_dir).map_err(|source| Error::Write {
        path: out_dir.to_owned(),
        source,
    })?;
    let packages = generated_packages(config, fds);
    for (module, code) in &mut modules {
        let Some(package) = packages.get(module) else {
            write_if_changed(&out_dir.join(module.to_file_name_or("_")), code.as_bytes())?;
            continue;
        };
        let file_name = package_file_name(package);
        if config.embed_file_descriptor_set {
            let set_name = format!("{}.fds.bin", file_name.trim_end_matches(".rs"));
            write_if_changed(
                &out_dir.join(&set_name),
                &package_set(fds, package).encode_to_vec(),
            )?;
            code.push_str(&format!(
                "/// The encoded `FileDescriptorSet` of this package's `.proto` files and \
                 everything they import. Generated by prpc-build.\n\
                 pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!({set_name:?});\n"
            ));
        }
        write_if_changed(&out_dir.join(file_name), code.as_bytes())?;
    }
    if let Some(include_file) = &config.include_file {
        let tree = crate::tree::module_tree(packages.values().map(String::as_str));
        write_if_changed(&out_dir.join(include_file), tree.as_bytes())?;
    }
    if let Some(path) = &config.file_descriptor_set_path {
        write_if_changed(path, &fds.encode_to_vec())?;
    }
    Ok(())
}

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

/// The files of `package` and, before them, everything they import, in dependency order (as
/// descriptor pools want them).
fn package_set(fds: &FileDescriptorSet, package: &str) -> FileDescriptorSet {
    let by_name: HashMap<&str, &FileDescriptorProto> =
        fds.file.iter().map(|file| (file.name(), file)).collect();
    let mut ordered: Vec<FileDescriptorProto> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    fn visit<'a>(
        file: &'a FileDescriptorProto,
        by_name: &HashMap<&str, &'a FileDescriptorProto>,
        seen: &mut std::collections::HashSet<&'a str>,
        ordered: &mut Vec<FileDescriptorProto>,
    ) {
        if !seen.insert(file.name()) {
            return;
        }
        for dependency in &file.dependency {
            if let Some(imported) = by_name.get(dependency.as_str()) {
                visit(imported, by_name, seen, ordered);
            }
        }
        ordered.push(file.clone());
    }
    for file in fds.file.iter().filter(|file| file.package() == package) {
        visit(file, &by_name, &mut seen, &mut ordered);
    }
    FileDescriptorSet { file: ordered }
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

/// prost-build set up from `config`, with the service traits as its service generator.
fn prost_config(config: &Config, fds: &FileDescriptorSet) -> prost_build::Config {
    let mut prost = prost_build::Config::new();
    if config.client || config.server {
        prost.service_generator(Box::new(ServiceTraits {
            json: config.json,
            client: config.client,
            server: config.server,
        }));
    }
    if config.json {
        prost.compile_well_known_types();
        prost.extern_path(WELL_KNOWN, PBJSON_TYPES);
    }
    for (proto_path, rust_path) in &config.extern_paths {
        prost.extern_path(proto_path, rust_path);
    }
    for (path, attribute) in &config.type_attributes {
        prost.type_attribute(path, attribute);
    }
    for (path, attribute) in &config.message_attributes {
        prost.message_attribute(path, attribute);
    }
    for (path, attribute) in &config.enum_attributes {
        prost.enum_attribute(path, attribute);
    }
    for (path, attribute) in &config.field_attributes {
        prost.field_attribute(path, attribute);
    }
    prost.bytes(&config.bytes);
    if config.json {
        // Made to agree with pbjson-build, which chooses per message.
        prost.btree_map(crate::json::btree_map_fields(config, fds));
    } else {
        prost.btree_map(&config.btree_map);
    }
    for path in &config.boxed {
        prost.boxed(path);
    }
    // Messages describe themselves for reflection when services are generated, so the crate
    // depends on prpc anyway.
    if config.client || config.server {
        crate::shapes::add_attributes(config, fds, &mut prost);
    }
    prost.disable_comments(&config.disable_comments);
    if config.retain_enum_prefix {
        prost.retain_enum_prefix();
    }
    prost
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

/// Writes `contents` unless the file already holds them, so an unchanged build does not make
/// cargo recompile what includes it.
fn write_if_changed(path: &Path, contents: &[u8]) -> Result<(), Error> {
    if fs::read(path).is_ok_and(|existing| existing == contents) {
        return Ok(());
    }
    fs::write(path, contents).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}
