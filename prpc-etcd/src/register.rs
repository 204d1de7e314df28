//! Registration: one etcd lease per registration, its key attached to the lease.
//!
//! Registering grants a lease of the registration's TTL and puts the endpoint under the
//! lease; renewing keeps the lease alive; deregistering revokes the lease, which deletes the
//! key at once. If the registrant dies, etcd deletes the key when the lease lapses. A lease
//! etcd no longer knows (it lapsed, or etcd lost its data) answers a renewal with
//! [`RegisterError::Expired`], so [`prpc::discovery::Registered`] registers again.

use std::time::Duration;

use prpc::discovery::{Lease, Register, RegisterError, RegisterFuture, Registration};

use crate::EtcdRegistry;
use crate::gateway::{
    GRPC_NOT_FOUND, LeaseGrantRequest, LeaseIdRequest, LeaseResponse, PutRequest,
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
            let put = PutRequest {
                key: key.as_bytes(),
                value: &value,
                lease: granted.id,
            };
            // A failed put leaves the lease without a key: it lapses at its TTL, harmless.
            client
                .call::<_, serde::de::IgnoredAny>("/v3/kv/put", &put)
                .await
                .map_err(register_error)?;
            Ok(Lease::new(
                granted.id.to_string(),
                Duration::from_secs(granted.ttl.unsigned_abs()),
            ))
        })
    }

    fn renew<'a>(
        &'a self,
        _registration: &'a Registration,
        lease: &'a Lease,
    ) -> RegisterFuture<'a, ()> {
        Box::pin(async move {
            let request = LeaseIdRequest {
                id: lease_id(lease)?,
            };
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
                Some(renewed) if renewed.ttl > 0 => Ok(()),
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
}
