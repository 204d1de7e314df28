//! What is generated: service traits, streaming, JSON, module trees, options passed through.

use super::*;

const ECHO: &str = r#"syntax = "proto3";

// The echo package.
package echo.v1;

import "google/protobuf/empty.proto";
import "google/protobuf/timestamp.proto";

// Says things back.
service Echo {
  // Returns the text.
  rpc Say(SayRequest) returns (SayReply) {
    option idempotency_level = IDEMPOTENT;
  }
  // The server's clock.
  rpc Now(google.protobuf.Empty) returns (google.protobuf.Timestamp);
  // Named like a client item.
  rpc Connect(SayRequest) returns (google.protobuf.Empty);
}

message SayRequest {
  string text = 1;
  map<string, string> labels = 2;
  map<int32, int32> counts = 3;
  Nested nested = 4;

  message Nested {
    map<string, int64> totals = 1;
  }
}

message SayReply {
  string text = 1;
  map<string, string> labels = 2;
}
"#;

const CHAT: &str = r#"syntax = "proto3";

package chat.v1;

import "google/protobuf/empty.proto";

service Chat {
  rpc Say(Line) returns (Line);
  // Lines as they are said.
  rpc Listen(Room) returns (stream Line) {
    option idempotency_level = NO_SIDE_EFFECTS;
  }
  rpc Upload(stream Line) returns (Summary);
  rpc Talk(stream Line) returns (stream Line);
  rpc Ping(stream google.protobuf.Empty) returns (stream google.protobuf.Empty);
}

message Room { string name = 1; }
message Line { string text = 1; }
message Summary { int32 lines = 1; }
"#;

#[test]
fn streaming_methods_take_and_return_streams() {
    let workspace = Workspace::new(&[("chat.proto", CHAT)]);
    workspace.compile(&["chat.proto"]).unwrap();
    let code = workspace.generated("chat.v1");
    let squeezed = squeeze(&code);
    // Multi-line signatures as the formatter writes them: a comma after the last argument.
    for expected in [
        "async fn say(&self, request: Line) -> ::core::result::Result<Line, ::prpc::Status>;",
        "/// Lines as they are said.",
        // Never `idempotent`: a stream is not retried.
        r#"#[prpc(name = "Listen")]"#,
        "async fn listen(&self, request: Room,) \
         -> ::core::result::Result<::prpc::Streaming<Line>, ::prpc::Status>;",
        "async fn upload(&self, requests: ::prpc::Streaming<Line>,) \
         -> ::core::result::Result<Summary, ::prpc::Status>;",
        "async fn talk(&self, requests: ::prpc::Streaming<Line>,) \
         -> ::core::result::Result<::prpc::Streaming<Line>, ::prpc::Status>;",
        // Empty in a stream is `()`, as it is for a unary reply.
        "async fn ping(&self, requests: ::prpc::Streaming<()>,) \
         -> ::core::result::Result<::prpc::Streaming<()>, ::prpc::Status>;",
    ] {
        assert!(
            squeezed.contains(&squeeze(expected)),
            "missing {expected:?} in\n{code}"
        );
    }

    // Messages alone (no client, no server): the service generates nothing.
    workspace
        .compile_with(
            Config::new().build_client(false).build_server(false),
            &["chat.proto"],
        )
        .unwrap();
    let code = workspace.generated("chat.v1");
    assert!(code.contains("pub struct Line"), "{code}");
    assert!(!code.contains("Streaming"), "{code}");
}

