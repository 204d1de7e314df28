//! Where pbjson-build's serde impls and pbjson-types depart from the canonical proto3 JSON
//! mapping, the generated impls are edited, field by field from the descriptors, to go
//! through adapters emitted next to them (`helpers.rs.txt`, `wkt_helpers.rs.txt`):
//!
//! - `double` and `float` fields (singular, `optional`, repeated) and `DoubleValue` /
//!   `FloatValue` write NaN and the infinities as `"NaN"`, `"Infinity"`, `"-Infinity"`
//!   (serde_json writes `null`, which the other side cannot read back);
//! - `Timestamp` fields write UTC with `Z` (pbjson-types writes `+00:00`), and Timestamps and
//!   `Duration`s outside the mapping's ranges (years 0001 to 9999, ±10,000 years) are
//!   refused both ways (pbjson-types reads them, and writes a Duration's nanoseconds past a
//!   second as a wrong text);
//! - `FieldMask` fields are one comma-joined lowerCamelCase string both ways (pbjson-types
//!   uses the generic `{"paths": [...]}`);
//! - `Value`, `ListValue` and `Struct` fields read `null` as a null Value, at the top and
//!   inside lists (pbjson-types reads it as no value);
//! - an enum with `allow_alias` accepts every alias name (pbjson-build knows only the first),
//!   and a number without a name is written and read as the number (pbjson-build refuses it
//!   both ways);
//! - `null` reads as the default of any field (pbjson-build refuses it for scalars, enums,
//!   repeated and map fields), except that a Value's null is a null Value;
//! - `Any` fields use `@type` with the message's fields inline (or under `"value"` for a
//!   well-known type with a JSON form of its own), the message found in a registry emitted
//!   per package (`any_helpers.rs.txt` and `registry`): the message types of the package and
//!   of the packages it imports.
//!
//! Each of these holds for the field alone, as a oneof member, repeated and as a map value
//! (a [`Shape`]).

use std::collections::HashSet;

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_build::Module;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet,
};

use crate::Config;
use crate::packages::is_extern;

/// Adapters for floats: serde only.
const HELPERS: &str = include_str!("helpers.rs.txt");
/// Adapters for well-known types: serde and pbjson-types.
const WKT_HELPERS: &str = include_str!("wkt_helpers.rs.txt");
/// `Any` with `@type`: serde, serde_json, prost and pbjson-types; `registry` is appended.
const ANY_HELPERS: &str = include_str!("any_helpers.rs.txt");

/// What a field holds, where pbjson-build's JSON for it departs from the mapping.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Float,
    /// `DoubleValue` or `FloatValue`.
    FloatWrapper,
    Timestamp,
    Duration,
    FieldMask,
    Value,
    ListValue,
    Struct,
    Any,
}

/// How a field holds its kind, which decides the expression pbjson-build serializes and the
/// container it reads.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Shape {
    /// A plain field: a scalar by value, a message in an `Option`.
    Single,
    /// A proto3 `optional` scalar or a oneof member: serialized from a reference `v`.
    Optional,
    Repeated,
    /// The values of a map field.
    MapValue,
}

/// How a field's JSON is produced or read instead of pbjson-build's way.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Fix {
    kind: Kind,
    shape: Shape,
}

impl Fix {
    /// The fix for `field` of `message`.
    fn of(field: &FieldDescriptorProto, message: &DescriptorProto) -> Option<Fix> {
        let (value, shape) = if let Some(value) = map_value(field, message) {
            (value, Shape::MapValue)
        } else if field.label() == Label::Repeated {
            (field, Shape::Repeated)
        } else if field.proto3_optional() || field.oneof_index.is_some() {
            (field, Shape::Optional)
        } else {
            (field, Shape::Single)
        };
        let kind = match (value.r#type(), value.type_name()) {
            (Type::Double | Type::Float, _) => Kind::Float,
            (Type::Message, ".google.protobuf.DoubleValue" | ".google.protobuf.FloatValue") => {
                Kind::FloatWrapper
            }
            (Type::Message, ".google.protobuf.Timestamp") => Kind::Timestamp,
            (Type::Message, ".google.protobuf.Duration") => Kind::Duration,
            (Type::Message, ".google.protobuf.FieldMask") => Kind::FieldMask,
            (Type::Message, ".google.protobuf.Value") => Kind::Value,
            (Type::Message, ".google.protobuf.ListValue") => Kind::ListValue,
            (Type::Message, ".google.protobuf.Struct") => Kind::Struct,
            (Type::Message, ".google.protobuf.Any") => Kind::Any,
            _ => return None,
        };
        Some(Fix { kind, shape })
    }

