//! Discovery: a range read of a service's prefix, then a watch from the revision after it.
//!
//! The task that feeds a service's watches keeps the prefix's keys as etcd has them (key →
//! endpoint) and the revision it has seen up to. After a broken connection it watches again
//! from that revision + 1, so each change is applied exactly once: none missed while it was
//! away, none replayed. Only when etcd no longer has those revisions (compacted), or its
//! revisions went backwards (it lost its data), does it read the whole prefix afresh.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prpc::discovery::{Endpoint, Publisher};

use crate::Inner;
use crate::gateway::{
    EventKind, KeyValue, RangeRequest, RangeResponse, WatchCreate, WatchRequest, WatchResponse,
    prefix_end,
};
use crate::http::CallError;

/// Feeds `publisher` with the endpoints under `prefix` until every watch on it is gone.
pub(crate) async fn follow(inner: Arc<Inner>, prefix: String, publisher: Arc<Publisher>) {
    let mut state = Followed {
        prefix: prefix.into_bytes(),
        endpoints: BTreeMap::new(),
        revision: 0,
        failures: 0,
    };
    loop {
        let error = tokio::select! {
            error = state.sync_and_watch(&inner, &publisher) => error,
            () = publisher.closed() => return,
        };
        if let Interrupted::Failed(error) = error {
            publisher.failed(format!("etcd at {}: {error}", inner.describe()));
            state.failures += 1;
            tokio::select! {
                () = tokio::time::sleep(backoff(state.failures)) => {}
                () = publisher.closed() => return,
            }
        }
    }
}

/// Why following stopped for a moment.
enum Interrupted {
    /// The revisions to resume from are gone: read afresh (at once, not a failure).
    Resync,
    /// etcd failed or could not be reached: report it, back off, resume.
    Failed(CallError),
}

impl From<CallError> for Interrupted {
    fn from(error: CallError) -> Self {
        Interrupted::Failed(error)
    }
}

struct Followed {
    prefix: Vec<u8>,
    /// The endpoints under the prefix by key (a deletion names only its key).
    endpoints: BTreeMap<Vec<u8>, Endpoint>,
    /// The revision `endpoints` is current at; 0 until the first read, and to read afresh.
    revision: i64,
    /// Failures since the last successful (re)connection.
    failures: u32,
}

impl Followed {
    /// Reads the prefix if needed, then watches it; returns only when interrupted.
    async fn sync_and_watch(&mut self, inner: &Inner, publisher: &Publisher) -> Interrupted {
        let end = prefix_end(&self.prefix);
        if self.revision == 0 {
            let range = RangeRequest {
                key: &self.prefix,
                range_end: &end,
            };
            let read: RangeResponse = match inner.client.call("/v3/kv/range", &range).await {
                Ok(read) => read,
                Err(error) => return error.into(),
            };
            self.endpoints.clear();
            for kv in read.kvs {
                self.put(kv);
            }
            self.revision = read.header.revision;
            publisher.publish(self.endpoints.values().cloned().collect());
        }
        let watch = WatchRequest {
            create_request: WatchCreate {
                key: &self.prefix,
                range_end: &end,
                start_revision: self.revision + 1,
            },
        };
        let mut stream = match inner.client.stream("/v3/watch", &watch).await {
            Ok(stream) => stream,
            Err(error) => return error.into(),
        };
        loop {
            let response: WatchResponse = match stream.next().await {
                Ok(Some(response)) => response,
                Ok(None) => {
                    return CallError::Unreachable("etcd ended the watch".to_owned()).into();
                }
                Err(error) => return error.into(),
            };
            if let Some(interrupted) = self.apply(response, publisher) {
                return interrupted;
            }
        }
    }

    /// Applies one watch response; `Some` if the watch cannot go on.
    fn apply(&mut self, response: WatchResponse, publisher: &Publisher) -> Option<Interrupted> {
        if response.compact_revision > 0 {
            tracing::info!(
                prefix = %String::from_utf8_lossy(&self.prefix),
                compacted = response.compact_revision,
                "etcd compacted the revisions to resume from; reading the prefix afresh"
            );
            self.revision = 0;
            return Some(Interrupted::Resync);
        }
        if response.canceled {
            let reason = response.cancel_reason;
            return Some(Interrupted::Failed(CallError::Malformed(format!(
                "etcd cancelled the watch: {reason}"
            ))));
        }
        if response.created {
            if response.header.revision < self.revision {
                tracing::warn!(
                    prefix = %String::from_utf8_lossy(&self.prefix),
                    etcd = response.header.revision,
                    seen = self.revision,
                    "etcd's revision went backwards (its data was lost); reading the prefix afresh"
                );
                self.revision = 0;
                return Some(Interrupted::Resync);
            }
            // Connected: the set is current again (a new version only if it changed).
            self.failures = 0;
            publisher.publish(self.endpoints.values().cloned().collect());
        }
        if !response.events.is_empty() {
            for event in response.events {
                self.revision = self.revision.max(event.kv.mod_revision);
                match event.kind {
                    EventKind::Put => self.put(event.kv),
                    EventKind::Delete => _ = self.endpoints.remove(&event.kv.key),
                }
            }
            publisher.publish(self.endpoints.values().cloned().collect());
        }
        None
    }

    /// Records a key's new value; a value that is not an endpoint removes the key.
    fn put(&mut self, kv: KeyValue) {
        match serde_json::from_slice::<Endpoint>(&kv.value) {
            Ok(endpoint) => {
                self.endpoints.insert(kv.key, endpoint);
            }
            Err(error) => {
                tracing::warn!(
                    key = %String::from_utf8_lossy(&kv.key),
                    %error,
                    "skipping an etcd value that is not a prpc endpoint"
                );
                self.endpoints.remove(&kv.key);
            }
        }
    }
}

/// Waits between attempts after a failure: from 100 ms, doubling to 5 s, jittered so that
/// many watchers do not reconnect in step.
fn backoff(failures: u32) -> Duration {
    let base =
        Duration::from_millis(100).saturating_mul(1 << failures.clamp(1, 16).saturating_sub(1));
    base.min(Duration::from_secs(5))
        .mul_f64(0.5 + fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_bound() {
        assert!(backoff(1) <= Duration::from_millis(100));
        assert!(backoff(1) >= Duration::from_millis(50));
        assert!(backoff(40) <= Duration::from_secs(5));
        assert!(backoff(40) >= Duration::from_millis(2500));
    }
}
