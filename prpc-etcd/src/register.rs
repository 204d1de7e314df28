//! Registration: one etcd lease per registration, its key attached to the lease.
//!
//! Registering grants a lease of the registration's TTL and puts the endpoint under the
//! lease; renewing keeps the lease alive; deregistering revokes the lease, which deletes the
//! key at once. If the registrant dies, etcd deletes the key when the lease lapses. A lease
//! etcd no longer knows (it lapsed, or etcd lost its data) answers a renewal with
//! [`RegisterError::Expired`], so [`prpc::discovery::Registered`] registers again.
//!
//! A renewal also reads the key back: a key someone else deleted (`etcdctl del --prefix`
//! while cleaning up) or replaced while the lease lived would otherwise stay gone, or
//! outlive the registrant, for as long as the server runs. It is put back under the lease,
//! so the key is restored within a renewal interval (a third of the TTL). The read is a
//! small linearizable range, cheaper than a conditional write, which would go through
//! etcd's log on every renewal.

use std::time::Duration;

use prpc::discovery::{Endpoint, Lease, Register, RegisterError, RegisterFuture, Registration};

use crate::EtcdRegistry;
use crate::gateway::{
    GRPC_NOT_FOUND, KeyValue, LeaseGrantRequest, LeaseIdRequest, LeaseResponse, PutRequest,
    RangeRequest, RangeResponse,
};
use crate::http::CallError;

impl Register for EtcdRegistry {
    fn register<'a>(&'a self, registration: &'a Registration) -> RegisterFuture<'a, Lease> {
        Box::pin(async move {
            let key = self
                .key(&registration.service, &registration.endpoint.instance)
                .map_err(RegisterError::Refused)?;
            let value = serde_json::to_vec(&registration.endpoint)
                .map_err(|error| RegisterError::Refused(error.to_string()))?;
            let client = &self.inner.client;
            let granted: LeaseResponse = client
                .call(
                    "/v3/lease/grant",
                    &LeaseGrantRequest {
                        ttl: ttl_seconds(registration.ttl),
                    },
                )
                .await
                .map_err(register_error)?;
            if granted.id == 0 || granted.ttl <= 0 {
                return Err(RegisterError::Unavailable(
                    "etcd granted no lease".to_owned(),
                ));
            }
            // A failed put leaves the lease without a key: it lapses at its TTL, harmless.
            self.put_key(&key, &value, granted.id).await?;
            Ok(Lease::new(
                granted.id.to_string(),
                Duration::from_secs(granted.ttl.unsigned_abs()),
            ))
        })
    }

    fn renew<'a>(
        &'a self,
        registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()> {
        Box::pin(async move {
            let id = lease_id(lease)?;
            let request = LeaseIdRequest { id };
            let mut stream = self
                .inner
                .client
                .stream("/v3/lease/keepalive", &request)
                .await
                .map_err(register_error)?;
            let answer =
                tokio::time::timeout(self.inner.request_timeout, stream.next::<LeaseResponse>())
                    .await
                    .map_err(|_| {
                        RegisterError::Unavailable("etcd did not renew the lease in time".into())
                    })?
                    .map_err(register_error)?;
            match answer {
                // etcd answers a lease it does not know with a TTL of 0.
                Some(renewed) if renewed.ttl > 0 => self.keep_key(registration, id).await,
                Some(_) => Err(RegisterError::Expired),
                None => Err(RegisterError::Unavailable(
                    "etcd closed the keepalive without an answer".to_owned(),
                )),
            }
        })
    }

    fn deregister<'a>(
        &'a self,
        _registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()> {
        Box::pin(async move {
            let request = LeaseIdRequest {
                id: lease_id(lease)?,
            };
            self.inner
                .client
                .call::<_, serde::de::IgnoredAny>("/v3/lease/revoke", &request)
                .await
                .map_err(register_error)?;
            Ok(())
        })
    }
}