    fn needs_wkt_helpers(self) -> bool {
        !matches!(self.kind, Kind::Float)
    }

    /// The value serialized instead of pbjson-build's `expression`, if this fix changes it.
    /// pbjson-build serializes a plain field as `&self.field`, a message in an `Option`, an
    /// optional scalar or a oneof member as the reference `v`.
    fn serialized(self, expression: &str) -> Option<String> {
        // The adapter for one value; `{adapter}s` writes a slice, `{adapter}Map` a map's values.
        let adapter = match self.kind {
            Kind::Float => "__prpc_json::Float",
            Kind::FloatWrapper => "__prpc_json_wkt::FloatWrapper",
            Kind::Timestamp => "__prpc_json_wkt::Timestamp",
            Kind::Duration => "__prpc_json_wkt::Duration",
            Kind::FieldMask => "__prpc_json_wkt::FieldMask",
            Kind::Any => "__prpc_json_any::Any",
            // pbjson-types writes these as the mapping does.
            Kind::Value | Kind::ListValue | Kind::Struct => return None,
        };
        let field = expression.strip_prefix('&');
        Some(match (self.kind, self.shape, field) {
            (Kind::Float, Shape::Single, Some(field)) => format!("&{adapter}({field})"),
            (Kind::Float, Shape::Optional, None) => format!("&{adapter}(*{expression})"),
            (_, Shape::Single | Shape::Optional, None) => format!("&{adapter}({expression})"),
            (_, Shape::Repeated, Some(field)) => format!("&{adapter}s(&{field})"),
            (_, Shape::MapValue, Some(field)) => format!("&{adapter}Map(&{field})"),
            _ => return None,
        })
    }

    /// The type that reads one value of this kind where pbjson-build's reading departs from
    /// the mapping; what it reads is its field `.0`.
    fn reader(self) -> Option<&'static str> {
        Some(match self.kind {
            Kind::Timestamp => "__prpc_json_wkt::TimestampIn",
            Kind::Duration => "__prpc_json_wkt::DurationIn",
            Kind::FieldMask => "__prpc_json_wkt::FieldMaskIn",
            Kind::Value => "__prpc_json_wkt::ValueIn",
            Kind::ListValue => "__prpc_json_wkt::ListIn",
            Kind::Struct => "__prpc_json_wkt::StructIn",
            Kind::Any => "__prpc_json_any::AnyIn",
            // pbjson-build reads "NaN" and the infinities.
            Kind::Float | Kind::FloatWrapper => return None,
        })
    }

    /// The right-hand side read instead of pbjson-build's `read`, if this fix changes it.
    fn deserialized(self, read: &str) -> Option<String> {
        let reader = self.reader()?;
        Some(match self.shape {
            // A null Value is a value, not an absent field (in a oneof too).
            Shape::Single | Shape::Optional if self.kind == Kind::Value => {
                let value =
                    format!("::core::option::Option::from(map_.next_value::<{reader}>()?.0)");
                // A oneof member is read as an `Option` and mapped to its variant: keep the
                // mapping.
                match read.strip_prefix(ONEOF_READ) {
                    Some(to_variant) => format!("{value}{to_variant}"),
                    None => value,
                }
            }
            Shape::Single | Shape::Optional => {
                let value = format!(
                    "map_.next_value::<::core::option::Option<{reader}>>()?.map(|read| read.0)"
                );
                match read.strip_prefix(ONEOF_READ) {
                    Some(to_variant) => format!("{value}{to_variant}"),
                    None => value,
                }
            }
            // `null` for the whole list is the empty list, as for any field.
            Shape::Repeated => format!(
                "Some(map_.next_value::<::core::option::Option<Vec<{reader}>>>()?\
                 .unwrap_or_default().into_iter().map(|read| read.0).collect())"
            ),
            Shape::MapValue => map_read(read, reader)?,
        })
    }
}

