//! The client's seam: a [`Channel`] carries a [`Call`](crate::Call) to a server and brings back its
//! [`Reply`](crate::Reply).

use std::future::Future;
use std::pin::Pin;

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

impl<C: Channel> Channel for std::sync::Arc<C> {
    fn default_options(&self) -> &CallOptions {
        (**self).default_options()
    }

    fn call(&self, call: Call) -> impl Future<Output = Result<Reply, Error>> + Send {
        (**self).call(call)
    }
}

/// A [`Channel`] behind a pointer: any channel as one type, for stacks chosen at run time
/// and fields that hold "some channel". Each call's future is boxed.
///
/// ```no_run
/// # async fn demo() -> prpc::Result<()> {
/// use prpc::{BoxChannel, Channel};
///
/// let channels: Vec<BoxChannel> = vec![
///     BoxChannel::new(prpc::Client::connect("127.0.0.1:7000").await?),
///     BoxChannel::new(prpc::Client::connect("unix:///run/other.sock").await?.link().clone()),
/// ];
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BoxChannel(std::sync::Arc<dyn DynChannel>);

impl BoxChannel {
    /// Boxes `channel`.
    pub fn new(channel: impl Channel) -> Self {
        BoxChannel(std::sync::Arc::new(channel))
    }
}

impl std::fmt::Debug for BoxChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxChannel").finish_non_exhaustive()
    }
}

/// The future of a boxed channel's call.
type BoxCallFuture<'a> = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send + 'a>>;

/// [`Channel`] in a form that can be a trait object.
trait DynChannel: Send + Sync + 'static {
    fn default_options(&self) -> &CallOptions;
    fn call_boxed(&self, call: Call) -> BoxCallFuture<'_>;
}

impl<C: Channel> DynChannel for C {
    fn default_options(&self) -> &CallOptions {
        Channel::default_options(self)
    }

    fn call_boxed(&self, call: Call) -> BoxCallFuture<'_> {
        Box::pin(Channel::call(self, call))
    }
}

impl Channel for BoxChannel {
    fn default_options(&self) -> &CallOptions {
        self.0.default_options()
    }

    fn call(&self, call: Call) -> impl Future<Output = Result<Reply, Error>> + Send {
        self.0.call_boxed(call)
    }
}
