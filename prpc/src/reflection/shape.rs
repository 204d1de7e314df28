//! What a value looks like on the wire, for a client that has never seen its type: [`Shape`],
//! and [`Describe`], the trait that gives a type's shape.
//!
//! Shapes describe JSON values (MessagePack carries the same structure: a JSON object is a
//! map keyed by the field names, an array an array). A server computes them once, when it is
//! bound, from the types of its services' methods; `#[prpc::service]` cannot see the fields of
//! a user's type, so that type says its shape by implementing [`Describe`], usually derived.
//! A type that does not is described by its name ([`Shape::Named`]), so every service builds.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The shape of a JSON value: what a client must send for an argument, or will read back.
///
/// Serialized with its kind in a field `type`, e.g. `{"type":"integer"}` or
/// `{"type":"array","items":{"type":"string"}}` (docs/PROTOCOL.md, section 7.9, has the
/// grammar).
///
/// ```
/// use prpc::reflection::Shape;
/// use prpc::Describe;
///
/// assert_eq!(<Vec<Option<u32>>>::shape(), Shape::array(Shape::optional(Shape::Integer)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Shape {
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// A string.
    String,
    /// `true` or `false`.
    Boolean,
    /// Raw bytes: a MessagePack `bin`; in JSON, serde writes an array of integers 0–255.
    Bytes,
    /// `null` only (Rust's `()`).
    Null,
    /// An array whose items all have one shape.
    Array {
        /// Each item's shape.
        items: Box<Shape>,
    },
    /// The value, or `null` (absent, for a field).
    Optional {
        /// The shape when present.
        inner: Box<Shape>,
    },
    /// An object used as a map: any keys (strings in JSON), values of one shape.
    Map {
        /// Each value's shape.
        values: Box<Shape>,
    },
    /// An object with named fields, in this order.
    Object {
        /// The type's name (the Rust type's, or a protobuf message's full name).
        name: String,
        /// Its fields.
        #[serde(serialize_with = "crate::reflection::seq")]
        fields: Vec<Field>,
    },
    /// One of named variants, in serde's externally tagged form: a variant without a shape is
    /// its name as a string, one with a shape is an object with one key, its name, holding a
    /// value of that shape.
    Enum {
        /// The type's name.
        name: String,
        /// Its variants.
        #[serde(serialize_with = "crate::reflection::seq")]
        variants: Vec<Variant>,
    },
    /// An array of fixed length, each position with its own shape (Rust tuples).
    Tuple {
        /// The shape at each position.
        #[serde(serialize_with = "crate::reflection::seq")]
        items: Vec<Shape>,
    },
    /// A type that does not describe itself ([`Describe`] is not implemented): only its name,
    /// its module path left out (`Point`, `Wrapper<Point>`).
    Named {
        /// The type's name.
        name: String,
    },
    /// The object or enum of this name, described further out in the same shape: a recursive
    /// type (a tree's node holding its children) refers to itself this way.
    Ref {
        /// The name of the enclosing [`Object`](Shape::Object) or [`Enum`](Shape::Enum).
        name: String,
    },
    // Last, as serde requires of the variant that takes unknown kinds.
    /// Any JSON value (`serde_json::Value`, `google.protobuf.Value`). A `type` this version
    /// does not know reads as `Any` too, so a newer server's shapes still decode.
    #[serde(other)]
    Any,
}

/// One field of a [`Shape::Object`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Field {
    /// The key the field has in the object.
    pub name: String,
    /// The field's value.
    pub shape: Shape,
}

impl Field {
    /// A field named `name` of the given shape.
    pub fn new(name: impl Into<String>, shape: Shape) -> Self {
        Field {
            name: name.into(),
            shape,
        }
    }
}

/// One variant of a [`Shape::Enum`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Variant {
    /// The variant's name, as it is written on the wire.
    pub name: String,
    /// What the variant holds; `None` for a unit variant, written as its name alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
}

impl Variant {
    /// A unit variant: its name is the whole value.
    pub fn unit(name: impl Into<String>) -> Self {
        Variant {
            name: name.into(),
            shape: None,
        }
    }

