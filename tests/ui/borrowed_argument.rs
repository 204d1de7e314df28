#[prpc::service]
pub trait Greeter {
    async fn greet(&self, name: &str) -> String;
    async fn count(&self, items: Vec<&[u8]>) -> usize;
}

fn main() {}
