//! Arbitrary bodies through every codec's bounded decompression, and arbitrary plain bodies
//! through compress then decompress. The first input byte chooses the limit (0 to 65,280
//! bytes, in steps of 256), so small inputs that inflate far past it are common.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prpc::{BodyError, Compression};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let limit = usize::from(selector) * 256;
    for compression in Compression::ALL {
        // As received from the network: a typed error or at most `limit` bytes.
        match compression.decompress(body, limit) {
            Ok(plain) => assert!(
                plain.len() <= limit,
                "{compression}: {} > {limit}",
                plain.len()
            ),
            Err(BodyError::Corrupt { .. } | BodyError::TooLarge { .. }) => {}
            Err(other) => panic!("{compression}: unexpected error {other}"),
        }

        // As sent: whatever the codec makes of a body comes back whole within its own size,
        // and is refused one byte under it.
        let packed = compression.compress(body).expect("compression cannot fail");
        let plain = compression
            .decompress(&packed, body.len())
            .unwrap_or_else(|error| panic!("{compression}: round trip failed: {error}"));
        assert_eq!(
            &plain[..],
            body,
            "{compression}: round trip changed the body"
        );
        if let Some(under) = body.len().checked_sub(1) {
            let refused = compression.decompress(&packed, under);
            assert!(
                matches!(refused, Err(BodyError::TooLarge { .. })),
                "{compression}: {} bytes decompressed under a limit of {under}: {refused:?}",
                body.len()
            );
        }
    }
});