    /// A variant holding a value of `shape`.
    pub fn with(name: impl Into<String>, shape: Shape) -> Self {
        Variant {
            name: name.into(),
            shape: Some(shape),
        }
    }
}

impl Shape {
    /// `{"type":"array","items":items}`.
    pub fn array(items: Shape) -> Self {
        Shape::Array {
            items: Box::new(items),
        }
    }

    /// `{"type":"optional","inner":inner}`.
    pub fn optional(inner: Shape) -> Self {
        Shape::Optional {
            inner: Box::new(inner),
        }
    }

    /// `{"type":"map","values":values}`.
    pub fn map(values: Shape) -> Self {
        Shape::Map {
            values: Box::new(values),
        }
    }

    /// `{"type":"object","name":name,"fields":fields}`.
    pub fn object(name: impl Into<String>, fields: Vec<Field>) -> Self {
        Shape::Object {
            name: name.into(),
            fields,
        }
    }

    /// `{"type":"enum","name":name,"variants":variants}`.
    pub fn enumeration(name: impl Into<String>, variants: Vec<Variant>) -> Self {
        Shape::Enum {
            name: name.into(),
            variants,
        }
    }

    /// `{"type":"tuple","items":items}`.
    pub fn tuple(items: Vec<Shape>) -> Self {
        Shape::Tuple { items }
    }

    /// The fallback for a type that does not implement [`Describe`]: its name from
    /// [`std::any::type_name`], each path shortened to its last segment
    /// (`alloc::vec::Vec<app::Point>` is `Vec<Point>`).
    pub fn named<T: ?Sized>() -> Self {
        Shape::Named {
            name: short_type_name(std::any::type_name::<T>()),
        }
    }
}

/// A type that says what it looks like on the wire, for reflection.
///
/// Derive it on the types of a service's arguments and replies (`#[derive(prpc::Describe)]`)
/// so that reflection shows their fields; without it they are described by their name alone.
/// The derive describes
///
/// - a struct with named fields as an [`Object`](Shape::Object) named after the struct, a
///   tuple struct of one field as that field, a tuple struct of more as a
///   [`Tuple`](Shape::Tuple), a unit struct as [`Null`](Shape::Null);
/// - an enum as an [`Enum`](Shape::Enum) in serde's default (externally tagged) form: unit
///   variants by name, others holding their field, their tuple or an object of their fields.
///
/// It uses the Rust names of types, fields and variants: serde attributes that rename or
/// reshape them (`rename`, `rename_all`, `tag`, `flatten`, `skip`, ...) are not read, so a
/// type with them is better described by a hand-written impl. A field whose type does not
/// implement `Describe` is described by its name. A type reached again inside itself is a
/// [`Ref`](Shape::Ref) to its name (see [`recursive`]).
///
/// ```
/// use prpc::reflection::{Field, Shape, Variant};
/// use prpc::Describe;
///
/// #[derive(prpc::Describe)]
/// struct Point {
///     x: i32,
///     y: i32,
/// }
///
/// #[derive(prpc::Describe)]
/// enum Figure {
///     Empty,
///     Dot(Point),
/// }
///
/// let point = Shape::object(
///     "Point",
///     vec![Field::new("x", Shape::Integer), Field::new("y", Shape::Integer)],
/// );
/// assert_eq!(Point::shape(), point);
/// assert_eq!(
///     Figure::shape(),
///     Shape::enumeration("Figure", vec![Variant::unit("Empty"), Variant::with("Dot", point)]),
/// );
/// ```
pub trait Describe {
    /// The shape of this type's values.
    fn shape() -> Shape;
}

