//! The rate limit layer: token buckets for the whole server and for single methods; a call
//! over a limit is answered `resource_exhausted` at once, with the wait until the next token
//! in its metadata under [`RETRY_AFTER_MS`].
//!
//! Each bucket is one atomic word, updated by compare-and-swap: the bucket is kept as the
//! time at which it would be full again (the "theoretical arrival time" of the generic cell
//! rate algorithm, which admits exactly the calls a token bucket of the same rate and burst
//! admits). Taking a token moves that time forward by one token's interval; a call is refused
//! when the move would put it more than a full bucket ahead of now, and the excess is the
//! wait. So a call costs one clock read and one compare-and-swap per bucket it passes, with
//! no lock, and threads that admit calls at once never wait on each other.
//!
//! The algorithm is small enough to keep here rather than take the `governor` crate, whose
//! default features pull in `futures`, `dashmap`, `quanta`, `nonzero_ext` and a hasher of
//! their own, about a dozen crates to build, for a keyed store prpc does not need (a server
//! knows its buckets when it is built) and a clock of its own that tokio's paused time does not
//! drive.

use std::future::{Ready, ready};
use std::sync::Arc;

use tokio::time::Instant;

use super::handler::Handler;
use crate::layer::{Either, Layer};
use crate::service::{Request, Response, Service};
use crate::status::{Code, Status};
use crate::wire::Metadata;

use crate::rate::Bucket;
pub use crate::rate::Rate;
pub use crate::retry::RETRY_AFTER_MS;

/// Up to this many per-method buckets are found by comparing names in turn, which beats
/// hashing them when there are few.
const FEW_METHODS: usize = 8;

/// Limits the rate of calls a server runs, with a token bucket for all its calls and one for
/// each method given its own limit, as a [`Layer`] added with
/// [`Builder::layer`](super::Builder::layer).
///
/// A call takes a token from its method's bucket (if the method has one), then from the
/// global bucket (if there is one); a call either bucket refuses is answered
/// `resource_exhausted` at once, without reaching the service, with the wait until the
/// refusing bucket has a token in its metadata under [`RETRY_AFTER_MS`]. A call refused by
/// its method's bucket takes nothing from the global one, and one refused by the global
/// bucket gets its method's token back, so a busy method exhausts its own bucket only.
///
/// Each server built with the layer has its own buckets; they count the calls of every
/// connection together. Streams count as one call each, when they open.
///
/// ```
/// use prpc::server::{Rate, RateLimit, RETRY_AFTER_MS};
///
/// # #[prpc::service] pub trait Arith { async fn add(&self, a: i64, b: i64) -> i64; }
/// # struct Calculator;
/// # impl Arith for Calculator { async fn add(&self, a: i64, b: i64) -> i64 { a + b } }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limit = RateLimit::global(Rate::per_second(10_000))
///     .method("Arith", "add", Rate::per_second(2).burst(2));
/// let server = prpc::Server::builder()
///     .layer(limit)
///     .add_service(ArithServer::new(Calculator))
///     .bind("127.0.0.1:0")
///     .await?;
/// let addr = server.local_addr();
/// tokio::spawn(server.serve());
///
/// let client = ArithClient::connect(&addr).await?;
/// assert_eq!(client.add(1, 2).await?, 3);
/// assert_eq!(client.add(3, 4).await?, 7);
/// let refused = client.add(5, 6).await.unwrap_err();
/// assert_eq!(refused.code(), prpc::Code::ResourceExhausted);
/// let status = refused.status().unwrap();
/// let wait: u64 = std::str::from_utf8(&status.metadata().get(RETRY_AFTER_MS).unwrap())?.parse()?;
/// assert!(wait > 0 && wait <= 500);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RateLimit {
    global: Option<Rate>,
    methods: Vec<(String, String, Rate)>,
}

impl RateLimit {
    /// No limit yet: add a global one with [`RateLimit::global`] or per method with
    /// [`method`](RateLimit::method).
    pub fn new() -> RateLimit {
        RateLimit::default()
    }

    /// A limit on all the server's calls together.
    pub fn global(rate: Rate) -> RateLimit {
        RateLimit {
            global: Some(rate),
            methods: Vec::new(),
        }
    }

    /// A limit of its own for `service/method` (the service's name as callers address it,
    /// such as `math.Arith`), replacing any set before for it.
    pub fn method(mut self, service: &str, method: &str, rate: Rate) -> RateLimit {
        self.methods.retain(|(known_service, known_method, _)| {
            (&**known_service, &**known_method) != (service, method)
        });
        self.methods
            .push((service.to_owned(), method.to_owned(), rate));
        self
    }
}

impl<H> Layer<H> for RateLimit {
    type Service = RateLimited<H>;

