#[prpc::service]
pub trait Arith {
    fn add(&self, a: i32, b: i32) -> i32;
}

fn main() {}
