//! Generates tonic's stubs for `tonic_echo` from `proto/echo.proto` and for `tonic_stream`
//! from `proto/stream.proto`. protox parses the files, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/echo.proto");
    println!("cargo:rerun-if-changed=proto/stream.proto");
    let descriptors = protox::compile(["proto/echo.proto", "proto/stream.proto"], ["proto"])?;
    tonic_prost_build::configure()
        // `bytes` fields as `bytes::Bytes`: decoding slices the buffer instead of copying.
        .bytes(".")
        .compile_fds(descriptors)?;
    Ok(())
}
