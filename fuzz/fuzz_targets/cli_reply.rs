//! Arbitrary bytes as a server's reply (or a typed error's value) that `prpc call` shows as
//! JSON: decoded through the CLI's `AsJson` (prpc-cli/src/transcode.rs, included by path: the
//! CLI is a binary) in MessagePack or JSON, as the first input byte chooses.

#![no_main]

#[allow(dead_code)]
#[path = "../../prpc-cli/src/transcode.rs"]
mod transcode;

use libfuzzer_sys::fuzz_target;
use prpc::Format;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = if selector & 1 == 0 {
        Format::MsgPack
    } else {
        Format::Json
    };
    let shown = format.decode::<transcode::AsJson>(body);
    // Where serde_json's own `Value` reads the body (no byte strings, string keys only), the
    // CLI shows exactly that value; but for a MessagePack `bin` key, which `Value` reads as
    // its UTF-8 text and the CLI as base64, as it shows every byte string (so bodies with a
    // byte that may be a `bin` marker are left out).
    let bin = format == Format::MsgPack && body.iter().any(|b| (0xc4..=0xc6).contains(b));
    if let (false, Ok(value)) = (bin, format.decode::<Value>(body)) {
        let shown = shown.as_ref().map(|shown| &shown.0);
        assert_eq!(shown.ok(), Some(&value), "{format}");
    }
    if let Ok(transcode::AsJson(value)) = shown {
        // What is shown is JSON: printed, it reads back (floats to within serde_json's
        // parsing, which is not exact without its `float_roundtrip` feature), or is nested
        // deeper than serde_json reads (128; MessagePack allows 1,024).
        let text = serde_json::to_string(&value).unwrap();
        match serde_json::from_str::<Value>(&text) {
            Ok(again) => {
                assert_eq!(std::mem::discriminant(&again), std::mem::discriminant(&value))
            }
            Err(error) => assert!(error.to_string().starts_with("recursion limit"), "{error}"),
        }
    }
});
