//! The whole pipeline on `.proto` files written to a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{Config, Error};

/// A temporary directory with `proto/` (the files) and `out/` (the generated code).
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(files: &[(&str, &str)]) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in files {
            let path = dir.path().join("proto").join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }
        Workspace { dir }
    }

    fn proto(&self, name: &str) -> PathBuf {
        self.dir.path().join("proto").join(name)
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn compile_with(&self, config: Config, protos: &[&str]) -> Result<(), Error> {
        let protos: Vec<PathBuf> = protos.iter().map(|name| self.proto(name)).collect();
        config
            .out_dir(self.out())
            .emit_rerun_if_changed(false)
            .compile_protos(&protos, &[self.dir.path().join("proto")])
    }

    fn compile(&self, protos: &[&str]) -> Result<(), Error> {
        self.compile_with(Config::new(), protos)
    }

    fn generated(&self, package: &str) -> String {
        fs::read_to_string(self.out().join(format!("{package}.rs"))).unwrap()
    }
}

/// The text without whitespace, to compare code whatever the formatter did with it.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect()
}

/// Asserts the error is at `file:line:column` and its message has `reason`.
fn assert_located(error: &Error, file: &Path, line: usize, column: usize, reason: &str) {
    let message = error.to_string();
    let expected = format!("{}:{line}:{column}: ", file.display());
    assert!(
        message.starts_with(&expected),
        "{message:?} should start with {expected:?}"
    );
    assert!(
        message.contains(reason),
        "{message:?} should contain {reason:?}"
    );
    let location = error.location().expect("a location");
    assert_eq!(location.file, file);
    assert_eq!((location.line, location.column), (Some(line), Some(column)));
}

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

#[test]
fn a_syntax_error_names_the_file_line_and_reason() {
    let workspace = Workspace::new(&[(
        "bad.proto",
        "syntax = \"proto3\";\npackage bad;\n\nmessage Broken {\n  string name = 1\n  int32 id = 2;\n}\n",
    )]);
    let error = workspace.compile(&["bad.proto"]).unwrap_err();
    assert!(matches!(error, Error::Invalid { .. }), "{error:?}");
    assert_located(
        &error,
        &workspace.proto("bad.proto"),
        6,
        3,
        "expected ';' or '[', but found 'int32'",
    );
}

#[test]
fn a_missing_import_names_the_importing_file_and_line() {
    let workspace = Workspace::new(&[(
        "api.proto",
        "syntax = \"proto3\";\npackage api;\nimport \"common/missing.proto\";\nmessage A {}\n",
    )]);
    let error = workspace.compile(&["api.proto"]).unwrap_err();
    assert_located(
        &error,
        &workspace.proto("api.proto"),
        3,
        1,
        "import 'common/missing.proto' not found",
    );
}

#[test]
fn an_unknown_type_names_the_file_and_line() {
    let workspace = Workspace::new(&[
        (
            "ok.proto",
            "syntax = \"proto3\";\npackage ok;\nmessage Fine {}\n",
        ),
        (
            "dir/types.proto",
            "syntax = \"proto3\";\npackage types;\nimport \"ok.proto\";\nmessage A {\n  ok.Fine fine = 1;\n  Missing m = 2;\n}\n",
        ),
    ]);
    let error = workspace.compile(&["dir/types.proto"]).unwrap_err();
    assert_located(
        &error,
        &workspace.proto("dir/types.proto"),
        6,
        3,
        "name 'Missing' is not defined",
    );
}

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
fn generated_names_that_clash_fail_the_build() {
    let workspace = Workspace::new(&[(
        "clash.proto",
        "syntax = \"proto3\";\npackage clash;\nmessage Req {}\nmessage EchoClient {}\nservice Echo {\n  rpc Say(Req) returns (Req);\n}\n",
    )]);
    let error = workspace.compile(&["clash.proto"]).unwrap_err();
    assert_located(
        &error,
        &workspace.proto("clash.proto"),
        5,
        1,
        "service clash.Echo generates the Rust item `EchoClient`, which clashes with message EchoClient",
    );
    // Without a client there is no clash.
    workspace
        .compile_with(Config::new().build_client(false), &["clash.proto"])
        .unwrap();

    let workspace = Workspace::new(&[(
        "twice.proto",
        "syntax = \"proto3\";\npackage twice;\nmessage Req {}\nservice Store {\n  rpc GetItem(Req) returns (Req);\n  rpc get_item(Req) returns (Req);\n}\n",
    )]);
    let error = workspace.compile(&["twice.proto"]).unwrap_err();
    assert_located(
        &error,
        &workspace.proto("twice.proto"),
        6,
        3,
        "becomes the Rust method `get_item`",
    );
}

