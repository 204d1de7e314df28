//! A service generated from `.proto` files shaped like a public API (proto/acme: a dotted
//! package, imports across packages and files, well-known types, enums, oneofs, maps, nested,
//! repeated and optional fields, reserved fields, comments), served and called over real
//! sockets in protobuf and in the proto3 JSON mapping. tests/build.rs generates the code.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use prpc::{Call, Client, Code, Error, Format, Status};
use serde_json::{Value as Json, json};

pub mod acme {
    pub mod common {
        pub mod v1 {
            prpc::include_proto!("acme.common.v1");
        }
    }
    pub mod library {
        pub mod v1 {
            prpc::include_proto!("acme.library.v1");
        }
    }
}

use acme::common::v1::{Currency, Money, PageInfo, PageRequest};
use acme::library::v1::book::{Loan, Review, Whereabouts, loan};
use acme::library::v1::{
    Book, ConnectRequest, ConnectResponse, CreateBookRequest, DeleteBookRequest, Genre,
    GetBookRequest, LibraryAdmin, LibraryAdminClient, LibraryAdminServer, LibraryService,
    LibraryServiceClient, LibraryServiceServer, ListBooksRequest, ListBooksResponse,
};

const SERVICE: &str = "acme.library.v1.LibraryService";

/// The standard loan period before any extension.
const LOAN_PERIOD: Duration = Duration::from_secs(14 * 24 * 3600);

#[derive(Default)]
struct Library {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    books: BTreeMap<String, Book>,
    next_id: u32,
    loan_period: Duration,
}

impl LibraryService for Library {
    async fn get_book(&self, request: GetBookRequest) -> Result<Book, Status> {
        let state = self.state.lock().unwrap();
        state
            .books
            .get(&request.name)
            .cloned()
            .ok_or_else(|| Status::new(Code::NotFound, format!("no book {}", request.name)))
    }

    async fn list_books(&self, request: ListBooksRequest) -> Result<ListBooksResponse, Status> {
        let page = request.page.unwrap_or_default();
        let size = if page.page_size > 0 {
            page.page_size as usize
        } else {
            2
        };
        let start: usize = if page.page_token.is_empty() {
            0
        } else {
            page.page_token
                .parse()
                .map_err(|_| Status::invalid_argument("bad page_token"))?
        };
        let state = self.state.lock().unwrap();
        let matching: Vec<&Book> = state
            .books
            .values()
            .filter(|book| request.genre.is_none_or(|genre| book.genre == genre))
            .collect();
        let books: Vec<Book> = matching
            .iter()
            .skip(start)
            .take(size)
            .map(|b| (*b).clone())
            .collect();
        let end = start + books.len();
        Ok(ListBooksResponse {
            books,
            page: Some(PageInfo {
                next_page_token: if end < matching.len() {
                    end.to_string()
                } else {
                    String::new()
                },
                total_size: matching.len() as i32,
            }),
        })
    }

    async fn create_book(&self, request: CreateBookRequest) -> Result<Book, Status> {
        let mut book = request
            .book
            .ok_or_else(|| Status::invalid_argument("a book is required"))?;
        if book.title.is_empty() {
            return Err(Status::invalid_argument("a book needs a title"));
        }
        let mut state = self.state.lock().unwrap();
        state.next_id += 1;
        book.name = format!("books/{}", state.next_id);
        state.books.insert(book.name.clone(), book.clone());
        Ok(book)
    }

    async fn delete_book(&self, request: DeleteBookRequest) -> Result<(), Status> {
        let mut state = self.state.lock().unwrap();
        match state.books.remove(&request.name) {
            Some(_) => Ok(()),
            None => Err(Status::new(
                Code::NotFound,
                format!("no book {}", request.name),
            )),
        }
    }

    async fn now(&self) -> Result<pbjson_types::Timestamp, Status> {
        // A fixed clock, so the tests can compare.
        Ok(pbjson_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 500_000_000,
        })
    }

    async fn extend_loan_period(
        &self,
        request: pbjson_types::Duration,
    ) -> Result<pbjson_types::Duration, Status> {
        let extension = Duration::try_from(request)
            .map_err(|_| Status::invalid_argument("a negative extension"))?;
        let mut state = self.state.lock().unwrap();
        if state.loan_period.is_zero() {
            state.loan_period = LOAN_PERIOD;
        }
        state.loan_period += extension;
        Ok(state.loan_period.into())
    }

    async fn annotate(
        &self,
        mut request: pbjson_types::Struct,
    ) -> Result<pbjson_types::Struct, Status> {
        request
            .fields
            .insert("library".into(), pbjson_types::Value::from("acme central"));
        Ok(request)
    }
}

