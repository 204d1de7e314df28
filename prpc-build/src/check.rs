//! What is valid protobuf but cannot become a prpc service, refused before any code is
//! generated, each at its place in the `.proto` file: names that would clash in the
//! generated Rust.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_types::{FileDescriptorProto, FileDescriptorSet};

use crate::error::{Error, Location, on_disk};
use crate::names::{qualified, rust_service_name};

/// Field numbers of the descriptor messages, the steps of a source-location path.
const FILE_SERVICE: i32 = 6;
const SERVICE_METHOD: i32 = 2;

/// What a service generates, so clashes are looked for only among items that will exist.
#[derive(Clone, Copy)]
pub(crate) struct Generated {
    pub(crate) client: bool,
    pub(crate) server: bool,
}

/// Refuses the first construct in `files` (those code is generated for) that prpc cannot
/// serve. With neither client nor server generated, services generate no code: nothing is
/// refused.
pub(crate) fn check(
    fds: &FileDescriptorSet,
    generates_code: impl Fn(&FileDescriptorProto) -> bool,
    generated: Generated,
    includes: &[PathBuf],
) -> Result<(), Error> {
    // Messages alone: services generate nothing, so nothing of theirs can fail.
    if !generated.client && !generated.server {
        return Ok(());
    }
    let files: Vec<&FileDescriptorProto> = fds.file.iter().filter(|f| generates_code(f)).collect();

    // Rust type names at the top of each package's module, from every file of the package.
    let mut types: HashMap<&str, HashMap<String, String>> = HashMap::new();
    for file in &files {
        let names = types.entry(file.package()).or_default();
        for message in &file.message_type {
            names.insert(
                message.name().to_upper_camel_case(),
                format!("message {}", message.name()),
            );
        }
        for enumeration in &file.enum_type {
            names.insert(
                enumeration.name().to_upper_camel_case(),
                format!("enum {}", enumeration.name()),
            );
        }
    }

    for file in &files {
        let at = |path: &[i32]| location(file, path, includes);
        let package_types = &types[file.package()];
        for (service_index, service) in file.service.iter().enumerate() {
            let service_path = [FILE_SERVICE, service_index as i32];
            let full_name = qualified(file.package(), service.name());
            let trait_name = rust_service_name(&service.name().to_upper_camel_case());
            let mut items = vec![trait_name.clone()];
            if generated.server {
                items.push(format!("{trait_name}Server"));
            }
            if generated.client {
                items.push(format!("{trait_name}Client"));
            }
            for item in &items {
                if let Some(what) = package_types.get(item) {
                    return Err(Error::Unsupported {
                        location: at(&service_path),
                        reason: format!(
                            "service {full_name} generates the Rust item `{item}`, which clashes \
                             with {what} in package `{}`; rename the service or the type",
                            file.package()
                        ),
                    });
                }
            }

            let mut method_names = HashSet::new();
            for (method_index, method) in service.method.iter().enumerate() {
                let method_path = [
                    FILE_SERVICE,
                    service_index as i32,
                    SERVICE_METHOD,
                    method_index as i32,
                ];
                let rust_name = method.name().to_snake_case();
                if !method_names.insert(rust_name.clone()) {
                    return Err(Error::Unsupported {
                        location: at(&method_path),
                        reason: format!(
                            "rpc {} of service {full_name} becomes the Rust method `{rust_name}`, \
                             like an earlier rpc of the service; rename one of them",
                            method.name()
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The place of the element at `path` (a source-code-info path of field numbers and indexes)
/// in `file`; the file alone when the set carries no source info.
fn location(file: &FileDescriptorProto, path: &[i32], includes: &[PathBuf]) -> Location {
    let span = file
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|location| location.path == path))
        .map(|location| &location.span)
        .filter(|span| span.len() >= 3);
    Location {
        file: on_disk(file.name(), includes),
        // Spans count from 0.
        line: span.map(|span| span[0] as usize + 1),
        column: span.map(|span| span[1] as usize + 1),
    }
}
