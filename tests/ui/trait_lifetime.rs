#[prpc::service]
pub trait Store<'a> {
    async fn get(&self, key: String) -> Option<u64>;
}

fn main() {}