#[test]
fn a_file_that_does_not_exist_is_named() {
    let workspace = Workspace::new(&[]);
    let error = workspace.compile(&["nowhere.proto"]).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("nowhere.proto"), "{message}");
    assert!(message.contains("no such file"), "{message}");
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
            "tests::the_build_needs_no_protoc",
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

/// What cargo shows when the documented `build.rs` (`fn main() -> Result<(), Box<dyn Error>>`)
/// returns the error: `Error: ` and the error's `Debug` form, which must be the readable
/// `file:line:column: reason`.
#[test]
fn a_build_script_returning_the_error_prints_file_line_and_reason() {
    let workspace = Workspace::new(&[(
        "app.proto",
        "syntax = \"proto3\";\npackage app;\n\nmessage Order {\n  string id = 1;\n  int32 count = 2\n  string note = 3;\n}\n",
    )]);
    let build_script = || -> Result<(), Box<dyn std::error::Error>> {
        workspace.compile(&["app.proto"])?;
        Ok(())
    };
    let error = build_script().unwrap_err();
    let expected = format!(
        "{}:7:3: expected ';' or '[', but found 'string'",
        workspace.proto("app.proto").display()
    );
    assert_eq!(format!("{error:?}"), expected);
    assert_eq!(error.to_string(), expected);
    // The fields stay at hand for whoever asks for them.
    let structured = format!("{error:#?}");
    assert!(structured.starts_with("Invalid {"), "{structured}");
    assert!(structured.contains("line: Some(\n"), "{structured}");
}

#[test]
fn a_duplicate_field_number_is_reported_at_the_reuse() {
    let workspace = Workspace::new(&[(
        "dup.proto",
        "syntax = \"proto3\";\npackage dup;\n\nmessage Item {\n  string name = 1;\n  int32 count = 2;\n  string note = 1;\n}\n",
    )]);
    let error = workspace.compile(&["dup.proto"]).unwrap_err();
    assert_located(
        &error,
        &workspace.proto("dup.proto"),
        7,
        17,
        "field number '1' is already used",
    );
}

#[test]
fn a_type_used_without_its_import_gets_a_hint_naming_the_file() {
    let workspace = Workspace::new(&[
        (
            "acme/common/v1/money.proto",
            "syntax = \"proto3\";\npackage acme.common.v1;\n\nmessage Money {\n  int64 units = 1;\n}\n",
        ),
        (
            "acme/shop/v1/shop.proto",
            "syntax = \"proto3\";\npackage acme.shop.v1;\n\nmessage Price {\n  acme.common.v1.Money amount = 1;\n}\n",
        ),
    ]);
    let error = workspace.compile(&["acme/shop/v1/shop.proto"]).unwrap_err();
    assert_located(
        &error,
        &workspace.proto("acme/shop/v1/shop.proto"),
        5,
        3,
        "'acme.common.v1.Money', which is not defined",
    );
    assert!(
        error
            .to_string()
            .contains("import \"acme/common/v1/money.proto\";"),
        "{error}"
    );

    // Nothing defines it: the hint says where to look, without naming a file.
    let workspace = Workspace::new(&[(
        "lone.proto",
        "syntax = \"proto3\";\npackage lone;\n\nmessage A {\n  Nowhere b = 1;\n}\n",
    )]);
    let error = workspace.compile(&["lone.proto"]).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no .proto file under the include directories defines it"),
        "{error}"
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

/// grpc-go's current route guide starts so.
const EDITION_2023: &str = r#"// A comment first.
edition = "2023";

package routeguide;

message Point {
  int32 latitude = 1;
  int32 longitude = 2;
}
"#;

#[test]
fn an_editions_file_is_refused_as_unsupported_not_as_a_syntax_error() {
    let workspace = Workspace::new(&[
        ("route_guide.proto", EDITION_2023),
        (
            "user.proto",
            "syntax = \"proto3\";\npackage user;\nimport \"route_guide.proto\";\nmessage Trip {\n  routeguide.Point from = 1;\n}\n",
        ),
    ]);
    for (proto, name) in [
        ("route_guide.proto", "route_guide.proto"),
        // Met as an import, it is named too.
        ("user.proto", "route_guide.proto"),
    ] {
        let error = workspace.compile(&[proto]).unwrap_err();
        assert!(matches!(error, Error::Unsupported { .. }), "{error:?}");
        assert_located(
            &error,
            &workspace.proto(name),
            2,
            1,
            "protobuf editions (`edition = \"2023\"`) are not supported",
        );
    }
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
