//! `#[prpc(hash_key = "...")]` against real servers behind a consistent-hashing cluster: the
//! argument keys each call, a key set on the client view wins over it, it wins over the
//! channel's default key, and typed keys hash the bytes `prpc::balance::HashKey` documents.

use std::collections::BTreeSet;
use std::sync::Mutex;

use prpc::balance::{Algorithm, HashKey, hash_key};
use prpc::cluster::Cluster;
use prpc::discovery::{Endpoint, StaticDiscover};
use prpc::{Call, CallOptions, Channel, Reply, Status};
use prpc_tests::{TestServer, spawn_server};

#[prpc::service]
pub trait Svc {
    /// The name of the server that answered, keyed by the user.
    #[prpc(hash_key = "user")]
    async fn who(&self, user: String) -> String;
    /// The same, keyed by an account number.
    #[prpc(hash_key = "account")]
    async fn account(&self, note: String, account: u64) -> String;
    /// The same, keyed by a tenant when there is one.
    #[prpc(hash_key = "tenant")]
    async fn tenant(&self, tenant: Option<String>) -> String;
}

/// A server that answers every call with its own name.
struct Named(&'static str);

impl Svc for Named {
    async fn who(&self, _user: String) -> String {
        self.0.to_owned()
    }

    async fn account(&self, _note: String, _account: u64) -> String {
        self.0.to_owned()
    }

    async fn tenant(&self, _tenant: Option<String>) -> String {
        self.0.to_owned()
    }
}

/// Three servers, `a`, `b` and `c`, and a consistent-hashing client over them.
async fn fleet() -> (Vec<TestServer>, SvcClient<Cluster>) {
    let mut servers = Vec::new();
    for name in ["a", "b", "c"] {
        let builder = prpc::Server::builder().add_service(SvcServer::new(Named(name)));
        servers.push(spawn_server(builder).await);
    }
    let discovery = StaticDiscover::new(
        servers
            .iter()
            .map(|server| Endpoint::new(server.addr).unwrap()),
    );
    let cluster = Cluster::builder()
        .balance(Algorithm::ConsistentHash)
        .build(&discovery, "Svc");
    (servers, SvcClient::new(cluster))
}

/// Enough keys that all of them landing on one of three endpoints (the ring follows the
/// servers' ephemeral ports, so placement differs per run) is about a one-in-ten-million
/// chance, not a flaky test.
const USERS: [&str; 16] = [
    "ada", "grace", "edsger", "barbara", "alan", "donald", "frances", "john", "leslie", "tony",
    "radia", "ken", "margaret", "niklaus", "shafi", "robin",
];

#[tokio::test]
async fn calls_with_one_key_argument_reach_one_server_and_keys_spread() {
    let (_servers, svc) = fleet().await;
    let mut seen = BTreeSet::new();
    for user in USERS {
        let first = svc.who(user.to_owned()).await.unwrap();
        for _ in 0..5 {
            assert_eq!(
                svc.who(user.to_owned()).await.unwrap(),
                first,
                "{user} moved"
            );
        }
        seen.insert(first);
    }
    assert!(seen.len() > 1, "every key went to one server: {seen:?}");
}

#[tokio::test]
async fn an_integer_key_goes_where_its_decimal_text_goes() {
    let (_servers, svc) = fleet().await;
    for account in [0u64, 7, 42, 1001, 987_654_321] {
        let by_text = svc.who(account.to_string()).await.unwrap();
        for note in ["deposit", "withdrawal"] {
            let by_number = svc.account(note.to_owned(), account).await.unwrap();
            assert_eq!(by_number, by_text, "account {account}");
        }
    }
}

#[tokio::test]
async fn an_optional_key_goes_where_its_value_goes() {
    let (_servers, svc) = fleet().await;
    for user in USERS {
        let keyed = svc.who(user.to_owned()).await.unwrap();
        let tenant = svc.tenant(Some(user.to_owned())).await.unwrap();
        assert_eq!(tenant, keyed, "{user}");
    }
    // No key: the call still goes somewhere.
    svc.tenant(None).await.unwrap();
}

#[tokio::test]
async fn a_key_on_the_client_view_overrides_the_argument() {
    let (_servers, svc) = fleet().await;
    let home = svc.who("ada".to_owned()).await.unwrap();
    let pinned = svc
        .clone()
        .with_options(CallOptions::new().hash_key(hash_key(b"ada")));
    let mut unpinned = BTreeSet::new();
    for user in USERS {
        assert_eq!(pinned.who(user.to_owned()).await.unwrap(), home, "{user}");
        assert_eq!(pinned.account(user.to_owned(), 42).await.unwrap(), home);
        unpinned.insert(svc.who(user.to_owned()).await.unwrap());
    }
    // The override is what kept them together: without it they spread.
    assert!(unpinned.len() > 1, "{unpinned:?}");
}

/// A channel that records each call's key and refuses the call.
#[derive(Default)]
struct Recorder {
    defaults: CallOptions,
    keys: Mutex<Vec<Option<u64>>>,
}

impl Channel for Recorder {
    fn default_options(&self) -> &CallOptions {
        &self.defaults
    }

    async fn call(&self, call: Call) -> Result<Reply, prpc::Error> {
        self.keys.lock().unwrap().push(call.options.hash_key);
        Err(prpc::Error::Status(Status::new(
            prpc::Code::Unavailable,
            "recorded",
        )))
    }
}

#[tokio::test]
async fn the_call_carries_the_arguments_hash_key() {
    let recorder = std::sync::Arc::new(Recorder::default());
    let svc = SvcClient::new(recorder.clone());
    let _ = svc.who("ada".to_owned()).await;
    let _ = svc.account(String::new(), 42).await;
    let _ = svc.tenant(None).await;
    let _ = svc.tenant(Some("ada".to_owned())).await;
    let _ = svc
        .with_options(CallOptions::new().hash_key(7))
        .who("ada".to_owned())
        .await;
    assert_eq!(
        *recorder.keys.lock().unwrap(),
        [
            Some(hash_key(b"ada")),
            Some(hash_key(b"42")),
            None,
            Some(hash_key(b"ada")),
            Some(7),
        ]
    );
}

#[tokio::test]
async fn the_arguments_key_wins_over_the_channels_default() {
    let recorder = std::sync::Arc::new(Recorder {
        defaults: CallOptions::new().hash_key(99),
        ..Recorder::default()
    });
    let svc = SvcClient::new(recorder.clone());
    let _ = svc.who("ada".to_owned()).await;
    // No key in the argument: the channel's default stands.
    let _ = svc.tenant(None).await;
    let _ = svc
        .with_options(CallOptions::new().hash_key(7))
        .tenant(Some("ada".to_owned()))
        .await;
    assert_eq!(
        *recorder.keys.lock().unwrap(),
        [Some(hash_key(b"ada")), Some(99), Some(7)]
    );
}

#[test]
fn typed_keys_hash_their_documented_bytes() {
    assert_eq!(42u64.hash_key(), hash_key(b"42"));
    assert_eq!(42u8.hash_key(), "42".hash_key());
    assert_eq!((-42i128).hash_key(), hash_key(b"-42"));
    assert_eq!(i128::MIN.hash_key(), i128::MIN.to_string().hash_key());
    assert_eq!(u128::MAX.hash_key(), u128::MAX.to_string().hash_key());
    assert_eq!(false.hash_key(), hash_key(b"false"));
    assert_eq!('é'.hash_key(), hash_key("é".as_bytes()));
    assert_eq!(b"raw"[..].hash_key(), hash_key(b"raw"));
    assert_eq!(b"raw".to_vec().hash_key(), hash_key(b"raw"));
    assert_eq!(
        bytes::Bytes::from_static(b"raw").hash_key(),
        hash_key(b"raw")
    );
    assert_eq!(String::from("ada").hash_key(), (&&"ada").hash_key());
}
