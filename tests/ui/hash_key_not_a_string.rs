#[prpc::service]
pub trait Profiles {
    #[prpc(hash_key = user_id)]
    async fn name(&self, user_id: u64) -> String;
    #[prpc(hash_key = 0)]
    async fn first(&self, user_id: u64) -> String;
    #[prpc(hash_key = "")]
    async fn last(&self, user_id: u64) -> String;
}

fn main() {}