    fn layer(&self, inner: H) -> RateLimited<H> {
        let origin = Instant::now();
        let methods = self
            .methods
            .iter()
            .map(|(service, method, rate)| MethodBucket {
                service: service.as_str().into(),
                method: method.as_str().into(),
                bucket: Bucket::new(*rate),
            })
            .collect();
        RateLimited {
            inner,
            buckets: Arc::new(Buckets {
                origin,
                global: self.global.map(Bucket::new),
                methods: Methods::new(methods),
            }),
        }
    }
}

/// The handler [`RateLimit`] wraps around the next one; it owns the buckets, so every call
/// through it (every connection of its server) counts against the same ones.
///
/// ```
/// use prpc::layer::Layer;
/// use prpc::server::{Dispatch, Handler, Rate, RateLimit, RateLimited};
///
/// let handler: RateLimited<Dispatch> = RateLimit::global(Rate::per_second(100)).layer(Dispatch);
/// fn is_handler(_: &impl Handler) {}
/// is_handler(&handler);
/// ```
pub struct RateLimited<H> {
    inner: H,
    buckets: Arc<Buckets>,
}

/// The future of [`RateLimited`]: a refusal, ready at once, or the call (no box either way).
///
/// ```
/// use prpc::server::{Dispatch, Guarded, Handler, RateLimitFuture, RateLimited};
///
/// fn future_of<H: Handler>(_: &H) -> std::marker::PhantomData<H::Future> {
///     std::marker::PhantomData
/// }
/// # let handler: RateLimited<Dispatch> = prpc::layer::Layer::layer(&prpc::server::RateLimit::new(), Dispatch);
/// let _: std::marker::PhantomData<RateLimitFuture<Guarded>> = future_of(&handler);
/// ```
pub type RateLimitFuture<F> = Either<Ready<Result<Response, Status>>, F>;

impl<H: Handler> Handler for RateLimited<H> {
    type Future = RateLimitFuture<H::Future>;

    fn call(&self, service: &Arc<dyn Service>, request: Request) -> Self::Future {
        match self.buckets.admit(service.name(), &request.method) {
            Ok(()) => Either::Right(self.inner.call(service, request)),
            Err(refusal) => {
                Either::Left(ready(Err(refusal.status(service.name(), &request.method))))
            }
        }
    }
}

struct Buckets {
    /// Time zero of every bucket's clock.
    origin: Instant,
    global: Option<Bucket>,
    methods: Methods,
}

impl Buckets {
    /// Takes a token from the call's method bucket and the global one, or says which refused
    /// and how long until it has a token.
    fn admit(&self, service: &str, method: &str) -> Result<(), Refusal> {
        let method_bucket = self.methods.get(service, method);
        if method_bucket.is_none() && self.global.is_none() {
            return Ok(());
        }
        let now = self.now();
        if let Some(bucket) = method_bucket {
            bucket.take(now).map_err(|wait| Refusal {
                scope: Scope::Method,
                rate: bucket.rate,
                wait,
            })?;
        }
        if let Some(global) = &self.global
            && let Err(wait) = global.take(now)
        {
            if let Some(bucket) = method_bucket {
                bucket.give_back();
            }
            return Err(Refusal {
                scope: Scope::Global,
                rate: global.rate,
                wait,
            });
        }
        Ok(())
    }

    /// Nanoseconds since `origin`.
    fn now(&self) -> u64 {
        u64::try_from(
            Instant::now()
                .saturating_duration_since(self.origin)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX)
    }
}

/// Which bucket refused a call.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Global,
    Method,
}

/// A call a bucket refused.
struct Refusal {
    scope: Scope,
    rate: Rate,
    /// Nanoseconds until the bucket has a token.
    wait: u64,
}

impl Refusal {
    fn status(&self, service: &str, method: &str) -> Status {
        let wait_ms = self.wait.div_ceil(1_000_000).max(1);
        let message = match self.scope {
            Scope::Global => format!(
                "the server's rate limit of {} is exceeded; a call may pass in {wait_ms} ms",
                self.rate
            ),
            Scope::Method => format!(
                "the rate limit of {service}/{method} ({}) is exceeded; a call may pass in \
                 {wait_ms} ms",
                self.rate
            ),
        };
        let mut metadata = Metadata::new();
        metadata.insert(RETRY_AFTER_MS, wait_ms.to_string());
        Status::new(Code::ResourceExhausted, message).with_metadata(metadata)
    }
}

struct MethodBucket {
    service: Box<str>,
    method: Box<str>,
    bucket: Bucket,
}

/// The per-method buckets, by service and method name.
enum Methods {
    Few(Vec<MethodBucket>),
    /// Indexes into the buckets, by service then method.
    Many(
        Vec<MethodBucket>,
        std::collections::HashMap<Box<str>, std::collections::HashMap<Box<str>, usize>>,
    ),
}

