#[prpc::service]
pub trait Profiles {
    #[prpc(hash_key = "user_id", hash_key = "user_id")]
    async fn rename(&self, user_id: u64, name: String);
    // One key per method, however the attributes are split.
    #[prpc(hash_key = "user_id")]
    #[prpc(idempotent, hash_key = "name")]
    async fn find(&self, user_id: u64, name: String) -> u64;
}

fn main() {}
