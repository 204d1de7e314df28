//! The JSON and MessagePack shapes docs/PROTOCOL.md section 5.1 promises for serde values:
//! each value below encodes to exactly the bytes the document shows, and the receiving
//! leniencies it lists (an array for a struct, an integer where a float is expected) hold.
#![cfg(all(feature = "json", feature = "msgpack"))]

use std::collections::BTreeMap;

use prpc::Format;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    Newtype(u8),
    Tuple(u8, u8),
    Struct { w: u8 },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Add {
    a: i32,
    b: i32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Wrapper(u8);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Div {
    a: f64,
    b: f64,
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shapes<T: Serialize + ?Sized>(value: &T) -> (String, String) {
    let json = Format::Json.encode(value).unwrap();
    let msgpack = Format::MsgPack.encode(value).unwrap();
    (String::from_utf8(json.to_vec()).unwrap(), hex(&msgpack))
}

#[test]
fn values_encode_to_the_documented_shapes() {
    let mut map = BTreeMap::new();
    map.insert(1u32, "x");
    let cases: [(&str, (String, String), &str, &str); 12] = [
        ("unit", shapes(&()), "null", "c0"),
        (
            "unit variant",
            shapes(&Shape::Unit),
            "\"Unit\"",
            "a4 55 6e 69 74",
        ),
        (
            "newtype variant",
            shapes(&Shape::Newtype(1)),
            "{\"Newtype\":1}",
            "81 a7 4e 65 77 74 79 70 65 01",
        ),
        (
            "tuple variant",
            shapes(&Shape::Tuple(1, 2)),
            "{\"Tuple\":[1,2]}",
            "81 a5 54 75 70 6c 65 92 01 02",
        ),
        (
            "struct variant",
            shapes(&Shape::Struct { w: 3 }),
            "{\"Struct\":{\"w\":3}}",
            "81 a6 53 74 72 75 63 74 81 a1 77 03",
        ),
        ("Some", shapes(&Some(5u8)), "5", "05"),
        ("None", shapes(&None::<u8>), "null", "c0"),
        ("tuple", shapes(&(1u8, "a")), "[1,\"a\"]", "92 01 a1 61"),
        (
            "integer-keyed map",
            shapes(&map),
            "{\"1\":\"x\"}",
            "81 01 a1 78",
        ),
        ("newtype struct", shapes(&Wrapper(7)), "7", "07"),
        (
            "struct",
            shapes(&Add { a: 2, b: 40 }),
            "{\"a\":2,\"b\":40}",
            "82 a1 61 02 a1 62 28",
        ),
        ("Vec<u8>", shapes(&vec![1u8, 2]), "[1,2]", "92 01 02"),
    ];
    for (name, (json, msgpack), want_json, want_msgpack) in cases {
        assert_eq!(
            (json.as_str(), msgpack.as_str()),
            (want_json, want_msgpack),
            "{name}"
        );
    }
}

#[test]
fn receivers_accept_what_the_document_lists() {
    // An array where a struct is expected: its fields in declaration order.
    assert_eq!(
        Format::Json.decode::<Add>(b"[2,40]").unwrap(),
        Add { a: 2, b: 40 }
    );
    let array = Format::MsgPack.encode(&(2, 40)).unwrap();
    assert_eq!(
        Format::MsgPack.decode::<Add>(&array).unwrap(),
        Add { a: 2, b: 40 }
    );
    // Integers where floats are expected; not floats where integers are.
    assert_eq!(
        Format::Json.decode::<Div>(b"{\"a\":1,\"b\":2}").unwrap(),
        Div { a: 1.0, b: 2.0 }
    );
    let integers = Format::MsgPack.encode(&Add { a: 1, b: 2 }).unwrap();
    assert_eq!(
        Format::MsgPack.decode::<Div>(&integers).unwrap(),
        Div { a: 1.0, b: 2.0 }
    );
    assert!(Format::Json.decode::<Add>(b"{\"a\":1.0,\"b\":2}").is_err());
    // A unit variant also as a one-key map holding null (nil).
    assert_eq!(
        Format::Json.decode::<Shape>(b"{\"Unit\":null}").unwrap(),
        Shape::Unit
    );
    // Map keys that are numbers travel as strings in JSON and are read back.
    let map = Format::Json
        .decode::<BTreeMap<u32, String>>(b"{\"1\":\"x\"}")
        .unwrap();
    assert_eq!(map[&1], "x");
    // Unknown fields are ignored; a missing field is an error, unless it is an Option.
    assert_eq!(
        Format::Json
            .decode::<Add>(b"{\"a\":1,\"b\":2,\"c\":3}")
            .unwrap(),
        Add { a: 1, b: 2 }
    );
    let error = Format::Json.decode::<Add>(b"{\"a\":1}").unwrap_err();
    assert!(error.to_string().contains("missing field `b`"), "{error}");
    #[derive(Debug, PartialEq, Deserialize)]
    struct Maybe {
        a: Option<u8>,
    }
    assert_eq!(
        Format::Json.decode::<Maybe>(b"{}").unwrap(),
        Maybe { a: None }
    );
}
