use prpc::Streaming;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct FeedError;

#[prpc::service]
pub trait Feed {
    async fn merge(&self, left: Streaming<String>, right: Streaming<String>) -> u64;
    async fn watch(&self, topic: String) -> Result<Streaming<String>, FeedError>;
    async fn poll(&self) -> Streaming<Result<String, prpc::Status>>;
}

#[prpc::service(protobuf)]
pub trait Proto {
    async fn upload(&self, first: (), lines: Streaming<()>, second: ()) -> ();
}

fn main() {}
