#[prpc::service]
pub trait Counter {
    async fn zero() -> u64;
}

fn main() {}
