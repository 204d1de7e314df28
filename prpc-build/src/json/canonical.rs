//! Where pbjson-build's serde impls and pbjson-types depart from the canonical proto3 JSON
//! mapping, the generated impls are edited, field by field from the descriptors, to go
//! through adapters emitted next to them (`helpers.rs.txt`, `wkt_helpers.rs.txt`):
//!
//! - `double` and `float` fields (singular, `optional`, repeated) and `DoubleValue` /
//!   `FloatValue` write NaN and the infinities as `"NaN"`, `"Infinity"`, `"-Infinity"`
//!   (serde_json writes `null`, which the other side cannot read back);
//! - `Timestamp` fields write UTC with `Z` (pbjson-types writes `+00:00`);
//! - `FieldMask` fields are one comma-joined lowerCamelCase string both ways (pbjson-types
//!   uses the generic `{"paths": [...]}`);
//! - `Value`, `ListValue` and `Struct` fields read `null` as a null Value, at the top and
//!   inside lists (pbjson-types reads it as no value);
//! - an enum with `allow_alias` accepts every alias name (pbjson-build knows only the first);
//! - `Any` fields (singular, repeated) use `@type` with the message's fields inline (or under
//!   `"value"` for a well-known type with a JSON form of its own), the message found in a
//!   registry emitted per package (`any_helpers.rs.txt` and `registry`): the message types
//!   of the package and of the packages it imports.
//!
//! Oneof members are handled as their types are. Floats and Timestamps as map values are
//! written the canonical way too. Not covered: FieldMask, Value, ListValue, Struct and Any as
//! map values (see [`Config::json`](crate::Config::json)).

use std::collections::HashSet;

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_build::Module;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet,
};

use crate::Config;
use crate::compile::is_extern;

/// Adapters for floats: serde only.
const HELPERS: &str = include_str!("helpers.rs.txt");
/// Adapters for well-known types: serde and pbjson-types.
const WKT_HELPERS: &str = include_str!("wkt_helpers.rs.txt");
/// `Any` with `@type`: serde, serde_json, prost and pbjson-types; `registry` is appended.
const ANY_HELPERS: &str = include_str!("any_helpers.rs.txt");

/// How a field's JSON is produced or read instead of pbjson-build's way.
#[derive(Clone, Copy, PartialEq)]
enum Fix {
    Float,
    FloatOptional,
    Floats,
    FloatWrapper,
    Timestamp,
    Timestamps,
    FieldMask,
    Value,
    ListValue,
    Struct,
    Any,
    Anys,
    /// A map whose values are floats.
    FloatMap,
    /// A map whose values are Timestamps.
    TimestampMap,
}

