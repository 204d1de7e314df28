#[prpc::service(format = "json")]
pub trait Arith {
    async fn add(&self, a: i32, b: i32) -> i32;
}

#[prpc::service]
pub trait Store {
    #[prpc(retries = 3)]
    async fn get(&self, key: String) -> Option<u64>;
}

fn main() {}
