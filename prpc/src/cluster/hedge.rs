//! Backup requests ([`FailMode::Backup`](super::FailMode::Backup)): when an attempt has not
//! answered within a delay, a second goes to another endpoint, and the first answer wins.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytestring::ByteString;

use super::balanced::Balanced;
use crate::call::{Call, Reply, Route};
use crate::error::Error;
use crate::retry::{RetryBudget, RetryPolicy};
use crate::timer::Timer;

/// Samples kept per method.
const SAMPLES: usize = 128;
/// Samples a method needs before its p95 is trusted as a hedging delay.
const ENOUGH: usize = 20;

/// The latest latencies of each method's calls, for the p95 a backup request waits.
#[derive(Default)]
pub(super) struct Latencies {
    by_method: Mutex<HashMap<(ByteString, ByteString), Ring>>,
}

struct Ring {
    micros: Vec<u32>,
    next: usize,
}

impl Latencies {
    /// Records one successful call's latency.
    pub(super) fn record(&self, method: (ByteString, ByteString), latency: Duration) {
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        let mut by_method = self
            .by_method
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let ring = by_method.entry(method).or_insert_with(|| Ring {
            micros: Vec::with_capacity(SAMPLES),
            next: 0,
        });
        if ring.micros.len() < SAMPLES {
            ring.micros.push(micros);
        } else {
            ring.micros[ring.next] = micros;
        }
        ring.next = (ring.next + 1) % SAMPLES;
    }

    /// The 95th percentile of the method's latest latencies, once it has enough of them.
    pub(super) fn p95(&self, call: &Call) -> Option<Duration> {
        let mut sorted = {
            let by_method = self
                .by_method
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let ring = by_method.get(&(call.service.clone(), call.method.clone()))?;
            if ring.micros.len() < ENOUGH {
                return None;
            }
            ring.micros.clone()
        };
        let at = (sorted.len() * 95).div_ceil(100) - 1;
        let (_, p95, _) = sorted.select_nth_unstable(at);
        Some(Duration::from_micros(u64::from(*p95)))
    }
}

/// Sends `call` (one that may be sent again, by prpc's retry rules) and, if it has not
/// answered within `delay`, a second attempt to another endpoint under the same request id;
/// the first success wins and the other attempt is cancelled. A failure waits for the other
/// attempt. The second attempt is a retry as far as the budget goes. Both go under one request
/// id; a failure reports it with the backup's (higher) attempt number.
pub(super) async fn hedged(
    balanced: &Balanced,
    budget: Option<&RetryBudget>,
    timer: &Timer,
    mut call: Call,
    delay: Duration,
) -> Result<Reply, Error> {
    call.request_id.get_or_insert_with(crate::id::next_id);
    call.options.retry = None;
    call.route
        .get_or_insert_with(|| std::sync::Arc::new(Route::default()));
    if let Some(budget) = budget {
        budget.deposit();
    }
    let first = balanced.attempt(call.clone());
    tokio::pin!(first);
    tokio::select! {
        result = &mut first => return result,
        () = timer.sleep(delay) => {}
    }
    if budget.is_some_and(|budget| !budget.try_retry()) {
        return first.await;
    }
    tracing::debug!(service = %call.service, method = %call.method, ?delay, "sending a backup request");
    call.attempt += 1;
    balanced
        .shared
        .counters
        .hedges
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (request_id, backup) = (call.request_id, call.attempt);
    let second = balanced.attempt(call);
    tokio::pin!(second);
    // The first success wins; a failure leaves the other attempt to answer.
    let result = tokio::select! {
        result = &mut first => match result {
            Ok(reply) => Ok(reply),
            Err(error) if RetryPolicy::is_retryable(&error) => second.await,
            Err(error) => Err(error),
        },
        result = &mut second => match result {
            Ok(reply) => Ok(reply),
            Err(error) if RetryPolicy::is_retryable(&error) => first.await,
            Err(error) => Err(error),
        },
    };
    // Whichever attempt's failure is reported, it names the backup's attempt number: a resend
    // goes above every attempt sent.
    result.map_err(|error| match (error.sent(), request_id) {
        (Some(sent), Some(request_id)) => error.sent_at_least(request_id, backup, sent.dedupe),
        _ => error,
    })
}