thread_local! {
    /// The types whose shape is being computed on this thread, innermost last.
    static DESCRIBING: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

/// The shape `describe` gives for `T`, named `name`; or, when `T`'s shape is already being
/// computed further out (`T` holds itself, as a tree node holds its children), a
/// [`Shape::Ref`] to `name`, so describing a recursive type ends. The derive of [`Describe`]
/// calls it; a hand-written impl for a recursive type should too.
///
/// ```
/// use prpc::reflection::{self, Field, Shape};
/// use prpc::Describe;
///
/// struct Node {
///     children: Vec<Node>,
/// }
///
/// impl Describe for Node {
///     fn shape() -> Shape {
///         reflection::recursive::<Self>("Node", || {
///             Shape::object("Node", vec![Field::new("children", Vec::<Node>::shape())])
///         })
///     }
/// }
///
/// let reference = Shape::Ref { name: "Node".into() };
/// assert_eq!(
///     Node::shape(),
///     Shape::object("Node", vec![Field::new("children", Shape::array(reference))]),
/// );
/// ```
pub fn recursive<T: ?Sized>(name: &str, describe: impl FnOnce() -> Shape) -> Shape {
    let key = std::any::type_name::<T>();
    let entered = DESCRIBING.with(|describing| {
        let mut describing = describing.borrow_mut();
        if describing.contains(&key) {
            false
        } else {
            describing.push(key);
            true
        }
    });
    if !entered {
        return Shape::Ref {
            name: name.to_owned(),
        };
    }
    // Popped on unwind too, so a panicking impl leaves no stale entry on the thread.
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            DESCRIBING.with(|describing| describing.borrow_mut().pop());
        }
    }
    let _leave = Leave;
    describe()
}

/// `path::to::Type<other::Arg>` as `Type<Arg>`: each path cut to its last segment.
fn short_type_name(full: &str) -> String {
    let mut short = String::with_capacity(full.len());
    let mut segment_start = 0;
    for (index, character) in full.char_indices() {
        if character.is_alphanumeric() || character == '_' || character == ':' {
            continue;
        }
        push_last_segment(&mut short, &full[segment_start..index]);
        short.push(character);
        segment_start = index + character.len_utf8();
    }
    push_last_segment(&mut short, &full[segment_start..]);
    short
}

fn push_last_segment(short: &mut String, path: &str) {
    short.push_str(path.rsplit("::").next().unwrap_or(path));
}

macro_rules! describe_as {
    ($shape:expr => $($ty:ty),* $(,)?) => {
        $(
            impl Describe for $ty {
                fn shape() -> Shape {
                    $shape
                }
            }
        )*
    };
}

describe_as!(Shape::Integer => i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);
describe_as!(Shape::Number => f32, f64);
describe_as!(Shape::Boolean => bool);
describe_as!(Shape::String => char, str, String, bytestring::ByteString);
describe_as!(Shape::Bytes => bytes::Bytes, bytes::BytesMut);
describe_as!(Shape::Null => ());

#[cfg(feature = "json")]
describe_as!(Shape::Any => serde_json::Value);

impl<T: ?Sized> Describe for std::marker::PhantomData<T> {
    fn shape() -> Shape {
        Shape::Null
    }
}

impl<T: Describe> Describe for Option<T> {
    fn shape() -> Shape {
        Shape::optional(T::shape())
    }
}

impl<T: Describe, E: Describe> Describe for Result<T, E> {
    fn shape() -> Shape {
        Shape::enumeration(
            "Result",
            vec![
                Variant::with("Ok", T::shape()),
                Variant::with("Err", E::shape()),
            ],
        )
    }
}

macro_rules! describe_items {
    ($($ty:ident),*) => {
        $(
            impl<T: Describe> Describe for $ty<T> {
                fn shape() -> Shape {
                    Shape::array(T::shape())
                }
            }
        )*
    };
}

describe_items!(Vec, VecDeque, BTreeSet);

impl<T: Describe> Describe for [T] {
    fn shape() -> Shape {
        Shape::array(T::shape())
    }
}

impl<T: Describe, const N: usize> Describe for [T; N] {
    fn shape() -> Shape {
        Shape::array(T::shape())
    }
}

impl<T: Describe, S> Describe for HashSet<T, S> {
    fn shape() -> Shape {
        Shape::array(T::shape())
    }
}

impl<K, V: Describe, S> Describe for HashMap<K, V, S> {
    fn shape() -> Shape {
        Shape::map(V::shape())
    }
}

impl<K, V: Describe> Describe for BTreeMap<K, V> {
    fn shape() -> Shape {
        Shape::map(V::shape())
    }
}

