//! Spawning prpc's background tasks as one task type.
//!
//! tokio compiles its task machinery (the harness that polls, completes and cancels a task)
//! once per spawned future type, about 1,300 lines of LLVM IR each, and in the crate that
//! names the type: a one-service app compiled eight copies, prpc eight more (benches/README.md,
//! "Build cost"). Background tasks whose output nobody reads are boxed here first, so they all
//! share one type, compiled once, in prpc. The box is one allocation per spawned task (a
//! connection, a call that did not finish on its first poll, a background store write), next
//! to the one tokio makes for the task itself.

use std::future::Future;
use std::pin::Pin;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// The one future type prpc spawns.
type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Spawns `task` on the current runtime (as `tokio::spawn`, so it panics outside one).
pub(crate) fn spawn(task: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
    spawn_boxed(Box::pin(task), None)
}

/// Spawns `task` on `runtime`.
pub(crate) fn spawn_on(
    task: impl Future<Output = ()> + Send + 'static,
    runtime: &Handle,
) -> JoinHandle<()> {
    spawn_boxed(Box::pin(task), Some(runtime))
}

/// Not generic and never inlined: tokio's task code for [`Task`] is compiled here, once.
#[inline(never)]
fn spawn_boxed(task: Task, runtime: Option<&Handle>) -> JoinHandle<()> {
    match runtime {
        Some(runtime) => runtime.spawn(task),
        None => tokio::spawn(task),
    }
}
