//! The canonical proto3 JSON mapping of code generated with `json(true)`, case by case from
//! the mapping table of the protobuf documentation (proto3 "JSON Mapping"): each well-known
//! type and each special value, written out by hand here. proto/edge/json.proto holds a field
//! of every kind; the last test sends the special values through a real server.

use prpc::{Format, Status};
use serde_json::{Value as Json, json};

pub mod edge {
    prpc::include_proto!("edge.json.v1");
}

use edge::{Everything, Level, Point};
use pbjson_types as wkt;

fn to_json(message: &Everything) -> Json {
    serde_json::to_value(message).unwrap()
}

fn from_json(json: Json) -> Everything {
    serde_json::from_value(json.clone()).unwrap_or_else(|error| panic!("{json}: {error}"))
}

#[test]
fn timestamp_is_rfc3339_in_utc_with_z() {
    let message = Everything {
        at: Some(wkt::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        times: vec![wkt::Timestamp {
            seconds: 0,
            nanos: 500_000_000,
        }],
        ..Default::default()
    };
    let json = to_json(&message);
    assert_eq!(json["at"], "2023-11-14T22:13:20Z");
    // Fractions in 3, 6 or 9 digits.
    assert_eq!(json["times"], json!(["1970-01-01T00:00:00.500Z"]));
    // The range's ends, before the epoch too, and 6 and 9 digits.
    for (seconds, nanos, text) in [
        (-62_135_596_800, 0, "0001-01-01T00:00:00Z"),
        (
            253_402_300_799,
            999_999_999,
            "9999-12-31T23:59:59.999999999Z",
        ),
        (-1, 10_000, "1969-12-31T23:59:59.000010Z"),
        (951_782_400, 0, "2000-02-29T00:00:00Z"),
    ] {
        let message = Everything {
            at: Some(wkt::Timestamp { seconds, nanos }),
            ..Default::default()
        };
        let json = to_json(&message);
        assert_eq!(json["at"], text);
        assert_eq!(from_json(json).at, message.at);
    }
    // Outside 0001..9999 it is an error, not a wrong date.
    let out_of_range = Everything {
        at: Some(wkt::Timestamp {
            seconds: 253_402_300_800,
            nanos: 0,
        }),
        ..Default::default()
    };
    assert!(serde_json::to_value(&out_of_range).is_err());
    // Any offset is accepted on input.
    let read = from_json(json!({"at": "2023-11-14T23:13:20+01:00"}));
    assert_eq!(read.at, message.at);
}

#[test]
fn duration_is_seconds_with_an_s() {
    let message = Everything {
        took: Some(wkt::Duration {
            seconds: 1,
            nanos: 500_000_000,
        }),
        ..Default::default()
    };
    let json = to_json(&message);
    // Fractions in 0, 3, 6 or 9 digits, as for Timestamps; the sign on the whole.
    assert_eq!(json["took"], "1.500s");
    for (seconds, nanos, text) in [
        (3, 0, "3s"),
        (0, 1_000, "0.000001s"),
        (1, 1, "1.000000001s"),
        (0, -250_000_000, "-0.250s"),
        (-2, -500_000, "-2.000500s"),
    ] {
        let message = Everything {
            took: Some(wkt::Duration { seconds, nanos }),
            ..Default::default()
        };
        let json = to_json(&message);
        assert_eq!(json["took"], text);
        assert_eq!(from_json(json).took, message.took);
    }
    assert_eq!(from_json(json!({"took": "1.500s"})).took, message.took);
    let negative = from_json(json!({"took": "-0.25s"})).took.unwrap();
    assert_eq!((negative.seconds, negative.nanos), (0, -250_000_000));
}

#[test]
fn timestamps_and_durations_outside_the_mappings_ranges_are_refused() {
    const TIMESTAMP: &str = "outside 0001-01-01 to 9999-12-31";
    const DURATION: &str = "outside ±315576000000s or mixes signs";
    // Read: alone, repeated, as a map value, in a oneof, inside an Any.
    for (json, reason) in [
        (json!({"at": "0000-12-31T23:59:59Z"}), TIMESTAMP),
        (json!({"at": "0001-01-01T00:00:00+01:00"}), TIMESTAMP),
        (json!({"times": ["9999-12-31T23:59:59-01:00"]}), TIMESTAMP),
        (
            json!({"deadlines": {"1": "0000-01-01T00:00:00Z"}}),
            TIMESTAMP,
        ),
        (json!({"choiceAt": "0000-01-01T00:00:00Z"}), TIMESTAMP),
        (
            json!({"detail": {"@type": "type.googleapis.com/google.protobuf.Timestamp",
                              "value": "0000-01-01T00:00:00Z"}}),
            TIMESTAMP,
        ),
        (json!({"took": "315576000001s"}), DURATION),
        (json!({"durations": ["-315576000001s"]}), DURATION),
        (json!({"durationMap": {"k": "315576000001s"}}), DURATION),
        (
            json!({"detail": {"@type": "type.googleapis.com/google.protobuf.Duration",
                              "value": "315576000001s"}}),
            DURATION,
        ),
    ] {
        let error = serde_json::from_value::<Everything>(json.clone()).unwrap_err();
        assert!(error.to_string().contains(reason), "{json}: {error}");
    }
    // The ends of the ranges are read, and written back as they were.
    for json in [
        json!({"at": "0001-01-01T00:00:00Z"}),
        json!({"at": "9999-12-31T23:59:59.999999999Z"}),
        json!({"took": "315576000000s"}),
        json!({"took": "-315576000000.999999999s"}),
        json!({"durations": ["0.000000001s"], "durationMap": {"k": "-1.500s"}}),
    ] {
        assert_eq!(to_json(&from_json(json.clone())), json);
    }
    // Written: nanoseconds past a second (pbjson-types wrote "1.1500s", which reads back as
    // 1.15 s), seconds past the range, mixed signs; alone, repeated and as a map value.
    for (seconds, nanos) in [(1, 1_500_000_000), (315_576_000_001, 0), (1, -1)] {
        let duration = wkt::Duration { seconds, nanos };
        for message in [
            Everything {
                took: Some(duration),
                ..Default::default()
            },
            Everything {
                durations: vec![duration],
                ..Default::default()
            },
            Everything {
                duration_map: [("k".to_owned(), duration)].into(),
                ..Default::default()
            },
        ] {
            let error = serde_json::to_value(&message).unwrap_err();
            assert!(error.to_string().contains(DURATION), "{error}");
        }
    }
}

#[test]
fn field_mask_is_one_string_of_lower_camel_paths() {
    let message = Everything {
        mask: Some(wkt::FieldMask {
            paths: vec!["user.display_name".into(), "photo".into()],
        }),
        ..Default::default()
    };
    let json = to_json(&message);
    assert_eq!(json["mask"], "user.displayName,photo");
    assert_eq!(from_json(json).mask, message.mask);
    assert_eq!(
        from_json(json!({"mask": ""})).mask,
        Some(wkt::FieldMask { paths: vec![] })
    );
    // What would not read back the same is refused both ways.
    for bad in ["a,,b", "a_b", ","] {
        assert!(
            serde_json::from_value::<Everything>(json!({"mask": bad})).is_err(),
            "{bad}"
        );
    }
    for bad in ["display_Name", "a__b", "ab_", ""] {
        let message = Everything {
            mask: Some(wkt::FieldMask {
                paths: vec![bad.into()],
            }),
            ..Default::default()
        };
        assert!(serde_json::to_value(&message).is_err(), "{bad}");
    }
}

#[test]
fn struct_value_and_list_value_are_plain_json() {
    let json = json!({
        "attributes": {"name": "x", "n": 1.5, "ok": true, "none": null, "list": [2.5, "a"]},
        "value": "just a string",
        "list": [0.5, null, "x", {"k": []}],
    });
    let read = from_json(json.clone());
    assert_eq!(to_json(&read), json);
}

#[test]
fn a_null_inside_a_list_value_reads_back_as_a_null_value() {
    let read = from_json(json!({"list": [null, 2]}));
    let values = read.list.unwrap().values;
    assert_eq!(values.len(), 2);
    assert_eq!(
        values[0].kind,
        Some(wkt::value::Kind::NullValue(
            wkt::NullValue::NullValue as i32
        ))
    );
    // A Value field that is null is a null Value, not an absent one.
    let read = from_json(json!({"value": null}));
    assert_eq!(
        read.value.and_then(|value| value.kind),
        Some(wkt::value::Kind::NullValue(0))
    );
}

#[test]
fn null_is_the_default_for_every_field_but_value() {
    // The mapping: "null is an accepted value for all field types and treated as the default
    // value of the corresponding field type" (a Value's null is a null Value).
    for field in [
        "ratio",
        "weight",
        "big",
        "ubig",
        "data",
        "level",
        "at",
        "took",
        "mask",
        "attributes",
        "list",
        "detail",
        "nothing",
        "bigWrapped",
        "ratioWrapped",
        "ratios",
        "times",
        "details",
        "scores",
        "deadlines",
        "masks",
        "values",
        "lists",
        "structs",
        "maskMap",
        "valueMap",
        "listMap",
        "structMap",
        "anyMap",
        "valueByNumber",
        "ratiosWrapped",
        "weightMapWrapped",
        "choiceRatio",
        "choiceAt",
        "choiceMask",
        "choiceDetail",
    ] {
        let read = serde_json::from_value::<Everything>(json!({field: null}))
            .unwrap_or_else(|error| panic!("{field}: null refused: {error}"));
        assert_eq!(read, Everything::default(), "{field}");
    }
    // Beside other fields, and after them.
    let read = from_json(json!({"big": 5, "ratios": null, "level": null, "mask": "a"}));
    assert_eq!(read.big, 5);
    assert!(read.ratios.is_empty());
    assert_eq!(
        read.mask,
        Some(wkt::FieldMask {
            paths: vec!["a".into()]
        })
    );
    // A Value's null stays a null Value, alone and in a oneof.
    assert_eq!(from_json(json!({"value": null})).value, Some(null_value()));
    assert_eq!(
        from_json(json!({"choiceValue": null})).choice,
        Some(edge::everything::Choice::ChoiceValue(null_value()))
    );
}

#[test]
fn wrappers_are_their_wrapped_value() {
    let message = Everything {
        big_wrapped: Some(wkt::Int64Value { value: 5 }),
        ratio_wrapped: Some(wkt::DoubleValue { value: 0.25 }),
        name_wrapped: Some(wkt::StringValue { value: "n".into() }),
        flag_wrapped: Some(wkt::BoolValue { value: false }),
        data_wrapped: Some(wkt::BytesValue {
            value: b"hi".to_vec().into(),
        }),
        ..Default::default()
    };
    let json = to_json(&message);
    // 64-bit integers as strings, bytes in base64; a wrapper at its default is still there.
    assert_eq!(
        json,
        json!({
            "bigWrapped": "5",
            "ratioWrapped": 0.25,
            "nameWrapped": "n",
            "flagWrapped": false,
            "dataWrapped": "aGk=",
        })
    );
    assert_eq!(from_json(json), message);
}

#[test]
fn empty_is_an_empty_object() {
    let message = Everything {
        nothing: Some(wkt::Empty {}),
        ..Default::default()
    };
    let json = to_json(&message);
    assert_eq!(json["nothing"], json!({}));
    assert_eq!(from_json(json), message);
}

#[test]
fn nan_and_infinities_are_strings() {
    let message = Everything {
        ratio: f64::NAN,
        weight: f32::INFINITY,
        ratios: vec![f64::NEG_INFINITY, 1.5],
        ratio_wrapped: Some(wkt::DoubleValue { value: f64::NAN }),
        ..Default::default()
    };
    let json = to_json(&message);
    assert_eq!(json["ratio"], "NaN");
    assert_eq!(json["weight"], "Infinity");
    assert_eq!(json["ratios"], json!(["-Infinity", 1.5]));
    assert_eq!(json["ratioWrapped"], "NaN");
    let read = from_json(json);
    assert!(read.ratio.is_nan());
    assert_eq!(read.weight, f32::INFINITY);
    assert_eq!(read.ratios[0], f64::NEG_INFINITY);
    assert!(read.ratio_wrapped.unwrap().value.is_nan());
}

#[test]
fn float_wrappers_repeated_and_as_map_values_write_nan_as_a_string() {
    let message = Everything {
        ratios_wrapped: vec![
            wkt::DoubleValue { value: f64::NAN },
            wkt::DoubleValue { value: 0.5 },
        ],
        weight_map_wrapped: [(
            "w".to_owned(),
            wkt::FloatValue {
                value: f32::NEG_INFINITY,
            },
        )]
        .into(),
        ..Default::default()
    };
    let json = to_json(&message);
    assert_eq!(
        json,
        json!({"ratiosWrapped": ["NaN", 0.5], "weightMapWrapped": {"w": "-Infinity"}})
    );
    let read = from_json(json);
    assert!(read.ratios_wrapped[0].value.is_nan());
    assert_eq!(read.ratios_wrapped[1].value, 0.5);
    assert_eq!(read.weight_map_wrapped, message.weight_map_wrapped);
}

#[test]
fn a_oneof_member_is_canonical_too() {
    use edge::everything::Choice;
    for (choice, expected) in [
        (Choice::ChoiceRatio(f64::NAN), json!({"choiceRatio": "NaN"})),
        (
            Choice::ChoiceAt(wkt::Timestamp {
                seconds: 60,
                nanos: 0,
            }),
            json!({"choiceAt": "1970-01-01T00:01:00Z"}),
        ),
        (
            Choice::ChoiceMask(wkt::FieldMask {
                paths: vec!["a_b".into(), "c".into()],
            }),
            json!({"choiceMask": "aB,c"}),
        ),
        (
            Choice::ChoiceValue(wkt::Value {
                kind: Some(wkt::value::Kind::ListValue(wkt::ListValue {
                    values: vec![wkt::Value {
                        kind: Some(wkt::value::Kind::NullValue(0)),
                    }],
                })),
            }),
            json!({"choiceValue": [null]}),
        ),
        (
            Choice::ChoiceDetail(wkt::Any {
                type_url: "type.googleapis.com/edge.json.v1.Point".into(),
                value: prost::Message::encode_to_vec(&Point { x: 3, y: 0 }).into(),
            }),
            json!({"choiceDetail": {"@type": "type.googleapis.com/edge.json.v1.Point", "x": 3}}),
        ),
    ] {
        let message = Everything {
            choice: Some(choice),
            ..Default::default()
        };
        let json = to_json(&message);
        assert_eq!(json, expected);
        let read = from_json(json);
        assert_eq!(to_json(&read), expected);
        if !matches!(message.choice, Some(Choice::ChoiceRatio(_))) {
            assert_eq!(read, message);
        }
    }
    // A null Value in a oneof is a null Value, not an unset oneof.
    let read = from_json(json!({"choiceValue": null}));
    assert_eq!(
        read.choice,
        Some(Choice::ChoiceValue(wkt::Value {
            kind: Some(wkt::value::Kind::NullValue(0)),
        }))
    );
}

#[test]
fn map_values_are_canonical_too() {
    let message = Everything {
        scores: [("a".to_owned(), f64::INFINITY)].into(),
        deadlines: [(
            7,
            wkt::Timestamp {
                seconds: 0,
                nanos: 1_000,
            },
        )]
        .into(),
        ..Default::default()
    };
    let json = to_json(&message);
    assert_eq!(
        json,
        json!({
            "scores": {"a": "Infinity"},
            "deadlines": {"7": "1970-01-01T00:00:00.000001Z"},
        })
    );
    assert_eq!(from_json(json), message);
}

fn null_value() -> wkt::Value {
    wkt::Value {
        kind: Some(wkt::value::Kind::NullValue(0)),
    }
}

fn number(value: f64) -> wkt::Value {
    wkt::Value {
        kind: Some(wkt::value::Kind::NumberValue(value)),
    }
}

fn text(value: &str) -> wkt::Value {
    wkt::Value {
        kind: Some(wkt::value::Kind::StringValue(value.to_owned())),
    }
}

fn list(values: Vec<wkt::Value>) -> wkt::ListValue {
    wkt::ListValue { values }
}

fn object(fields: Vec<(&str, wkt::Value)>) -> wkt::Struct {
    wkt::Struct {
        fields: fields
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    }
}

/// `message` is written as exactly `expected`, reads back as itself, and the same after a
/// protobuf round trip.
fn assert_canonical(message: &Everything, expected: Json) {
    let json = to_json(message);
    assert_eq!(json, expected);
    assert_eq!(&from_json(json), message);
    let bytes = prost::Message::encode_to_vec(message);
    let decoded: Everything = prost::Message::decode(bytes.as_slice()).unwrap();
    assert_eq!(to_json(&decoded), expected);
}

#[test]
fn repeated_field_masks_are_strings() {
    let message = Everything {
        masks: vec![
            wkt::FieldMask {
                paths: vec!["user.display_name".into(), "photo".into()],
            },
            wkt::FieldMask { paths: vec![] },
        ],
        ..Default::default()
    };
    assert_canonical(&message, json!({"masks": ["user.displayName,photo", ""]}));
    // A path with no lowerCamelCase form is refused both ways, in a list too.
    assert!(serde_json::from_value::<Everything>(json!({"masks": ["a_b"]})).is_err());
    let bad = Everything {
        masks: vec![wkt::FieldMask {
            paths: vec!["a__b".into()],
        }],
        ..Default::default()
    };
    assert!(serde_json::to_value(&bad).is_err());
}

#[test]
fn field_masks_as_map_values_are_strings() {
    let message = Everything {
        mask_map: [(
            "k".to_owned(),
            wkt::FieldMask {
                paths: vec!["a_b".into(), "c".into()],
            },
        )]
        .into(),
        ..Default::default()
    };
    assert_canonical(&message, json!({"maskMap": {"k": "aB,c"}}));
    assert!(serde_json::from_value::<Everything>(json!({"maskMap": {"k": "a_b"}})).is_err());
}

#[test]
fn repeated_values_lists_and_structs_are_plain_json() {
    let message = Everything {
        values: vec![
            number(1.5),
            null_value(),
            text("s"),
            wkt::Value {
                kind: Some(wkt::value::Kind::StructValue(object(vec![(
                    "a",
                    null_value(),
                )]))),
            },
            wkt::Value {
                kind: Some(wkt::value::Kind::ListValue(list(vec![null_value()]))),
            },
        ],
        lists: vec![list(vec![number(0.5), null_value()]), list(vec![])],
        structs: vec![object(vec![("z", null_value())]), object(vec![])],
        ..Default::default()
    };
    assert_canonical(
        &message,
        json!({
            "values": [1.5, null, "s", {"a": null}, [null]],
            "lists": [[0.5, null], []],
            "structs": [{"z": null}, {}],
        }),
    );
    // In a repeated Value, `null` is a null Value; in the other lists it is refused (the
    // mapping allows null elements only for Value).
    let read = from_json(json!({"values": [null]}));
    assert_eq!(read.values, vec![null_value()]);
    for bad in [json!({"lists": [null]}), json!({"structs": [null]})] {
        assert!(
            serde_json::from_value::<Everything>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn values_lists_and_structs_as_map_values_are_plain_json() {
    let message = Everything {
        value_map: [("n".to_owned(), null_value()), ("s".to_owned(), text("x"))].into(),
        list_map: [("k".to_owned(), list(vec![null_value(), number(2.5)]))].into(),
        struct_map: [("k".to_owned(), object(vec![("z", null_value())]))].into(),
        // Integer keys are strings in JSON.
        value_by_number: [(-3, null_value())].into(),
        ..Default::default()
    };
    assert_canonical(
        &message,
        json!({
            "valueMap": {"n": null, "s": "x"},
            "listMap": {"k": [null, 2.5]},
            "structMap": {"k": {"z": null}},
            "valueByNumber": {"-3": null},
        }),
    );
    // In a map of Values, a null value is a null Value.
    let read = from_json(json!({"valueMap": {"n": null}}));
    assert_eq!(read.value_map, [("n".to_owned(), null_value())].into());
}

#[test]
fn anys_as_map_values_use_at_type() {
    let timestamp = wkt::Timestamp {
        seconds: 1,
        nanos: 0,
    };
    let message = Everything {
        any_map: [
            (
                "p".to_owned(),
                wkt::Any {
                    type_url: "type.googleapis.com/edge.json.v1.Point".into(),
                    value: prost::Message::encode_to_vec(&Point { x: 1, y: 0 }).into(),
                },
            ),
            (
                "t".to_owned(),
                wkt::Any {
                    type_url: "type.googleapis.com/google.protobuf.Timestamp".into(),
                    value: prost::Message::encode_to_vec(&timestamp).into(),
                },
            ),
        ]
        .into(),
        ..Default::default()
    };
    assert_canonical(
        &message,
        json!({"anyMap": {
            "p": {"@type": "type.googleapis.com/edge.json.v1.Point", "x": 1},
            "t": {"@type": "type.googleapis.com/google.protobuf.Timestamp", "value": "1970-01-01T00:00:01Z"},
        }}),
    );
}

#[test]
fn integers_bytes_and_enums_in_their_json_forms() {
    let message = Everything {
        big: -9_007_199_254_740_993,
        ubig: u64::MAX,
        data: vec![0xfb, 0xff],
        level: Level::High as i32,
        ..Default::default()
    };
    let json = to_json(&message);
    assert_eq!(json["big"], "-9007199254740993");
    assert_eq!(json["ubig"], "18446744073709551615");
    assert_eq!(json["data"], "+/8=");
    assert_eq!(json["level"], "LEVEL_HIGH");
    assert_eq!(from_json(json), message);
    // Numbers for 64-bit integers, URL-safe base64, and enum numbers are accepted too.
    let read = from_json(json!({"big": 12, "data": "-_8=", "level": 1}));
    assert_eq!((read.big, read.data, read.level), (12, vec![0xfb, 0xff], 1));
}

#[test]
fn an_enum_number_without_a_name_is_written_and_read_as_a_number() {
    // Proto3 enums are open: a number a newer peer sent has no name here, and the mapping
    // writes it as the number (and reads numbers, known or not).
    let message = Everything {
        level: 7,
        levels: vec![Level::High as i32, 9],
        level_map: [("a".to_owned(), 8), ("b".to_owned(), 0)].into(),
        choice: Some(edge::everything::Choice::ChoiceLevel(5)),
        ..Default::default()
    };
    assert_canonical(
        &message,
        json!({
            "level": 7,
            "levels": ["LEVEL_HIGH", 9],
            "levelMap": {"a": 8, "b": "LEVEL_UNSPECIFIED"},
            "choiceLevel": 5,
        }),
    );
    // Known numbers read as themselves and are written by name; unknown names and numbers
    // past 32 bits are still refused.
    assert_eq!(
        to_json(&from_json(json!({"level": 1})))["level"],
        "LEVEL_HIGH"
    );
    for bad in [
        json!({"level": "LEVEL_NOPE"}),
        json!({"levels": [4294967296_i64]}),
        json!({"levelMap": {"a": "NOPE"}}),
    ] {
        assert!(
            serde_json::from_value::<Everything>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn an_enum_alias_name_is_accepted() {
    let read = from_json(json!({"level": "LEVEL_TOP"}));
    assert_eq!(read.level, Level::High as i32);
}

#[test]
fn any_uses_at_type_with_the_message_fields_inline() {
    let point = Point { x: 1, y: 2 };
    let message = Everything {
        detail: Some(wkt::Any {
            type_url: "type.googleapis.com/edge.json.v1.Point".into(),
            value: prost::Message::encode_to_vec(&point).into(),
        }),
        ..Default::default()
    };
    let json = to_json(&message);
    assert_eq!(
        json["detail"],
        json!({"@type": "type.googleapis.com/edge.json.v1.Point", "x": 1, "y": 2})
    );
    assert_eq!(from_json(json), message);
    // A well-known type inside Any is under "value".
    let read = from_json(json!({
        "detail": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "2s"}
    }));
    let any = read.detail.unwrap();
    assert_eq!(any.type_url, "type.googleapis.com/google.protobuf.Duration");
    let duration: wkt::Duration = prost::Message::decode(any.value.as_ref()).unwrap();
    assert_eq!(duration.seconds, 2);

    // Repeated, with a Timestamp (its own JSON form, with Z) and Empty (an object of no
    // fields) inside.
    let timestamp = wkt::Timestamp {
        seconds: 1,
        nanos: 0,
    };
    let message = Everything {
        details: vec![
            wkt::Any {
                type_url: "type.googleapis.com/google.protobuf.Timestamp".into(),
                value: prost::Message::encode_to_vec(&timestamp).into(),
            },
            wkt::Any {
                type_url: "type.googleapis.com/google.protobuf.Empty".into(),
                value: Default::default(),
            },
        ],
        ..Default::default()
    };
    let json = to_json(&message);
    assert_eq!(
        json["details"],
        json!([
            {"@type": "type.googleapis.com/google.protobuf.Timestamp", "value": "1970-01-01T00:00:01Z"},
            {"@type": "type.googleapis.com/google.protobuf.Empty"},
        ])
    );
    assert_eq!(from_json(json), message);
}

#[test]
fn an_any_of_an_unknown_type_is_an_error_both_ways() {
    let unknown = json!({"detail": {"@type": "type.googleapis.com/other.Thing", "a": 1}});
    let error = serde_json::from_value::<Everything>(unknown).unwrap_err();
    assert!(error.to_string().contains("other.Thing"), "{error}");
    let untyped = json!({"detail": {"x": 1}});
    let error = serde_json::from_value::<Everything>(untyped).unwrap_err();
    assert!(error.to_string().contains("@type"), "{error}");
    let message = Everything {
        detail: Some(wkt::Any {
            type_url: "type.googleapis.com/other.Thing".into(),
            value: Default::default(),
        }),
        ..Default::default()
    };
    assert!(serde_json::to_value(&message).is_err());
    // Bytes that are not the named message are an error too, not a panic.
    let garbage = Everything {
        detail: Some(wkt::Any {
            type_url: "type.googleapis.com/edge.json.v1.Point".into(),
            value: vec![0xff, 0xff, 0xff].into(),
        }),
        ..Default::default()
    };
    assert!(serde_json::to_value(&garbage).is_err());
}

#[test]
fn an_any_outside_the_registry_says_so_and_names_its_type_url() {
    let expected = "Any holds \"type.googleapis.com/other.Thing\": other.Thing is not in the \
                    Any registry of package edge.json.v1 (the message types generated for it \
                    and the packages it imports)";
    // Read, alone, repeated and as a map value.
    for json in [
        json!({"detail": {"@type": "type.googleapis.com/other.Thing", "a": 1}}),
        json!({"details": [{"@type": "type.googleapis.com/other.Thing"}]}),
        json!({"anyMap": {"k": {"@type": "type.googleapis.com/other.Thing"}}}),
    ] {
        let error = serde_json::from_value::<Everything>(json).unwrap_err();
        assert_eq!(error.to_string(), expected);
    }
    // Written.
    let message = Everything {
        any_map: [(
            "k".to_owned(),
            wkt::Any {
                type_url: "type.googleapis.com/other.Thing".into(),
                value: Default::default(),
            },
        )]
        .into(),
        ..Default::default()
    };
    let error = serde_json::to_value(&message).unwrap_err();
    assert_eq!(error.to_string(), expected);
}

/// `json` read, and its protobuf form decoded back to the same message.
fn read_and_decode(json: &str) -> Result<(), serde_json::Error> {
    let read: Everything = serde_json::from_str(json)?;
    let bytes = prost::Message::encode_to_vec(&read);
    let decoded: Everything = prost::Message::decode(bytes.as_slice())
        .unwrap_or_else(|error| panic!("{json}: read, but its protobuf form is refused: {error}"));
    assert_eq!(decoded, read);
    Ok(())
}

#[test]
fn values_nested_past_protobufs_recursion_limit_are_refused() {
    // Each object in a Struct costs three message levels in protobuf (Struct, its map entry,
    // Value), each list two; decoders stop at 100. 32 lists or objects read, and their
    // protobuf form decodes, in each place a Value can be; 33 are refused when read (50 were
    // read, and then their protobuf form refused).
    let objects = |depth: usize| format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let lists = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    for (depth, accepted) in [(32, true), (33, false), (50, false)] {
        let (objects, lists) = (objects(depth), lists(depth));
        for json in [
            format!("{{\"value\":{objects}}}"),
            format!("{{\"value\":{lists}}}"),
            format!("{{\"attributes\":{objects}}}"),
            format!("{{\"list\":{lists}}}"),
            format!("{{\"valueMap\":{{\"k\":{objects}}}}}"),
            format!("{{\"valueMap\":{{\"k\":{lists}}}}}"),
            format!("{{\"values\":[{objects}]}}"),
            format!("{{\"values\":[{lists}]}}"),
            format!("{{\"structMap\":{{\"k\":{objects}}}}}"),
            format!("{{\"lists\":[{lists}]}}"),
            format!("{{\"choiceValue\":{objects}}}"),
        ] {
            match read_and_decode(&json) {
                Ok(()) => assert!(accepted, "{json}"),
                Err(error) => {
                    assert!(!accepted, "{json}: {error}");
                    assert!(
                        error
                            .to_string()
                            .starts_with("google.protobuf.Value nested more than 32"),
                        "{error}"
                    );
                }
            }
        }
    }
}

struct Reflector;

impl edge::Mirror for Reflector {
    async fn reflect(&self, request: Everything) -> Result<Everything, Status> {
        Ok(request)
    }
}

#[tokio::test]
async fn special_values_cross_a_real_server_in_json() {
    let server = prpc::Server::builder()
        .add_service(edge::MirrorServer::new(Reflector))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().socket_addr().unwrap();
    tokio::spawn(server.serve());
    let client = edge::MirrorClient::connect(addr)
        .await
        .unwrap()
        .with_format(Format::Json);
    let message = Everything {
        ratio: f64::NAN,
        weight: f32::NEG_INFINITY,
        at: Some(wkt::Timestamp {
            seconds: 1,
            nanos: 0,
        }),
        mask: Some(wkt::FieldMask {
            paths: vec!["a_b".into()],
        }),
        ..Default::default()
    };
    let reply = client.reflect(message.clone()).await.unwrap();
    assert!(reply.ratio.is_nan());
    assert_eq!(reply.weight, f32::NEG_INFINITY);
    assert_eq!(reply.at, message.at);
    assert_eq!(reply.mask, message.mask);
}
