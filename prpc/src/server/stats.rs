//! The server's stats layer: counts every call by service, method and code, with its latency
//! (see [`crate::stats`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::handler::Handler;
use crate::service::{Request, Response, Service};
use crate::stats::{MethodStats, ServerStats};
use crate::status::{Code, Status};

/// Counts calls, by method and code, with their latency and the calls in flight. Every server
/// has it, between [`Dedupe`](super::Dedupe) and [`Deadline`](super::Deadline) (so a call
/// stopped at its deadline counts as `deadline_exceeded`, and a reply replayed to a retry is
/// not counted again); [`Builder::stats`](super::Builder::stats) turns it off.
pub struct Stats<H> {
    inner: H,
    /// `None` when counting is off.
    table: Option<Table>,
}

/// One service's methods and their counters, by the service's address.
type ServiceCounters = (usize, Vec<(String, Arc<MethodStats>)>);

/// The services a server has, by name.
pub(super) type Named = Vec<(String, Arc<dyn Service>)>;

/// The methods a server's dispatcher numbers: `(number, service, method)`.
pub(super) type Slots = Vec<(u32, String, String)>;

/// The counters of each method, by the number the server's dispatcher gave it, else found by
/// the service's pointer and the method's name.
struct Table {
    /// By [`Request::slot`]: what the dispatcher found, with no second search.
    by_slot: Vec<Option<Arc<MethodStats>>>,
    services: Vec<ServiceCounters>,
    /// Calls to methods a service does not list.
    unlisted: Arc<MethodStats>,
}

impl<H> Stats<H> {
    /// Counts into `stats` the calls to `services`, whose methods the dispatcher numbers as
    /// `slots` says (`None`: counts nothing).
    pub(super) fn new(inner: H, stats: Option<(&ServerStats, Named, Slots)>) -> Self {
        let table = stats.map(|(stats, services, slots)| {
            let mut by_slot = Vec::new();
            for (slot, service, method) in slots {
                let counters = stats
                    .methods
                    .iter()
                    .find(|(s, m, _)| *s == service && *m == method)
                    .map(|(_, _, counters)| counters.clone());
                let slot = slot as usize;
                if by_slot.len() <= slot {
                    by_slot.resize(slot + 1, None);
                }
                by_slot[slot] = counters;
            }
            let mut by_service: Vec<ServiceCounters> = Vec::new();
            let mut unlisted = Arc::default();
            for (service_name, method, counters) in &stats.methods {
                if service_name.is_empty() {
                    unlisted = counters.clone();
                    continue;
                }
                let Some((_, service)) = services.iter().find(|(name, _)| name == service_name)
                else {
                    continue;
                };
                let key = address(service);
                let at = match by_service.iter().position(|(k, _)| *k == key) {
                    Some(at) => at,
                    None => {
                        by_service.push((key, Vec::new()));
                        by_service.len() - 1
                    }
                };
                by_service[at].1.push((method.clone(), counters.clone()));
            }
            Table {
                by_slot,
                services: by_service,
                unlisted,
            }
        });
        Stats { inner, table }
    }
}

/// A service's identity: where its value lives.
fn address(service: &Arc<dyn Service>) -> usize {
    Arc::as_ptr(service).cast::<()>() as usize
}

impl Table {
    /// The counters of the method `request` is for: by its number where the dispatcher gave
    /// it one, else searched for.
    #[inline]
    fn of(&self, service: &Arc<dyn Service>, request: &Request) -> &Arc<MethodStats> {
        let by_slot = request
            .slot
            .and_then(|slot| self.by_slot.get(slot as usize))
            .and_then(Option::as_ref);
        match by_slot {
            Some(counters) => counters,
            None => self.find(service, &request.method),
        }
    }

    fn find(&self, service: &Arc<dyn Service>, method: &str) -> &Arc<MethodStats> {
        let key = address(service);
        self.services
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, methods)| methods.iter().find(|(name, _)| name == method))
            .map_or(&self.unlisted, |(_, counters)| counters)
    }
}

impl<H: Handler> Handler for Stats<H> {
    type Future = StatsFuture<H::Future>;

    fn call(&self, service: &Arc<dyn Service>, request: Request) -> Self::Future {
        let counting = self.table.as_ref().map(|table| {
            let counters = table.of(service, &request).clone();
            counters.begin();
            // From the read that brought the request: one clock read per read, not per call.
            (counters, request.received.unwrap_or_else(Instant::now))
        });
        StatsFuture {
            inner: self.inner.call(service, request),
            counting,
        }
    }
}

/// The future of [`Stats`]: the call, counted when it answers (or as `cancelled` when it is
/// dropped unanswered).
pub struct StatsFuture<F> {
    inner: F,
    counting: Option<(Arc<MethodStats>, Instant)>,
}

impl<F> Future for StatsFuture<F>
where
    F: Future<Output = Result<Response, Status>> + Unpin,
{
    type Output = Result<Response, Status>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = std::task::ready!(Pin::new(&mut self.inner).poll(cx));
        if let Some((counters, started)) = self.counting.take() {
            let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
            counters.end(code, started.elapsed());
        }
        Poll::Ready(result)
    }
}

impl<F> Drop for StatsFuture<F> {
    fn drop(&mut self) {
        if let Some((counters, started)) = self.counting.take() {
            counters.end(Code::Cancelled, started.elapsed());
        }
    }
}
