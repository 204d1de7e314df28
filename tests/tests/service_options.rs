//! Per-call options of a generated client: what reaches the channel, and what the server does
//! with it. The method signatures never change.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prpc::{Call, CallOptions, Channel, Client, Code, Compression, Error, Format, Reply};

#[prpc::service]
pub trait Blob {
    async fn reverse(&self, data: Vec<u8>) -> Vec<u8>;
    #[prpc(idempotent)]
    async fn len(&self, data: Vec<u8>) -> u64;
    /// Never answers.
    async fn hang(&self);
}

struct Reverser;

impl Blob for Reverser {
    async fn reverse(&self, mut data: Vec<u8>) -> Vec<u8> {
        data.reverse();
        data
    }

    async fn len(&self, data: Vec<u8>) -> u64 {
        data.len() as u64
    }

    async fn hang(&self) {
        std::future::pending::<()>().await;
    }
}

async fn serve_blob() -> SocketAddr {
    let server = prpc::Server::builder()
        .add_service(BlobServer::new(Reverser))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = server.local_addr().socket_addr().unwrap();
    tokio::spawn(server.serve());
    addr
}

/// A channel that keeps a copy of every call before passing it on: any `Channel` works under
/// a generated client.
#[derive(Clone)]
struct Recording {
    inner: Client,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Channel for Recording {
    fn default_options(&self) -> &CallOptions {
        self.inner.default_options()
    }

    fn call(&self, call: Call) -> impl Future<Output = Result<Reply, Error>> + Send {
        self.calls.lock().unwrap().push(call.clone());
        self.inner.call(call)
    }
}

#[tokio::test]
async fn options_reach_the_channel_with_each_call() {
    let addr = serve_blob().await;
    let recording = Recording {
        inner: Client::connect(addr).await.unwrap(),
        calls: Arc::default(),
    };
    let client = BlobClient::new(recording.clone());

    assert_eq!(client.reverse(vec![1, 2, 3]).await.unwrap(), [3, 2, 1]);
    let tuned = client
        .clone()
        .with_timeout(Duration::from_secs(30))
        .with_options(
            CallOptions::new()
                .compression(Compression::Gzip)
                .metadata("tenant", "acme"),
        )
        .with_format(Format::Json);
    assert_eq!(tuned.reverse(vec![4, 5]).await.unwrap(), [5, 4]);
    // The original client kept its own (empty) options.
    assert_eq!(client.reverse(vec![6]).await.unwrap(), [6]);

    let calls = recording.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    for call in &calls {
        assert_eq!(&*call.service, "Blob");
        assert_eq!(&*call.method, "reverse");
    }
    // Unset: the channel's default format, no options of the client's own.
    assert_eq!(calls[0].format, Format::MsgPack);
    assert_eq!(calls[0].options.timeout, None);
    assert!(calls[0].options.metadata.is_empty());

    let options = &calls[1].options;
    assert_eq!(calls[1].format, Format::Json);
    // A `Vec<u8>` travels as base64 text in JSON.
    assert_eq!(calls[1].body, br#"{"data":"BAU="}"#);
    assert_eq!(options.timeout, Some(Duration::from_secs(30)));
    assert_eq!(options.compression, Some(Compression::Gzip));
    assert_eq!(
        options.metadata.get("tenant").as_deref(),
        Some(&b"acme"[..])
    );

    assert_eq!(calls[2].format, Format::MsgPack);
    assert_eq!(calls[2].options.timeout, None);
}

#[tokio::test]
async fn idempotent_methods_mark_their_calls() {
    let addr = serve_blob().await;
    let recording = Recording {
        inner: Client::connect(addr).await.unwrap(),
        calls: Arc::default(),
    };
    let client = BlobClient::new(recording.clone());
    assert_eq!(client.len(vec![1, 2, 3]).await.unwrap(), 3);
    assert_eq!(client.reverse(vec![1, 2]).await.unwrap(), [2, 1]);

    let calls = recording.calls.lock().unwrap().clone();
    assert_eq!(&*calls[0].method, "len");
    assert!(calls[0].idempotent);
    assert_eq!(&*calls[1].method, "reverse");
    assert!(!calls[1].idempotent);
    assert_eq!(BlobClient::IDEMPOTENT_METHODS, ["len"]);
}

#[tokio::test]
async fn later_options_override_earlier_ones_field_by_field() {
    let addr = serve_blob().await;
    let client = BlobClient::connect(addr)
        .await
        .unwrap()
        .with_options(
            CallOptions::new()
                .timeout(Duration::from_secs(10))
                .format(Format::Json),
        )
        .with_timeout(Duration::from_secs(20));
    assert_eq!(client.options().timeout, Some(Duration::from_secs(20)));
    assert_eq!(client.options().format, Some(Format::Json));
    assert_eq!(client.reverse(vec![1, 2]).await.unwrap(), [2, 1]);
}

#[tokio::test]
async fn a_timeout_ends_a_call_the_server_never_answers() {
    let addr = serve_blob().await;
    let client = BlobClient::connect(addr).await.unwrap();
    let error = client
        .clone()
        .with_timeout(Duration::from_millis(200))
        .hang()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");
    // The connection still serves other calls.
    assert_eq!(client.reverse(vec![7, 8]).await.unwrap(), [8, 7]);
}

#[tokio::test]
async fn compressed_calls_round_trip_in_every_codec() {
    let addr = serve_blob().await;
    let client = BlobClient::connect(addr).await.unwrap();
    // Large and repetitive, so it is over any compression threshold and compresses well.
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut expected = data.clone();
    expected.reverse();
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Zstd,
        Compression::Lz4,
    ] {
        for format in [Format::Json, Format::MsgPack] {
            let client = client
                .clone()
                .with_format(format)
                .with_options(CallOptions::new().compression(compression));
            assert_eq!(
                client.reverse(data.clone()).await.unwrap(),
                expected,
                "{compression:?} {format}"
            );
        }
    }
}
