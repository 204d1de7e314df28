//! A small HTTP/1.1 client for etcd's JSON gateway: JSON in, JSON out, over hyper's
//! connection API.
//!
//! Unary calls (grant, put, revoke, range) reuse a few idle connections; a streaming call
//! (a watch, a keepalive) gets a connection of its own, closed when its stream is dropped.
//! With several etcd URLs the client stays on the one that last answered and moves to the
//! next when it cannot connect. Every wait is bounded (connect, whole unary call) except a
//! stream's, which its reader bounds as it sees fit; every body is bounded in size. Every
//! connection has TCP keepalive with a short idle time, so that one whose network path
//! died silently is closed within about 25 s, even while nothing is sent on it (a watch).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;

use crate::gateway::{ErrorBody, StreamMessage};
use crate::objects::{ObjectSplitter, SplitError};

/// The largest unary answer read (a range over a service with very many instances).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Idle connections kept for unary calls.
const MAX_IDLE: usize = 4;
/// TCP keepalive: the first probe after this much idle time, ...
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// ... then one probe this often, ...
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// ... and the connection is closed after this many go unanswered.
const KEEPALIVE_RETRIES: u32 = 3;

/// Why a call to etcd failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No etcd could be reached, or the connection broke, or the call timed out.
    #[error("etcd unreachable: {0}")]
    Unreachable(String),
    /// etcd answered with an error (its gRPC code and message).
    #[error("etcd answered {http} (code {code}): {message}")]
    Status {
        http: u16,
        code: i32,
        message: String,
    },
    /// etcd's answer could not be read.
    #[error("unreadable answer from etcd: {0}")]
    Malformed(String),
}

impl From<SplitError> for CallError {
    fn from(error: SplitError) -> Self {
        CallError::Malformed(error.to_string())
    }
}

/// One etcd client URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `host:port`, what to dial and the `Host` header.
    pub(crate) authority: String,
}

#[derive(Debug)]
pub(crate) struct Client {
    targets: Vec<Target>,
    /// The target that answered last.
    current: AtomicUsize,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl Client {
    pub(crate) fn new(
        targets: Vec<Target>,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Self {
        Client {
            targets,
            current: AtomicUsize::new(0),
            idle: Mutex::new(Vec::new()),
            connect_timeout,
            request_timeout,
        }
    }

    /// A unary call: POSTs `request` as JSON to `path`, reads the whole JSON answer.
    pub(crate) async fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        request: &Q,
    ) -> Result<A, CallError> {
        let body = encode(request)?;
        match tokio::time::timeout(self.request_timeout, self.call_once(path, body)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(CallError::Unreachable(format!(
                "{path} took longer than {:?}",
                self.request_timeout
            ))),
        }
    }

    async fn call_once<A: DeserializeOwned>(
        &self,
        path: &str,
        body: Bytes,
    ) -> Result<A, CallError> {
        // A pooled connection may have been closed by etcd since (a restart): one more try
        // on a fresh connection before giving up.
        let (mut sender, pooled) = match self.take_idle() {
            Some(sender) => (sender, true),
            None => (self.connect().await?, false),
        };
        let response = match sender.send_request(self.request(path, body.clone())?).await {
            Ok(response) => response,
            Err(_) if pooled => {
                sender = self.connect().await?;
                sender
                    .send_request(self.request(path, body)?)
                    .await
                    .map_err(|error| CallError::Unreachable(error.to_string()))?
            }
            Err(error) => return Err(CallError::Unreachable(error.to_string())),
        };
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|error| CallError::Unreachable(format!("reading {path}: {error}")))?
            .to_bytes();
        self.put_idle(sender);
        if !status.is_success() {
            return Err(status_error(status, &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|error| CallError::Malformed(format!("{path}: {error}")))
    }

    /// A streaming call: POSTs `request` to `path` on a connection of its own and returns
    /// the stream of messages the answer carries.
    pub(crate) async fn stream<Q: Serialize>(
        &self,
        path: &str,
        request: &Q,
    ) -> Result<MessageStream, CallError> {
        let body = encode(request)?;
        let open = async {
            let mut sender = self.connect().await?;
            let response = sender
                .send_request(self.request(path, body)?)
                .await
                .map_err(|error| CallError::Unreachable(error.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                let bytes = Limited::new(response.into_body(), MAX_BODY)
                    .collect()
                    .await
                    .map(|collected| collected.to_bytes())
                    .unwrap_or_default();
                return Err(status_error(status, &bytes));
            }
            Ok(MessageStream {
                body: response.into_body(),
                splitter: ObjectSplitter::default(),
            })
        };
        match tokio::time::timeout(self.request_timeout, open).await {
            Ok(outcome) => outcome,
            Err(_) => Err(CallError::Unreachable(format!(
                "{path} did not answer within {:?}",
                self.request_timeout
            ))),
        }
    }

    fn request(&self, path: &str, body: Bytes) -> Result<Request<Full<Bytes>>, CallError> {
        let target = &self.targets[self.current.load(Ordering::Relaxed) % self.targets.len()];
        Request::post(path)
            .header(header::HOST, target.authority.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|error| CallError::Malformed(error.to_string()))
    }

    /// A new connection to the first target that accepts one, starting from the current.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, CallError> {
        let first = self.current.load(Ordering::Relaxed);
        let mut last_error = String::new();
        for step in 0..self.targets.len() {
            let index = (first + step) % self.targets.len();
            let target = &self.targets[index];
            let stream = match tokio::time::timeout(
                self.connect_timeout,
                TcpStream::connect(target.authority.as_str()),
            )
            .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    last_error = format!("connecting to {}: {error}", target.authority);
                    continue;
                }
                Err(_) => {
                    last_error = format!("connecting to {}: timed out", target.authority);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            if let Err(error) = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive()) {
                tracing::debug!(%error, "cannot set TCP keepalive on a connection to etcd");
            }
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|error| CallError::Unreachable(error.to_string()))?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "etcd connection ended");
                }
            });
            self.current.store(index, Ordering::Relaxed);
            return Ok(sender);
        }
        Err(CallError::Unreachable(last_error))
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(sender) = idle.pop() {
            if sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE && !sender.is_closed() {
            idle.push(sender);
        }
    }
}

