//! A client and a server built from different versions of one trait: every mismatch is a clear
//! error or a compatible answer, never a hang or a wrong value.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use prpc::{Code, Error, Format};

/// The first version of the service.
mod v1 {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum StoreError {
        Missing,
    }

    #[prpc::service(name = "inventory.Store")]
    pub trait Store {
        async fn get(&self, key: String) -> Option<u64>;
        async fn set(&self, key: String, value: u64);
        /// Returns a number here; the next version returns text.
        async fn price(&self, key: String) -> u64;
        /// Removed in the next version.
        async fn legacy_count(&self) -> u64;
        async fn take(&self, key: String) -> Result<u64, StoreError>;
    }
}

/// The next version: a method added, one removed, an argument added, a return type changed,
/// an error variant added.
mod v2 {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum StoreError {
        Missing,
        Locked { by: String },
    }

    #[prpc::service(name = "inventory.Store")]
    pub trait Store {
        async fn get(&self, key: String) -> Option<u64>;
        async fn set(&self, key: String, value: u64, ttl_seconds: Option<u64>);
        async fn price(&self, key: String) -> String;
        /// Added in this version.
        async fn count(&self) -> u64;
        async fn take(&self, key: String) -> Result<u64, StoreError>;
    }
}

#[derive(Default)]
struct Memory {
    items: Mutex<HashMap<String, u64>>,
}

impl v1::Store for Memory {
    async fn get(&self, key: String) -> Option<u64> {
        self.items.lock().unwrap().get(&key).copied()
    }

    async fn set(&self, key: String, value: u64) {
        self.items.lock().unwrap().insert(key, value);
    }

    async fn price(&self, _key: String) -> u64 {
        12
    }

    async fn legacy_count(&self) -> u64 {
        self.items.lock().unwrap().len() as u64
    }

    async fn take(&self, key: String) -> Result<u64, v1::StoreError> {
        self.items
            .lock()
            .unwrap()
            .remove(&key)
            .ok_or(v1::StoreError::Missing)
    }
}

impl v2::Store for Memory {
    async fn get(&self, key: String) -> Option<u64> {
        self.items.lock().unwrap().get(&key).copied()
    }

    async fn set(&self, key: String, value: u64, _ttl_seconds: Option<u64>) {
        self.items.lock().unwrap().insert(key, value);
    }

    async fn price(&self, _key: String) -> String {
        "12.00 EUR".into()
    }

    async fn count(&self) -> u64 {
        self.items.lock().unwrap().len() as u64
    }

    async fn take(&self, key: String) -> Result<u64, v2::StoreError> {
        if key == "locked" {
            return Err(v2::StoreError::Locked { by: "job 7".into() });
        }
        self.items
            .lock()
            .unwrap()
            .remove(&key)
            .ok_or(v2::StoreError::Missing)
    }
}

async fn serve(service: impl prpc::Service) -> SocketAddr {
    let server = prpc::Server::builder()
        .add_service(service)
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = server.local_addr().socket_addr().unwrap();
    tokio::spawn(server.serve());
    addr
}

/// Awaits a call, failing the test if it hangs instead of answering.
async fn answered<T>(call: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the call hung instead of answering")
}

fn assert_unimplemented(error: &Error, method: &str) {
    let status = error.status().expect("the server answered");
    assert_eq!(status.code(), Code::Unimplemented, "{status}");
    assert_eq!(
        status.message(),
        format!("no method \"{method}\" on service \"inventory.Store\"")
    );
}

#[tokio::test]
async fn an_old_client_against_a_new_server() {
    let addr = serve(v2::StoreServer::new(Memory::default())).await;
    let connected = v1::StoreClient::connect(addr).await.unwrap();
    for format in [Format::Json, Format::MsgPack] {
        let client = connected.clone().with_format(format);
        // Unchanged methods work; a call without the new optional argument reads it as None.
        answered(client.set("apples".into(), 3)).await.unwrap();
        assert_eq!(
            answered(client.get("apples".into())).await.unwrap(),
            Some(3)
        );

        // The removed method: a clear status.
        let error = answered(client.legacy_count()).await.unwrap_err();
        assert_unimplemented(&error, "legacy_count");

        // The changed return type: a decode error on the client, never a wrong number.
        let error = answered(client.price("apples".into())).await.unwrap_err();
        assert!(matches!(error, Error::Body(_)), "{format}: {error:?}");

        // A known error variant arrives typed; one the old client has no variant for arrives
        // as the application status with the server's message.
        assert_eq!(
            answered(client.take("pears".into())).await.unwrap(),
            Err(v1::StoreError::Missing)
        );
        let error = answered(client.take("locked".into())).await.unwrap_err();
        let status = error.status().expect("the server answered");
        assert_eq!(status.code(), Code::Application);
        assert!(status.message().contains("StoreError"), "{status}");
    }
}

#[tokio::test]
async fn a_new_client_against_an_old_server() {
    let addr = serve(v1::StoreServer::new(Memory::default())).await;
    let connected = v2::StoreClient::connect(addr).await.unwrap();
    for format in [Format::Json, Format::MsgPack] {
        let client = connected.clone().with_format(format);
        // The old server ignores the argument it does not know.
        answered(client.set("apples".into(), 5, Some(60)))
            .await
            .unwrap();
        assert_eq!(
            answered(client.get("apples".into())).await.unwrap(),
            Some(5)
        );

        // The added method: a clear status.
        let error = answered(client.count()).await.unwrap_err();
        assert_unimplemented(&error, "count");

        let error = answered(client.price("apples".into())).await.unwrap_err();
        assert!(matches!(error, Error::Body(_)), "{format}: {error:?}");

        assert_eq!(answered(client.take("apples".into())).await.unwrap(), Ok(5));
        assert_eq!(
            answered(client.take("apples".into())).await.unwrap(),
            Err(v2::StoreError::Missing)
        );
    }
}

#[tokio::test]
async fn a_removed_argument_is_invalid_argument() {
    /// A version whose `set` lost its `value`.
    mod v0 {
        #[prpc::service(name = "inventory.Store")]
        pub trait Store {
            async fn set(&self, key: String);
        }
    }

    let addr = serve(v2::StoreServer::new(Memory::default())).await;
    let client = v0::StoreClient::connect(addr).await.unwrap();
    let error = answered(client.set("apples".into())).await.unwrap_err();
    let status = error.status().expect("the server answered");
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(status.message().contains("value"), "{status}");
}
