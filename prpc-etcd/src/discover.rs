//! Discovery: a range read of a service's prefix, then a watch from the revision after it.
//!
//! The task that feeds a service's watches keeps the prefix's keys as etcd has them (key →
//! endpoint) and the revision etcd has delivered everything up to ([`delivered_through`]).
//! After a broken connection it watches again from that revision + 1, so each change is
//! applied exactly once: none missed while it was away, none replayed. Only when etcd no
//! longer has those revisions (compacted), or its revisions went backwards (it lost its
//! data), does it read the whole prefix afresh.
//!
//! A watch is silent for as long as nothing changes, so silence proves nothing; but an etcd
//! that hangs with the connection open (a stopped process, a wedged member) is silent too,
//! and TCP keepalive does not see it, since the kernel still answers. So a watch silent for
//! `watch_check_interval` is checked: etcd is asked to count the prefix's keys on another
//! connection (a linearizable read, so a member cut off from its cluster fails it too), and
//! if it does not answer within the request timeout the watch is given up and resumed. The
//! watch also asks for etcd's progress notifications, which reset the silence when the
//! server sends them often enough, and move the resume revision on.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prpc::discovery::{Endpoint, Publisher};

use crate::Inner;
use crate::gateway::{
    EventKind, KeyValue, RangeRequest, RangeResponse, WatchCreate, WatchRequest, WatchResponse,
    prefix_end,
};
use crate::http::{CallError, MessageStream};

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
    /// The revision `endpoints` is current at: etcd has delivered every change up to it.
    /// 0 until the first read, and to read afresh.
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
                count_only: false,
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
                start_revision: self.resume_revision(),
                progress_notify: true,
            },
        };
        let mut stream = match inner.client.stream("/v3/watch", &watch).await {
            Ok(stream) => stream,
            Err(error) => return error.into(),
        };
        loop {
            let response = match next_or_check(inner, &self.prefix, &end, &mut stream).await {
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
        self.revision = delivered_through(self.revision, &response);
        if !response.events.is_empty() {
            for event in response.events {
                tracing::trace!(
                    key = %String::from_utf8_lossy(&event.kv.key),
                    revision = event.kv.mod_revision,
                    "applying a watch event"
                );
                match event.kind {
                    EventKind::Put => self.put(event.kv),
                    EventKind::Delete => _ = self.endpoints.remove(&event.kv.key),
                }
            }
            publisher.publish(self.endpoints.values().cloned().collect());
        }
        None
    }

    /// The revision a new watch starts from: the first etcd has not delivered yet.
    fn resume_revision(&self) -> i64 {
        self.revision + 1
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

/// The revision etcd has delivered every change up to, once `response` is applied to a
/// watch that was current at `seen`.
///
/// Only two kinds of response say so: events (their own revisions; the header's revision is
/// etcd's current one, which may lie beyond events still to come when the watch catches up
/// in batches), and progress notifications (sent only once the watch has caught up). The
/// answer to the create request does not: its header is etcd's current revision while the
/// events from the start revision are still to come.
fn delivered_through(seen: i64, response: &WatchResponse) -> i64 {
    let through = if response.is_progress_notify() {
        response.header.revision
    } else {
        response
            .events
            .iter()
            .map(|event| event.kv.mod_revision)
            .max()
            .unwrap_or(seen)
    };
    seen.max(through)
}

/// The watch's next message, checking etcd when the watch has been silent for a while: an
/// error if etcd does not answer the check (see the module docs).
async fn next_or_check(
    inner: &Inner,
    prefix: &[u8],
    end: &[u8],
    stream: &mut MessageStream,
) -> Result<Option<WatchResponse>, CallError> {
    loop {
        // `next` is cancel-safe: a message half read stays buffered in the stream.
        if let Ok(next) = tokio::time::timeout(inner.watch_check_interval, stream.next()).await {
            return next;
        }
        let count = RangeRequest {
            key: prefix,
            range_end: end,
            count_only: true,
        };
        // A message that arrives meanwhile is taken at once; the check is then moot.
        tokio::select! {
            next = stream.next() => return next,
            checked = inner.client.call::<_, serde::de::IgnoredAny>("/v3/kv/range", &count) => {
                if let Err(error) = checked {
                    return Err(CallError::Unreachable(format!(
                        "the watch was silent for {:?} and a check failed: {error}",
                        inner.watch_check_interval
                    )));
                }
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
    use crate::gateway::{Event, Header};

    fn response(header: i64, events: &[(EventKind, &str, i64)]) -> WatchResponse {
        WatchResponse {
            header: Header { revision: header },
            events: events
                .iter()
                .map(|&(kind, instance, revision)| Event {
                    kind,
                    kv: KeyValue {
                        key: format!("/p/{instance}").into_bytes(),
                        value: serde_json::to_vec(
                            &Endpoint::new("127.0.0.1:9").unwrap().instance(instance),
                        )
                        .unwrap(),
                        mod_revision: revision,
                        lease: 0,
                    },
                })
                .collect(),
            ..WatchResponse::default()
        }
    }

    #[test]
    fn only_events_and_progress_move_the_delivered_revision() {
        use EventKind::{Delete, Put};
        // Events: their last revision, not the header's (etcd's current revision, which runs
        // ahead of a watch catching up in batches).
        let events = response(40, &[(Put, "a", 12), (Delete, "b", 13)]);
        assert_eq!(delivered_through(10, &events), 13);
        // A progress notification: everything up to its header.
        assert_eq!(delivered_through(13, &response(40, &[])), 40);
        // The answer to the create request: its header is etcd's current revision while the
        // events from the start revision are yet to come.
        let created = WatchResponse {
            created: true,
            ..response(40, &[])
        };
        assert_eq!(delivered_through(10, &created), 10);
        let canceled = WatchResponse {
            canceled: true,
            ..response(40, &[])
        };
        assert_eq!(delivered_through(10, &canceled), 10);
        // Never backwards.
        assert_eq!(delivered_through(50, &events), 50);
        assert_eq!(delivered_through(50, &response(40, &[])), 50);
        assert_eq!(delivered_through(50, &response(0, &[])), 50);
    }

    #[test]
    fn a_watch_resumes_after_the_last_change_applied() {
        let (publisher, watch) = Publisher::new("etcd", "svc");
        let mut followed = Followed {
            prefix: b"/p/".to_vec(),
            endpoints: BTreeMap::new(),
            revision: 5, // the range read's revision
            failures: 0,
        };
        assert_eq!(followed.resume_revision(), 6);
        let created = WatchResponse {
            created: true,
            ..response(9, &[])
        };
        assert!(followed.apply(created, &publisher).is_none());
        assert_eq!(followed.resume_revision(), 6, "6..=9 are still to come");
        let put = response(9, &[(EventKind::Put, "a", 6), (EventKind::Put, "b", 7)]);
        assert!(followed.apply(put, &publisher).is_none());
        assert_eq!(followed.resume_revision(), 8);
        assert_eq!(watch.current().len(), 2);
        // The connection breaks here; etcd sends 8 and 9 on the next watch, from 8.
        let rest = response(9, &[(EventKind::Delete, "a", 8), (EventKind::Put, "c", 9)]);
        assert!(followed.apply(rest, &publisher).is_none());
        assert_eq!(followed.resume_revision(), 10);
        let instances: Vec<String> = watch
            .current()
            .endpoints
            .iter()
            .map(|e| e.instance.clone())
            .collect();
        assert_eq!(instances, ["b", "c"]);
        // Quiet, and etcd went on with other keys: a progress notification moves it on.
        assert!(followed.apply(response(30, &[]), &publisher).is_none());
        assert_eq!(followed.resume_revision(), 31);
    }

    #[test]
    fn backoff_grows_to_a_bound() {
        assert!(backoff(1) <= Duration::from_millis(100));
        assert!(backoff(1) >= Duration::from_millis(50));
        assert!(backoff(40) <= Duration::from_secs(5));
        assert!(backoff(40) >= Duration::from_millis(2500));
    }
}
