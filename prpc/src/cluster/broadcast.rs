//! Calls to every endpoint at once: [`FailMode::Broadcast`](super::FailMode::Broadcast) and
//! [`FailMode::Fork`](super::FailMode::Fork).

use std::sync::{Arc, PoisonError};

use tokio::task::JoinSet;

use super::balanced::Shared;
use crate::call::{Call, Reply};
use crate::discovery::Endpoint;
use crate::error::Error;
use crate::retry::RetryPolicy;

/// One copy of `call` per endpoint, each a call of its own: a fresh request id, no dedupe
/// flag (each server must run it), no retries.
fn copies(shared: &Arc<Shared>, mut call: Call) -> Vec<(Endpoint, JoinHandleless)> {
    call.resolve(&shared.defaults);
    call.request_id = None;
    call.dedupe = false;
    call.route = None;
    call.options.retry = Some(RetryPolicy::never());
    let view = shared
        .view
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    view.members
        .iter()
        .map(|member| {
            let (member, shared, call) = (member.clone(), shared.clone(), call.clone());
            let endpoint = member.endpoint.clone();
            let sent = async move {
                let link = member.link(&shared.template, &shared.timer).await?;
                member.used();
                link.call(call).await
            };
            (endpoint, Box::pin(sent) as JoinHandleless)
        })
        .collect()
}

type JoinHandleless =
    std::pin::Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send + 'static>>;

/// Sends `call` to every endpoint at once and returns each one's result, in the order of the
/// endpoints (sorted by instance id).
pub(super) async fn every(
    shared: &Arc<Shared>,
    call: Call,
) -> Vec<(Endpoint, Result<Reply, Error>)> {
    let mut tasks = JoinSet::new();
    let copies = copies(shared, call);
    let endpoints: Vec<Endpoint> = copies
        .iter()
        .map(|(endpoint, _)| endpoint.clone())
        .collect();
    for (index, (_, sent)) in copies.into_iter().enumerate() {
        tasks.spawn(async move { (index, sent.await) });
    }
    let mut results: Vec<Option<Result<Reply, Error>>> = endpoints.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, result)) = joined {
            results[index] = Some(result);
        }
    }
    endpoints
        .into_iter()
        .zip(results)
        .map(|(endpoint, result)| {
            let result = result.unwrap_or(Err(Error::Cancelled));
            (endpoint, result)
        })
        .collect()
}

/// Broadcast: every endpoint's answer; one of them if all succeeded, else the first error
/// (by endpoint order).
pub(super) async fn broadcast(shared: &Arc<Shared>, call: Call) -> Result<Reply, Error> {
    let results = every(shared, call).await;
    if results.is_empty() {
        return Err(shared.no_endpoint());
    }
    let mut first_ok = None;
    for (_, result) in results {
        match result {
            Ok(reply) => {
                first_ok.get_or_insert(reply);
            }
            Err(error) => return Err(error),
        }
    }
    first_ok.ok_or_else(|| shared.no_endpoint())
}

/// Fork: the first success of every endpoint's answer (the others are cancelled), else the
/// last error.
pub(super) async fn fork(shared: &Arc<Shared>, call: Call) -> Result<Reply, Error> {
    let mut tasks = JoinSet::new();
    for (_, sent) in copies(shared, call) {
        tasks.spawn(sent);
    }
    let mut last_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(reply)) => return Ok(reply), // dropping the set cancels the others
            Ok(Err(error)) => last_error = Some(error),
            Err(_) => {}
        }
    }
    Err(last_error.unwrap_or_else(|| shared.no_endpoint()))
}
