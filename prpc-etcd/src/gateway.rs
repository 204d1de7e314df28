//! The messages of etcd's v3 JSON gateway this crate sends and reads.
//!
//! The gateway maps etcd's protobuf messages to JSON the proto3 way: `bytes` fields (keys,
//! values) as base64 text, 64-bit integers (revisions, lease ids, TTLs) as decimal strings,
//! and fields at their zero value left out (a PUT event has no `type`, a lease etcd does not
//! know comes back without a `TTL`). Only the fields this crate uses are declared; serde
//! skips the rest.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `/v3/lease/grant`.
#[derive(Debug, Serialize)]
pub(crate) struct LeaseGrantRequest {
    #[serde(rename = "TTL", with = "int64")]
    pub(crate) ttl: i64,
}

/// `/v3/lease/keepalive` and `/v3/lease/revoke`.
#[derive(Debug, Serialize)]
pub(crate) struct LeaseIdRequest {
    #[serde(rename = "ID", with = "int64")]
    pub(crate) id: i64,
}

/// The answer to a grant, and each message of a keepalive stream.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LeaseResponse {
    #[serde(rename = "ID", with = "int64")]
    pub(crate) id: i64,
    /// 0 (left out) when etcd does not know the lease.
    #[serde(rename = "TTL", with = "int64")]
    pub(crate) ttl: i64,
}

/// `/v3/kv/put`.
#[derive(Debug, Serialize)]
pub(crate) struct PutRequest<'a> {
    #[serde(with = "base64_bytes")]
    pub(crate) key: &'a [u8],
    #[serde(with = "base64_bytes")]
    pub(crate) value: &'a [u8],
    #[serde(with = "int64")]
    pub(crate) lease: i64,
}

/// `/v3/kv/range` over `[key, range_end)`, or of `key` alone if `range_end` is empty.
#[derive(Debug, Serialize)]
pub(crate) struct RangeRequest<'a> {
    #[serde(with = "base64_bytes")]
    pub(crate) key: &'a [u8],
    #[serde(with = "base64_bytes")]
    pub(crate) range_end: &'a [u8],
    /// Only count the keys: an answer of a few bytes, however many keys there are.
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) count_only: bool,
}

