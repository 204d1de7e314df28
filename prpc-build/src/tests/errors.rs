//! Build failures: each at its file, line and column, with a reason a person can act on.

use super::*;

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
