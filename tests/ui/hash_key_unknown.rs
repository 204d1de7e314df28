#[prpc::service]
pub trait Profiles {
    #[prpc(hash_key = "user")]
    async fn name(&self, user_id: u64) -> String;
    #[prpc(hash_key = "user_id")]
    async fn count(&self) -> u64;
}

fn main() {}