impl EtcdRegistry {
    /// Puts the registration's key, attached to `lease`.
    async fn put_key(&self, key: &str, value: &[u8], lease: i64) -> Result<(), RegisterError> {
        let put = PutRequest {
            key: key.as_bytes(),
            value,
            lease,
        };
        self.inner
            .client
            .call::<_, serde::de::IgnoredAny>("/v3/kv/put", &put)
            .await
            .map_err(register_error)?;
        Ok(())
    }

    /// Puts the registration's key back under `lease` if it is gone or is no longer this
    /// registration's (another value, or another lease).
    async fn keep_key(&self, registration: &Registration, lease: i64) -> Result<(), RegisterError> {
        let key = self
            .key(&registration.service, &registration.endpoint.instance)
            .map_err(RegisterError::Refused)?;
        let read: RangeResponse = self
            .inner
            .client
            .call(
                "/v3/kv/range",
                &RangeRequest {
                    key: key.as_bytes(),
                    range_end: &[],
                    count_only: false,
                },
            )
            .await
            .map_err(register_error)?;
        let found = read.kvs.first();
        if found.is_some_and(|kv| holds(kv, &registration.endpoint, lease)) {
            return Ok(());
        }
        tracing::warn!(
            service = %registration.service,
            %key,
            found = if found.is_some() { "replaced" } else { "deleted" },
            "the registration's key was changed by someone else; putting it back"
        );
        let value = serde_json::to_vec(&registration.endpoint)
            .map_err(|error| RegisterError::Refused(error.to_string()))?;
        // A lease that lapsed since the renewal answers NotFound: registering again follows.
        self.put_key(&key, &value, lease).await
    }
}

/// Whether `kv` is the registration as it was put: the endpoint, under the lease.
fn holds(kv: &KeyValue, endpoint: &Endpoint, lease: i64) -> bool {
    kv.lease == lease
        && serde_json::from_slice::<Endpoint>(&kv.value).is_ok_and(|found| found == *endpoint)
}

/// etcd's TTLs are whole seconds: rounded up, at least 1.
fn ttl_seconds(ttl: Duration) -> i64 {
    let seconds = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0));
    i64::try_from(seconds.max(1)).unwrap_or(i64::MAX)
}

fn lease_id(lease: &Lease) -> Result<i64, RegisterError> {
    lease
        .id
        .parse()
        .map_err(|_| RegisterError::Refused(format!("{:?} is not an etcd lease id", lease.id)))
}

/// What a failed call means to a registrant.
fn register_error(error: CallError) -> RegisterError {
    match error {
        CallError::Status { code, .. } if code == GRPC_NOT_FOUND => RegisterError::Expired,
        // Bad input, permission, a quota: asking again will not help.
        CallError::Status {
            code: code @ (3 | 7 | 8 | 9 | 11 | 16),
            message,
            ..
        } => RegisterError::Refused(format!("etcd: {message} (code {code})")),
        other => RegisterError::Unavailable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds() {
        assert_eq!(ttl_seconds(Duration::ZERO), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(ttl_seconds(Duration::from_secs(10)), 10);
        assert_eq!(ttl_seconds(Duration::MAX), i64::MAX);
    }

    #[test]
    fn a_key_holds_the_registration_only_as_put() {
        let endpoint = Endpoint::new("127.0.0.1:7000").unwrap().instance("a");
        let kv = |value: &Endpoint, lease| KeyValue {
            value: serde_json::to_vec(value).unwrap(),
            lease,
            ..KeyValue::default()
        };
        assert!(holds(&kv(&endpoint, 7), &endpoint, 7));
        assert!(!holds(&kv(&endpoint, 0), &endpoint, 7), "no lease");
        assert!(!holds(&kv(&endpoint, 8), &endpoint, 7), "another lease");
        let heavier = endpoint.clone().weight(9);
        assert!(!holds(&kv(&heavier, 7), &endpoint, 7), "another value");
        let garbage = KeyValue {
            value: b"{".to_vec(),
            lease: 7,
            ..KeyValue::default()
        };
        assert!(!holds(&garbage, &endpoint, 7));
    }
}
