//! Arbitrary bytes as the answer to prpc-http's `CONNECT` (what `HttpConnect` reads from a
//! proxy or a prpc server's port), through `prpc_http::__fuzz::fuzz_response_head` (feature
//! `fuzzing`). The first input byte chooses the size of the reads the rest arrives in (1 to
//! 256 bytes).
//!
//! Checks, besides "never panics":
//! - read whole or in pieces, the same response head, or the same error;
//! - a head is never longer than the input nor than the 8 KiB limit, and its own bytes parse
//!   to the same head;
//! - the bytes past the head are kept intact for the tunnel;
//! - an input that ends within a head is reported as an early end, after all of its bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prpc_http::__fuzz::fuzz_response_head(data);
});
