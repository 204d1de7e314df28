use prpc::Streaming;

#[prpc::service]
pub trait Feed {
    #[prpc(idempotent)]
    async fn watch(&self, topic: String) -> Streaming<String>;
    #[prpc(idempotent, name = "Upload")]
    async fn upload(&self, lines: prpc::Streaming<String>) -> u64;
}

fn main() {}
