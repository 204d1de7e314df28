//! Byte strings through `#[prpc::service]`: `Vec<u8>` and `Bytes` arguments and results travel
//! as bytes (a MessagePack `bin`, base64 text in JSON) without `serde_bytes`, and the array of
//! integers older peers sent is still understood. Real servers on loopback; the bodies are
//! checked as they cross the socket, through raw calls and a recording service.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prpc::{Call, Client, Format, Request, Response, Server, Service, ServiceFuture, Status};
use prpc_tests::spawn_server;
use serde::Serialize;

#[prpc::service(name = "blob.Store")]
pub trait Blob {
    /// How many bytes arrived, all arguments together.
    async fn put(&self, payload: Bytes, data: Vec<u8>, name: String) -> usize;
    /// `size` bytes counting up from 0.
    async fn get(&self, size: usize) -> Vec<u8>;
    /// The payload, back.
    async fn echo(&self, payload: Bytes) -> Bytes;
}

/// A byte string as a `Vec<u8>` both ways.
#[prpc::service(name = "blob.Vecs")]
pub trait Vecs {
    /// The payload, back.
    async fn echo(&self, payload: Vec<u8>) -> Vec<u8>;
}

/// Echoes, noting where each reply's buffer lies.
#[derive(Clone, Default)]
struct VecStore {
    replied_from: Arc<Mutex<Vec<usize>>>,
}

impl Vecs for VecStore {
    async fn echo(&self, payload: Vec<u8>) -> Vec<u8> {
        self.replied_from
            .lock()
            .unwrap()
            .push(payload.as_ptr() as usize);
        payload
    }
}

struct Store;

impl Blob for Store {
    async fn put(&self, payload: Bytes, data: Vec<u8>, name: String) -> usize {
        payload.len() + data.len() + name.len()
    }

    async fn get(&self, size: usize) -> Vec<u8> {
        (0..size).map(|i| i as u8).collect()
    }

    async fn echo(&self, payload: Bytes) -> Bytes {
        payload
    }
}

/// A raw call of `blob.Store/method` with a hand-made body.
async fn raw_call(client: &Client, method: &str, format: Format, body: Vec<u8>) -> Bytes {
    let call = Call::new(
        "blob.Store".to_owned(),
        method.to_owned(),
        format,
        Bytes::from(body),
    );
    client.call(call).await.expect("raw call").body
}