#[test]
fn services_become_traits_under_the_service_macro() {
    let workspace = Workspace::new(&[("echo.proto", ECHO)]);
    workspace.compile(&["echo.proto"]).unwrap();
    let code = workspace.generated("echo.v1");
    let squeezed = squeeze(&code);
    for expected in [
        r#"#[::prpc::service(protobuf, name = "echo.v1.Echo")]"#,
        "/// Says things back.",
        "pub trait Echo {",
        "/// Returns the text.",
        r#"#[prpc(name = "Say", idempotent)]"#,
        "async fn say(",
        "request: SayRequest,",
        "::core::result::Result<SayReply, ::prpc::Status>",
        // Empty: no argument; the well-known types from prost-types.
        "async fn now(&self,) -> ::core::result::Result<::prost_types::Timestamp, ::prpc::Status>",
        r#"#[prpc(name = "Connect")]"#,
        "async fn connect_(",
        "::core::result::Result<(), ::prpc::Status>",
    ] {
        assert!(
            squeezed.contains(&squeeze(expected)),
            "missing {expected:?} in\n{code}"
        );
    }
    // Plain `//` comments would be dropped by prost-build's formatter: none are relied on.
    assert!(!code.contains("serde"), "no JSON unless asked for");
}

#[test]
fn sides_and_json_are_options_of_the_macro() {
    let workspace = Workspace::new(&[("echo.proto", ECHO)]);
    workspace
        .compile_with(
            Config::new().json(true).build_server(false),
            &["echo.proto"],
        )
        .unwrap();
    let code = workspace.generated("echo.v1");
    assert!(
        code.contains(
            r#"#[::prpc::service(protobuf, json, name = "echo.v1.Echo", server = false)]"#
        ),
        "{code}"
    );
    assert!(code.contains("::pbjson_types::Timestamp"), "{code}");
    assert!(
        code.contains("impl serde::Serialize for SayRequest"),
        "{code}"
    );
    assert!(
        code.contains("impl<'de> serde::Deserialize<'de> for SayReply"),
        "{code}"
    );

    workspace
        .compile_with(
            Config::new().build_server(false).build_client(false),
            &["echo.proto"],
        )
        .unwrap();
    let code = workspace.generated("echo.v1");
    assert!(!code.contains("prpc::service"), "{code}");
    assert!(code.contains("pub struct SayRequest"), "{code}");
}

#[test]
fn btree_maps_agree_between_messages_and_their_json_mapping() {
    let workspace = Workspace::new(&[("echo.proto", ECHO)]);
    // One field chosen: with JSON, its whole message (and those nested in it) is.
    workspace
        .compile_with(
            Config::new()
                .json(true)
                .btree_map([".echo.v1.SayRequest.labels"]),
            &["echo.proto"],
        )
        .unwrap();
    let code = workspace.generated("echo.v1");
    let request = &code[code.find("pub struct SayRequest").unwrap()..];
    let request = &request[..request.find("pub struct SayReply").unwrap()];
    assert_eq!(request.matches("BTreeMap").count(), 3, "{request}");
    let reply = &code[code.find("pub struct SayReply").unwrap()..];
    let reply = &reply[..reply.find('}').unwrap()];
    assert!(
        reply.contains("HashMap") && !reply.contains("BTreeMap"),
        "{reply}"
    );

    // Without JSON, prost-build's own per-field choice.
    workspace
        .compile_with(
            Config::new().btree_map([".echo.v1.SayRequest.labels"]),
            &["echo.proto"],
        )
        .unwrap();
    let code = workspace.generated("echo.v1");
    assert_eq!(code.matches("BTreeMap").count(), 1, "{code}");
}

#[test]
fn an_unchanged_build_leaves_the_output_untouched() {
    let workspace = Workspace::new(&[("echo.proto", ECHO)]);
    workspace.compile(&["echo.proto"]).unwrap();
    let path = workspace.out().join("echo.v1.rs");
    let before = fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    workspace.compile(&["echo.proto"]).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before);
}

/// Every `.proto` file under `dir`: the whole of proto/, third-party set included.
fn all_protos(dir: &Path) -> Vec<PathBuf> {
    let mut protos = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            protos.extend(all_protos(&path));
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            protos.push(path);
        }
    }
    protos.sort();
    protos
}

/// Set in the child process of [`the_build_needs_no_protoc`].
const NO_PROTOC_CHILD: &str = "PRPC_BUILD_TEST_NO_PROTOC_CHILD";

