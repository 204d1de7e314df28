#[prpc::service]
pub trait Store {
    const CAPACITY: usize;
    type Key;
    async fn get(&self, key: String) -> Option<u64>;
}

fn main() {}