impl Fix {
    /// The fix for `field` of `message`.
    fn of(field: &FieldDescriptorProto, message: &DescriptorProto) -> Option<Fix> {
        if let Some(value) = map_value(field, message) {
            // Read by pbjson-build's own code (floats accept "NaN"; Timestamps any offset).
            return match (value.r#type(), value.type_name()) {
                (Type::Double | Type::Float, _) => Some(Fix::FloatMap),
                (Type::Message, ".google.protobuf.Timestamp") => Some(Fix::TimestampMap),
                _ => None,
            };
        }
        let repeated = field.label() == Label::Repeated;
        let in_oneof = field.oneof_index.is_some() && !field.proto3_optional();
        if in_oneof {
            // A oneof member is serialized from a reference (`v`) like an optional field,
            // and read into an `Option` that is then mapped to the oneof's variant.
            return match (field.r#type(), field.type_name()) {
                (Type::Double | Type::Float, _) => Some(Fix::FloatOptional),
                (Type::Message, ".google.protobuf.DoubleValue" | ".google.protobuf.FloatValue") => {
                    Some(Fix::FloatWrapper)
                }
                (Type::Message, ".google.protobuf.Timestamp") => Some(Fix::Timestamp),
                (Type::Message, ".google.protobuf.FieldMask") => Some(Fix::FieldMask),
                (Type::Message, ".google.protobuf.Value") => Some(Fix::Value),
                (Type::Message, ".google.protobuf.ListValue") => Some(Fix::ListValue),
                (Type::Message, ".google.protobuf.Struct") => Some(Fix::Struct),
                (Type::Message, ".google.protobuf.Any") => Some(Fix::Any),
                _ => None,
            };
        }
        match field.r#type() {
            Type::Double | Type::Float => Some(if repeated {
                Fix::Floats
            } else if field.proto3_optional() {
                Fix::FloatOptional
            } else {
                Fix::Float
            }),
            Type::Message => match (field.type_name(), repeated) {
                (".google.protobuf.DoubleValue" | ".google.protobuf.FloatValue", false) => {
                    Some(Fix::FloatWrapper)
                }
                (".google.protobuf.Timestamp", false) => Some(Fix::Timestamp),
                (".google.protobuf.Timestamp", true) => Some(Fix::Timestamps),
                (".google.protobuf.FieldMask", false) => Some(Fix::FieldMask),
                (".google.protobuf.Value", false) => Some(Fix::Value),
                (".google.protobuf.ListValue", false) => Some(Fix::ListValue),
                (".google.protobuf.Struct", false) => Some(Fix::Struct),
                (".google.protobuf.Any", false) => Some(Fix::Any),
                (".google.protobuf.Any", true) => Some(Fix::Anys),
                _ => None,
            },
            _ => None,
        }
    }

    fn needs_wkt_helpers(self) -> bool {
        !matches!(
            self,
            Fix::Float | Fix::FloatOptional | Fix::Floats | Fix::FloatMap
        )
    }

    /// The value serialized instead of pbjson-build's `expression`, if this fix changes it.
    fn serialized(self, expression: &str) -> Option<String> {
        let field = expression.strip_prefix('&');
        Some(match (self, field) {
            (Fix::Float, Some(field)) => format!("&__prpc_json::Float({field})"),
            (Fix::Floats, Some(field)) => format!("&__prpc_json::Floats(&{field})"),
            (Fix::FloatOptional, None) => format!("&__prpc_json::Float(*{expression})"),
            (Fix::FloatWrapper, None) => format!("&__prpc_json::Float({expression}.value)"),
            (Fix::Timestamp, None) => format!("&__prpc_json_wkt::Timestamp({expression})"),
            (Fix::Timestamps, Some(field)) => format!("&__prpc_json_wkt::Timestamps(&{field})"),
            (Fix::FieldMask, None) => format!("&__prpc_json_wkt::FieldMask({expression})"),
            (Fix::Any, None) => format!("&__prpc_json_any::Any({expression})"),
            (Fix::Anys, Some(field)) => format!("&__prpc_json_any::Anys(&{field})"),
            (Fix::FloatMap, Some(field)) => format!("&__prpc_json::FloatMap(&{field})"),
            (Fix::TimestampMap, Some(field)) => {
                format!("&__prpc_json_wkt::TimestampMap(&{field})")
            }
            _ => return None,
        })
    }

    /// The right-hand side read instead of pbjson-build's, if this fix changes it.
    fn deserialized(self) -> Option<&'static str> {
        Some(match self {
            Fix::FieldMask => {
                "map_.next_value::<::core::option::Option<__prpc_json_wkt::FieldMaskIn>>()?.map(|mask| mask.0)"
            }
            // A null Value is a value, not an absent field.
            Fix::Value => {
                "::core::option::Option::from(map_.next_value::<__prpc_json_wkt::ValueIn>()?.0)"
            }
            Fix::ListValue => {
                "map_.next_value::<::core::option::Option<__prpc_json_wkt::ListIn>>()?.map(|list| list.0)"
            }
            Fix::Struct => {
                "map_.next_value::<::core::option::Option<__prpc_json_wkt::StructIn>>()?.map(|fields| fields.0)"
            }
            Fix::Any => {
                "map_.next_value::<::core::option::Option<__prpc_json_any::AnyIn>>()?.map(|any| any.0)"
            }
            Fix::Anys => {
                "Some(map_.next_value::<Vec<__prpc_json_any::AnyIn>>()?.into_iter().map(|any| any.0).collect())"
            }
            _ => return None,
        })
    }
}

