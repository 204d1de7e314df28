//! What a client sends and gets back: a [`Call`] with its [`CallOptions`], and its [`Reply`].
//!
//! These are the types every [`Channel`](crate::Channel) carries, from the generated stub
//! through the client's layers to the connection; they name no client and no server.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use tokio::time::Instant;

use crate::body::Body;
use crate::compress::Compression;
use crate::format::Format;
use crate::retry::RetryPolicy;
use crate::stream::{MessageStream, Messages};
use crate::wire::Metadata;

/// Per-call options: everything a call can change without changing a method's signature.
///
/// Fields left `None` take the channel's defaults.
///
/// ```
/// use std::time::Duration;
/// let options = prpc::CallOptions::new()
///     .timeout(Duration::from_secs(2))
///     .format(prpc::Format::Json)
///     .metadata("tenant", "acme");
/// assert_eq!(options.timeout, Some(Duration::from_secs(2)));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// How long the caller waits for the reply; carried to the server as the call's deadline.
    pub timeout: Option<Duration>,
    /// The body format.
    pub format: Option<Format>,
    /// The body compression (applied to bodies at or over the channel's threshold).
    pub compression: Option<Compression>,
    /// Metadata sent with the call.
    pub metadata: Metadata,
    /// How the call is retried; see [`retry`](crate::retry) for which calls are retried when
    /// this is unset.
    pub retry: Option<RetryPolicy>,
    /// The call's key for a consistent-hashing balancer (calls with one key go to one
    /// endpoint while the set holds it): a hash of the key's bytes, as
    /// [`balance::hash_key`](crate::balance::hash_key) makes it. Other channels ignore it.
    pub hash_key: Option<u64>,
    /// Send the call under this request id and attempt number, `(request id, attempt)`,
    /// instead of a fresh id: the server then runs it at most once across its sends. Choose
    /// the id ([`prpc::id::next_id`](crate::id::next_id)) before the first send of a call
    /// whose outcome you may need to settle later, and resend under it with a higher attempt
    /// (see [`request_id`](CallOptions::request_id)).
    pub request_id: Option<(u64, u32)>,
}

impl CallOptions {
    /// No overrides.
    pub fn new() -> Self {
        CallOptions::default()
    }

    /// Sets the timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the body format.
    #[must_use]
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// Sets the compression.
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Sets the hash key (see [`hash_key`](CallOptions::hash_key)).
    ///
    /// ```
    /// let options = prpc::CallOptions::new().hash_key(prpc::balance::hash_key(b"user-42"));
    /// assert!(options.hash_key.is_some());
    /// ```
    #[must_use]
    pub fn hash_key(mut self, key: u64) -> Self {
        self.hash_key = Some(key);
        self
    }

    /// Sends the call under `request_id` as attempt `attempt` (see
    /// [`request_id`](CallOptions#structfield.request_id)). A call that failed gives the id
    /// and the next attempt to resend under in [`Error::resend_as`](crate::Error::resend_as);
    /// or choose the id before the first send. A generated client takes it per call through
    /// `with_request_id`:
    ///
    /// ```no_run
    /// # #[prpc::service] pub trait Bank { async fn deposit(&self, cents: u64) -> u64; }
    /// # async fn demo(bank: BankClient) -> Result<(), prpc::Error> {
    /// let id = prpc::id::next_id();
    /// let first = bank.clone().with_request_id(id, 0).deposit(500).await;
    /// if first.is_err() {
    ///     // The outcome is unknown (a timeout, a lost connection): resend the same call. The
    ///     // server runs it at most once and answers the first run's reply if it ran.
    ///     let balance = bank.clone().with_request_id(id, 1).deposit(500).await?;
    /// #   let _ = balance;
    /// }
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn request_id(mut self, request_id: u64, attempt: u32) -> Self {
        self.request_id = Some((request_id, attempt));
        self
    }

    /// Adds a metadata pair.
    #[must_use]
    pub fn metadata(mut self, key: impl AsRef<str>, value: impl AsRef<[u8]>) -> Self {
        self.metadata.insert(key, value);
        self
    }

    /// These options, with every field left unset here taken from `defaults`.
    pub fn or(&self, defaults: &CallOptions) -> CallOptions {
        let mut metadata = defaults.metadata.clone();
        metadata.extend(&self.metadata);
        CallOptions {
            timeout: self.timeout.or(defaults.timeout),
            format: self.format.or(defaults.format),
            compression: self.compression.or(defaults.compression),
            metadata,
            retry: self.retry.or(defaults.retry),
            hash_key: self.hash_key.or(defaults.hash_key),
            request_id: self.request_id.or(defaults.request_id),
        }
    }
}

