#[prpc::service]
pub trait Registry {
    async fn new(&self, name: String) -> u64;
    async fn connect(&self, from: u64, to: u64);
    async fn clone(&self) -> u64;
}

fn main() {}
