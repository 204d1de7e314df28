//! HTTP on a prpc server's port: RPC over `CONNECT`, a JSON gateway, health, an admin
//! listener.
//!
//! One port serves prpc frames and HTTP/1.1 both: each connection's first byte tells them
//! apart (prpc's frames begin with the magic byte `0xB7`, an HTTP request with its method's
//! letters). A server that does not use this crate pays nothing for it.
//!
//! On the server's port (unless [`main_port`](Http::main_port) turns HTTP off there):
//!
//! | Request | Answer |
//! |---|---|
//! | `CONNECT /_prpc HTTP/1.1` | `200`, then the connection carries prpc frames ([`HttpConnect`] dials this way, directly or through a forward proxy) |
//! | `POST /<service>/<method>` with the arguments as a JSON object | the method's JSON reply (the [gateway](#the-json-gateway)) |
//! | `GET /healthz[?service=NAME]` | `200 {"status":"SERVING"}` or `503 {"status":"NOT_SERVING"}` ([`prpc::health`]) |
//! | `GET /_prpc/services` | the services and their methods, as reflection lists them |
//!
//! On an [admin listener](Http::admin) (a separate port, for what should never face the
//! public): `/healthz` and `/_prpc/services`, and only there (unless
//! [`admin_on_main_port`](Http::admin_on_main_port)) `GET /metrics`, the server's
//! [stats](prpc::stats) and the process's cluster clients for Prometheus (OpenMetrics when
//! asked for, else the classic text format), and `GET /debug/prpc`, a page to read them. No
//! gateway and no `CONNECT` there.
//!
//! # The JSON gateway
//!
//! `POST /math.Arith/add` with `{"a": 2, "b": 3}` calls `add` of `math.Arith` with those
//! arguments (by name, as `#[prpc::service]` encodes them in JSON) and answers `5`. The call
//! runs through the server's whole stack (layers, deadline) as a prpc call would.
//! - Headers named [`prpc-md-<key>`](METADATA_PREFIX) are call metadata, and the reply's
//!   metadata comes back the same way; [`prpc-timeout`](TIMEOUT_HEADER) (`250ms`, `2s`, or
//!   milliseconds) sets the deadline.
//! - A failed call answers the HTTP status its code maps to ([`http_status`], as
//!   grpc-gateway maps gRPC's) with a body `{"code": "not_found", "message": "..."}`, plus
//!   `"details"`, the method's error value, for a method's own error (`422`).
//! - Bad input is a 4xx with a JSON reason: a body that is not a JSON object (`400`), wrong
//!   argument types (`400`, the service's decoding error), a body over
//!   [`max_body`](Http::max_body) (`413`), a content type other than JSON (`415`), an
//!   unknown service or method (`404`), another method than `POST` (`405`). Streaming
//!   methods are not served (`501`).
//!
//! A connection's first request head, if malformed, over the limits or too slow to arrive,
//! gets a text reason (`400`, `431`, `408`) before the connection closes (later requests on a
//! kept-alive connection are checked by hyper, which answers with the bare status);
//! meanwhile the port goes on serving prpc.
//!
//! ```no_run
//! # #[prpc::service] pub trait Arith { async fn add(&self, a: i64, b: i64) -> i64; }
//! # struct Calculator;
//! # impl Arith for Calculator { async fn add(&self, a: i64, b: i64) -> i64 { a + b } }
//! # #[tokio::main]
//! # async fn main() -> std::io::Result<()> {
//! let server = prpc::Server::builder()
//!     .add_service(ArithServer::new(Calculator))
//!     .bind("127.0.0.1:7000")
//!     .await?;
//! let server = prpc_http::Http::new().attach(server).await?;
//! server.serve().await
//! // curl --json '{"a":2,"b":3}' http://127.0.0.1:7000/Arith/add   →   5
//! # }
//! ```

mod app;
mod connect;
mod debug;
mod head;
mod listener;
mod metrics;
mod reply;
mod status;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use prpc::Server;
use prpc::server::{Handler, Router};
use tokio::net::{TcpListener, ToSocketAddrs};

pub use app::{METADATA_PREFIX, TIMEOUT_HEADER};
pub use connect::{DEFAULT_PATH as CONNECT_PATH, HttpConnect};
pub use listener::{HttpLayer, HttpListener};
pub use status::http_status;

/// The ALPN protocols a TLS port served through this crate should offer, so that HTTP
/// clients (which offer `h2` and `http/1.1`) and prpc clients (`prpc`) both agree with it:
/// give them to the server's TLS settings, `ServerTls::alpn_protocols(prpc_http::TLS_ALPN)`.
pub const TLS_ALPN: [&str; 2] = ["prpc", "http/1.1"];

/// The limits of the HTTP side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_body: usize,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_headers: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) first_byte_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_pending: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 4 * 1024 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            header_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(5),
            max_connections: 1024,
            max_pending: 1024,
        }
    }
}

