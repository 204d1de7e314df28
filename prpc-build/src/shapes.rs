//! Reflection shapes of the generated messages: each message derives `prpc::Describe`, with
//! its shape in the proto3 JSON mapping computed here from the descriptors, so a server's
//! `describe_services` shows a protobuf method's request and reply field by field.
//!
//! The shape is computed at build time and embedded whole (nested messages expanded, a
//! message met again inside itself as a reference), as the Rust expression in
//! `#[describe(proto = ".pkg.Message", shape = "...")]` on the message's struct: prost-build
//! places that attribute on the right struct whatever its Rust path, so no path is computed
//! here.

use std::collections::HashMap;
use std::fmt::Write as _;

use heck::ToLowerCamelCase;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet};

use crate::Config;
use crate::packages::is_extern;

/// Adds the derive and each generated message's shape to prost-build's message attributes.
pub(crate) fn add_attributes(
    config: &Config,
    fds: &FileDescriptorSet,
    prost: &mut prost_build::Config,
) {
    let types = Types::new(fds);
    // First, so that the derive comes before the helper attributes it declares.
    prost.message_attribute(".", "#[derive(::prpc::Describe)]");
    let preserve_names = config.json && config.json_preserve_field_names;
    for file in fds
        .file
        .iter()
        .filter(|file| !is_extern(config, file.package()))
    {
        let prefix = package_prefix(file.package());
        for message in &file.message_type {
            visit(&prefix, message, &mut |path| {
                let mut expression = String::from(
                    "{ #[allow(unused_imports)] use ::prpc::reflection::{Field as F, Shape as S, Variant as V}; ",
                );
                let mut writer = ShapeWriter {
                    types: &types,
                    preserve_names,
                    describing: Vec::new(),
                    out: &mut expression,
                };
                writer.named_message(path);
                expression.push_str(" }");
                prost.message_attribute(
                    path,
                    format!("#[describe(proto = {path:?}, shape = {expression:?})]"),
                );
            });
        }
    }
}

/// `.package`, or nothing for a file without a package.
fn package_prefix(package: &str) -> String {
    if package.is_empty() {
        String::new()
    } else {
        format!(".{package}")
    }
}

/// Calls `each(path)` on `message` and every message nested in it but map entries, which
/// prost generates no struct for.
fn visit(prefix: &str, message: &DescriptorProto, each: &mut impl FnMut(&str)) {
    if is_map_entry(message) {
        return;
    }
    let path = format!("{prefix}.{}", message.name());
    each(&path);
    for nested in &message.nested_type {
        visit(&path, nested, each);
    }
}

fn is_map_entry(message: &DescriptorProto) -> bool {
    message
        .options
        .as_ref()
        .is_some_and(|options| options.map_entry())
}

/// Every message and enum of the set, imports included, by full name (`.pkg.Name`).
struct Types<'a> {
    messages: HashMap<String, Message<'a>>,
    enums: HashMap<String, &'a EnumDescriptorProto>,
}

/// A message and what its file's syntax says of its fields.
#[derive(Clone, Copy)]
struct Message<'a> {
    descriptor: &'a DescriptorProto,
    /// Whether a singular scalar field has presence (proto2 and editions; in proto3 only
    /// with `optional`, which the field says itself).
    scalars_have_presence: bool,
}

impl<'a> Types<'a> {
    fn new(fds: &'a FileDescriptorSet) -> Self {
        fn add<'a>(
            types: &mut Types<'a>,
            prefix: &str,
            descriptor: &'a DescriptorProto,
            scalars_have_presence: bool,
        ) {
            let path = format!("{prefix}.{}", descriptor.name());
            for nested in &descriptor.enum_type {
                types
                    .enums
                    .insert(format!("{path}.{}", nested.name()), nested);
            }
            for nested in &descriptor.nested_type {
                add(types, &path, nested, scalars_have_presence);
            }
            let message = Message {
                descriptor,
                scalars_have_presence,
            };
            types.messages.insert(path, message);
        }
        let mut types = Types {
            messages: HashMap::new(),
            enums: HashMap::new(),
        };
        for file in &fds.file {
            let prefix = package_prefix(file.package());
            for enumeration in &file.enum_type {
                types
                    .enums
                    .insert(format!("{prefix}.{}", enumeration.name()), enumeration);
            }
            let scalars_have_presence = file.syntax() != "proto3";
            for message in &file.message_type {
                add(&mut types, &prefix, message, scalars_have_presence);
            }
        }
        types
    }
}

/// Writes a shape as a Rust expression over the aliases `S` (`Shape`), `F` (`Field`) and `V`
/// (`Variant`).
struct ShapeWriter<'w, 'a> {
    types: &'w Types<'a>,
    /// Field names as in the `.proto` file rather than their lowerCamelCase JSON names.
    preserve_names: bool,
    /// The messages being written, outermost first: one met again is a reference.
    describing: Vec<String>,
    out: &'w mut String,
}

