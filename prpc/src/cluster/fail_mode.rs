//! [`FailMode`]: where a cluster's retries go.

use std::str::FromStr;

/// Where the retries of a call go (how many there are, and which calls are retried at all,
/// is the call's [`RetryPolicy`](crate::retry::RetryPolicy) under prpc's retry rules; see [`retry`](crate::retry)).
///
/// Names for configuration: `failfast`, `failover`, `failtry`, `backup`, `broadcast`, `fork`.
///
/// ```
/// use prpc::cluster::FailMode;
///
/// assert_eq!("failover".parse::<FailMode>()?, FailMode::Failover);
/// # Ok::<(), prpc::cluster::ParseFailModeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FailMode {
    /// No retries: a failed attempt is the call's answer (even for an idempotent method).
    Failfast,
    /// Each retry goes to an endpoint no earlier attempt of the call went to (while there is
    /// one; then to any).
    #[default]
    Failover,
    /// Each retry goes to the endpoint the first attempt went to (while it is in the set).
    Failtry,
    /// Backup requests (hedging): a call that may be sent again and has not answered within
    /// a delay (the method's observed p95 latency, or [`Builder::hedge_delay`](super::Builder::hedge_delay)) is sent to a
    /// second endpoint under the same request id; the first success wins and the other is
    /// cancelled. Until a method has 20 calls behind it (and with no fixed delay) its calls
    /// go as with failover.
    Backup,
    /// Every endpoint gets the call (each as a call of its own: a fresh request id, no dedupe
    /// flag, no retries); the call fails if any fails, else answers one endpoint's reply.
    /// [`Cluster::broadcast`](super::Cluster::broadcast) returns every endpoint's result.
    Broadcast,
    /// Every endpoint gets the call, as with broadcast; the first success wins and the
    /// others are cancelled; the call fails only if all fail.
    Fork,
}

/// Text that names no [`FailMode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailModeError(String);

impl std::fmt::Display for ParseFailModeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown fail mode \"{}\" (expected failfast, failover, failtry, backup, broadcast \
             or fork)",
            self.0
        )
    }
}

impl std::error::Error for ParseFailModeError {}

impl FromStr for FailMode {
    type Err = ParseFailModeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "failfast" => Ok(FailMode::Failfast),
            "failover" => Ok(FailMode::Failover),
            "failtry" => Ok(FailMode::Failtry),
            "backup" => Ok(FailMode::Backup),
            "broadcast" => Ok(FailMode::Broadcast),
            "fork" => Ok(FailMode::Fork),
            _ => Err(ParseFailModeError(text.to_owned())),
        }
    }
}
