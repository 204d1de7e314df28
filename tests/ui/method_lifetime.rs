#[prpc::service]
pub trait Store {
    async fn get<'a>(&self, key: String) -> Option<u64>;
}

fn main() {}