macro_rules! describe_as_inner {
    ($($ty:ident),*) => {
        $(
            impl<T: Describe + ?Sized> Describe for $ty<T> {
                fn shape() -> Shape {
                    T::shape()
                }
            }
        )*
    };
}

describe_as_inner!(Box, Arc, Rc);

impl<T: Describe + ?Sized> Describe for &T {
    fn shape() -> Shape {
        T::shape()
    }
}

impl<T: Describe + ToOwned + ?Sized> Describe for Cow<'_, T> {
    fn shape() -> Shape {
        T::shape()
    }
}

macro_rules! describe_tuples {
    ($(($($ty:ident),+))*) => {
        $(
            impl<$($ty: Describe),+> Describe for ($($ty,)+) {
                fn shape() -> Shape {
                    Shape::tuple(vec![$($ty::shape()),+])
                }
            }
        )*
    };
}

describe_tuples! {
    (A)
    (A, B)
    (A, B, C)
    (A, B, C, D)
    (A, B, C, D, E)
    (A, B, C, D, E, F)
    (A, B, C, D, E, F, G)
    (A, B, C, D, E, F, G, H)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_lose_their_module_paths() {
        assert_eq!(short_type_name("alloc::string::String"), "String");
        assert_eq!(
            short_type_name("alloc::vec::Vec<app::geo::Point>"),
            "Vec<Point>"
        );
        assert_eq!(
            short_type_name("std::collections::hash::map::HashMap<u32, (a::B, [c::D; 2])>"),
            "HashMap<u32, (B, [D; 2])>"
        );
        assert_eq!(short_type_name("&str"), "&str");
        assert_eq!(
            Shape::named::<Vec<Shape>>(),
            Shape::Named {
                name: "Vec<Shape>".into()
            }
        );
    }

    #[test]
    fn std_types_have_their_serde_shapes() {
        assert_eq!(
            <HashMap<String, Vec<u8>>>::shape(),
            Shape::map(Shape::array(Shape::Integer))
        );
        assert_eq!(
            <(bool, Box<str>)>::shape(),
            Shape::tuple(vec![Shape::Boolean, Shape::String])
        );
        assert_eq!(<Option<Arc<f64>>>::shape(), Shape::optional(Shape::Number));
        assert_eq!(<()>::shape(), Shape::Null);
    }

    #[test]
    fn a_recursive_type_refers_to_itself_and_the_guard_is_left() {
        struct Tree;
        impl Describe for Tree {
            fn shape() -> Shape {
                recursive::<Self>("Tree", || {
                    Shape::object("Tree", vec![Field::new("children", Vec::<Tree>::shape())])
                })
            }
        }
        let expected = Shape::object(
            "Tree",
            vec![Field::new(
                "children",
                Shape::array(Shape::Ref {
                    name: "Tree".into(),
                }),
            )],
        );
        assert_eq!(Tree::shape(), expected);
        // Nothing left behind: the next description starts afresh.
        assert_eq!(Tree::shape(), expected);
    }

    #[cfg(all(feature = "json", feature = "msgpack"))]
    #[test]
    fn shapes_round_trip_in_both_formats() {
        use crate::Format;
        let shape = Shape::object(
            "Point",
            vec![
                Field::new("tags", Shape::map(Shape::optional(Shape::String))),
                Field::new(
                    "kind",
                    Shape::enumeration(
                        "Kind",
                        vec![Variant::unit("A"), Variant::with("B", Shape::Null)],
                    ),
                ),
                Field::new(
                    "pair",
                    Shape::tuple(vec![Shape::Bytes, Shape::named::<u8>()]),
                ),
            ],
        );
        let json = Format::Json.encode(&shape).unwrap();
        assert!(std::str::from_utf8(&json).unwrap().starts_with(
            r#"{"type":"object","name":"Point","fields":[{"name":"tags","shape":{"type":"map","#
        ),);
        for format in [Format::Json, Format::MsgPack] {
            let body = format.encode(&shape).unwrap();
            assert_eq!(format.decode::<Shape>(&body).unwrap(), shape);
        }
        let future = br#"{"type":"decimal","scale":2}"#;
        assert_eq!(Format::Json.decode::<Shape>(future).unwrap(), Shape::Any);
    }
}
