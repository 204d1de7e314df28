//! The registry as a process of its own: what `prpc-registry serve ADDR` and
//! `prpc registry serve ADDR` run.
//!
//! Both binaries parse their own command lines into a [`Standalone`] and call
//! [`serve`](Standalone::serve), so the two start, announce and stop the same way.

use std::io;
use std::time::Duration;

use prpc::transport::Address;

use crate::{Limits, Registry};

/// How long open calls get to finish once a stop signal arrives.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A registry server's settings: its bounds and its warm-up.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use prpc_registry::Standalone;
///
/// Standalone::default()
///     .serve("127.0.0.1:7500", |address| println!("listening on {address}"))
///     .await
/// # }
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Standalone {
    /// The registry's bounds.
    pub limits: Limits,
    /// How long watches are held back after a start (the registry's default when `None`);
    /// see [`Registry::warm_up`].
    pub warm_up: Option<Duration>,
}

impl Standalone {
    /// Settings with these bounds and the default warm-up.
    pub fn new(limits: Limits) -> Self {
        Standalone {
            limits,
            warm_up: None,
        }
    }

    /// Sets the warm-up.
    #[must_use]
    pub fn warm_up(mut self, warm_up: Duration) -> Self {
        self.warm_up = Some(warm_up);
        self
    }

    /// Binds `address` (`host:port`, `tcp://`, `unix://`), calls `listening` with the bound
    /// address once it accepts connections, and serves until Ctrl-C or SIGTERM, then stops
    /// gracefully. The error of a failed bind names the address.
    pub async fn serve(self, address: &str, listening: impl FnOnce(&Address)) -> io::Result<()> {
        let mut registry = Registry::new(self.limits);
        if let Some(warm_up) = self.warm_up {
            registry = registry.warm_up(warm_up);
        }
        let server = prpc::Server::builder()
            .add_service(registry.service())
            .shutdown_grace(SHUTDOWN_GRACE)
            .bind(address)
            .await
            .map_err(|error| io::Error::new(error.kind(), format!("binding {address}: {error}")))?;
        listening(&server.local_addr());
        server.serve_with_shutdown(stopped()).await
    }
}

/// Ctrl-C or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