/// The first (and only) message on a `/v3/watch` request body.
#[derive(Debug, Serialize)]
pub(crate) struct WatchRequest<'a> {
    pub(crate) create_request: WatchCreate<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct WatchCreate<'a> {
    #[serde(with = "base64_bytes")]
    pub(crate) key: &'a [u8],
    #[serde(with = "base64_bytes")]
    pub(crate) range_end: &'a [u8],
    #[serde(with = "int64")]
    pub(crate) start_revision: i64,
    /// Asks etcd to send an empty response now and then (every 10 minutes unless the server
    /// runs with `--experimental-watch-progress-notify-interval`) while nothing changes.
    pub(crate) progress_notify: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Header {
    #[serde(with = "int64")]
    pub(crate) revision: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RangeResponse {
    pub(crate) header: Header,
    pub(crate) kvs: Vec<KeyValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct KeyValue {
    #[serde(with = "base64_bytes")]
    pub(crate) key: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub(crate) value: Vec<u8>,
    #[serde(with = "int64")]
    pub(crate) mod_revision: i64,
    /// The lease the key is attached to, 0 if none.
    #[serde(with = "int64")]
    pub(crate) lease: i64,
}

/// One message of a streaming call: a result, or the error that ended the stream.
#[derive(Debug, Deserialize)]
pub(crate) struct StreamMessage<T> {
    pub(crate) result: Option<T>,
    pub(crate) error: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WatchResponse {
    pub(crate) header: Header,
    pub(crate) created: bool,
    pub(crate) canceled: bool,
    /// Set (with `canceled`) when the revision asked for has been compacted away.
    #[serde(with = "int64")]
    pub(crate) compact_revision: i64,
    pub(crate) cancel_reason: String,
    pub(crate) events: Vec<Event>,
}

impl WatchResponse {
    /// Whether this is a progress notification: no events, and etcd has sent this watch
    /// every event up to `header.revision` (it sends them only to watches that have caught
    /// up). The answer to the create request is empty too, but is not one.
    pub(crate) fn is_progress_notify(&self) -> bool {
        self.events.is_empty()
            && !self.created
            && !self.canceled
            && self.compact_revision == 0
            && self.header.revision > 0
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Event {
    #[serde(rename = "type")]
    pub(crate) kind: EventKind,
    pub(crate) kv: KeyValue,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum EventKind {
    #[default]
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "DELETE")]
    Delete,
}

/// What the gateway answers with a non-2xx status: the gRPC status of the call.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorBody {
    pub(crate) code: i32,
    pub(crate) message: String,
    pub(crate) error: String,
}

/// gRPC's code for "not found": etcd's answer about a lease it does not know.
pub(crate) const GRPC_NOT_FOUND: i32 = 5;

fn is_false(value: &bool) -> bool {
    !*value
}

/// The first key after every key that starts with `prefix`: the range end that makes
/// `[prefix, end)` the prefix's keys. (A prefix of only `0xff` bytes has none; etcd's
/// convention is then `\0`, "to the end of the keyspace".)
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A 64-bit integer as the gateway writes it: a decimal string (a plain number is accepted).
mod int64 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(value: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Int64<'a> {
            Number(i64),
            Text(std::borrow::Cow<'a, str>),
        }
        match Int64::deserialize(d)? {
            Int64::Number(number) => Ok(number),
            Int64::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Bytes as base64 text.
mod base64_bytes {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        BASE64
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_ends_cover_the_prefix() {
        assert_eq!(prefix_end(b"/prpc/services/a/"), b"/prpc/services/a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
    }

    #[test]
    fn watch_messages_decode_as_the_gateway_writes_them() {
        let text = r#"{"result":{"header":{"cluster_id":"1","revision":"4"},"events":[
            {"kv":{"key":"YQ==","create_revision":"2","mod_revision":"3","value":"Yw=="}},
            {"type":"DELETE","kv":{"key":"YQ==","mod_revision":"4"}}]}}"#;
        let message: StreamMessage<WatchResponse> = serde_json::from_str(text).unwrap();
        let response = message.result.unwrap();
        assert_eq!(response.header.revision, 4);
        assert_eq!(response.events[0].kind, EventKind::Put);
        assert_eq!(response.events[0].kv.value, b"c");
        assert_eq!(response.events[1].kind, EventKind::Delete);
        assert_eq!(response.events[1].kv.mod_revision, 4);

        assert!(!response.is_progress_notify());

        // As etcd 3.4 writes the answer to a create request, and a progress notification.
        let created = r#"{"result":{"header":{"cluster_id":"1","revision":"2"},"created":true}}"#;
        let message: StreamMessage<WatchResponse> = serde_json::from_str(created).unwrap();
        assert!(!message.result.unwrap().is_progress_notify());
        let progress = r#"{"result":{"header":{"cluster_id":"1","revision":"2","raft_term":"2"}}}"#;
        let message: StreamMessage<WatchResponse> = serde_json::from_str(progress).unwrap();
        assert!(message.result.unwrap().is_progress_notify());

        let compacted = r#"{"result":{"header":{},"canceled":true,"compact_revision":"3"}}"#;
        let message: StreamMessage<WatchResponse> = serde_json::from_str(compacted).unwrap();
        assert_eq!(message.result.unwrap().compact_revision, 3);
    }

    #[test]
    fn int64_fields_go_out_as_strings() {
        let text = serde_json::to_string(&LeaseIdRequest { id: 7587 }).unwrap();
        assert_eq!(text, r#"{"ID":"7587"}"#);
        let range = RangeRequest {
            key: b"a",
            range_end: b"b",
            count_only: true,
        };
        assert_eq!(
            serde_json::to_string(&range).unwrap(),
            r#"{"key":"YQ==","range_end":"Yg==","count_only":true}"#
        );
        let unknown: LeaseResponse = serde_json::from_str(r#"{"ID":"12345"}"#).unwrap();
        assert_eq!((unknown.id, unknown.ttl), (12345, 0));
    }
}
