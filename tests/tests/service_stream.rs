//! Streaming methods of `#[prpc::service]`: server, client and bidirectional streams between a
//! generated client and server over real sockets, in JSON, MessagePack and protobuf.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use prpc::{Call, Code, Error, Format, Metadata, Status, Streaming};
use serde::{Deserialize, Serialize};

/// Why a word did not parse: the typed error of one item.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum ParseError {
    NotANumber(String),
}

/// Why a sum has no value: the typed error of a whole client-streaming call.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum SumError {
    Overflow,
}

/// A value whose encoding fails for 13, to see an item that will not encode.
#[derive(Debug, PartialEq, Deserialize)]
pub struct Picky(pub u32);

impl Serialize for Picky {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 == 13 {
            return Err(serde::ser::Error::custom("13 does not encode"));
        }
        serializer.serialize_newtype_struct("Picky", &self.0)
    }
}

#[prpc::service(name = "test.Streams")]
pub trait Streams {
    /// `0..count`, in order.
    async fn count(&self, count: u32) -> prpc::Streaming<u32>;
    /// Each word as a number; a word that is not one is a typed error for that item alone.
    async fn parse(&self, words: Vec<String>) -> prpc::Streaming<Result<i64, ParseError>>;
    /// The client's numbers summed, plus `offset`: the stream argument sits between the
    /// others, which travel in the request's body.
    async fn sum(
        &self,
        start: i64,
        numbers: prpc::Streaming<i64>,
        offset: i64,
    ) -> Result<i64, SumError>;
    /// Echoes each line with `prefix`; once the client has ended its side, one more line
    /// that counts them.
    #[prpc(name = "Chat")]
    async fn chat(&self, prefix: String, lines: Streaming<String>) -> Streaming<String>;
    /// `0..count`, then the stream ends with a data_loss status.
    async fn fail_after(&self, count: u32) -> Streaming<u32>;
    /// Three items and a trailer with `items: 3`.
    async fn with_trailer(&self) -> Streaming<u32>;
    /// A stream, or the call refused with permission_denied.
    async fn guarded(&self, allow: bool) -> Result<Streaming<u32>, prpc::Status>;
    /// A stream that never ends.
    async fn forever(&self) -> Streaming<u32>;
    /// `from..to` as `Picky`: the stream ends where an item does not encode.
    async fn picky(&self, from: u32, to: u32) -> Streaming<Picky>;
    /// Counts the client's items: a client stream with nothing else.
    async fn tally(&self, items: Streaming<Picky>) -> u32;
    /// Counts the client's items and its typed item errors: `Result` items from the client.
    async fn audit(&self, results: Streaming<Result<i64, ParseError>>) -> (u32, Vec<ParseError>);
    /// A unary method beside the streams.
    async fn add(&self, a: i64, b: i64) -> i64;
}

struct Impl;

impl Streams for Impl {
    async fn count(&self, count: u32) -> Streaming<u32> {
        Streaming::from_iter(0..count)
    }

    async fn parse(&self, words: Vec<String>) -> Streaming<Result<i64, ParseError>> {
        Streaming::from_iter(words.into_iter().map(|word| {
            word.parse()
                .map_err(|_| ParseError::NotANumber(word.clone()))
        }))
    }

    async fn sum(
        &self,
        start: i64,
        mut numbers: Streaming<i64>,
        offset: i64,
    ) -> Result<i64, SumError> {
        let mut sum = start.checked_add(offset).ok_or(SumError::Overflow)?;
        while let Some(number) = numbers.message().await.expect("a number") {
            sum = sum.checked_add(number).ok_or(SumError::Overflow)?;
        }
        Ok(sum)
    }

    async fn chat(&self, prefix: String, lines: Streaming<String>) -> Streaming<String> {
        Streaming::try_new(Chat {
            prefix,
            lines,
            seen: 0,
            ended: false,
        })
    }

    async fn fail_after(&self, count: u32) -> Streaming<u32> {
        let items = (0..count)
            .map(Ok)
            .chain([Err(Status::new(Code::DataLoss, "the disk is on fire"))]);
        Streaming::try_new(iter(items))
    }

    async fn with_trailer(&self) -> Streaming<u32> {
        let mut trailer = Metadata::new();
        trailer.insert("items", "3");
        Streaming::from_iter([1, 2, 3]).with_trailer(trailer)
    }

    async fn guarded(&self, allow: bool) -> Result<Streaming<u32>, Status> {
        if allow {
            Ok(Streaming::from_iter([7]))
        } else {
            Err(Status::new(Code::PermissionDenied, "not for you"))
        }
    }

