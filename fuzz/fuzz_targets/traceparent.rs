//! Arbitrary bytes as a call's `traceparent` header, through `TraceContext::parse`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prpc::trace::TraceContext;

fuzz_target!(|data: &[u8]| {
    let Some(context) = TraceContext::parse(data) else {
        return;
    };
    // Only a valid header: lowercase hex, no zero ids, not version ff.
    assert!(context.trace_id != 0 && context.parent_id != 0);
    assert!(data.len() >= 55 && &data[..2] != b"ff");
    let header = context.to_header();
    // Version 00 is exactly its own bytes again; a later version is sent as 00 with the
    // same first fields.
    if data.starts_with(b"00") {
        assert_eq!(&header[..], data);
    } else {
        assert_eq!(&header[2..], &data[2..55]);
    }
    assert_eq!(TraceContext::parse(&header), Some(context));
    assert_eq!(context.to_string().as_bytes(), &header[..]);
});
