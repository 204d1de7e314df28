#[prpc::service]
pub trait Counter {
    async fn increment(&mut self, by: u64) -> u64;
}

fn main() {}