/// Where a server answers HTTP, and its limits: [`attach`](Http::attach) it to a bound
/// server.
///
/// ```no_run
/// # async fn demo(server: prpc::Server) -> std::io::Result<()> {
/// // HTTP on the server's port, health and introspection also on a private admin port.
/// let server = prpc_http::Http::new()
///     .admin("127.0.0.1:9901")
///     .attach(server)
///     .await?;
/// server.serve().await
/// # }
/// ```
#[derive(Debug)]
pub struct Http {
    main_port: bool,
    admin: Option<Admin>,
    admin_on_main_port: bool,
    limits: Limits,
}

#[derive(Debug)]
enum Admin {
    Address(String),
    Bound(TcpListener),
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    /// HTTP on the server's port, no admin listener, default limits.
    pub fn new() -> Self {
        Http {
            main_port: true,
            admin: None,
            admin_on_main_port: false,
            limits: Limits::default(),
        }
    }

    /// Whether the server's port serves HTTP beside prpc (on by default). Off, the port
    /// serves prpc alone, exactly as without this crate, and HTTP is on the admin listener
    /// only.
    pub fn main_port(mut self, on: bool) -> Self {
        self.main_port = on;
        self
    }

    /// Also answers health and introspection on a listener of its own, bound at `address`
    /// when the server is attached (keep it off public interfaces).
    pub fn admin(mut self, address: impl Into<String>) -> Self {
        self.admin = Some(Admin::Address(address.into()));
        self
    }

    /// As [`admin`](Http::admin), on a listener bound already (to learn its port first).
    pub fn admin_listener(mut self, listener: TcpListener) -> Self {
        self.admin = Some(Admin::Bound(listener));
        self
    }

    /// Serves `/metrics` and `/debug/prpc` on the server's port too (off by default: they
    /// are on the [admin listener](Http::admin) only, since they tell the world what the
    /// server runs and how busy it is). For development, or a port that is private anyway.
    pub fn admin_on_main_port(mut self, on: bool) -> Self {
        self.admin_on_main_port = on;
        self
    }

    /// The largest gateway request body (4 MiB by default): more is `413`.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.limits.max_body = bytes;
        self
    }

    /// The largest request head, request line and headers together (16 KiB by default):
    /// more is `431`.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_header_bytes = bytes;
        self
    }

    /// The most header lines in a request (64 by default): more is `431`.
    pub fn max_headers(mut self, count: usize) -> Self {
        self.limits.max_headers = count;
        self
    }

    /// How long a request head may take to arrive (10 s by default): slower is `408` and
    /// the connection closes. A gateway request's body has as long again (`408` too), and
    /// a closing connection's last request as long to finish.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_timeout = timeout;
        self
    }

    /// How long a new connection on the server's port may stay silent before its first byte
    /// (5 s by default): after that it is taken for prpc (an HTTP client speaks first; a prpc
    /// client may connect well before its first call), and the server's own idle timeout
    /// governs it.
    pub fn first_byte_timeout(mut self, timeout: Duration) -> Self {
        self.limits.first_byte_timeout = timeout;
        self
    }

    /// The most HTTP connections served at once on the server's port, and apart from them
    /// on the admin listener (1024 each by default): one more is answered `503` and closed.
    pub fn max_connections(mut self, count: usize) -> Self {
        self.limits.max_connections = count;
        self
    }

    /// The most new connections whose first bytes (and, for HTTP, first request head) are
    /// awaited at once (1024 by default). A connection accepted while that many are pending
    /// is taken for prpc without waiting, so slow or silent sockets never stop the port from
    /// accepting; only HTTP clients that arrive then are refused.
    pub fn max_pending(mut self, count: usize) -> Self {
        self.limits.max_pending = count;
        self
    }

    /// Serves HTTP on `server`'s port as set (binding the admin listener, if any).
    pub async fn attach<H: Handler>(
        self,
        server: Server<H>,
    ) -> io::Result<Server<H, HttpLayer<H>>> {
        let layer = self.layer(server.router()).await?;
        Ok(server.wrap_listener(layer))
    }

    /// The [`WrapListener`](prpc::transport::WrapListener) that serves HTTP for `router` (for
    /// a router served with a listener of your own; [`attach`](Http::attach) does this for a
    /// bound server).
    pub async fn layer<H: Handler>(self, router: Router<H>) -> io::Result<HttpLayer<H>> {
        let admin = match self.admin {
            None => None,
            Some(Admin::Bound(listener)) => Some(listener),
            Some(Admin::Address(address)) => Some(bind(&address).await?),
        };
        let app = app::App::new(
            router,
            app::Settings {
                max_body: self.limits.max_body,
                body_timeout: self.limits.header_timeout,
                admin_on_main_port: self.admin_on_main_port,
            },
        );
        Ok(HttpLayer {
            app: Arc::new(app),
            admin,
            main_port: self.main_port,
            limits: self.limits,
        })
    }
}

async fn bind(address: impl ToSocketAddrs) -> io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Entry points for the fuzz targets in `fuzz/`: internal, not a public API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::connect::fuzz_response_head;
    pub use crate::head::check_request_head;
}
