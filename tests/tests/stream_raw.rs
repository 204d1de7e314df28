//! Streams through the runtime alone, with a hand-written service: the seam generated code
//! builds on.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use prpc::stream::{Message, MessageStream};
use prpc::{Call, Format, Request, Response, Service, ServiceFuture, Status};

/// `count`: the body is a number n; streams "0".."n-1". `echo`: streams back each client
/// message, then a trailer with `count` = messages seen. `sum`: a client stream of numbers,
/// answered with their sum in the trailer body.
struct Streams;

struct Count(u32, u32);

impl Stream for Count {
    type Item = Result<Message, Status>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.0 == self.1 {
            return Poll::Ready(None);
        }
        self.0 += 1;
        Poll::Ready(Some(Ok(Message::new(Bytes::from(
            (self.0 - 1).to_string(),
        )))))
    }
}

async fn next(messages: &mut prpc::stream::Messages) -> Option<Result<Message, prpc::Error>> {
    std::future::poll_fn(|cx| Pin::new(&mut *messages).poll_next(cx)).await
}

impl Service for Streams {
    fn name(&self) -> &str {
        "Streams"
    }
    fn methods(&self) -> Vec<String> {
        vec!["count".into(), "echo".into(), "sum".into()]
    }
    fn call(&self, mut request: Request) -> ServiceFuture {
        Box::pin(async move {
            match &*request.method {
                "count" => {
                    let n: u32 = std::str::from_utf8(&request.body).unwrap().parse().unwrap();
                    Ok(Response::stream(Box::pin(Count(0, n)), Default::default()))
                }
                "sum" => {
                    let mut messages = request.messages.take().unwrap();
                    let mut sum = 0i64;
                    while let Some(message) = next(&mut messages).await {
                        let message = message.map_err(|e| Status::internal(e.to_string()))?;
                        sum += std::str::from_utf8(&message.body)
                            .unwrap()
                            .parse::<i64>()
                            .unwrap();
                    }
                    Ok(Response::new(Bytes::from(sum.to_string())))
                }
                "echo" => {
                    let messages = request.messages.take().unwrap();
                    let echoed: MessageStream = Box::pin(Echo(messages));
                    Ok(Response::stream(echoed, Default::default()))
                }
                _ => Err(Status::unimplemented("no")),
            }
        })
    }
}

struct Echo(prpc::stream::Messages);

impl Stream for Echo {
    type Item = Result<Message, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|m| m.map(|m| m.map_err(|e| Status::internal(e.to_string()))))
    }
}

async fn serve() -> prpc::Client {
    let server = prpc::Server::builder()
        .add_service(Streams)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.serve());
    prpc::Client::connect(addr).await.unwrap()
}

#[tokio::test]
async fn a_server_stream_arrives_in_order_and_ends_with_its_trailer() {
    let client = serve().await;
    let call = Call::new("Streams", "count", Format::Raw, Bytes::from("1000")).stream(None);
    let reply = client.call(call).await.unwrap();
    let mut messages = reply.messages.unwrap();
    let mut seen = 0;
    while let Some(message) = next(&mut messages).await {
        assert_eq!(message.unwrap().body, Bytes::from(seen.to_string()));
        seen += 1;
    }
    assert_eq!(seen, 1000);
    assert!(messages.trailer().is_some());
}

#[tokio::test]
async fn a_client_stream_is_summed_and_bidi_echoes() {
    let client = serve().await;
    let numbers: MessageStream = Box::pin(Count(0, 100));
    let call = Call::new("Streams", "sum", Format::Raw, Bytes::new()).stream(Some(numbers));
    let reply = client.call(call).await.unwrap();
    let reply = reply.messages.unwrap().reply().await.unwrap();
    assert_eq!(reply.body, Bytes::from((0..100).sum::<i64>().to_string()));

    let numbers: MessageStream = Box::pin(Count(0, 50));
    let call = Call::new("Streams", "echo", Format::Raw, Bytes::new()).stream(Some(numbers));
    let mut messages = client.call(call).await.unwrap().messages.unwrap();
    let mut seen = 0;
    while let Some(message) = next(&mut messages).await {
        assert_eq!(message.unwrap().body, Bytes::from(seen.to_string()));
        seen += 1;
    }
    assert_eq!(seen, 50);
    let _ = Arc::new(());
}
