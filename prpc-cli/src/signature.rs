//! Methods and shapes as a person writes them: `add(a: integer, b: integer) -> integer`,
//! with the objects and enums they use spelled out once below (`type Point = { x: integer,
//! y: integer }`).

use std::collections::BTreeSet;

use prpc::reflection::{MethodDescription, Shape, StreamDirection};

/// One method's signature: arguments, reply, typed error, and whether it is idempotent.
pub(crate) fn signature(method: &MethodDescription) -> String {
    let arguments: Vec<String> = method
        .arguments
        .iter()
        .map(|argument| {
            let stream = if argument.stream { "stream " } else { "" };
            format!("{}: {stream}{}", argument.name, inline(&argument.shape))
        })
        .collect();
    let streams_reply = matches!(
        method.streaming,
        Some(StreamDirection::Server | StreamDirection::Bidi)
    );
    let mut line = format!(
        "{}({}) -> {}{}",
        method.name,
        arguments.join(", "),
        if streams_reply { "stream " } else { "" },
        inline(&method.returns)
    );
    if let Some(error) = &method.error {
        line.push_str(" throws ");
        line.push_str(&inline(error));
    }
    if method.idempotent {
        line.push_str("  [idempotent]");
    }
    line
}

/// A shape where it is used: named types by name.
pub(crate) fn inline(shape: &Shape) -> String {
    match shape {
        Shape::Integer => "integer".into(),
        Shape::Number => "number".into(),
        Shape::String => "string".into(),
        Shape::Boolean => "boolean".into(),
        Shape::Bytes => "bytes".into(),
        Shape::Null => "null".into(),
        Shape::Array { items } => format!("[{}]", inline(items)),
        Shape::Optional { inner } => format!("{}?", inline(inner)),
        Shape::Map { values } => format!("{{string: {}}}", inline(values)),
        Shape::Object { name, .. }
        | Shape::Enum { name, .. }
        | Shape::Named { name }
        | Shape::Ref { name } => name.clone(),
        Shape::Tuple { items } => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("({})", items.join(", "))
        }
        _ => "any".into(),
    }
}

/// `type NAME = ...` for every object and enum these methods use, each once, in the order
/// they first appear.
pub(crate) fn definitions<'a>(
    methods: impl IntoIterator<Item = &'a MethodDescription>,
) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut lines = Vec::new();
    for method in methods {
        let shapes = method
            .arguments
            .iter()
            .map(|argument| &argument.shape)
            .chain(std::iter::once(&method.returns))
            .chain(method.error.as_ref());
        for shape in shapes {
            define(shape, &mut seen, &mut lines);
        }
    }
    lines
}

/// Adds the definitions `shape` needs, depth first, skipping names already defined.
fn define(shape: &Shape, seen: &mut BTreeSet<String>, lines: &mut Vec<String>) {
    match shape {
        Shape::Array { items } => define(items, seen, lines),
        Shape::Optional { inner } => define(inner, seen, lines),
        Shape::Map { values } => define(values, seen, lines),
        Shape::Tuple { items } => items.iter().for_each(|item| define(item, seen, lines)),
        Shape::Object { name, fields } => {
            if !seen.insert(name.clone()) {
                return;
            }
            let body: Vec<String> = fields
                .iter()
                .map(|field| format!("{}: {}", field.name, inline(&field.shape)))
                .collect();
            lines.push(format!("type {name} = {{ {} }}", body.join(", ")));
            fields
                .iter()
                .for_each(|field| define(&field.shape, seen, lines));
        }
        Shape::Enum { name, variants } => {
            if !seen.insert(name.clone()) {
                return;
            }
            let body: Vec<String> = variants
                .iter()
                .map(|variant| match &variant.shape {
                    None => format!("\"{}\"", variant.name),
                    Some(shape) => format!("{{ \"{}\": {} }}", variant.name, inline(shape)),
                })
                .collect();
            lines.push(format!("type {name} = {}", body.join(" | ")));
            variants
                .iter()
                .filter_map(|variant| variant.shape.as_ref())
                .for_each(|shape| define(shape, seen, lines));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use prpc::reflection::{Field, Variant};

    use super::*;

    #[test]
    fn a_method_as_a_person_writes_it() {
        let add = MethodDescription::new("add")
            .argument("a", Shape::Integer)
            .argument("b", Shape::Integer)
            .returns(Shape::Integer)
            .idempotent(true);
        assert_eq!(
            signature(&add),
            "add(a: integer, b: integer) -> integer  [idempotent]"
        );
        let tail = MethodDescription::new("tail")
            .argument("lines", Shape::optional(Shape::Integer))
            .returns(Shape::array(Shape::String))
            .error(Shape::String)
            .streaming(StreamDirection::Server);
        assert_eq!(
            signature(&tail),
            "tail(lines: integer?) -> stream [string] throws string"
        );
    }

    #[test]
    fn named_types_are_defined_once() {
        let point = Shape::object(
            "Point",
            vec![
                Field::new("x", Shape::Integer),
                Field::new("y", Shape::Integer),
            ],
        );
        let op = Shape::enumeration(
            "Op",
            vec![
                Variant::unit("reset"),
                Variant::with("shift", point.clone()),
            ],
        );
        let apply = MethodDescription::new("apply")
            .argument("point", point.clone())
            .argument("op", op)
            .returns(point);
        assert_eq!(signature(&apply), "apply(point: Point, op: Op) -> Point");
        assert_eq!(
            definitions([&apply]),
            [
                "type Point = { x: integer, y: integer }",
                "type Op = \"reset\" | { \"shift\": Point }",
            ]
        );
    }
}
