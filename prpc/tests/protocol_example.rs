//! Keeps the worked example of `docs/PROTOCOL.md` honest: the hex below is copied from the
//! document, and every frame must encode to exactly those bytes and decode back to the same
//! frame. The last test sends the example request bytes to a real server and checks the bytes
//! it answers with, so the documented server behaviour (ids, attempt and format echoed, the
//! unknown-service refusal) cannot drift either; section 11.5's stream is checked the same way.
#![cfg(feature = "json")]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use prpc::stream::Message;
use prpc::wire::{Encoding, Frame, FrameCodec, GoAwayHead, Head, RequestHead, ResponseHead};
use prpc::{
    Code, Format, Metadata, Request, Response, Server, Service, ServiceFuture, Status, Streaming,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Decoder, Encoder};

/// Section "Worked example", frame 1: the request.
const REQUEST_HEX: &str = "
    b7 01 01 10 00 00 00 2e
    ac 02
    00
    0a 6d 61 74 68 2e 41 72 69 74 68
    03 61 64 64
    dc 0b
    01 06 74 65 6e 61 6e 74 04 61 63 6d 65
    7b 22 61 22 3a 31 2c 22 62 22 3a 32 7d
";

/// Frame 2: its response.
const RESPONSE_HEX: &str = "
    b7 01 02 10 00 00 00 07
    ac 02
    00
    00
    00
    00
    33
";

/// Frame 3: the same request sent to service `Math`, which the server does not have.
const MATH_REQUEST_HEX: &str = "
    b7 01 01 10 00 00 00 28
    ac 02
    00
    04 4d 61 74 68
    03 61 64 64
    dc 0b
    01 06 74 65 6e 61 6e 74 04 61 63 6d 65
    7b 22 61 22 3a 31 2c 22 62 22 3a 32 7d
";

/// Frame 4: the server's refusal of frame 3.
const UNIMPLEMENTED_HEX: &str = "
    b7 01 22 10 00 00 00 2c
    ac 02
    00
    0c
    26 6e 6f 20 73 65 72 76 69 63 65 20 6e 61 6d 65 64 20 22 4d 61 74 68 22
       20 6f 6e 20 74 68 69 73 20 73 65 72 76 65 72
    00
";

/// Frames 5 and 6: a ping and its pong.
const PING_HEX: &str = "b7 01 03 00 00 00 00 02 07 00";
const PONG_HEX: &str = "b7 01 04 00 00 00 00 02 07 00";

/// Section 11.5, a short stream: the request that opens it (`Ticker.count`, `{"n":2}`).
const STREAM_REQUEST_HEX: &str = "
    b7 01 81 10 00 00 00 19
    ad 02
    00
    06 54 69 63 6b 65 72
    05 63 6f 75 6e 74
    00
    00
    7b 22 6e 22 3a 32 7d
";

/// The server's acceptance: a credit of 1,048,576 bytes on the stream.
const ACCEPTANCE_HEX: &str = "b7 01 08 00 00 00 00 06 ad 02 00 80 80 40";

/// The connection credit each side grants at its first stream: 15,728,640 bytes.
const CONNECTION_CREDIT_HEX: &str = "b7 01 08 00 00 00 00 06 00 00 80 80 c0 07";

/// The server's two messages, `0` and `1` in JSON.
const MESSAGE_0_HEX: &str = "b7 01 07 10 00 00 00 04 ad 02 00 30";
const MESSAGE_1_HEX: &str = "b7 01 07 10 00 00 00 04 ad 02 00 31";

/// The client's credit on the stream: 983,040 bytes.
const CLIENT_CREDIT_HEX: &str = "b7 01 08 00 00 00 00 06 ad 02 00 80 80 3c";

/// The trailer: ok, metadata `count: 2`, no body.
const TRAILER_HEX: &str = "
    b7 01 02 10 00 00 00 0e
    ad 02
    00
    00
    00
    01 05 63 6f 75 6e 74 01 32