/// pbjson-build's `code` for `package`, made canonical where it can be.
pub(crate) fn canonicalize(
    code: &str,
    package: &str,
    fds: &FileDescriptorSet,
    config: &Config,
) -> String {
    let preserve_field_names = config.json_preserve_field_names;
    let files: Vec<&FileDescriptorProto> = fds
        .file
        .iter()
        .filter(|file| file.package() == package)
        .collect();
    let mut code = code.to_owned();
    let mut wkt = false;
    let mut any_fix = false;
    let mut any = false;
    for file in &files {
        for message in &file.message_type {
            visit_message(None, message, &mut |path, _, message| {
                for field in &message.field {
                    let Some(fix) = Fix::of(field, message) else {
                        continue;
                    };
                    any_fix = true;
                    wkt |= fix.needs_wkt_helpers();
                    any |= matches!(fix, Fix::Any | Fix::Anys);
                    let json_name = if preserve_field_names {
                        field.name().to_owned()
                    } else {
                        field.json_name().to_owned()
                    };
                    fix_serialize(&mut code, path, &json_name, fix);
                    fix_deserialize(&mut code, path, &field.name().to_upper_camel_case(), fix);
                }
                for enumeration in &message.enum_type {
                    accept_aliases(
                        &mut code,
                        &format!(
                            "{path_module}::{}",
                            enumeration.name().to_upper_camel_case(),
                            path_module = module_of(path)
                        ),
                        enumeration,
                    );
                }
            });
        }
        for enumeration in &file.enum_type {
            accept_aliases(
                &mut code,
                &enumeration.name().to_upper_camel_case(),
                enumeration,
            );
        }
    }
    if any_fix {
        code.push('\n');
        code.push_str(HELPERS);
        if wkt {
            code.push('\n');
            code.push_str(WKT_HELPERS);
        }
        if any {
            code.push('\n');
            code.push_str(ANY_HELPERS);
            code.push_str(&registry(package, fds, config));
            code.push_str("}\n");
        }
    }
    code
}

/// The `registry` function of the `Any` adapters: every message type of `package` and of the
/// packages its files import (transitively), by full name, with its path from the adapters'
/// module; `google.protobuf.Empty` too.
fn registry(package: &str, fds: &FileDescriptorSet, config: &Config) -> String {
    let depth = Module::from_protobuf_package_name(package).len();
    let mut files: Vec<&FileDescriptorProto> = Vec::new();
    let mut seen = HashSet::new();
    let mut pending: Vec<&FileDescriptorProto> = fds
        .file
        .iter()
        .filter(|file| file.package() == package)
        .collect();
    while let Some(file) = pending.pop() {
        if !seen.insert(file.name()) {
            continue;
        }
        files.push(file);
        for dependency in &file.dependency {
            if let Some(imported) = fds.file.iter().find(|f| f.name() == dependency) {
                pending.push(imported);
            }
        }
    }
    let mut arms = String::new();
    let mut push = |name: &str, rust_type: &str| {
        arms.push_str(&format!(
            "            {name:?} => Some((message_to_json::<{rust_type}>, message_from_json::<{rust_type}>)),\n"
        ));
    };
    push("google.protobuf.Empty", "::pbjson_types::Empty");
    files.sort_by_key(|file| file.name());
    for file in files
        .iter()
        .filter(|file| !is_extern(config, file.package()))
    {
        let mut prefix = "super::".repeat(depth + 1);
        if file.package() != package {
            for part in Module::from_protobuf_package_name(file.package()).parts() {
                prefix.push_str(part);
                prefix.push_str("::");
            }
        } else {
            prefix = "super::".to_owned();
        }
        for message in &file.message_type {
            visit_message(None, message, &mut |path, proto_path, _| {
                let full_name = if file.package().is_empty() {
                    proto_path.to_owned()
                } else {
                    format!("{}.{proto_path}", file.package())
                };
                push(&full_name, &format!("{prefix}{path}"));
            });
        }
    }
    format!(
        "\n    /// The message types an Any may hold here, by full name.\n    \
         pub fn registry(name: &str) -> Option<Codec> {{\n        match name {{\n{arms}            \
         _ => None,\n        }}\n    }}\n"
    )
}

/// The value field of `field`'s map entry, if `field` is a map.
fn map_value<'a>(
    field: &FieldDescriptorProto,
    message: &'a DescriptorProto,
) -> Option<&'a FieldDescriptorProto> {
    if field.r#type() != Type::Message || field.label() != Label::Repeated {
        return None;
    }
    let entry_name = field.type_name().rsplit('.').next()?;
    let entry = message.nested_type.iter().find(|nested| {
        nested.name() == entry_name && nested.options.as_ref().is_some_and(|o| o.map_entry())
    })?;
    entry.field.iter().find(|value| value.number() == 2)
}

/// `outer::Inner` → `outer::inner`: the module of a message's nested types, a keyword
/// escaped as prost-build does (`r#type`).
fn module_of(path: &str) -> String {
    let (parent, name) = match path.rsplit_once("::") {
        Some((parent, name)) => (Some(parent), name),
        None => (None, path),
    };
    let snake = name.trim_end_matches('_').to_snake_case();
    let module = Module::from_protobuf_package_name(&snake);
    let escaped = module.parts().next().unwrap_or(&snake).to_owned();
    match parent {
        Some(parent) => format!("{parent}::{escaped}"),
        None => escaped,
    }
}

