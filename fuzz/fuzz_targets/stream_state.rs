//! One connection's stream state machine (`StreamSet`), driven directly: streams opened as
//! a server or a client, the peer's messages (within its credit or not), credit and end
//! frames, consumers taking messages or letting go, streams ended. No socket and no runtime,
//! so it runs tens of thousands of inputs a second where `stream_frames` runs a few hundred.
//! The operations and the invariants checked after each are in `prpc/src/stream/fuzz.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    prpc::__fuzz::drive(input);
});