/// A call as a [`Channel`](crate::Channel) sends it: names, encoded body, options.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Call {
    /// Service name.
    pub service: ByteString,
    /// Method name.
    pub method: ByteString,
    /// The encoded arguments, in `format` (in one piece or two: see [`Body`]).
    pub body: Body,
    /// Format of `body`.
    pub format: Format,
    /// Per-call options (the format in them is ignored: `format` is the one the body is in).
    pub options: CallOptions,
    /// The method is safe to run more than once (generated from `#[prpc(idempotent)]`): it is
    /// retried by default and the server need not dedupe it.
    pub idempotent: bool,
    /// The request id to send under; `None` lets the channel draw a fresh snowflake id. Set it
    /// to resend a call yourself (with a higher `attempt`) so the server dedupes it.
    pub request_id: Option<u64>,
    /// The attempt number of the first send (0 unless resending by hand).
    pub attempt: u32,
    /// When the whole call must be done, counted from when its options were resolved.
    deadline: Option<Instant>,
    /// How long this attempt waits before the next is sent (the call's deadline still bounds
    /// it); set per attempt by the retry layer.
    pub(crate) attempt_timeout: Option<Duration>,
    /// Ask the server to run the call at most once across its attempts.
    pub(crate) dedupe: bool,
    /// No attempt follows this one: if it times out, the server is told to stop the handler
    /// (an earlier attempt's handler is left running for the next attempt to collect).
    pub(crate) final_attempt: bool,
    /// The options have been merged with a channel's defaults (see [`Call::resolve`]).
    resolved: bool,
    /// Opened as a stream (see [`Call::stream`]).
    pub(crate) stream: Option<Outgoing>,
    /// Where the call's attempts went, shared by them: set by the retry layer for a call that
    /// may be sent again, so that a balanced channel under it sends a retry elsewhere
    /// (failover) or to the same endpoint (failtry).
    pub(crate) route: Option<Arc<Route>>,
}

/// The endpoints the attempts of one call went to, in order (as ids of the balanced channel's
/// own choosing).
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
pub(crate) struct Route(Mutex<Vec<u64>>);

#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
impl Route {
    /// Records an attempt's endpoint.
    pub(crate) fn went_to(&self, endpoint: u64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(endpoint);
    }

    /// The endpoints tried so far.
    pub(crate) fn tried(&self) -> Vec<u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A stream call's messages to send, taken by the one attempt that sends them (streams are
/// not retried; a clone of the call shares them).
#[derive(Clone, Default)]
pub(crate) struct Outgoing(Option<Arc<Mutex<Option<MessageStream>>>>);

impl Outgoing {
    /// The messages, unless an attempt took them already (or there are none).
    pub(crate) fn take(&self) -> Option<MessageStream> {
        self.0
            .as_ref()
            .and_then(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).take())
    }

    /// Whether the client sends messages on the stream.
    pub(crate) fn sends(&self) -> bool {
        self.0.is_some()
    }
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("sends", &self.sends())
            .finish()
    }
}

impl Call {
    /// A call with an encoded body.
    ///
    /// A `&str` name is copied into a new buffer for each call; names known at compile time
    /// cost nothing as [`ByteString::from_static`] (generated clients do this):
    ///
    /// ```
    /// use prpc::{ByteString, Call, Format};
    ///
    /// let call = Call::new(
    ///     ByteString::from_static("Echo"),
    ///     ByteString::from_static("echo"),
    ///     Format::Raw,
    ///     bytes::Bytes::from_static(b"hi"),
    /// );
    /// assert_eq!(&*call.method, "echo");
    /// ```
    pub fn new(
        service: impl Into<ByteString>,
        method: impl Into<ByteString>,
        format: Format,
        body: Bytes,
    ) -> Self {
        Call::with_parts(
            service.into(),
            method.into(),
            format,
            Body::from(body),
            CallOptions::default(),
        )
    }

    /// A call of `service`/`method` with `options` set (as [`with_options`](Self::with_options)
    /// sets them), built where it is returned: the options are not moved into it afterwards.
    /// What a generated client starts each call with.
    #[inline]
    pub(crate) fn with_parts(
        service: ByteString,
        method: ByteString,
        format: Format,
        body: Body,
        options: CallOptions,
    ) -> Self {
        let (request_id, attempt, dedupe) = match options.request_id {
            Some((request_id, attempt)) => (Some(request_id), attempt, true),
            None => (None, 0, false),
        };
        Call {
            service,
            method,
            body,
            format,
            options,
            idempotent: false,
            request_id,
            attempt,
            deadline: None,
            attempt_timeout: None,
            dedupe,
            final_attempt: false,
            resolved: false,
            stream: None,
            route: None,
        }
    }

    /// Opens the call as a stream: the reply comes back at once with its
    /// [`messages`](Reply::messages), which end with the server's trailer. `messages` are the
    /// messages the client sends after the request (`None` when it sends none, as for a
    /// server stream); the client then ends its side. A stream is sent once: it is never
    /// retried.
    ///
    /// ```
    /// use prpc::{Call, Format};
    ///
    /// let call = Call::new("Log", "tail", Format::Json, "{}".into()).stream(None);
    /// assert!(call.is_stream());
    /// ```
    #[must_use]
    pub fn stream(mut self, messages: Option<MessageStream>) -> Self {
        self.stream = Some(Outgoing(messages.map(|m| Arc::new(Mutex::new(Some(m))))));
        self
    }

