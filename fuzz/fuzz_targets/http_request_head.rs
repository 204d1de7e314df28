//! Arbitrary bytes through prpc-http's check of a connection's first request head (the one
//! prpc-http reads itself before hyper serves the connection), with limits of 16 KiB and 64
//! header lines.
//!
//! Checks, besides "never panics": a whole head's length is within the input and the limit;
//! reading on never changes an answer: the head found in a prefix of the input is the head
//! of the whole input, and a prefix refused is refused whole.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prpc_http::__fuzz::check_request_head;

fuzz_target!(|data: &[u8]| {
    let [cut, rest @ ..] = data else {
        return;
    };
    let whole = check_request_head(rest);
    if let Ok(Some(length)) = whole {
        assert!(length <= rest.len() && length <= 16 * 1024);
    }
    let cut = usize::from(*cut).min(rest.len());
    match check_request_head(&rest[..cut]) {
        Ok(Some(length)) => assert_eq!(whole, Ok(Some(length))),
        Err(status) => assert_eq!(whole, Err(status)),
        Ok(None) => {}
    }
});
