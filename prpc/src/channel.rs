//! The client's seam: a [`Channel`] carries a [`Call`](crate::Call) to a server and brings back its
//! [`Reply`](crate::Reply).

use std::future::Future;

use crate::call::{Call, CallOptions, Reply};
use crate::error::Error;

/// What generated clients call: anything that can carry a [`Call`](crate::Call) to a server and bring back
/// its [`Reply`](crate::Reply) — one [`Client`](crate::Client) connection today, a balanced cluster or an
/// HTTP tunnel later.
///
/// A server's application error arrives as `Err(Error::Status(status))` with
/// [`Code::Application`](crate::Code) and the encoded error in
/// [`Status::details`](crate::Status::details).
pub trait Channel: Send + Sync + 'static {
    /// Options applied where a call leaves a field unset (the format here is what generated
    /// clients encode arguments in by default).
    fn default_options(&self) -> &CallOptions;

    /// Sends the call and waits for its reply. Dropping the future cancels the call.
    fn call(&self, call: Call) -> impl Future<Output = Result<Reply, Error>> + Send;
}