impl Methods {
    fn new(buckets: Vec<MethodBucket>) -> Methods {
        if buckets.len() <= FEW_METHODS {
            return Methods::Few(buckets);
        }
        let mut index = std::collections::HashMap::<_, std::collections::HashMap<_, _>>::new();
        for (position, bucket) in buckets.iter().enumerate() {
            index
                .entry(bucket.service.clone())
                .or_default()
                .insert(bucket.method.clone(), position);
        }
        Methods::Many(buckets, index)
    }

    fn get(&self, service: &str, method: &str) -> Option<&Bucket> {
        match self {
            Methods::Few(buckets) => buckets
                .iter()
                .find(|entry| &*entry.method == method && &*entry.service == service)
                .map(|entry| &entry.bucket),
            Methods::Many(buckets, index) => {
                let position = *index.get(service)?.get(method)?;
                Some(&buckets[position].bucket)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn buckets(limit: &RateLimit) -> Arc<Buckets> {
        limit.layer(()).buckets
    }

    /// Admits calls to `service/method` until one is refused; returns the admitted count and
    /// the refusal's wait.
    fn drain(buckets: &Buckets, service: &str, method: &str) -> (u32, Duration) {
        let mut admitted = 0;
        loop {
            match buckets.admit(service, method) {
                Ok(()) => admitted += 1,
                Err(refusal) => return (admitted, Duration::from_nanos(refusal.wait)),
            }
            assert!(admitted < 1_000_000, "nothing refused");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_passes_then_tokens_come_back_at_the_rate() {
        let buckets = buckets(&RateLimit::global(Rate::per_second(10).burst(5)));
        assert_eq!(drain(&buckets, "s", "m"), (5, Duration::from_millis(100)));
        // A token every 100 ms: 3 in 300 ms, not 4.
        tokio::time::advance(Duration::from_millis(300)).await;
        assert_eq!(drain(&buckets, "s", "m"), (3, Duration::from_millis(100)));
        tokio::time::advance(Duration::from_millis(40)).await;
        assert_eq!(drain(&buckets, "s", "m"), (0, Duration::from_millis(60)));
        // A long quiet spell fills the bucket, and no more.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(drain(&buckets, "s", "m").0, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_rates_wait_long() {
        let buckets = buckets(&RateLimit::global(Rate::every(Duration::from_secs(60))));
        assert_eq!(drain(&buckets, "s", "m"), (1, Duration::from_secs(60)));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(drain(&buckets, "s", "m"), (0, Duration::from_secs(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn method_buckets_stand_apart_and_share_the_global_one() {
        let limit = RateLimit::global(Rate::per_second(10).burst(10))
            .method("s", "a", Rate::per_second(1).burst(3))
            .method("s", "b", Rate::per_second(1).burst(4));
        let buckets = buckets(&limit);
        assert_eq!(drain(&buckets, "s", "a").0, 3);
        // `a`'s refusal took nothing from the global bucket: its other 7 tokens go to `b`
        // (which has 4) and to methods without a bucket of their own.
        assert_eq!(drain(&buckets, "s", "b").0, 4);
        assert_eq!(drain(&buckets, "s", "c").0, 3);
        // A second later: the global bucket is full again, `a` and `b` have a token each.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(drain(&buckets, "s", "a").0, 1);
        assert_eq!(drain(&buckets, "s", "b").0, 1);
        assert_eq!(drain(&buckets, "s", "c").0, 8);
        // With the global bucket empty, `a`'s calls are refused by it, and each gets its
        // token from `a`'s bucket back: `a` passes as soon as the global bucket has one.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(drain(&buckets, "s", "c").0, 10);
        for _ in 0..5 {
            assert!(matches!(
                buckets.admit("s", "a"),
                Err(Refusal {
                    scope: Scope::Global,
                    ..
                })
            ));
        }
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(buckets.admit("s", "a").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn many_method_buckets_are_found_by_name() {
        let mut limit = RateLimit::new();
        for number in 0..20 {
            limit = limit.method(
                "s",
                &format!("m{number}"),
                Rate::per_second(1).burst(number + 1),
            );
        }
        let buckets = buckets(&limit);
        assert!(matches!(buckets.methods, Methods::Many(..)));
        for number in 0..20 {
            assert_eq!(drain(&buckets, "s", &format!("m{number}")).0, number + 1);
        }
        // Unlimited: neither a method bucket nor a global one.
        assert!(buckets.admit("s", "other").is_ok());
        assert!(buckets.admit("t", "m0").is_ok());
    }

    #[test]
    fn a_refusal_says_what_and_how_long() {
        let refusal = Refusal {
            scope: Scope::Method,
            rate: Rate::per_second(2).burst(1),
            wait: 1_200_001,
        };
        let status = refusal.status("math.Arith", "add");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "the rate limit of math.Arith/add (2.000/s with a burst of 1) is exceeded; a call \
             may pass in 2 ms"
        );
        assert_eq!(&status.metadata().get(RETRY_AFTER_MS).unwrap()[..], b"2");
    }
}
