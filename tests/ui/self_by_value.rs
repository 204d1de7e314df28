#[prpc::service]
pub trait Counter {
    async fn finish(self) -> u64;
}

fn main() {}
