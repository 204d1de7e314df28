//! Benchmarks for prpc: criterion micro benchmarks (`benches/`), the peer comparison
//! (`compare.sh`), which runs the same echo service in prpc, tarpc, tonic and a raw framed
//! baseline (`src/bin/*_echo.rs`), and the stream benchmarks (`stream.sh`), the same stream
//! service in prpc, tonic and a raw framed baseline (`src/bin/*_stream.rs`).
//!
//! This library is what those programs share so that they measure identically: the
//! command line ([`options`]), the echo client's load loop and its one-line report
//! ([`driver`]), the stream programs' scenarios and report ([`streams`]), the raw baselines'
//! framing ([`raw_frames`]), and the process and socket counters behind the CPU and
//! bytes-per-call figures ([`counters`]).

pub mod counters;
pub mod driver;
pub mod options;
pub mod raw_frames;
pub mod record;
pub mod streams;
