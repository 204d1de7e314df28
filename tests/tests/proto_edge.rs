//! proto/edge: the files that broke the JSON mapping, generated with it by tests/build.rs and
//! served on loopback in both formats: fields and enum values named with Rust keywords
//! (`gen`, `type`, `self`, `KIND_SELF`), a service named `Self`, a file without a package.

use prpc::{Format, Status};
use prpc_tests::serve_one;

pub mod edge {
    prpc::include_proto!("edge.v1");
}

/// The file without a package (`_.rs`).
pub mod root {
    prpc::include_proto!("_");
}

use edge::keywords::Match;
use edge::{Item, Keywords, Kind};

struct Mirror;

impl edge::SelfService for Mirror {
    async fn echo(&self, request: Keywords) -> Result<Keywords, Status> {
        Ok(request)
    }
}

fn keywords() -> Keywords {
    Keywords {
        r#gen: "g".into(),
        r#type: "t".into(),
        r#async: 3,
        kind: Kind::Self_ as i32,
        r#match: Some(Match::Ref("r".into())),
        self_: vec![Item {
            crate_: "c".into(),
            super_: "s".into(),
        }],
    }
}

#[tokio::test]
async fn keyword_names_round_trip_in_both_formats() {
    let addr = serve_one(edge::SelfServiceServer::new(Mirror)).await;
    let client = edge::SelfServiceClient::connect(addr).await.unwrap();
    for format in [Format::Protobuf, Format::Json] {
        let reply = client
            .clone()
            .with_format(format)
            .echo(keywords())
            .await
            .unwrap();
        assert_eq!(reply, keywords());
    }
    // The JSON names are the proto names, in lowerCamelCase.
    let json = serde_json::to_value(keywords()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "gen": "g",
            "type": "t",
            "async": 3,
            "kind": "KIND_SELF",
            "ref": "r",
            "self": [{"crate": "c", "super": "s"}],
        })
    );
    let back: Keywords = serde_json::from_value(json).unwrap();
    assert_eq!(back, keywords());
}

struct Keeper;

impl root::Notes for Keeper {
    async fn keep(&self, request: root::Note) -> Result<root::Note, Status> {
        Ok(request)
    }
}

#[tokio::test]
async fn a_file_without_a_package_speaks_json() {
    let addr = serve_one(root::NotesServer::new(Keeper)).await;
    let client = root::NotesClient::connect(addr).await.unwrap();
    let note = root::Note {
        text: "hi".into(),
        at: Some(pbjson_types::Timestamp {
            seconds: 1,
            nanos: 0,
        }),
        mood: root::Mood::Glad as i32,
    };
    for format in [Format::Protobuf, Format::Json] {
        let reply = client
            .clone()
            .with_format(format)
            .keep(note.clone())
            .await
            .unwrap();
        assert_eq!(reply, note);
    }
    let json = serde_json::to_value(&note).unwrap();
    assert_eq!(json["mood"], "MOOD_GLAD");
    assert_eq!(json["text"], "hi");
}
