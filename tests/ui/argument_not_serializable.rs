pub struct Opaque;

#[prpc::service]
pub trait Vault {
    async fn store(&self, item: Opaque);
}

fn main() {}
