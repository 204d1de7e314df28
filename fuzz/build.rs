//! The messages of proto/edge/json.proto (every well-known type and JSON special value), with
//! prpc-build's JSON mapping, for the `proto_json` target. Messages only: no services.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    prpc_build::configure()
        .json(true)
        .build_client(false)
        .build_server(false)
        .compile_protos(&["../proto/edge/json.proto"], &["../proto"])?;
    Ok(())
}
