//! Arbitrary bodies decoded as a `#[prpc::service]` byte string (`Bytes` and `Vec<u8>`), in
//! MessagePack or JSON as the first input byte chooses: bin, base64 text, or the array of
//! integers of older peers.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prpc::{BodyError, Format};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = if selector & 1 == 0 {
        Format::MsgPack
    } else {
        Format::Json
    };
    let body = Bytes::copy_from_slice(body);
    match prpc::__fuzz::decode_byte_string(format, &body) {
        Ok((shared, owned)) => {
            // Both target types read the same bytes, never more than the body could hold.
            assert_eq!(&shared[..], &owned[..], "{format}");
            assert!(
                shared.len() <= body.len(),
                "{format}: {} > {}",
                shared.len(),
                body.len()
            );
        }
        Err(BodyError::Decode { .. }) => {}
        Err(other) => panic!("{format}: unexpected error {other}"),
    }
});