/// Calls `each(rust_path, proto_path, message)` on every message, nested ones as
/// `outer::Inner` (`Outer.Inner`), as prost-build and pbjson-build name them; map entries are
/// skipped.
fn visit_message(
    parent: Option<(&str, &str)>,
    message: &DescriptorProto,
    each: &mut impl FnMut(&str, &str, &DescriptorProto),
) {
    if message
        .options
        .as_ref()
        .is_some_and(|options| options.map_entry())
    {
        return;
    }
    let name = message.name().to_upper_camel_case();
    let name = if name == "Self" {
        "Self_".to_owned()
    } else {
        name
    };
    let (path, proto_path) = match parent {
        None => (name, message.name().to_owned()),
        Some((module, proto)) => (
            format!("{module}::{name}"),
            format!("{proto}.{}", message.name()),
        ),
    };
    each(&path, &proto_path, message);
    let module = module_of(&path);
    for nested in &message.nested_type {
        visit_message(Some((&module, &proto_path)), nested, each);
    }
}

/// The text of the impl block that starts with `header`, as a range of `code`.
fn block(code: &str, header: &str) -> Option<(usize, usize)> {
    let start = code.find(header)?;
    let end = code[start + header.len()..]
        .find("\nimpl")
        .map_or(code.len(), |at| start + header.len() + at);
    Some((start, end))
}

fn fix_serialize(code: &mut String, path: &str, json_name: &str, fix: Fix) {
    let Some((start, end)) = block(code, &format!("impl serde::Serialize for {path} {{")) else {
        return;
    };
    let call = format!("struct_ser.serialize_field(\"{json_name}\", ");
    let Some(at) = code[start..end].find(&call) else {
        return;
    };
    let argument = start + at + call.len();
    let Some(length) = code[argument..end].find(")?;") else {
        return;
    };
    if let Some(replacement) = fix.serialized(&code[argument..argument + length]) {
        code.replace_range(argument..argument + length, &replacement);
    }
}

/// How pbjson-build reads a oneof member whose type has serde impls, before mapping the
/// `Option` to the oneof's variant.
const ONEOF_READ: &str = "map_.next_value::<::std::option::Option<_>>()?";

fn fix_deserialize(code: &mut String, path: &str, variant: &str, fix: Fix) {
    let Some(replacement) = fix.deserialized() else {
        return;
    };
    let header = format!("impl<'de> serde::Deserialize<'de> for {path} {{");
    let Some((start, end)) = block(code, &header) else {
        return;
    };
    let arm = format!("GeneratedField::{variant} => {{");
    let Some(at) = code[start..end].find(&arm) else {
        return;
    };
    let arm_start = start + at;
    let Some(assignment) = code[arm_start..end].find("__ = ") else {
        return;
    };
    let rhs = arm_start + assignment + "__ = ".len();
    let Some(length) = code[rhs..end].find(';') else {
        return;
    };
    // A oneof member is read as an `Option` and mapped to its variant: keep the mapping.
    let replacement = match code[rhs..rhs + length].strip_prefix(ONEOF_READ) {
        Some(to_variant) => format!("{replacement}{to_variant}"),
        None => replacement.to_owned(),
    };
    code.replace_range(rhs..rhs + length, &replacement);
}

/// With `allow_alias`, every name of a number reads as the number's first value.
fn accept_aliases(code: &mut String, path: &str, enumeration: &EnumDescriptorProto) {
    if !enumeration
        .options
        .as_ref()
        .is_some_and(|options| options.allow_alias())
    {
        return;
    }
    let header = format!("impl<'de> serde::Deserialize<'de> for {path} {{");
    for (index, alias) in enumeration.value.iter().enumerate() {
        let Some(first) = enumeration.value[..index]
            .iter()
            .find(|value| value.number() == alias.number())
        else {
            continue;
        };
        let Some((start, end)) = block(code, &header) else {
            return;
        };
        let pattern = format!("\"{}\" => Ok(", first.name());
        let Some(at) = code[start..end].find(&pattern) else {
            continue;
        };
        let line_start = start + code[start..start + at].rfind('\n').map_or(0, |n| n + 1);
        let line_end = start + at + code[start + at..end].find('\n').unwrap_or(end - start - at);
        let line = code[line_start..line_end].to_owned();
        let alias_line = line.replacen(
            &format!("\"{}\"", first.name()),
            &format!("\"{}\"", alias.name()),
            1,
        );
        code.insert_str(line_end, &format!("\n{alias_line}"));
    }
}
