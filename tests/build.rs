//! Compiles the `.proto` files of `proto/` for the `proto_*` integration tests, with prpc-build
//! as a user's build script would: no protoc anywhere.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The library API, with the JSON mapping and a few prost-build options.
    prpc_build::configure()
        .json(true)
        .bytes([".acme.library.v1.Book.cover"])
        .btree_map([".acme.library.v1.Book.labels"])
        .type_attribute(".acme.common.v1.Money", "#[derive(PartialOrd)]")
        .compile_protos(
            &[
                "../proto/acme/library/v1/library.proto",
                "../proto/acme/library/v1/admin.proto",
                "../proto/echo.proto",
            ],
            &["../proto"],
        )?;

    // gRPC's route guide, streaming in all three shapes, with the JSON mapping; gRPC's health
    // service (a server stream), protobuf only.
    prpc_build::configure()
        .json(true)
        .compile_protos(&["../proto/routeguide/route_guide.proto"], &["../proto"])?;
    prpc_build::compile_protos(&["../proto/grpc/health/v1/health.proto"], &["../proto"])?;

    // The rest of the third-party set (proto/README.md): gRPC's hello world, googleapis'
    // `google.type` (a package named with a Rust keyword) and OpenTelemetry's trace service
    // with its package tree, with the JSON mapping, all nested in one module tree. The
    // library (src/lib.rs) includes it, so its doctests run on the generated docs.
    prpc_build::configure()
        .json(true)
        .include_file("third_party.rs")
        .compile_protos(
            &[
                "../proto/helloworld/helloworld.proto",
                "../proto/google/type/color.proto",
                "../proto/google/type/date.proto",
                "../proto/google/type/dayofweek.proto",
                "../proto/google/type/latlng.proto",
                "../proto/google/type/money.proto",
                "../proto/opentelemetry/proto/collector/trace/v1/trace_service.proto",
            ],
            &["../proto"],
        )?;

    // etcd's KV, Watch and Lease services, with their google.api.http annotations, as one
    // module tree in a directory of its own.
    prpc_build::configure()
        .json(true)
        .out_dir(PathBuf::from(std::env::var("OUT_DIR")?).join("etcd"))
        .include_file("etcd.rs")
        .compile_protos(&["../proto/etcd/api/etcdserverpb/rpc.proto"], &["../proto"])?;

    // prpc's edge files: Rust keywords as names, a file without a package, every well-known
    // type; with JSON.
    prpc_build::configure().json(true).compile_protos(
        &[
            "../proto/edge/keywords.proto",
            "../proto/edge/no_package.proto",
            "../proto/edge/json.proto",
        ],
        &["../proto"],
    )?;

    // What prost-build and tonic-build users pass through: acme.common.v1 from the crate
    // (`crate::acme_common`, the package generated above), `bytes::Bytes`, attributes, the
    // embedded descriptor set; in a directory of its own.
    prpc_build::configure()
        .json(true)
        .out_dir(PathBuf::from(std::env::var("OUT_DIR")?).join("shop"))
        .extern_path(".acme.common.v1", "crate::acme_common")
        .bytes(["."])
        .type_attribute(".edge.shop.v1.Quote", "#[derive(PartialOrd)]")
        .field_attribute(
            ".edge.shop.v1.Quote.sku",
            "#[doc(alias = \"stock_keeping_unit\")]",
        )
        .embed_file_descriptor_set(true)
        .compile_protos(&["../proto/edge/shop.proto"], &["../proto"])?;

    // The echo service again, protobuf only and without a client, in a directory of its own.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?).join("server_only");
    prpc_build::configure()
        .build_client(false)
        .out_dir(out_dir)
        .compile_protos(&["../proto/echo.proto"], &["../proto"])?;
    Ok(())
}