#[tokio::test]
async fn the_generated_server_answers_byte_strings_as_bin_and_base64() {
    let server = spawn_server(Server::builder().add_service(BlobServer::new(Store))).await;
    let client = Client::connect(server.addr).await.unwrap();

    // {"size": 3} in MessagePack: fixmap 1, fixstr "size", 3.
    let reply = raw_call(
        &client,
        "get",
        Format::MsgPack,
        b"\x81\xa4size\x03".to_vec(),
    )
    .await;
    assert_eq!(&reply[..], &[0xc4, 3, 0, 1, 2], "bin 8, not an array");
    let reply = raw_call(&client, "get", Format::Json, br#"{"size":3}"#.to_vec()).await;
    assert_eq!(&reply[..], br#""AAEC""#, "base64 text in JSON");

    // Bytes results as well, and bodies past bin 8's 255 bytes.
    let payload = vec![7u8; 300];
    let mut body = b"\x81\xa7payload\xc5\x01\x2c".to_vec();
    body.extend_from_slice(&payload);
    let reply = raw_call(&client, "echo", Format::MsgPack, body).await;
    assert_eq!(&reply[..3], &[0xc5, 0x01, 0x2c], "bin 16");
    assert_eq!(&reply[3..], &payload[..]);
}

#[tokio::test]
async fn the_array_of_integers_of_older_peers_is_accepted() {
    let server = spawn_server(Server::builder().add_service(BlobServer::new(Store))).await;
    let client = Client::connect(server.addr).await.unwrap();

    // What a peer without byte strings as bytes sends: serde's sequences of integers.
    #[derive(Serialize)]
    struct OlderPut {
        payload: Vec<u8>,
        data: Vec<u8>,
        name: String,
    }
    let older = OlderPut {
        payload: vec![1, 2, 3, 255],
        data: vec![0; 20],
        name: "ab".into(),
    };
    for format in [Format::MsgPack, Format::Json] {
        let body = format.encode(&older).unwrap();
        if format == Format::MsgPack {
            assert_eq!(body[9], 0x94, "a fixarray of 4, as older peers send");
        }
        let reply = raw_call(&client, "put", format, body.to_vec()).await;
        assert_eq!(format.decode::<usize>(&reply).unwrap(), 26, "{format}");
    }
}

/// A `blob.Store` that records the bodies it receives and answers with canned ones: what a
/// generated client sends, and how it reads what an older server answers.
#[derive(Clone, Default)]
struct Recorder {
    received: Arc<Mutex<Vec<(String, Format, Bytes)>>>,
}

impl Service for Recorder {
    fn name(&self) -> &str {
        "blob.Store"
    }

    fn methods(&self) -> Vec<String> {
        vec!["put".into(), "get".into(), "echo".into()]
    }

    fn call(&self, request: Request) -> ServiceFuture {
        let received = self.received.clone();
        Box::pin(async move {
            received.lock().unwrap().push((
                request.method.to_string(),
                request.format,
                request.body.clone(),
            ));
            let format = request.format;
            let reply = match &*request.method {
                "put" => format.encode(&0usize)?,
                // An older server's `Vec<u8>`: an array of integers.
                "get" => format.encode(&vec![9u8, 8, 7])?,
                "echo" => return Ok(Response::new(request.body)),
                _ => return Err(Status::unimplemented("not recorded")),
            };
            Ok(Response::new(reply))
        })
    }
}

#[tokio::test]
async fn the_generated_client_sends_bin_and_reads_older_arrays() {
    let recorder = Recorder::default();
    let server = spawn_server(Server::builder().add_service(recorder.clone())).await;
    let client = BlobClient::new(Client::connect(server.addr).await.unwrap());

    client
        .put(Bytes::from_static(b"\x00\xff"), vec![5, 6, 7], "n".into())
        .await
        .unwrap();
    assert_eq!(client.get(3).await.unwrap(), vec![9, 8, 7]);

    let json = BlobClient::new(
        Client::builder()
            .format(Format::Json)
            .connect(server.addr)
            .await
            .unwrap(),
    );
    json.put(Bytes::from_static(b"\x00\xff"), vec![5, 6, 7], "n".into())
        .await
        .unwrap();
    assert_eq!(json.get(3).await.unwrap(), vec![9, 8, 7]);

    let received = recorder.received.lock().unwrap().clone();
    let puts: Vec<_> = received
        .iter()
        .filter(|(method, ..)| method == "put")
        .collect();
    assert_eq!(puts.len(), 2);
    let (_, format, body) = puts[0];
    assert_eq!(*format, Format::MsgPack);
    let mut expected = b"\x83\xa7payload\xc4\x02\x00\xff\xa4data\xc4\x03\x05\x06\x07".to_vec();
    expected.extend_from_slice(b"\xa4name\xa1n");
    assert_eq!(&body[..], &expected[..], "both byte strings as bin 8");
    let (_, format, body) = puts[1];
    assert_eq!(*format, Format::Json);
    assert_eq!(&body[..], br#"{"payload":"AP8=","data":"BQYH","name":"n"}"#);
}

#[tokio::test]
async fn byte_strings_round_trip_in_every_serde_format() {
    let server = spawn_server(Server::builder().add_service(BlobServer::new(Store))).await;
    for format in [Format::MsgPack, Format::Json] {
        let client = BlobClient::new(
            Client::builder()
                .format(format)
                .connect(server.addr)
                .await
                .unwrap(),
        );
        for size in [0, 1, 255, 256, 70_000] {
            let payload: Bytes = (0..size).map(|i| (i * 7) as u8).collect();
            assert_eq!(
                client.echo(payload.clone()).await.unwrap(),
                payload,
                "{format}"
            );
            let got = client.get(size).await.unwrap();
            assert_eq!(got.len(), size, "{format}");
            assert!(got.iter().enumerate().all(|(i, b)| *b == i as u8));
        }
        let sent = client
            .put(Bytes::from_static(b"abc"), vec![1; 10], "xyz".into())
            .await
            .unwrap();
        assert_eq!(sent, 16, "{format}");
    }
}

/// A serde body that is not a byte string where one is expected: `invalid_argument`, not a
/// panic.
#[tokio::test]
async fn a_malformed_byte_string_is_invalid_argument() {
    let server = spawn_server(Server::builder().add_service(BlobServer::new(Store))).await;
    let client = Client::connect(server.addr).await.unwrap();
    for (format, body) in [
        (Format::Json, br#"{"payload":"%%%"}"#.to_vec()),
        (Format::Json, br#"{"payload":[1,300]}"#.to_vec()),
        (Format::MsgPack, b"\x81\xa7payload\xc4\x09\x01".to_vec()),
        (Format::MsgPack, b"\x81\xa7payload\xc0".to_vec()),
    ] {
        let call = Call::new(
            "blob.Store".to_owned(),
            "echo".to_owned(),
            format,
            body.into(),
        );
        let error = client.call(call).await.unwrap_err();
        assert_eq!(
            error.code(),
            prpc::Code::InvalidArgument,
            "{format}: {error}"
        );
    }
}

/// A generated method's future holds the call only inside the channel's future, not a second
/// time beside it: callers keep (and move) one such future per call in flight. It is built,
/// not polled, and then used, so the call it describes still works.
#[tokio::test]
async fn a_generated_call_future_holds_the_call_once() {
    let addr = prpc_tests::serve_one(BlobServer::new(Store)).await;
    let client = BlobClient::new(Client::connect(addr).await.unwrap());
    let future = client.echo(Bytes::from_static(b"once"));
    let call = std::mem::size_of::<Call>();
    let size = std::mem::size_of_val(&future);
    assert!(
        size < 2 * call,
        "the future is {size} bytes, a call {call}: it holds the call twice"
    );
    assert_eq!(future.await.unwrap(), Bytes::from_static(b"once"));
}

/// A unary call's outcome is moved from the connection's reader to its caller several times
/// per call (settled in the waiting slot, taken out, returned through the futures): a
/// `Reply` is its body, format and metadata, with a stream's state behind one pointer, not
/// inline (it made a `Reply` 168 bytes). A reply still carries a stream when there is one.
#[tokio::test]
async fn a_unary_reply_is_moved_without_a_streams_state() {
    let reply = std::mem::size_of::<prpc::Reply>();
    let parts = std::mem::size_of::<Bytes>()
        + std::mem::size_of::<prpc::Metadata>()
        + std::mem::size_of::<usize>()
        + std::mem::size_of::<usize>();
    assert!(
        reply <= parts,
        "a Reply is {reply} bytes; its body, format, metadata and a stream pointer {parts}"
    );
    let addr = prpc_tests::serve_one(BlobServer::new(Store)).await;
    let client = BlobClient::new(Client::connect(addr).await.unwrap());
    assert_eq!(
        client.echo(Bytes::from_static(b"moved")).await.unwrap(),
        Bytes::from_static(b"moved")
    );
}

#[tokio::test]
async fn reflection_describes_byte_strings_as_bytes() {
    // `Vec<u8>` describes itself as an array of integers, but as an argument or a result it
    // travels as bytes (base64 in JSON), and a caller reading the description must know that.
    use prpc::reflection::{Shape, describe_services};
    let server = spawn_server(Server::builder().add_service(BlobServer::new(Store))).await;
    let client = Client::connect(server.addr).await.unwrap();
    let services = describe_services(&client).await.unwrap();
    let blob = services.iter().find(|s| s.name == "blob.Store").unwrap();
    let method = |name: &str| blob.methods.iter().find(|m| m.name == name).unwrap();
    let shapes: Vec<&Shape> = method("put").arguments.iter().map(|a| &a.shape).collect();
    assert_eq!(shapes, [&Shape::Bytes, &Shape::Bytes, &Shape::String]);
    assert_eq!(method("get").returns, Shape::Bytes);
    assert_eq!(method("echo").returns, Shape::Bytes);
}

/// A channel that keeps every call it passes on, as a layer under a generated client sees it.
#[derive(Clone)]
struct Recording {
    inner: Client,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl prpc::Channel for Recording {
    fn default_options(&self) -> &prpc::CallOptions {
        self.inner.default_options()
    }

    fn call(&self, call: Call) -> impl Future<Output = Result<prpc::Reply, prpc::Error>> + Send {
        self.calls.lock().unwrap().push(call.clone());
        self.inner.call(call)
    }
}

/// MessagePack's `bin` of `payload`, as serde writes it: the smallest header.
fn bin(payload: &[u8]) -> Vec<u8> {
    let mut out = match u16::try_from(payload.len()) {
        Ok(short) if short < 256 => vec![0xc4, short as u8],
        Ok(medium) => [&[0xc5][..], &medium.to_be_bytes()].concat(),
        Err(_) => [&[0xc6][..], &(payload.len() as u32).to_be_bytes()].concat(),
    };
    out.extend_from_slice(payload);
    out
}

/// Whether `body`'s second part is `payload`'s own bytes, not a copy.
fn carries(body: &prpc::Body, payload: &Bytes) -> bool {
    let tail = body.parts().1;
    tail.len() == payload.len() && tail.as_ptr() == payload.as_ptr()
}

/// A large `Bytes` argument or result is not copied into the body the stub encodes: the body
/// is the MessagePack header, then the `Bytes` itself, written to the socket from where it
/// lies. What crosses the socket is still exactly what serde writes, in every `bin` size.
#[tokio::test]
async fn a_large_bytes_goes_out_uncopied_as_serde_would_write_it() {
    let recorder = Recorder::default();
    let raw_server = spawn_server(Server::builder().add_service(recorder.clone())).await;
    let server = spawn_server(Server::builder().add_service(BlobServer::new(Store))).await;
    let recording = Recording {
        inner: Client::connect(server.addr).await.unwrap(),
        calls: Arc::default(),
    };
    let client = BlobClient::new(recording.clone());
    let to_recorder = BlobClient::new(Client::connect(raw_server.addr).await.unwrap());

    for size in [1023, 1024, 4096, 65_535, 65_536, 300_000] {
        let payload: Bytes = (0..size)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into();
        // Through a real server and back: the same bytes.
        assert_eq!(
            client.echo(payload.clone()).await.unwrap(),
            payload,
            "{size}"
        );
        let call = recording.calls.lock().unwrap().pop().unwrap();
        // From 1 KiB on, the call's body shares the caller's bytes; below, one copy is cheaper.
        assert_eq!(carries(&call.body, &payload), size >= 1024, "{size}");
        // The arguments struct: a map of one entry, "payload" to a `bin`.
        let serde = [&b"\x81\xa7payload"[..], &bin(&payload)].concat();
        assert_eq!(call.body, Bytes::from(serde.clone()), "{size}");

        // On the wire, as serde writes it: what a server receives.
        // (The recorder answers with the arguments it received, which are not a `bin`: the
        // reply does not decode, and only what was sent is checked here.)
        let _ = to_recorder.echo(payload.clone()).await;
        let (method, _, received) = recorder.received.lock().unwrap().pop().unwrap();
        assert_eq!(method, "echo");
        assert_eq!(received, serde, "{size}");

        // The generated server's reply: the header, then the argument it was handed (a slice
        // of the request as received), not a copy.
        let received = Bytes::from(serde);
        let request = prpc::Request::new("echo", Format::MsgPack, received.clone());
        let response = BlobServer::new(Store).call(request).await.unwrap();
        assert_eq!(response.body, Bytes::from(bin(&payload)), "{size}");
        let argument = received.slice(received.len() - size..);
        assert_eq!(carries(&response.body, &argument), size >= 1024, "{size}");
    }
}

/// A large `Vec<u8>` argument or result is not copied either: the body's second part is the
/// `Vec`'s own buffer (with or without spare capacity), and the bytes are serde's.
#[tokio::test]
async fn a_large_vec_goes_out_uncopied_as_serde_would_write_it() {
    let store = VecStore::default();
    let server = spawn_server(Server::builder().add_service(VecsServer::new(store.clone()))).await;
    let recording = Recording {
        inner: Client::connect(server.addr).await.unwrap(),
        calls: Arc::default(),
    };
    let client = VecsClient::new(recording.clone());
    for (size, spare) in [(1023, 0), (1024, 0), (4096, 100), (70_000, 0), (300_000, 1)] {
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let mut payload = Vec::with_capacity(size + spare);
        payload.extend_from_slice(&bytes);
        let sent_from = payload.as_ptr();
        // Through a real server and back: the same bytes.
        assert_eq!(client.echo(payload).await.unwrap(), bytes, "{size}");
        let call = recording.calls.lock().unwrap().pop().unwrap();
        let tail = call.body.parts().1;
        assert_eq!(
            tail.as_ptr() == sent_from && tail.len() == size,
            size >= 1024,
            "{size}: the argument's buffer is the body's second part"
        );
        // The arguments struct: a map of one entry, "payload" to a `bin`.
        let serde = [&b"\x81\xa7payload"[..], &bin(&bytes)].concat();
        assert_eq!(call.body, Bytes::from(serde.clone()), "{size}");

        // The generated server's reply: the header, then the buffer the handler returned.
        let request = prpc::Request::new("echo", Format::MsgPack, Bytes::from(serde));
        let response = VecsServer::new(store.clone()).call(request).await.unwrap();
        let replied_from = store.replied_from.lock().unwrap().pop().unwrap();
        let tail = response.body.parts().1;
        assert_eq!(
            tail.as_ptr() as usize == replied_from && tail.len() == size,
            size >= 1024,
            "{size}: the result's buffer is the reply's second part"
        );
        assert_eq!(response.body, Bytes::from(bin(&bytes)), "{size}");
    }
}
