//! Generates the proto_echo example's service from proto/echo.proto: pure Rust, no protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `prpc_build::compile_protos(&["../proto/echo.proto"], &["../proto"])` is the whole call
    // for protobuf alone; the JSON mapping lets the example also call in JSON.
    prpc_build::configure()
        .json(true)
        .compile_protos(&["../proto/echo.proto"], &["../proto"])?;
    Ok(())
}