/// Runs the real proto/ files through the build in a child process whose environment is empty
/// but for an empty `PATH`: no `protoc` to find, no `PROTOC` to read.
#[test]
fn the_build_needs_no_protoc() {
    let proto_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    if std::env::var_os(NO_PROTOC_CHILD).is_some() {
        assert!(std::env::var_os("PROTOC").is_none());
        let out = tempfile::tempdir().unwrap();
        for json in [false, true] {
            Config::new()
                .json(json)
                .out_dir(out.path())
                .emit_rerun_if_changed(false)
                .compile_protos(&all_protos(&proto_dir), &[&proto_dir])
                .unwrap();
            let code = fs::read_to_string(out.path().join("acme.library.v1.rs")).unwrap();
            assert!(code.contains("pub trait LibraryService"));
            let code = fs::read_to_string(out.path().join("routeguide.rs")).unwrap();
            assert!(code.contains("pub trait RouteGuide"));
            let code =
                fs::read_to_string(out.path().join("opentelemetry.proto.collector.trace.v1.rs"))
                    .unwrap();
            assert!(code.contains("pub trait TraceService"));
        }
        return;
    }
    let empty_path = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::codegen::the_build_needs_no_protoc",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env("PATH", empty_path.path())
        .env(NO_PROTOC_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

const GOOGLE_TYPE: &str = r#"syntax = "proto3";

package google.type;

// A date.
message Date {
  int32 year = 1;
  int32 month = 2;
  int32 day = 3;
}
"#;

const EVENTS: &str = r#"syntax = "proto3";

package acme.events.v1;

import "google/type/date.proto";

message Event {
  google.type.Date on = 1;
}

service Events {
  rpc Next(Event) returns (Event);
}
"#;

#[test]
fn a_keyword_package_is_written_under_its_proto_name_with_its_json() {
    let workspace = Workspace::new(&[("google/type/date.proto", GOOGLE_TYPE)]);
    workspace
        .compile_with(Config::new().json(true), &["google/type/date.proto"])
        .unwrap();
    // `include_proto!("google.type")` reads this file: messages and their JSON mapping.
    let code = workspace.generated("google.type");
    assert!(code.contains("pub struct Date"), "{code}");
    assert!(code.contains("impl serde::Serialize for Date"), "{code}");
    let files: Vec<String> = fs::read_dir(workspace.out())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["google.type.rs"]);
}

#[test]
fn the_include_file_nests_every_package() {
    let workspace = Workspace::new(&[
        ("google/type/date.proto", GOOGLE_TYPE),
        ("acme/events/v1/events.proto", EVENTS),
    ]);
    workspace
        .compile_with(
            Config::new().include_file("protos.rs"),
            &["acme/events/v1/events.proto"],
        )
        .unwrap();
    let tree = fs::read_to_string(workspace.out().join("protos.rs")).unwrap();
    assert_eq!(
        squeeze(&tree),
        squeeze(
            "// Every package of this build as nested modules. Generated by prpc-build.
            pub mod acme { pub mod events { pub mod v1 { include!(\"acme.events.v1.rs\"); } } }
            pub mod google { pub mod r#type { include!(\"google.type.rs\"); } }"
        )
    );
}

#[test]
fn a_service_named_self_becomes_self_service() {
    let workspace = Workspace::new(&[(
        "me.proto",
        "syntax = \"proto3\";\npackage me;\n\nmessage Ping {}\n\nservice Self {\n  rpc Check(Ping) returns (Ping);\n}\n",
    )]);
    workspace.compile(&["me.proto"]).unwrap();
    let code = squeeze(&workspace.generated("me"));
    // The macro derives SelfServiceServer and SelfServiceClient: camel case, no warning.
    assert!(code.contains(&squeeze("pub trait SelfService {")), "{code}");
    assert!(code.contains(&squeeze("name = \"me.Self\"")), "{code}");
    assert!(!code.contains("Self_"), "{code}");
}

/// With JSON on, the edge files of proto/: a file without a package (pbjson-build panicked
/// on it), fields and enum values named with Rust keywords (its code said `self.gen` and
/// `Kind::Self` where prost-build's types have `r#gen` and `Self_`). The tests crate compiles
/// and serves the same files; here, the generated text.
#[test]
fn json_builds_for_keyword_names_and_files_without_a_package() {
    let proto_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let out = tempfile::tempdir().unwrap();
    Config::new()
        .json(true)
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_protos(
            &[
                proto_dir.join("edge/keywords.proto"),
                proto_dir.join("edge/no_package.proto"),
            ],
            &[&proto_dir],
        )
        .unwrap();
    let code = fs::read_to_string(out.path().join("edge.v1.rs")).unwrap();
    assert!(code.contains("self.r#gen"), "{code}");
    assert!(!code.contains("self.gen"), "{code}");
    assert!(code.contains("Ok(Kind::Self_)"), "{code}");
    assert!(!code.contains("Kind::Self)"), "{code}");
    let code = fs::read_to_string(out.path().join("_.rs")).unwrap();
    assert!(code.contains("impl serde::Serialize for Note"), "{code}");
    assert!(!code.contains("prpc_build_no_package"), "{code}");
}

#[test]
fn attributes_extern_paths_and_the_descriptor_set_pass_through() {
    let workspace = Workspace::new(&[
        ("google/type/date.proto", GOOGLE_TYPE),
        ("acme/events/v1/events.proto", EVENTS),
    ]);
    workspace
        .compile_with(
            Config::new()
                .extern_path(".google.type", "::googleapis::gtype")
                .field_attribute(".acme.events.v1.Event.on", "#[doc(alias = \"date\")]")
                .message_attribute(".acme.events.v1.Event", "#[derive(PartialOrd)]")
                .embed_file_descriptor_set(true),
            &["acme/events/v1/events.proto"],
        )
        .unwrap();
    let code = squeeze(&workspace.generated("acme.events.v1"));
    assert!(
        code.contains(&squeeze(
            "#[doc(alias = \"date\")] pub on: ::core::option::Option<::googleapis::gtype::Date>,"
        )),
        "{code}"
    );
    assert!(code.contains(&squeeze("#[derive(PartialOrd)]")), "{code}");
    assert!(
        code.contains(&squeeze(
            "pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(\"acme.events.v1.fds.bin\");"
        )),
        "{code}"
    );
    // The extern package is not generated.
    assert!(!workspace.out().join("google.type.rs").exists());
    let set = fs::read(workspace.out().join("acme.events.v1.fds.bin")).unwrap();
    let set = <prost_types::FileDescriptorSet as prost::Message>::decode(set.as_slice()).unwrap();
    let names: Vec<&str> = set.file.iter().map(|file| file.name()).collect();
    assert_eq!(
        names,
        ["google/type/date.proto", "acme/events/v1/events.proto"]
    );
}

#[test]
fn the_any_registry_holds_the_package_and_its_imports() {
    let events = EVENTS.replace(
        "import \"google/type/date.proto\";",
        "import \"google/type/date.proto\";\nimport \"google/protobuf/any.proto\";",
    );
    let events = events.replace(
        "google.type.Date on = 1;",
        "google.type.Date on = 1;\n  google.protobuf.Any detail = 2;\n  message Inner {}",
    );
    let workspace = Workspace::new(&[
        ("google/type/date.proto", GOOGLE_TYPE),
        ("acme/events/v1/events.proto", &events),
    ]);
    workspace
        .compile_with(Config::new().json(true), &["acme/events/v1/events.proto"])
        .unwrap();
    let code = squeeze(&workspace.generated("acme.events.v1"));
    for arm in [
        "\"acme.events.v1.Event\" => Some((message_to_json::<super::Event>,",
        "\"acme.events.v1.Event.Inner\" => Some((message_to_json::<super::event::Inner>,",
        // From the adapters' module, up through acme::events::v1 to the crate's tree root.
        "\"google.type.Date\" => Some((message_to_json::<super::super::super::super::google::r#type::Date>,",
        "\"google.protobuf.Empty\" => Some((message_to_json::<::pbjson_types::Empty>,",
    ] {
        assert!(code.contains(&squeeze(arm)), "{arm} in {code}");
    }
    assert!(
        code.contains(&squeeze("&__prpc_json_any::Any(v)")),
        "{code}"
    );
}
