//! The tasks a server waits for when it stops: a connection's handlers, the server's
//! connections.
//!
//! tokio-util's `TaskTracker` does the same, but it lives behind tokio-util's `rt` feature,
//! which pulls in futures-util and its proc-macro: about a tenth of the CPU time a
//! one-service app takes to build (benches/README.md, "Build cost"). What a server needs is
//! small: spawn and count, close, and wait until the count is zero after closing.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Spawns tasks and counts those not yet finished; [`wait`](Tasks::wait) ends once it is
/// [closed](Tasks::close) and every task it spawned has ended (finished, panicked or been
/// aborted).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tasks {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    running: AtomicUsize,
    closed: AtomicBool,
    idle: Notify,
}

impl Inner {
    fn done(&self) -> bool {
        self.closed.load(Ordering::Acquire) && self.running.load(Ordering::Acquire) == 0
    }
}

/// Held by one spawned task; its drop, when the task's future is dropped however the task
/// ends, counts the task out.
struct Running(Arc<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 && self.0.done() {
            self.0.idle.notify_waiters();
        }
    }
}

impl Tasks {
    pub(crate) fn new() -> Self {
        Tasks::default()
    }

    /// Spawns `task` on the current runtime, counted until it ends.
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        crate::task::spawn(self.counted(task))
    }

    /// Spawns `task` on `runtime`, counted until it ends.
    pub(crate) fn spawn_on<F>(&self, task: F, runtime: &Handle) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        crate::task::spawn_on(self.counted(task), runtime)
    }

    /// `task`, counted from now until it is dropped (finished or not).
    fn counted<F: Future>(&self, task: F) -> impl Future<Output = F::Output> + use<F> {
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        let running = Running(self.inner.clone());
        async move {
            let _running = running;
            task.await
        }
    }

    /// The tasks spawned and not yet ended.
    pub(crate) fn len(&self) -> usize {
        self.inner.running.load(Ordering::Acquire)
    }

    /// No more waiting for tasks to be spawned: [`wait`](Tasks::wait) ends when the count
    /// reaches zero. Tasks may still be spawned after.
    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        if self.inner.done() {
            self.inner.idle.notify_waiters();
        }
    }

    /// Waits until closed and no task is running.
    pub(crate) async fn wait(&self) {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            // Registered before the check, so a notification between the two is not lost.
            idle.as_mut().enable();
            if self.inner.done() {
                return;
            }
            idle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn waits_for_every_task_once_closed() {
        let tasks = Tasks::new();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _ = released.await;
        });
        tasks.spawn(async {});
        tasks.close();
        let waiting = tokio::spawn({
            let tasks = tasks.clone();
            async move { tasks.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "a task still runs");
        assert_eq!(tasks.len(), 1);
        release.send(()).unwrap();
        waiting.await.unwrap();
        assert_eq!(tasks.len(), 0);
    }

    #[tokio::test]
    async fn an_open_tracker_waits_even_when_empty() {
        let tasks = Tasks::new();
        let wait = tokio::time::timeout(Duration::from_millis(20), tasks.wait());
        assert!(wait.await.is_err(), "not closed: wait goes on");
        tasks.close();
        tasks.wait().await;
    }

    #[tokio::test]
    async fn aborted_and_panicked_tasks_count_out() {
        let tasks = Tasks::new();
        let forever = tasks.spawn(std::future::pending::<()>());
        let panics = tasks.spawn(async { panic!("a handler's bug") });
        assert!(panics.await.is_err());
        forever.abort();
        let _ = forever.await;
        tasks.close();
        tasks.wait().await;
        assert_eq!(tasks.len(), 0);
    }
}
