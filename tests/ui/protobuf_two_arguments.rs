#[derive(Clone, PartialEq, prost::Message)]
pub struct Point {
    #[prost(int32, tag = "1")]
    pub x: i32,
}

#[prpc::service(protobuf)]
pub trait Geometry {
    async fn distance(&self, from: Point, to: Point) -> Point;
}

fn main() {}
