#[prpc::service]
pub trait Store<T> {
    async fn get(&self, key: String) -> Option<u64>;
}

fn main() {}