";

/// The client's end, which a call with messages of its own sends after its last.
const END_HEX: &str = "b7 01 09 00 00 00 00 03 ad 02 00";

/// Frame 7: the goaway a server sends when graceful shutdown begins.
const GOAWAY_HEX: &str = "
    b7 01 06 00 00 00 00 1b
    00
    00
    0e
    17 73 65 72 76 65 72 20 69 73 20 73 68 75 74 74 69 6e 67 20 64 6f 77 6e
";

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|byte| u8::from_str_radix(byte, 16).expect("two hex digits"))
        .collect()
}

fn request(service: &'static str) -> Frame {
    let mut metadata = Metadata::new();
    metadata.insert("tenant", "acme");
    Frame {
        request_id: 300,
        attempt: 0,
        encoding: Encoding::new(Format::Json.id(), 0),
        head: Head::Request(RequestHead {
            stream: false,
            service: service.into(),
            method: "add".into(),
            deadline: Some(Duration::from_millis(1500)),
            oneway: false,
            dedupe: false,
            metadata,
        }),
        body: Bytes::from_static(br#"{"a":1,"b":2}"#),
    }
}

fn response(code: u32, message: &'static str, body: &'static [u8]) -> Frame {
    Frame {
        request_id: 300,
        attempt: 0,
        encoding: Encoding::new(Format::Json.id(), 0),
        head: Head::Response(ResponseHead {
            code,
            message: message.into(),
            metadata: Metadata::new(),
        }),
        body: Bytes::from_static(body),
    }
}

/// A frame of the stream of section 11.5 (request id 301, attempt 0).
fn on_stream(encoding: Encoding, head: Head, body: &'static [u8]) -> Frame {
    Frame {
        request_id: 301,
        attempt: 0,
        encoding,
        head,
        body: Bytes::from_static(body),
    }
}

fn json() -> Encoding {
    Encoding::new(Format::Json.id(), 0)
}

/// The frames of section 11.5.
fn stream_frames() -> Vec<(&'static str, Vec<u8>, Frame)> {
    let request = Head::Request(RequestHead {
        service: "Ticker".into(),
        method: "count".into(),
        deadline: None,
        oneway: false,
        dedupe: false,
        stream: true,
        metadata: Metadata::new(),
    });
    let mut count = Metadata::new();
    count.insert("count", "2");
    let trailer = Head::Response(ResponseHead {
        code: 0,
        message: "".into(),
        metadata: count,
    });
    let message = Head::Message {
        application_error: false,
    };
    let credit = |bytes| Head::Credit { bytes };
    vec![
        (
            "stream request",
            hex(STREAM_REQUEST_HEX),
            on_stream(json(), request, br#"{"n":2}"#),
        ),
        (
            "acceptance",
            hex(ACCEPTANCE_HEX),
            on_stream(Encoding::default(), credit(1_048_576), b""),
        ),
        (
            "connection credit",
            hex(CONNECTION_CREDIT_HEX),
            Frame::control(0, credit(15_728_640)),
        ),
        (
            "message 0",
            hex(MESSAGE_0_HEX),
            on_stream(json(), message.clone(), b"0"),
        ),
        (
            "message 1",
            hex(MESSAGE_1_HEX),
            on_stream(json(), message, b"1"),
        ),
        (
            "client credit",
            hex(CLIENT_CREDIT_HEX),
            on_stream(Encoding::default(), credit(983_040), b""),
        ),
        ("trailer", hex(TRAILER_HEX), on_stream(json(), trailer, b"")),
        (
            "end",
            hex(END_HEX),
            on_stream(Encoding::default(), Head::End, b""),
        ),
    ]
}

/// Every documented frame with the frame it stands for.
fn documented_frames() -> Vec<(&'static str, Vec<u8>, Frame)> {
    let mut frames = unary_frames();
    frames.extend(stream_frames());
    frames
}

/// The frames of sections 11.1 to 11.4.
fn unary_frames() -> Vec<(&'static str, Vec<u8>, Frame)> {
    vec![
        ("request", hex(REQUEST_HEX), request("math.Arith")),
        ("response", hex(RESPONSE_HEX), response(0, "", b"3")),
        ("request to Math", hex(MATH_REQUEST_HEX), request("Math")),
        (
            "unimplemented",
            hex(UNIMPLEMENTED_HEX),
            response(12, "no service named \"Math\" on this server", b""),
        ),
        ("ping", hex(PING_HEX), Frame::control(7, Head::Ping)),
        ("pong", hex(PONG_HEX), Frame::control(7, Head::Pong)),
        (
            "goaway",
            hex(GOAWAY_HEX),
            Frame::control(
                0,
                Head::GoAway(GoAwayHead {
                    code: 14,
                    message: "server is shutting down".into(),
                }),
            ),
        ),
    ]
}

/// The frame as `docs/PROTOCOL.md` shows it: 16 bytes a line, two spaces after the eighth.
fn hex_dump(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            let half = |half: &[u8]| {
                half.iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            match line.split_at_checked(8) {
                Some((first, second)) if !second.is_empty() => {
                    format!("{}  {}", half(first), half(second))
                }
                _ => half(line),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_document_shows_exactly_these_bytes() {
    // Read from the repository, so editing the document's example without the code (or the
    // other way round) fails here.
    let document = include_str!("../../docs/PROTOCOL.md");
    for (name, bytes, _) in documented_frames() {
        if name == "request to Math" {
            continue; // The document describes it in words: `math.Arith` replaced by `Math`.
        }
        let block = format!("```text\n{}\n```", hex_dump(&bytes));
        assert!(
            document.contains(&block),
            "PROTOCOL.md lacks the {name} frame:\n{block}"
        );
    }
}

#[test]
fn documented_frames_encode_to_the_documented_bytes() {
    for (name, bytes, frame) in documented_frames() {
        let mut encoded = BytesMut::new();
        FrameCodec::new().encode(&frame, &mut encoded).unwrap();
        assert_eq!(&encoded[..], &bytes[..], "{name}");
        let length = u32::from_be_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(length as usize, bytes.len() - 8, "{name}: length field");
    }
}

#[test]
fn documented_bytes_decode_to_the_documented_frames() {
    let mut codec = FrameCodec::new();
    let mut stream = BytesMut::new();
    for (_, bytes, _) in documented_frames() {
        stream.extend_from_slice(&bytes);
    }
    for (name, _, frame) in documented_frames() {
        let decoded = codec.decode(&mut stream).unwrap();
        assert_eq!(decoded.as_ref(), Some(&frame), "{name}");
    }
    assert!(stream.is_empty());
    assert!(codec.decode_eof(&mut stream).unwrap().is_none());
}

#[test]
fn documented_error_flag_and_kind_byte() {
    let unimplemented = hex(UNIMPLEMENTED_HEX);
    assert_eq!(unimplemented[2] & 0x0f, 2, "kind: response");
    assert_eq!(unimplemented[2] & 0x20, 0x20, "error flag set for code 12");
    assert_eq!(hex(RESPONSE_HEX)[2] & 0x20, 0, "no error flag for code 0");
    assert_eq!(Code::from_u32(12), Code::Unimplemented);
    assert_eq!(Code::from_u32(14), Code::Unavailable);
}

#[test]
fn documented_stream_kind_bytes() {
    let request = hex(STREAM_REQUEST_HEX);
    assert_eq!(request[2], 0x81, "request with the stream flag");
    assert_eq!(hex(MESSAGE_0_HEX)[2], 0x07, "message, no error flag");
    assert_eq!(hex(ACCEPTANCE_HEX)[2], 0x08, "credit");
    assert_eq!(hex(END_HEX)[2], 0x09, "end");
    // A message's cost is its length field.
    let message = hex(MESSAGE_0_HEX);
    assert_eq!(u32::from_be_bytes(message[4..8].try_into().unwrap()), 4);
    // The grants the document derives from the defaults.
    assert_eq!(1_048_576 - 65_536, 983_040);
    assert_eq!(16_777_216 - 1_048_576, 15_728_640);
}

/// The example's service: `add` takes `{"a": i32, "b": i32}` and returns their sum.
struct Arith;

#[derive(serde::Deserialize)]
struct AddArgs {
    a: i32,
    b: i32,
}

impl Service for Arith {
    fn name(&self) -> &str {
        "math.Arith"
    }

    fn methods(&self) -> Vec<String> {
        vec!["add".into()]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        Box::pin(async move {
            if &*request.method != "add" {
                return Err(Status::unimplemented(format!(
                    "no method {}",
                    request.method
                )));
            }
            let args: AddArgs = request.format.decode(&request.body)?;
            Ok(Response::new(request.format.encode(&(args.a + args.b))?))
        })
    }
}

/// The stream example's service: `count` streams the numbers below `n` and ends with the
/// metadata `count` = how many it sent.
struct Ticker;

#[derive(serde::Deserialize)]
struct CountArgs {
    n: u32,
}

impl Service for Ticker {
    fn name(&self) -> &str {
        "Ticker"
    }

    fn methods(&self) -> Vec<String> {
        vec!["count".into()]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        Box::pin(async move {
            let format = request.format;
            let args: CountArgs = format.decode(&request.body)?;
            let mut trailer = Metadata::new();
            trailer.insert("count", args.n.to_string());
            let numbers = Streaming::from_iter(0..args.n).with_trailer(trailer);
            // What generated code does with a handler's `Streaming`.
            Ok(prpc::__private::stream_response(numbers, move |number| {
                Ok(Message::new(format.encode(&number)?))
            }))
        })
    }
}

/// Reads exactly one frame's bytes (prefix, then `length` more) from the socket.
async fn read_frame(socket: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut frame = vec![0u8; 8];
    socket.read_exact(&mut frame).await.unwrap();
    let length = u32::from_be_bytes(frame[4..8].try_into().unwrap()) as usize;
    frame.resize(8 + length, 0);
    socket.read_exact(&mut frame[8..]).await.unwrap();
    frame
}

#[tokio::test]
async fn a_server_answers_the_documented_requests_with_the_documented_bytes() {
    let server = Server::builder()
        .add_service(Arith)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().socket_addr().unwrap();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());

    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(&hex(REQUEST_HEX)).await.unwrap();
    assert_eq!(read_frame(&mut socket).await, hex(RESPONSE_HEX));
    socket.write_all(&hex(MATH_REQUEST_HEX)).await.unwrap();
    assert_eq!(read_frame(&mut socket).await, hex(UNIMPLEMENTED_HEX));
    socket.write_all(&hex(PING_HEX)).await.unwrap();
    assert_eq!(read_frame(&mut socket).await, hex(PONG_HEX));

    shutdown.shutdown();
    assert_eq!(read_frame(&mut socket).await, hex(GOAWAY_HEX));
    drop(socket);
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_server_streams_the_documented_bytes() {
    // The example's windows (section 11.5): 1 MiB per stream, 16 MiB per connection.
    let server = Server::builder()
        .stream_windows(1 << 20, 16 << 20)
        .add_service(Ticker)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().socket_addr().unwrap();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());

    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(&hex(STREAM_REQUEST_HEX)).await.unwrap();
    assert_eq!(read_frame(&mut socket).await, hex(ACCEPTANCE_HEX));
    assert_eq!(read_frame(&mut socket).await, hex(CONNECTION_CREDIT_HEX));
    // What a prpc client sends when it receives the acceptance.
    socket.write_all(&hex(CLIENT_CREDIT_HEX)).await.unwrap();
    socket.write_all(&hex(CONNECTION_CREDIT_HEX)).await.unwrap();
    assert_eq!(read_frame(&mut socket).await, hex(MESSAGE_0_HEX));
    assert_eq!(read_frame(&mut socket).await, hex(MESSAGE_1_HEX));
    assert_eq!(read_frame(&mut socket).await, hex(TRAILER_HEX));
    // The connection goes on after the stream.
    socket.write_all(&hex(PING_HEX)).await.unwrap();
    assert_eq!(read_frame(&mut socket).await, hex(PONG_HEX));

    shutdown.shutdown();
    assert_eq!(read_frame(&mut socket).await, hex(GOAWAY_HEX));
    drop(socket);
    serving.await.unwrap().unwrap();
}

fn decode_one(bytes: &[u8]) -> Frame {
    let mut buffer = BytesMut::from(bytes);
    let frame = FrameCodec::new().decode(&mut buffer).unwrap().unwrap();
    assert!(buffer.is_empty());
    frame
}

fn response_head(frame: &Frame) -> &ResponseHead {
    match &frame.head {
        Head::Response(head) => head,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn goaway_head(frame: &Frame) -> &GoAwayHead {
    match &frame.head {
        Head::GoAway(head) => head,
        other => panic!("expected a goaway, got {other:?}"),
    }
}

/// Section "Bad input and what the peer does": a bad encoding fails the call, a bad frame
/// closes the connection after a goaway.
#[tokio::test]
async fn a_server_answers_bad_input_as_documented() {
    let server = Server::builder()
        .add_service(Arith)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().socket_addr().unwrap();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();

    // Format id 9: refused per call, the format nibble echoed, the connection kept.
    let mut request = hex(REQUEST_HEX);
    request[3] = 0x90;
    socket.write_all(&request).await.unwrap();
    let reply = decode_one(&read_frame(&mut socket).await);
    assert_eq!((reply.request_id, reply.encoding.to_byte()), (300, 0x90));
    let head = response_head(&reply);
    assert_eq!(Code::from_u32(head.code), Code::InvalidArgument);
    assert_eq!(head.message, "unknown body format id 9");
    assert!(reply.body.is_empty());

    // A gzip body that is not gzip (or gzip not built in): invalid_argument, still per call.
    let mut request = hex(REQUEST_HEX);
    request[3] = 0x11;
    socket.write_all(&request).await.unwrap();
    let reply = decode_one(&read_frame(&mut socket).await);
    assert_eq!(
        Code::from_u32(response_head(&reply).code),
        Code::InvalidArgument
    );
    assert_eq!(reply.encoding.to_byte(), 0x10, "refusals go uncompressed");

    // Not prpc at all: goaway invalid_argument, then the server closes.
    socket.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let goaway = decode_one(&read_frame(&mut socket).await);
    let head = goaway_head(&goaway);
    assert_eq!(Code::from_u32(head.code), Code::InvalidArgument);
    assert_eq!(
        head.message,
        "bad magic byte 0x47 (expected 0xb7): the peer is not speaking prpc"
    );
    assert_eq!(
        socket.read(&mut [0u8; 1]).await.unwrap(),
        0,
        "closed after the goaway"
    );

    // A length over max_frame_size: goaway resource_exhausted before the bytes are sent.
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(&[0xb7, 0x01, 0x01, 0x10, 0x01, 0x00, 0x00, 0x01])
        .await
        .unwrap();
    let goaway = decode_one(&read_frame(&mut socket).await);
    let head = goaway_head(&goaway);
    assert_eq!(Code::from_u32(head.code), Code::ResourceExhausted);
    assert_eq!(
        head.message,
        "frame of 16777217 bytes exceeds max_frame_size 16777216"
    );

    shutdown.shutdown();
    serving.await.unwrap().unwrap();
}
