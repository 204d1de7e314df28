//! The options prost-build and tonic-build users reach for, through prpc-build
//! (tests/build.rs, proto/edge/shop.proto): an extern path, `bytes::Bytes`, type and field
//! attributes, and the embedded file-descriptor set; served on loopback in both formats.

use bytes::Bytes;
use prost::Message;
use prpc::{Format, Status};

/// acme.common.v1 as generated once for the crate (with JSON); shop.proto's `Money` is this
/// type, through `extern_path(".acme.common.v1", "crate::acme_common")`.
pub mod acme_common {
    prpc::include_proto!("acme.common.v1");
}

pub mod shop {
    include!(concat!(env!("OUT_DIR"), "/shop/edge.shop.v1.rs"));
}

use acme_common::{Currency, Money};
use shop::Quote;

struct Shop;

impl shop::Shop for Shop {
    async fn price(&self, mut request: Quote) -> Result<Quote, Status> {
        request.price = Some(Money {
            currency: Currency::Eur as i32,
            units: 12,
            nanos: 0,
        });
        request.receipt = Bytes::from_static(b"paid");
        Ok(request)
    }
}

fn quote() -> Quote {
    Quote {
        sku: "sku-1".into(),
        price: None,
        // `bytes(["."])`: every bytes field, repeated ones too, is `bytes::Bytes`.
        receipt: Bytes::new(),
        stamps: vec![Bytes::from_static(&[0xff, 0])],
    }
}

#[tokio::test]
async fn extern_types_and_bytes_cross_a_real_server() {
    let server = prpc::Server::builder()
        .add_service(shop::ShopServer::new(Shop))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().socket_addr().unwrap();
    tokio::spawn(server.serve());
    let client = shop::ShopClient::connect(addr).await.unwrap();
    for format in [Format::Protobuf, Format::Json] {
        let reply = client
            .clone()
            .with_format(format)
            .price(quote())
            .await
            .unwrap();
        // The extern type is the crate's own Money.
        let price: Option<acme_common::Money> = reply.price;
        assert_eq!(price.map(|money| money.units), Some(12));
        assert_eq!(reply.receipt, Bytes::from_static(b"paid"));
        assert_eq!(reply.stamps, quote().stamps);
    }
}

#[test]
fn type_attributes_pass_through() {
    // `#[derive(PartialOrd)]` from type_attribute.
    let a = Quote {
        sku: "a".into(),
        ..quote()
    };
    assert!(a < quote());
}

#[test]
fn the_descriptor_set_is_embedded_with_imports_and_comments() {
    let set = prost_types::FileDescriptorSet::decode(shop::FILE_DESCRIPTOR_SET).unwrap();
    let names: Vec<&str> = set.file.iter().map(|file| file.name()).collect();
    // Imports first, as descriptor pools want them.
    assert_eq!(names, ["acme/common/v1/money.proto", "edge/shop.proto"]);
    let shop = &set.file[1];
    assert_eq!(shop.service[0].name(), "Shop");
    assert_eq!(shop.service[0].method[0].name(), "Price");
    let comments: Vec<&str> = shop
        .source_code_info
        .iter()
        .flat_map(|info| &info.location)
        .map(|location| location.leading_comments())
        .collect();
    assert!(comments.contains(&" Prices a quote.\n"), "{comments:?}");
}
