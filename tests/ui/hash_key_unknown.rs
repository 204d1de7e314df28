#[prpc::service]
pub trait Profiles {
    #[prpc(hash_key = "user")]
    async fn name(&self, user_id: u64) -> String;
    #[prpc(hash_key = "user_id")]
    async fn count(&self) -> u64;
    #[prpc(hash_key = "user_id", hash_key = "user_id")]
    async fn rename(&self, user_id: u64, name: String);
}

fn main() {}