/// The keepalive settings, as far as the platform lets a socket set them.
fn keepalive() -> socket2::TcpKeepalive {
    let keepalive = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE);
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "windows"
    ))]
    let keepalive = keepalive
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    keepalive
}

fn encode<Q: Serialize>(request: &Q) -> Result<Bytes, CallError> {
    serde_json::to_vec(request)
        .map(Bytes::from)
        .map_err(|error| CallError::Malformed(error.to_string()))
}

/// The error a non-2xx answer carries (the gateway's `{"code":..,"message":..}`).
fn status_error(status: StatusCode, body: &[u8]) -> CallError {
    let error: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message = if !error.message.is_empty() {
        error.message
    } else if !error.error.is_empty() {
        error.error
    } else {
        String::from_utf8_lossy(&body[..body.len().min(256)]).into_owned()
    };
    CallError::Status {
        http: status.as_u16(),
        code: error.code,
        message,
    }
}

/// The messages of a streaming answer, read as they arrive.
#[derive(Debug)]
pub(crate) struct MessageStream {
    body: Incoming,
    splitter: ObjectSplitter,
}

impl MessageStream {
    /// The next message's result; `None` when the stream ended cleanly. An `error` message
    /// (the gateway's way to end a stream that failed) is an error.
    pub(crate) async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, CallError> {
        loop {
            if let Some(object) = self.splitter.next_object()? {
                let message: StreamMessage<T> = serde_json::from_slice(&object)
                    .map_err(|error| CallError::Malformed(error.to_string()))?;
                if let Some(error) = message.error {
                    return Err(stream_error(error));
                }
                match message.result {
                    Some(result) => return Ok(Some(result)),
                    None => continue,
                }
            }
            match self.body.frame().await {
                None if self.splitter.is_between_objects() => return Ok(None),
                None => {
                    return Err(CallError::Unreachable(
                        "the stream ended inside a message".to_owned(),
                    ));
                }
                Some(Err(error)) => return Err(CallError::Unreachable(error.to_string())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.splitter.extend(&data);
                    }
                }
            }
        }
    }
}

/// The `error` object of a stream: `{"grpc_code":..,"http_code":..,"message":..}`.
fn stream_error(error: serde_json::Value) -> CallError {
    let field = |name: &str| error.get(name);
    let code = field("grpc_code")
        .or_else(|| field("code"))
        .and_then(serde_json::Value::as_i64)
        .and_then(|code| i32::try_from(code).ok())
        .unwrap_or(0);
    let http = field("http_code")
        .and_then(serde_json::Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .unwrap_or(500);
    let message = field("message")
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| error.to_string(), str::to_owned);
    CallError::Status {
        http,
        code,
        message,
    }
}