impl ShapeWriter<'_, '_> {
    /// The message at `path` (`.pkg.Name`), an object of its fields.
    fn message(&mut self, path: &str, message: Message<'_>) {
        let name = path.trim_start_matches('.');
        if self.describing.iter().any(|outer| outer == path) {
            let _ = write!(self.out, "S::Ref {{ name: {:?}.into() }}", name);
            return;
        }
        self.describing.push(path.to_owned());
        let _ = write!(self.out, "S::object({name:?}, ::std::vec![");
        for (index, field) in message.descriptor.field.iter().enumerate() {
            if index > 0 {
                self.out.push_str(", ");
            }
            let key = if self.preserve_names {
                field.name().to_owned()
            } else {
                field
                    .json_name
                    .clone()
                    .unwrap_or_else(|| field.name().to_lower_camel_case())
            };
            let _ = write!(self.out, "F::new({key:?}, ");
            self.field(message, field);
            self.out.push(')');
        }
        self.out.push_str("])");
        self.describing.pop();
    }

    /// A field's value: repeated as an array or a map, with presence as optional.
    fn field(&mut self, message: Message<'_>, field: &FieldDescriptorProto) {
        let is_message = matches!(field.r#type(), Type::Message | Type::Group);
        if field.label() == Label::Repeated {
            let entry = self
                .types
                .messages
                .get(field.type_name())
                .filter(|entry| is_message && is_map_entry(entry.descriptor));
            match entry.and_then(|entry| {
                entry
                    .descriptor
                    .field
                    .iter()
                    .find(|value| value.number() == 2)
            }) {
                Some(value) => {
                    self.out.push_str("S::map(");
                    self.single(value);
                }
                None => {
                    self.out.push_str("S::array(");
                    self.single(field);
                }
            }
            self.out.push(')');
            return;
        }
        // prost makes these `Option`s: absent is not the default value.
        let has_presence = is_message
            || field.proto3_optional()
            || field.oneof_index.is_some()
            || message.scalars_have_presence;
        if has_presence {
            self.out.push_str("S::optional(");
            self.single(field);
            self.out.push(')');
        } else {
            self.single(field);
        }
    }

    /// One value of the field's type, in the proto3 JSON mapping.
    fn single(&mut self, field: &FieldDescriptorProto) {
        let shape = match field.r#type() {
            Type::Double | Type::Float => "S::Number",
            Type::Int32 | Type::Sint32 | Type::Sfixed32 | Type::Uint32 | Type::Fixed32 => {
                "S::Integer"
            }
            // 64-bit integers are strings in proto3 JSON (doubles lose their precision), and
            // bytes are base64 strings.
            Type::Int64 | Type::Sint64 | Type::Sfixed64 | Type::Uint64 | Type::Fixed64 => {
                "S::String"
            }
            Type::Bool => "S::Boolean",
            Type::String | Type::Bytes => "S::String",
            Type::Enum => return self.enumeration(field.type_name()),
            Type::Message | Type::Group => return self.named_message(field.type_name()),
        };
        self.out.push_str(shape);
    }

    fn enumeration(&mut self, path: &str) {
        let name = path.trim_start_matches('.');
        if name == "google.protobuf.NullValue" {
            self.out.push_str("S::Null");
            return;
        }
        let Some(enumeration) = self.types.enums.get(path) else {
            let _ = write!(self.out, "S::Named {{ name: {name:?}.into() }}");
            return;
        };
        let _ = write!(self.out, "S::enumeration({name:?}, ::std::vec![");
        for (index, value) in enumeration.value.iter().enumerate() {
            if index > 0 {
                self.out.push_str(", ");
            }
            let _ = write!(self.out, "V::unit({:?})", value.name());
        }
        self.out.push_str("])");
    }

    /// A message by its full name: a well-known type in its own JSON form, else an object.
    fn named_message(&mut self, path: &str) {
        let name = path.trim_start_matches('.');
        let well_known = match name {
            "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value" => Some("S::String"),
            "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => Some("S::Integer"),
            "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => Some("S::Number"),
            "google.protobuf.BoolValue" => Some("S::Boolean"),
            "google.protobuf.Value" | "google.protobuf.Any" => Some("S::Any"),
            "google.protobuf.Struct" => Some("S::map(S::Any)"),
            "google.protobuf.ListValue" => Some("S::array(S::Any)"),
            _ => None,
        };
        if let Some(shape) = well_known {
            self.out.push_str(shape);
            return;
        }
        match self.types.messages.get(path).copied() {
            Some(message) => self.message(path, message),
            None => {
                let _ = write!(self.out, "S::Named {{ name: {name:?}.into() }}");
            }
        }
    }
}
