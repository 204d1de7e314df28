//! Layers: a policy wraps the next step of a call, on either side.
//!
//! A [`Layer`] takes the step it wraps and returns the wrapped step, as tower's `Layer` does:
//! on the server the steps are [`server::Handler`](crate::server::Handler)s (limits, dedupe,
//! deadlines, your own checks, then the services), on the client they are
//! [`Channel`](crate::Channel)s (retries over the connection). Layers are plain generic types,
//! so a stack of them compiles to one type with no boxing on the way through; [`Stack`] joins
//! two, [`Identity`] is the empty stack.
//!
//! ```
//! use prpc::layer::{Identity, Layer, Stack};
//!
//! /// Wraps a value in a tuple with a label: a layer in the smallest sense.
//! struct Label(&'static str);
//!
//! impl<S> Layer<S> for Label {
//!     type Service = (&'static str, S);
//!     fn layer(&self, inner: S) -> Self::Service {
//!         (self.0, inner)
//!     }
//! }
//!
//! let stack = Stack::new(Label("inner"), Stack::new(Label("outer"), Identity));
//! assert_eq!(stack.layer(0), ("outer", ("inner", 0)));
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Wraps a step of a call (a server handler, a client channel) in a policy.
pub trait Layer<S> {
    /// The wrapped step.
    type Service;

    /// Wraps `inner`.
    fn layer(&self, inner: S) -> Self::Service;
}

/// The layer that wraps nothing: the inner step as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl<S> Layer<S> for Identity {
    type Service = S;

    fn layer(&self, inner: S) -> S {
        inner
    }
}

/// Two layers in one: `inner` wraps the step first, then `outer` wraps the result.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stack<Inner, Outer> {
    inner: Inner,
    outer: Outer,
}

impl<Inner, Outer> Stack<Inner, Outer> {
    /// `inner` closest to the step, `outer` around it.
    pub fn new(inner: Inner, outer: Outer) -> Self {
        Stack { inner, outer }
    }
}

impl<S, Inner, Outer> Layer<S> for Stack<Inner, Outer>
where
    Inner: Layer<S>,
    Outer: Layer<Inner::Service>,
{
    type Service = Outer::Service;

    fn layer(&self, service: S) -> Self::Service {
        self.outer.layer(self.inner.layer(service))
    }
}

/// One of two futures with the same output: what a layer returns when it either answers
/// itself (`Left`, say a refusal) or passes the call on (`Right`), with no box.
///
/// ```
/// use prpc::layer::Either;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let answer = |refuse: bool| {
///     if refuse {
///         Either::Left(std::future::ready(0))
///     } else {
///         Either::Right(Box::pin(async { 1 }))
///     }
/// };
/// assert_eq!(answer(true).await + answer(false).await, 1);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Either<L, R> {
    /// The first kind.
    Left(L),
    /// The second kind.
    Right(R),
}

impl<L, R> Future for Either<L, R>
where
    L: Future + Unpin,
    R: Future<Output = L::Output> + Unpin,
{
    type Output = L::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Either::Left(left) => Pin::new(left).poll(cx),
            Either::Right(right) => Pin::new(right).poll(cx),
        }
    }
}
