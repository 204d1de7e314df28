#[prpc::service]
pub struct Arith;

fn main() {}