    /// Whether the call is opened as a stream.
    pub fn is_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// Merges the call's options with a channel's `defaults`: the one place where per-call
    /// options (a generated client's, or set here), the method's own defaults (an idempotent
    /// method is retried by [`RetryPolicy::default`] unless a policy is set) and the channel's
    /// defaults meet. Fields the call set win; metadata is the defaults' pairs, then the
    /// call's. The call's deadline starts counting now.
    ///
    /// Every layer of a client stack calls it on the calls it receives; only the first call
    /// does anything, so options are merged once however many layers a call crosses. (A call
    /// resolved by hand against other defaults keeps them: the channel's are not merged in.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use prpc::{Call, CallOptions, Format};
    ///
    /// let defaults = CallOptions::new().timeout(Duration::from_secs(5)).metadata("a", "1");
    /// let mut call = Call::new("S", "m", Format::Json, Default::default())
    ///     .with_options(CallOptions::new().metadata("b", "2"));
    /// call.resolve(&defaults);
    /// assert_eq!(call.options.timeout, Some(Duration::from_secs(5)));
    /// assert_eq!(call.options.metadata.len(), 2);
    /// assert!(call.deadline().is_some());
    /// // Resolving again changes nothing.
    /// call.resolve(&CallOptions::new().timeout(Duration::from_secs(1)));
    /// assert_eq!(call.options.timeout, Some(Duration::from_secs(5)));
    /// ```
    // In place, and inline for its first check: a call is large, and every layer of a stack
    // resolves it.
    #[inline]
    pub fn resolve(&mut self, defaults: &CallOptions) {
        if !self.resolved {
            self.merge(defaults);
        }
    }

    fn merge(&mut self, defaults: &CallOptions) {
        self.resolved = true;
        let options = &mut self.options;
        if !defaults.metadata.is_empty() {
            let mut metadata = defaults.metadata.clone();
            metadata.extend(&options.metadata);
            options.metadata = metadata;
        }
        // Each field written only where the call left it unset: these run for every call, and
        // the policy alone is some fifty bytes.
        if options.timeout.is_none() {
            options.timeout = defaults.timeout;
        }
        if options.format.is_none() {
            options.format = defaults.format;
        }
        if options.compression.is_none() {
            options.compression = defaults.compression;
        }
        if options.retry.is_none() {
            if defaults.retry.is_some() {
                options.retry = defaults.retry;
            } else if self.idempotent {
                options.retry = Some(RetryPolicy::default());
            }
        }
        if options.hash_key.is_none() {
            options.hash_key = defaults.hash_key;
        }
        if let Some(timeout) = options.timeout {
            self.deadline = Some(crate::timer::deadline_after(timeout));
        }
        // A call given its request id is being resent: the server must not run it twice.
        if self.dedupe || self.request_id.is_some() {
            self.mark_dedupe();
        }
    }

    /// Asks the server to run the call at most once across its attempts, keyed by this
    /// process's [client identity](crate::idempotency::client_identity) (sent in the call's
    /// metadata) and the request id.
    pub(crate) fn mark_dedupe(&mut self) {
        self.dedupe = true;
        let metadata = &mut self.options.metadata;
        if metadata.get(crate::idempotency::CLIENT_ID_KEY).is_none() {
            metadata.insert(
                crate::idempotency::CLIENT_ID_KEY,
                crate::idempotency::client_id_text(crate::idempotency::client_identity()),
            );
        }
    }

    /// When the whole call must be done (set by [`resolve`](Call::resolve) from the timeout).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The time left until the call's deadline.
    pub(crate) fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Marks the method idempotent.
    #[must_use]
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Sends under this request id and attempt number (to resend a call by hand).
    #[must_use]
    pub fn resend_as(mut self, request_id: u64, attempt: u32) -> Self {
        self.request_id = Some(request_id);
        self.attempt = attempt;
        self.dedupe = true;
        self
    }

    /// Sets the per-call options (a [`request_id`](CallOptions::request_id) in them sends the
    /// call under it, as [`resend_as`](Call::resend_as) does).
    #[must_use]
    pub fn with_options(mut self, options: CallOptions) -> Self {
        self.set_options(options);
        self
    }

    /// [`with_options`](Self::with_options) in place.
    pub(crate) fn set_options(&mut self, options: CallOptions) {
        if let Some((request_id, attempt)) = options.request_id {
            self.request_id = Some(request_id);
            self.attempt = attempt;
            self.dedupe = true;
        }
        self.options = options;
    }
}

/// A successful reply as a [`Channel`](crate::Channel) returns it: decompressed, not yet decoded.
#[derive(Debug)]
#[non_exhaustive]
pub struct Reply {
    /// The encoded result.
    pub body: Bytes,
    /// Format of `body` (the call's format).
    pub format: Format,
    /// Server metadata.
    pub metadata: Metadata,
    /// For a call opened as a stream: the server's messages, ending with its trailer (which
    /// [`Messages::reply`] returns). The reply itself then has an empty body.
    pub messages: Option<Messages>,
}
