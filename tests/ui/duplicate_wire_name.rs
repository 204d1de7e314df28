#[prpc::service]
pub trait Arith {
    async fn add(&self, a: i32, b: i32) -> i32;
    #[prpc(name = "add")]
    async fn plus(&self, a: i32, b: i32) -> i32;
}

fn main() {}