    async fn forever(&self) -> Streaming<u32> {
        Streaming::new(Pending)
    }

    async fn picky(&self, from: u32, to: u32) -> Streaming<Picky> {
        Streaming::from_iter((from..to).map(Picky))
    }

    async fn tally(&self, mut items: Streaming<Picky>) -> u32 {
        let mut tally = 0;
        while let Ok(Some(_)) = items.message().await {
            tally += 1;
        }
        tally
    }

    async fn audit(
        &self,
        mut results: Streaming<Result<i64, ParseError>>,
    ) -> (u32, Vec<ParseError>) {
        let (mut oks, mut errors) = (0, Vec::new());
        while let Some(result) = results.message().await.expect("an item") {
            match result {
                Ok(_) => oks += 1,
                Err(error) => errors.push(error),
            }
        }
        (oks, errors)
    }

    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

/// The stream `chat` answers with.
struct Chat {
    prefix: String,
    lines: Streaming<String>,
    seen: u32,
    ended: bool,
}

impl Stream for Chat {
    type Item = Result<String, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.lines).poll_next(cx) {
            Poll::Ready(Some(Ok(line))) => {
                this.seen += 1;
                Poll::Ready(Some(Ok(format!("{}{line}", this.prefix))))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            // The client has ended its side: the server still has something to say.
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(Some(Ok(format!("after the end: {} lines", this.seen))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// `futures::stream::iter`, without the dependency.
fn iter<I: IntoIterator>(items: I) -> Iter<I::IntoIter> {
    Iter(items.into_iter())
}

struct Iter<I>(I);

impl<I: Iterator + Unpin> Stream for Iter<I> {
    type Item = I::Item;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.next())
    }
}

/// The items sent into a tokio channel, as a stream that ends when every sender is gone.
struct Receiver<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

/// A stream with no items that never ends.
struct Pending;

impl Stream for Pending {
    type Item = u32;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u32>> {
        Poll::Pending
    }
}

/// Every item of `stream` to its end.
async fn collect<T>(mut stream: Streaming<T>) -> Vec<Result<T, Error>> {
    let mut items = Vec::new();
    while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
        items.push(item);
    }
    items
}

async fn serve() -> prpc::Client {
    let server = prpc::Server::builder()
        .add_service(StreamsServer::new(Impl))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = server.local_addr();
    tokio::spawn(server.serve());
    prpc::Client::connect(addr).await.expect("connect")
}

/// The client in each serde format.
async fn clients() -> Vec<StreamsClient> {
    let client = StreamsClient::new(serve().await);
    vec![
        client.clone().with_format(Format::Json),
        client.with_format(Format::MsgPack),
    ]
}

#[tokio::test]
async fn a_server_stream_delivers_a_thousand_items_in_order() {
    for client in clients().await {
        let mut stream = client.count(1000).await.unwrap();
        let mut expected = 0;
        while let Some(item) = stream.message().await.unwrap() {
            assert_eq!(item, expected);
            expected += 1;
        }
        assert_eq!(expected, 1000, "{:?}", client.options().format);
    }
}

#[tokio::test]
async fn typed_item_errors_arrive_as_items_and_the_stream_goes_on() {
    for client in clients().await {
        let words = ["1", "two", "3"].map(String::from).to_vec();
        let items = collect(client.parse(words).await.unwrap()).await;
        let items: Vec<_> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            items,
            [Ok(1), Err(ParseError::NotANumber("two".into())), Ok(3)]
        );
    }
}

#[tokio::test]
async fn a_client_stream_is_answered_once_it_ends() {
    for client in clients().await {
        let sum = client.sum(1000, iter(1..=100), 5).await.unwrap();
        assert_eq!(sum, Ok(1000 + 5050 + 5));
        // The reply's application error comes back typed, as for a unary call.
        let overflow = client.sum(i64::MAX, iter([1]), 0).await.unwrap();
        assert_eq!(overflow, Err(SumError::Overflow));
        assert_eq!(client.sum(0, iter([]), 0).await.unwrap(), Ok(0));
    }
}

#[tokio::test]
async fn a_client_streams_typed_item_errors_too() {
    for client in clients().await {
        let results = [
            Ok(1),
            Err(ParseError::NotANumber("x".into())),
            Ok(2),
            Err(ParseError::NotANumber("y".into())),
        ];
        let (oks, errors) = client.audit(iter(results)).await.unwrap();
        assert_eq!(oks, 2);
        assert_eq!(
            errors,
            [
                ParseError::NotANumber("x".into()),
                ParseError::NotANumber("y".into())
            ]
        );
    }
}

#[tokio::test]
async fn bidi_echoes_and_the_server_keeps_sending_after_the_clients_end() {
    for client in clients().await {
        let (lines, receiver) = tokio::sync::mpsc::channel(4);
        let mut replies = client.chat("> ".into(), Receiver(receiver)).await.unwrap();
        // Each reply comes while the client's side is still open.
        for line in ["a", "b", "c"] {
            lines.send(line.to_owned()).await.unwrap();
            assert_eq!(
                replies.message().await.unwrap().unwrap(),
                format!("> {line}")
            );
        }
        drop(lines);
        assert_eq!(
            replies.message().await.unwrap().unwrap(),
            "after the end: 3 lines"
        );
        assert_eq!(replies.message().await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_status_mid_stream_ends_it_after_the_items_before_it() {
    for client in clients().await {
        let mut items = collect(client.fail_after(3).await.unwrap()).await;
        let Some(Err(Error::Status(status))) = items.pop() else {
            panic!("the last item is not the status: {items:?}");
        };
        assert_eq!(status.code(), Code::DataLoss);
        assert_eq!(status.message(), "the disk is on fire");
        let items: Vec<u32> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(items, [0, 1, 2]);
    }
}

#[tokio::test]
async fn the_trailers_metadata_reaches_the_client() {
    for client in clients().await {
        let mut stream = client.with_trailer().await.unwrap();
        assert!(stream.trailer().is_none(), "no trailer before the end");
        let mut items = Vec::new();
        while let Some(item) = stream.message().await.unwrap() {
            items.push(item);
        }
        assert_eq!(items, [1, 2, 3]);
        let trailer = stream.trailer().expect("the trailer");
        assert_eq!(trailer.get("items").as_deref(), Some(&b"3"[..]));
    }
}

#[tokio::test]
async fn a_handler_refuses_a_stream_with_a_status() {
    for client in clients().await {
        let items = collect(client.guarded(true).await.unwrap()).await;
        assert_eq!(
            items.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [7]
        );
        // The call is open before the handler answers: the refusal is the stream's one item.
        let refused = match client.guarded(false).await {
            Ok(stream) => collect(stream).await.pop().unwrap().unwrap_err(),
            Err(error) => error,
        };
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert_eq!(refused.status().unwrap().message(), "not for you");
    }
}

#[tokio::test]
async fn the_clients_timeout_covers_the_whole_stream() {
    for client in clients().await {
        let client = client.with_timeout(Duration::from_millis(200));
        let items = collect(client.forever().await.unwrap()).await;
        assert!(
            matches!(&items[..], [Err(Error::Timeout { .. })]),
            "{items:?}"
        );
    }
}

#[tokio::test]
async fn an_item_that_does_not_encode_ends_the_stream_with_internal() {
    for client in clients().await {
        let mut items = collect(client.picky(10, 20).await.unwrap()).await;
        let Some(Err(Error::Status(status))) = items.pop() else {
            panic!("the last item is not the status: {items:?}");
        };
        assert_eq!(status.code(), Code::Internal);
        assert!(
            status.message().contains("test.Streams/picky") && status.message().contains("13"),
            "{status:?}"
        );
        let items: Vec<u32> = items.into_iter().map(|item| item.unwrap().0).collect();
        assert_eq!(items, [10, 11, 12]);

        // The client's own item that does not encode fails its call.
        assert_eq!(client.tally(iter((0..5).map(Picky))).await.unwrap(), 5);
        let error = client.tally(iter((10..20).map(Picky))).await.unwrap_err();
        assert_eq!(error.code(), Code::Internal, "{error:?}");
        assert!(error.to_string().contains("did not encode"), "{error}");
    }
}

/// The same service as another version of it sees it: other item types.
#[prpc::service(name = "test.Streams", server = false)]
pub trait OtherStreams {
    /// The server sends `u32`s.
    async fn count(&self, count: u32) -> Streaming<String>;
    /// The server sends typed item errors this version knows nothing of.
    async fn parse(&self, words: Vec<String>) -> Streaming<i64>;
}

#[tokio::test]
async fn items_that_do_not_decode_are_errors_never_wrong_values() {
    let channel = serve().await;
    for format in [Format::Json, Format::MsgPack] {
        let client = OtherStreamsClient::new(channel.clone()).with_format(format);
        let items = collect(client.count(2).await.unwrap()).await;
        assert_eq!(items.len(), 2);
        for item in items {
            assert!(matches!(item, Err(Error::Body(_))), "{item:?}");
        }

        let words = ["1", "two"].map(String::from).to_vec();
        let mut items = collect(client.parse(words).await.unwrap())
            .await
            .into_iter();
        assert_eq!(items.next().unwrap().unwrap(), 1);
        let error = items.next().unwrap().unwrap_err();
        assert_eq!(error.code(), Code::Application, "{error:?}");
        assert!(items.next().is_none());
    }
}

#[tokio::test]
async fn unary_and_stream_requests_go_only_to_their_kind_of_method() {
    let channel = serve().await;
    let client = StreamsClient::new(channel.clone());
    assert_eq!(client.add(2, 3).await.unwrap(), 5);

    // A unary request to a streaming method.
    let call = Call::new(
        "test.Streams",
        "count",
        Format::Json,
        r#"{"count":3}"#.into(),
    );
    let error = channel.call(call).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.to_string().contains("is a streaming method"),
        "{error}"
    );

    // A stream request to a unary method.
    let call = Call::new(
        "test.Streams",
        "add",
        Format::Json,
        r#"{"a":1,"b":2}"#.into(),
    )
    .stream(None);
    let error = match channel.call(call).await {
        Ok(reply) => reply.messages.unwrap().reply().await.unwrap_err(),
        Err(error) => error,
    };
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.to_string().contains("is not a streaming method"),
        "{error}"
    );
}

mod protobuf {
    //! The same shapes in a protobuf service: each item a prost message.

    use super::{collect, iter};
    use prpc::Streaming;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Range {
        #[prost(uint32, tag = "1")]
        pub count: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Reading {
        #[prost(int64, tag = "1")]
        pub value: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Summary {
        #[prost(int64, tag = "1")]
        pub total: i64,
        #[prost(uint32, tag = "2")]
        pub count: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ReadingError {
        #[prost(string, tag = "1")]
        pub reason: String,
    }

    #[prpc::service(protobuf, name = "test.Sensors")]
    pub trait Sensors {
        /// `count` readings; every third is a typed error.
        async fn readings(&self, range: Range) -> Streaming<Result<Reading, ReadingError>>;
        /// The readings' total.
        async fn total(&self, readings: Streaming<Reading>) -> Summary;
        /// Each reading doubled, as it comes.
        async fn double(&self, readings: Streaming<Reading>) -> Streaming<Reading>;
    }

    struct Board;

    impl Sensors for Board {
        async fn readings(&self, range: Range) -> Streaming<Result<Reading, ReadingError>> {
            Streaming::from_iter((0..range.count).map(|i| match i % 3 {
                2 => Err(ReadingError {
                    reason: format!("sensor {i} is down"),
                }),
                _ => Ok(Reading { value: i.into() }),
            }))
        }

        async fn total(&self, mut readings: Streaming<Reading>) -> Summary {
            let mut summary = Summary::default();
            while let Some(reading) = readings.message().await.unwrap() {
                summary.total += reading.value;
                summary.count += 1;
            }
            summary
        }

        async fn double(&self, readings: Streaming<Reading>) -> Streaming<Reading> {
            Streaming::try_new(super::Map(readings, |reading: Reading| Reading {
                value: reading.value * 2,
            }))
        }
    }

    #[tokio::test]
    async fn protobuf_streams_carry_messages() {
        let server = prpc::Server::builder()
            .add_service(SensorsServer::new(Board))
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.serve());
        let client = SensorsClient::connect(addr).await.unwrap();

        let readings = collect(client.readings(Range { count: 5 }).await.unwrap()).await;
        let readings: Vec<_> = readings.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            readings,
            [
                Ok(Reading { value: 0 }),
                Ok(Reading { value: 1 }),
                Err(ReadingError {
                    reason: "sensor 2 is down".into()
                }),
                Ok(Reading { value: 3 }),
                Ok(Reading { value: 4 }),
            ]
        );

        let summary = client
            .total(iter((1..=10).map(|value| Reading { value })))
            .await
            .unwrap();
        assert_eq!(
            summary,
            Summary {
                total: 55,
                count: 10
            }
        );

        let doubled = collect(
            client
                .double(iter((1..=3).map(|value| Reading { value })))
                .await
                .unwrap(),
        )
        .await;
        let doubled: Vec<i64> = doubled.into_iter().map(|r| r.unwrap().value).collect();
        assert_eq!(doubled, [2, 4, 6]);
    }
}

/// A stream's items through `f`.
struct Map<S, F>(S, F);

impl<T, U, F: FnMut(T) -> U + Unpin, S: Stream<Item = Result<T, Error>> + Unpin> Stream
    for Map<S, F>
{
    type Item = Result<U, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        Pin::new(&mut this.0)
            .poll_next(cx)
            .map(|item| item.map(|item| item.map(&mut this.1)))
    }
}