impl LibraryAdmin for Library {
    async fn connect_(&self, request: ConnectRequest) -> Result<ConnectResponse, Status> {
        Ok(ConnectResponse {
            session: format!("session-of-{}", request.staff_id),
        })
    }

    async fn ping(&self) -> Result<(), Status> {
        Ok(())
    }
}

async fn serve_library() -> SocketAddr {
    let library = std::sync::Arc::new(Library::default());
    let server = prpc::Server::builder()
        .add_service(LibraryServiceServer::from_arc(library.clone()))
        .add_service(LibraryAdminServer::from_arc(library))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = server.local_addr().socket_addr().unwrap();
    tokio::spawn(server.serve());
    addr
}

/// A book with every kind of field set.
fn dune() -> Book {
    Book {
        name: String::new(),
        title: "Dune".into(),
        authors: vec!["Frank Herbert".into()],
        genre: Genre::Fiction as i32,
        price: Some(Money {
            currency: Currency::Eur as i32,
            units: 12,
            nanos: 990_000_000,
        }),
        published: Some(pbjson_types::Timestamp {
            seconds: -131_587_200,
            nanos: 0,
        }),
        reading_time: Some(Duration::from_secs(15 * 3600 + 1800).into()),
        labels: BTreeMap::from([
            ("language".into(), "en".into()),
            ("series".into(), "Dune".into()),
        ]),
        attributes: Some(pbjson_types::Struct::from(HashMap::from([
            ("pages".to_owned(), pbjson_types::Value::from(412.0)),
            ("hardcover".to_owned(), pbjson_types::Value::from(true)),
            (
                "awards".to_owned(),
                pbjson_types::Value::from(vec![
                    pbjson_types::Value::from("Hugo"),
                    pbjson_types::Value::from("Nebula"),
                ]),
            ),
        ]))),
        edition: Some(2),
        whereabouts: Some(Whereabouts::Loan(Loan {
            member: "members/7".into(),
            due: Some(pbjson_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            state: loan::State::Overdue as i32,
        })),
        reviews: vec![
            Review {
                stars: 5,
                text: "A classic.".into(),
            },
            Review {
                stars: 3,
                text: String::new(),
            },
        ],
        cover: Bytes::from_static(&[0x89, b'P', b'N', b'G', 0, 0xff]),
        withdrawn: Some(pbjson_types::Empty {}),
    }
}

fn foundation() -> Book {
    Book {
        title: "Foundation".into(),
        genre: Genre::Fiction as i32,
        whereabouts: Some(Whereabouts::ShelfPosition("A-12".into())),
        ..Book::default()
    }
}

fn cosmos() -> Book {
    Book {
        title: "Cosmos".into(),
        genre: Genre::Science as i32,
        edition: None,
        ..Book::default()
    }
}

/// Runs the same conversation with the library through `client`, whatever its format.
async fn library_round_trip(client: &LibraryServiceClient) {
    let created = client
        .create_book(CreateBookRequest { book: Some(dune()) })
        .await
        .unwrap();
    assert!(created.name.starts_with("books/"), "{}", created.name);
    assert_eq!(
        Book {
            name: String::new(),
            ..created.clone()
        },
        dune()
    );

    let fetched = client
        .get_book(GetBookRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap();
    assert_eq!(fetched, created);

    client
        .create_book(CreateBookRequest {
            book: Some(foundation()),
        })
        .await
        .unwrap();
    let science = client
        .create_book(CreateBookRequest {
            book: Some(cosmos()),
        })
        .await
        .unwrap();

    // Optional enum filter and paging across a message from the imported package.
    let fiction = client
        .list_books(ListBooksRequest {
            page: Some(PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
            genre: Some(Genre::Fiction as i32),
        })
        .await
        .unwrap();
    assert_eq!(fiction.books.len(), 1);
    let page = fiction.page.clone().unwrap();
    assert_eq!(page.total_size, 2);
    let rest = client
        .list_books(ListBooksRequest {
            page: Some(PageRequest {
                page_size: 5,
                page_token: page.next_page_token,
            }),
            genre: Some(Genre::Fiction as i32),
        })
        .await
        .unwrap();
    assert_eq!(rest.books.len(), 1);
    assert_eq!(
        rest.books[0].whereabouts,
        Some(Whereabouts::ShelfPosition("A-12".into()))
    );
    assert_eq!(rest.page.unwrap().next_page_token, "");
    let everything = client
        .list_books(ListBooksRequest::default())
        .await
        .unwrap();
    assert_eq!(everything.page.unwrap().total_size, 3);

    // Empty reply.
    client
        .delete_book(DeleteBookRequest {
            name: science.name.clone(),
        })
        .await
        .unwrap();
    let gone = client
        .get_book(GetBookRequest {
            name: science.name.clone(),
        })
        .await
        .unwrap_err();
    assert_not_found(&gone, &science.name);
}

fn assert_not_found(error: &Error, name: &str) {
    let status = error
        .status()
        .unwrap_or_else(|| panic!("not a status: {error:?}"));
    assert_eq!(status.code(), Code::NotFound, "{status}");
    assert_eq!(status.message(), format!("no book {name}"));
}

#[tokio::test]
async fn generated_clients_call_proto_services_in_protobuf() {
    let addr = serve_library().await;
    let client = LibraryServiceClient::connect(addr).await.unwrap();
    library_round_trip(&client).await;
}

#[tokio::test]
async fn generated_clients_call_proto_services_in_json() {
    let addr = serve_library().await;
    let client = LibraryServiceClient::connect(addr)
        .await
        .unwrap()
        .with_format(Format::Json);
    library_round_trip(&client).await;
}

#[tokio::test]
async fn protobuf_is_the_default_and_other_formats_are_not_used() {
    let addr = serve_library().await;
    let raw = Client::connect(addr).await.unwrap();
    let created = LibraryServiceClient::new(raw.clone())
        // MessagePack is no format for proto messages: the client stays with protobuf.
        .with_format(Format::MsgPack)
        .create_book(CreateBookRequest {
            book: Some(foundation()),
        })
        .await
        .unwrap();

    // The wire body is the protobuf encoding of the message itself.
    let reply = raw
        .call(Call::new(
            SERVICE,
            "GetBook",
            Format::Protobuf,
            GetBookRequest {
                name: created.name.clone(),
            }
            .encode_to_vec()
            .into(),
        ))
        .await
        .unwrap();
    assert_eq!(Book::decode(&reply.body[..]).unwrap(), created);

    // A MessagePack body is refused, like any body that is not the method's message.
    let error = raw
        .call(Call::new(
            SERVICE,
            "GetBook",
            Format::MsgPack,
            Bytes::from_static(&[0x80]),
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error}");
}

#[tokio::test]
async fn json_bodies_use_the_canonical_proto3_mapping() {
    let addr = serve_library().await;
    let raw = Client::connect(addr).await.unwrap();
    let call = |method: &'static str, body: Json| {
        let raw = raw.clone();
        async move {
            let reply = raw
                .call(Call::new(
                    SERVICE,
                    method,
                    Format::Json,
                    serde_json::to_vec(&body).unwrap().into(),
                ))
                .await?;
            Ok::<Json, Error>(serde_json::from_slice(&reply.body).unwrap())
        }
    };

    // What a client in another language would send: lowerCamelCase names, enums by name,
    // 64-bit integers as strings, Timestamp and Duration as strings, bytes in base64, a field
    // this server does not know (ignored).
    let created = call(
        "CreateBook",
        json!({
            "book": {
                "title": "Dune",
                "authors": ["Frank Herbert"],
                "genre": "GENRE_FICTION",
                "price": {"currency": "CURRENCY_EUR", "units": "12", "nanos": 990000000},
                "published": "1965-10-30T00:00:00Z",
                "readingTime": "55800s",
                "labels": {"language": "en"},
                "attributes": {"pages": 412, "awards": ["Hugo", "Nebula"]},
                "edition": 2,
                "loan": {"member": "members/7", "due": "2023-11-14T22:13:20Z", "state": "STATE_OVERDUE"},
                "reviews": [{"stars": 5, "text": "A classic."}],
                "cover": "iVBORw==",
                "withdrawn": {},
                "subtitle": "a field from a newer schema"
            }
        }),
    )
    .await
    .unwrap();
    assert_eq!(created["name"], "books/1");
    assert_eq!(created["genre"], "GENRE_FICTION");
    assert_eq!(
        created["price"],
        json!({"currency": "CURRENCY_EUR", "units": "12", "nanos": 990000000})
    );
    assert_eq!(created["published"], "1965-10-30T00:00:00Z");
    assert_eq!(created["readingTime"], "55800s");
    assert_eq!(
        created["attributes"],
        json!({"pages": 412.0, "awards": ["Hugo", "Nebula"]})
    );
    assert_eq!(created["loan"]["state"], "STATE_OVERDUE");
    assert_eq!(created["cover"], "iVBORw==");
    assert_eq!(created["withdrawn"], json!({}));
    // Default values are left out.
    assert!(created.get("shelfPosition").is_none(), "{created}");
    assert!(created["reviews"][0].get("text").is_some());

    // The same book through the typed client, in protobuf.
    let client = LibraryServiceClient::new(raw.clone());
    let book = client
        .get_book(GetBookRequest {
            name: "books/1".into(),
        })
        .await
        .unwrap();
    assert_eq!(book.price.unwrap().units, 12);
    assert_eq!(book.published.unwrap().seconds, -131_673_600);
    assert_eq!(book.reading_time.unwrap().seconds, 55_800);
    assert_eq!(&book.cover[..], b"\x89PNG");
    assert_eq!(
        book.whereabouts.unwrap(),
        Whereabouts::Loan(Loan {
            member: "members/7".into(),
            due: Some(pbjson_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0
            }),
            state: loan::State::Overdue as i32,
        })
    );

    // Field names as in the .proto file are accepted too.
    let listed = call("ListBooks", json!({"page": {"page_size": 1}}))
        .await
        .unwrap();
    assert_eq!(listed["books"][0]["title"], "Dune");
    assert_eq!(listed["page"]["totalSize"], 1);

    // Errors are statuses in JSON as in protobuf.
    let error = call("GetBook", json!({"name": "books/404"}))
        .await
        .unwrap_err();
    assert_not_found(&error, "books/404");
    let error = call("GetBook", json!({"name": 7})).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error}");
}

#[tokio::test]
async fn well_known_types_are_whole_requests_and_replies() {
    let addr = serve_library().await;
    for format in [Format::Protobuf, Format::Json] {
        let client = LibraryServiceClient::connect(addr)
            .await
            .unwrap()
            .with_format(format);
        assert_eq!(
            client.now().await.unwrap(),
            pbjson_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 500_000_000
            },
            "{format}"
        );
        let annotated = client
            .annotate(pbjson_types::Struct::from(HashMap::from([(
                "shelf".to_owned(),
                pbjson_types::Value::from("A"),
            )])))
            .await
            .unwrap();
        assert_eq!(annotated.fields.len(), 2, "{format}");
        assert_eq!(
            annotated.fields["library"],
            pbjson_types::Value::from("acme central")
        );
    }

    let client = LibraryServiceClient::connect(addr).await.unwrap();
    let period = client
        .extend_loan_period(Duration::from_secs(3600).into())
        .await
        .unwrap();
    assert_eq!(
        Duration::try_from(period).unwrap(),
        LOAN_PERIOD + Duration::from_secs(3600)
    );

    // In JSON the whole body is the well-known type's own mapping.
    let raw = Client::connect(addr).await.unwrap();
    let reply = raw
        .call(Call::new(
            SERVICE,
            "ExtendLoanPeriod",
            Format::Json,
            Bytes::from_static(b"\"1.5s\""),
        ))
        .await
        .unwrap();
    assert_eq!(&reply.body[..], br#""1213201.500s""#);
    let reply = raw
        .call(Call::new(
            SERVICE,
            "Now",
            Format::Json,
            Bytes::from_static(b"{}"),
        ))
        .await
        .unwrap();
    let now: String = serde_json::from_slice(&reply.body).unwrap();
    assert!(now.starts_with("2023-11-14T22:13:20.5"), "{now}");
    let reply = raw
        .call(Call::new(
            SERVICE,
            "Annotate",
            Format::Json,
            Bytes::from_static(br#"{"a": [1, null]}"#),
        ))
        .await
        .unwrap();
    let annotated: Json = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        annotated,
        json!({"a": [1.0, null], "library": "acme central"})
    );
}

#[tokio::test]
async fn empty_requests_and_replies_are_empty_messages() {
    let addr = serve_library().await;
    let raw = Client::connect(addr).await.unwrap();
    for format in [Format::Protobuf, Format::Json] {
        let admin = LibraryAdminClient::new(raw.clone()).with_format(format);
        admin.ping().await.unwrap();
    }
    let reply = raw
        .call(Call::new(
            "acme.library.v1.LibraryAdmin",
            "Ping",
            Format::Json,
            Bytes::from_static(b"{}"),
        ))
        .await
        .unwrap();
    assert_eq!(&reply.body[..], b"{}");
    let reply = raw
        .call(Call::new(
            "acme.library.v1.LibraryAdmin",
            "Ping",
            Format::Protobuf,
            Bytes::new(),
        ))
        .await
        .unwrap();
    assert!(reply.body.is_empty());
    // `null` is not a message.
    let error = raw
        .call(Call::new(
            "acme.library.v1.LibraryAdmin",
            "Ping",
            Format::Json,
            Bytes::from_static(b"null"),
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error}");
}

#[tokio::test]
async fn handler_statuses_reach_the_caller_with_their_code_and_message() {
    let addr = serve_library().await;
    for format in [Format::Protobuf, Format::Json] {
        let client = LibraryServiceClient::connect(addr)
            .await
            .unwrap()
            .with_format(format);
        let error = client
            .create_book(CreateBookRequest {
                book: Some(Book::default()),
            })
            .await
            .unwrap_err();
        let status = error.status().expect("a status");
        assert_eq!(status.code(), Code::InvalidArgument, "{format}");
        assert_eq!(status.message(), "a book needs a title");

        let error = client
            .delete_book(DeleteBookRequest {
                name: "books/9".into(),
            })
            .await
            .unwrap_err();
        assert_not_found(&error, "books/9");
    }
}

#[tokio::test]
async fn unknown_methods_and_services_are_unimplemented() {
    let addr = serve_library().await;
    let raw = Client::connect(addr).await.unwrap();
    // Method names on the wire are the .proto names, not the Rust ones.
    for (service, method) in [
        (SERVICE, "get_book"),
        (SERVICE, "RemoveBook"),
        ("acme.library.v2.LibraryService", "GetBook"),
        ("LibraryService", "GetBook"),
    ] {
        for format in [Format::Protobuf, Format::Json] {
            let error = raw
                .call(Call::new(
                    service,
                    method,
                    format,
                    Bytes::from_static(b"{}"),
                ))
                .await
                .unwrap_err();
            assert_eq!(
                error.code(),
                Code::Unimplemented,
                "{service}/{method}: {error}"
            );
        }
    }
}

#[tokio::test]
async fn services_have_fully_qualified_names_and_proto_method_names() {
    assert_eq!(LibraryServiceClient::SERVICE, SERVICE);
    assert_eq!(
        LibraryServiceClient::METHODS,
        [
            "GetBook",
            "ListBooks",
            "CreateBook",
            "DeleteBook",
            "Now",
            "ExtendLoanPeriod",
            "Annotate"
        ]
    );
    // From `option idempotency_level`.
    assert_eq!(
        LibraryServiceClient::IDEMPOTENT_METHODS,
        ["GetBook", "ListBooks", "DeleteBook"]
    );
    assert_eq!(LibraryAdminClient::SERVICE, "acme.library.v1.LibraryAdmin");

    let addr = serve_library().await;
    let raw = Client::connect(addr).await.unwrap();
    let services = prpc::reflection::list_services(&raw).await.unwrap();
    let library = services.iter().find(|s| s.name == SERVICE).expect("listed");
    assert_eq!(library.methods, LibraryServiceClient::METHODS);

    // An rpc named like a client item keeps its wire name and gets a Rust name of its own.
    let admin = LibraryAdminClient::new(raw);
    let session = admin
        .connect_(ConnectRequest {
            staff_id: "s1".into(),
        })
        .await
        .unwrap();
    assert_eq!(session.session, "session-of-s1");
    assert_eq!(LibraryAdminClient::METHODS, ["Connect", "Ping"]);
}

#[test]
fn proto_comments_become_doc_comments_and_options_apply() {
    let code = include_str!(concat!(env!("OUT_DIR"), "/acme.library.v1.rs"));
    for doc in [
        "/// Manages the books of a library.",
        "/// Every method answers not_found for a book name that does not exist.",
        "/// Gets one book by its resource name.",
        "/// The library's clock: well-known types as the whole request and reply.",
        "/// A reader's review.",
    ] {
        assert!(code.contains(doc), "missing {doc:?}");
    }
    // `type_attribute` from build.rs reached the message.
    let cheap = Money {
        currency: Currency::Eur as i32,
        units: 1,
        nanos: 0,
    };
    let dear = Money { units: 2, ..cheap };
    assert!(cheap < dear);
}