/// pbjson-build's reading of a map field with message values (`HashMap<K, _>` or
/// `BTreeMap<K, _>`, then keys taken out of their number readers with `k.0`), its values read
/// by `reader` instead; `None` if `read` is not of that form.
fn map_read(read: &str, reader: &str) -> Option<String> {
    const VALUES: &str = ", _>>()?";
    let at = read.find(VALUES)?;
    let mut out = String::with_capacity(read.len() + 64);
    out.push_str(&read[..at]);
    out.push_str(&format!(", {reader}>>()?"));
    let rest = &read[at + VALUES.len()..];
    if let Some(keys) = rest.find("(k.0, v)") {
        out.push_str(&rest[..keys]);
        out.push_str("(k.0, v.0)");
        out.push_str(&rest[keys + "(k.0, v)".len()..]);
    } else if !rest.contains(".map(") {
        out.push_str(".into_iter().map(|(k, v)| (k, v.0)).collect()");
        out.push_str(rest);
    } else {
        return None;
    }
    Some(out)
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
                    any |= fix.kind == Kind::Any;
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
    let open_enums = open_enums(&mut code);
    accept_null_fields(&mut code);
    if any_fix || open_enums {
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
    let described = if package.is_empty() {
        "the files without a package".to_owned()
    } else {
        format!("package {package}")
    };
    format!(
        "\n    /// Where the registry is, for errors.\n    \
         const PACKAGE: &str = {described:?};\n\n    \
         /// The message types an Any may hold here, by full name.\n    \
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
    if let Some(replacement) = fix.deserialized(&code[rhs..rhs + length]) {
        code.replace_range(rhs..rhs + length, &replacement);
    }
}

/// Proto3 enums are open: a number without a name here (sent by a newer peer) is written as
/// the number and read back, where pbjson-build refuses both. Every enum field a message
/// writes goes through `__prpc_json::open_enum` instead of the enum's `try_from`, and every
/// one it reads through `OpenEnumIn`. Whether any was changed (the helpers are needed).
fn open_enums(code: &mut String) -> bool {
    let mut changed = false;
    // Written: `let v = path::Enum::try_from(...)` in the messages' Serialize impls (an
    // enum's own impl has no `try_from`).
    const TRY_FROM: &str = "::try_from(";
    let mut from = 0;
    while let Some(at) = code[from..].find("impl serde::Serialize for ") {
        let start = from + at;
        let end = code[start + 1..]
            .find("\nimpl")
            .map_or(code.len(), |next| start + 1 + next);
        let mut block = code[start..end].to_owned();
        let mut search = 0;
        while let Some(found) = block[search..].find(TRY_FROM) {
            let call = search + found;
            let path_start = block[..call]
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '#'))
                .map_or(0, |before| before + 1);
            let path = block[path_start..call].to_owned();
            if path.is_empty() || matches!(path.as_str(), "i32" | "u32" | "i64" | "u64") {
                search = call + TRY_FROM.len();
                continue;
            }
            let replacement = format!("__prpc_json::open_enum::<{path}>(");
            block.replace_range(path_start..call + TRY_FROM.len(), &replacement);
            search = path_start + replacement.len();
            changed = true;
        }
        code.replace_range(start..end, &block);
        from = start + block.len();
    }
    // Read: each field read whose value is cast `as i32` reads its enum through
    // `OpenEnumIn`, whose `.0` is the number.
    changed |= rewrite_field_reads(code, |read| {
        if !read.rest.contains(" as i32") {
            return None;
        }
        // The enum is the last type named: after the last `<` or `,`, before the `>`s.
        let read_type = read.read_type?;
        let bare = read_type.trim_end_matches('>');
        let enum_start = bare.rfind(['<', ',']).map_or(0, |at| at + 1);
        let enumeration = bare[enum_start..].trim();
        if enumeration.is_empty() || enumeration.ends_with("NullValue") {
            return None;
        }
        let enum_start =
            enum_start + (bare[enum_start..].len() - bare[enum_start..].trim_start().len());
        Some(format!(
            "{}{READ}::<{}__prpc_json::OpenEnumIn<{enumeration}>{}>{}",
            read.before,
            &read_type[..enum_start],
            &read_type[bare.len()..],
            read.rest.replace(" as i32", ".0")
        ))
    });
    changed
}

