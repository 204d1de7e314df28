//! What an example server stops on: SIGTERM (sent by `kill`, a service manager or a container
//! runtime) or SIGINT (Ctrl-C). The server then shuts down gracefully: a goaway on every
//! connection, calls already received answered within the grace period, then exit.

/// Completes at the first SIGTERM or SIGINT.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            // No SIGTERM handler could be installed: Ctrl-C still works.
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    eprintln!("shutting down: goaway sent, finishing the calls in flight");
}
