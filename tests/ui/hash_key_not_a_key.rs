#[derive(serde::Serialize, serde::Deserialize)]
pub struct User {
    pub id: u64,
}

#[prpc::service(server = false)]
pub trait Profiles {
    #[prpc(hash_key = "user")]
    async fn name(&self, user: User) -> String;
}

fn main() {}