/// What a `null` field is read as instead of an error: nothing, so the field keeps its
/// default (the `continue` leaves the field unset and goes on to the next one).
const NULL_IS_DEFAULT: &str = "::core::option::Option::Some(value) => value, \
                               ::core::option::Option::None => continue";

/// The mapping reads `null` as the default of any field (a Value's null as a null Value),
/// where pbjson-build refuses it for scalars, enums, repeated and map fields: every field a
/// message reads (`name__ = ...map_.next_value...;`) reads an `Option` first instead, and a
/// `None` leaves the field at its default. Fields read by [`Fix::deserialized`] as a whole
/// Value are left alone.
fn accept_null_fields(code: &mut String) {
    rewrite_field_reads(code, |read| {
        if read.read_type == Some("__prpc_json_wkt::ValueIn") {
            return None;
        }
        let read_type = read.read_type.unwrap_or("_");
        let rest = read.rest.strip_prefix("()?")?;
        Some(format!(
            "{}match {READ}::<::core::option::Option<{read_type}>>()? {{ {NULL_IS_DEFAULT} }}{rest}",
            read.before
        ))
    });
}

/// How pbjson-build's generated messages read a field's value.
const READ: &str = "map_.next_value";

/// One field read of a generated message's `visit_map` (`name__ = <read>;`), split around
/// its call of [`READ`].
struct FieldRead<'a> {
    /// What comes before the call (`Some(`).
    before: &'a str,
    /// The type read, when the call names it (`::<T>`).
    read_type: Option<&'a str>,
    /// From the call's `()?` to the end of the read.
    rest: &'a str,
}

/// Calls `rewrite` on every field read in `code` and puts what it returns in its place;
/// whether any was replaced.
fn rewrite_field_reads(
    code: &mut String,
    mut rewrite: impl FnMut(&FieldRead<'_>) -> Option<String>,
) -> bool {
    const ASSIGN: &str = "__ = ";
    let mut changed = false;
    let mut from = 0;
    while let Some(at) = code[from..].find(ASSIGN) {
        let start = from + at + ASSIGN.len();
        let Some(length) = code[start..].find(';') else {
            break;
        };
        from = start + length;
        let text = &code[start..start + length];
        let Some(call) = text.find(READ) else {
            continue;
        };
        let after = call + READ.len();
        // The type read, if named, with its nested angle brackets.
        let (read_type, rest) = match text[after..].strip_prefix("::") {
            Some(turbofish) => {
                let mut depth = 0usize;
                let Some(end) = turbofish.char_indices().find_map(|(index, c)| {
                    match c {
                        '<' => depth += 1,
                        '>' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(index);
                            }
                        }
                        _ => {}
                    }
                    None
                }) else {
                    continue;
                };
                (Some(&turbofish[1..end]), &turbofish[end + 1..])
            }
            None => (None, &text[after..]),
        };
        let read = FieldRead {
            before: &text[..call],
            read_type,
            rest,
        };
        if let Some(replacement) = rewrite(&read) {
            code.replace_range(start..start + length, &replacement);
            from = start + replacement.len();
            changed = true;
        }
    }
    changed
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
