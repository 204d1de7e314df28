use prpc::Streaming;

#[prpc::service]
pub trait Feed {
    #[prpc(hash_key = "lines")]
    async fn upload(&self, topic: String, lines: Streaming<String>) -> u64;
    // The argument of a streaming method can key it; its stream cannot.
    #[prpc(hash_key = "topic")]
    async fn publish(&self, topic: String, lines: Streaming<String>) -> u64;
}

fn main() {}
