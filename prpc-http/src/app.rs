//! What the HTTP side answers: health, the service list, and (on the main port) the JSON
//! gateway. `CONNECT` is the listener's (it hands the connection back to prpc).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use prpc::health::ServingStatus;
use prpc::server::{Handler, Router};
use prpc::{Code, Format, Metadata, Status};

use crate::reply::{Response, error, json};
use crate::status::{http_status, status_body};

/// Header names that carry call metadata start with this: `prpc-md-tenant: acme` is the
/// metadata `tenant = acme`, both ways (request headers in, reply metadata out).
pub const METADATA_PREFIX: &str = "prpc-md-";
/// The header that sets a gateway call's deadline: a number of milliseconds, or a number with
/// a unit, `ms`, `s` or `m` (`250ms`, `2s`).
pub const TIMEOUT_HEADER: &str = "prpc-timeout";

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The server's port: the gateway and CONNECT too.
    Main,
    /// The admin listener: health and introspection only.
    Admin,
}

/// Settings of the HTTP side.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) max_body: usize,
    /// How long a gateway request's body may take to arrive.
    pub(crate) body_timeout: Duration,
    /// `/metrics` and `/debug/prpc` on the server's port too, not only the admin listener.
    pub(crate) admin_on_main_port: bool,
}

/// The HTTP side of one server.
pub(crate) struct App<H> {
    router: Router<H>,
    /// Services and their methods, for the gateway's lookups and `/_prpc/services`.
    methods: HashMap<String, HashSet<String>>,
    services_json: Bytes,
    settings: Settings,
    /// The debug page, with the history of its charts.
    debug: crate::debug::DebugPage,
}

impl<H: Handler> App<H> {
    pub(crate) fn new(router: Router<H>, settings: Settings) -> Self {
        let services = router.services();
        let services_json = serde_json::to_vec(&services).unwrap_or_default().into();
        let methods = services
            .into_iter()
            .map(|info| (info.name, info.methods.into_iter().collect()))
            .collect();
        let debug = crate::debug::DebugPage::new(&router);
        App {
            router,
            methods,
            services_json,
            settings,
            debug,
        }
    }

    /// Answers one request (any but `CONNECT`).
    pub(crate) async fn handle(
        &self,
        side: Side,
        request: hyper::Request<Incoming>,
        peer: Option<SocketAddr>,
    ) -> Response {
        let path = request.uri().path();
        match (request.method(), path) {
            (&Method::GET | &Method::HEAD, "/healthz") => self.health(request.uri().query()),
            (&Method::GET | &Method::HEAD, "/_prpc/services") => {
                json(StatusCode::OK, self.services_json.clone())
            }
            (_, "/healthz" | "/_prpc/services") => {
                method_not_allowed(request.method(), "GET, HEAD")
            }
            (_, "/metrics" | "/debug/prpc")
                if side == Side::Admin || self.settings.admin_on_main_port =>
            {
                if !matches!(*request.method(), Method::GET | Method::HEAD) {
                    return method_not_allowed(request.method(), "GET, HEAD");
                }
                if path == "/metrics" {
                    crate::metrics::response(&self.router.stats(), request.headers())
                } else {
                    self.debug.response(
                        &self.router,
                        request.uri().query(),
                        request.headers().get(header::ACCEPT),
                    )
                }
            }
            _ if side == Side::Main => match gateway_path(path) {
                Some((service, method)) if self.methods.contains_key(service) => {
                    if !self.methods[service].contains(method) {
                        return error(
                            StatusCode::NOT_FOUND,
                            Code::NotFound,
                            &format!("service \"{service}\" has no method \"{method}\""),
                        );
                    }
                    if request.method() != Method::POST {
                        return method_not_allowed(request.method(), "POST");
                    }
                    let (service, method) = (service.to_owned(), method.to_owned());
                    self.gateway(service, method, request, peer).await
                }
                Some((service, _)) => error(
                    StatusCode::NOT_FOUND,
                    Code::NotFound,
                    &format!("no service named \"{service}\" on this server"),
                ),
                None => no_route(&request),
            },
            _ => no_route(&request),
        }
    }

    /// `GET /healthz[?service=NAME]`: 200 when serving, 503 when not.
    fn health(&self, query: Option<&str>) -> Response {
        let service = query
            .into_iter()
            .flat_map(|query| query.split('&'))
            .find_map(|pair| pair.strip_prefix("service="))
            .unwrap_or("");
        match self.router.health().status(service) {
            Some(status) => {
                let code = match status {
                    ServingStatus::Serving => StatusCode::OK,
                    ServingStatus::NotServing => StatusCode::SERVICE_UNAVAILABLE,
                };
                let body = serde_json::json!({ "status": status }).to_string();
                json(code, body.into())
            }
            None => error(
                StatusCode::NOT_FOUND,
                Code::NotFound,
                &format!("no service named \"{service}\" on this server"),
            ),
        }
    }

    /// `POST /<service>/<method>` with the arguments as a JSON object.
    async fn gateway(
        &self,
        service: String,
        method: String,
        request: hyper::Request<Incoming>,
        peer: Option<SocketAddr>,
    ) -> Response {
        let (parts, body) = request.into_parts();
        if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
            let is_json = content_type
                .to_str()
                .ok()
                .and_then(|value| value.split(';').next())
                .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
            if !is_json {
                return error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    Code::InvalidArgument,
                    "the gateway takes application/json",
                );
            }
        }
        let timeout = match parts.headers.get(TIMEOUT_HEADER).map(parse_timeout) {
            None => None,
            Some(Ok(timeout)) => Some(timeout),
            Some(Err(message)) => {
                return error(StatusCode::BAD_REQUEST, Code::InvalidArgument, &message);
            }
        };
        let mut metadata = Metadata::new();
        for (name, value) in &parts.headers {
            if let Some(key) = name.as_str().strip_prefix(METADATA_PREFIX) {
                metadata.insert(key, value.as_bytes());
            }
        }
        let max = self.settings.max_body;
        // A body that trickles in must not hold the connection: it has the body timeout, or
        // the call's own deadline if that is sooner.
        let within = timeout.map_or(self.settings.body_timeout, |timeout| {
            timeout.min(self.settings.body_timeout)
        });
        let Ok(collected) = tokio::time::timeout(within, Limited::new(body, max).collect()).await
        else {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                Code::DeadlineExceeded,
                &format!("the body did not arrive within {} ms", within.as_millis()),
            );
        };
        let body = match collected {
            Ok(collected) => collected.to_bytes(),
            Err(failure) if failure.is::<http_body_util::LengthLimitError>() => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Code::ResourceExhausted,
                    &format!("the body is over {max} bytes"),
                );
            }
            Err(failure) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    Code::InvalidArgument,
                    &format!("reading the body failed: {failure}"),
                );
            }
        };
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            Bytes::from_static(b"{}")
        } else {
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(serde_json::Value::Object(_)) => body,
                Ok(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        Code::InvalidArgument,
                        "the body must be a JSON object of the method's arguments by name",
                    );
                }
                Err(failure) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        Code::InvalidArgument,
                        &format!("the body is not JSON: {failure}"),
                    );
                }
            }
        };
        let mut call = prpc::Request::new(method, Format::Json, body);
        call.metadata = metadata;
        call.timeout = timeout;
        call.deadline = timeout.map(|timeout| Instant::now() + timeout);
        call.request_id = prpc::id::next_id();
        call.peer = peer;
        match self.router.call(&service, call).await {
            Ok(reply) if reply.messages.is_some() => error(
                StatusCode::NOT_IMPLEMENTED,
                Code::Unimplemented,
                "the JSON gateway does not serve streams: call this method over prpc",
            ),
            Ok(reply) => {
                let mut response = json(StatusCode::OK, reply.body.into_bytes());
                metadata_headers(&reply.metadata, response.headers_mut());
                response
            }
            Err(status) => status_response(&status),
        }
    }
}

/// The service and method of a gateway path, `/<service>/<method>`.
fn gateway_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if service.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some((service, method))
}

/// Parses a timeout header: `250`, `250ms`, `2s`, `1m`.
pub(crate) fn parse_timeout(value: &HeaderValue) -> Result<Duration, String> {
    let text = value.to_str().unwrap_or("").trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let bad = || format!("{TIMEOUT_HEADER} must be a number of milliseconds, or with ms, s or m");
    let number: u64 = number.parse().map_err(|_| bad())?;
    let millis = match unit {
        "" | "ms" => Some(number),
        "s" => number.checked_mul(1_000),
        "m" => number.checked_mul(60_000),
        _ => return Err(bad()),
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{TIMEOUT_HEADER} is too large"))
}

/// Reply metadata as `prpc-md-*` headers (entries that are not valid header text are left
/// out).
fn metadata_headers(metadata: &Metadata, headers: &mut hyper::HeaderMap) {
    for (key, value) in metadata.iter() {
        let name = HeaderName::try_from(format!("{METADATA_PREFIX}{key}"));
        let value = HeaderValue::from_bytes(&value);
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
}

/// A failed call as an HTTP answer.
pub(crate) fn status_response(status: &Status) -> Response {
    let mut response = json(http_status(status.code()), status_body(status));
    metadata_headers(status.metadata(), response.headers_mut());
    response
}

fn method_not_allowed(method: &Method, allowed: &'static str) -> Response {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::Unimplemented,
        &format!("{method} is not allowed here (allowed: {allowed})"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

fn no_route<B>(request: &hyper::Request<B>) -> Response {
    error(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        &format!(
            "no route for {} {} (the gateway is POST /<service>/<method>)",
            request.method(),
            request.uri().path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_take_units() {
        let parse = |text: &'static str| parse_timeout(&HeaderValue::from_static(text));
        assert_eq!(parse("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert!(parse("soon").is_err());
        assert!(parse("5h").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("99999999999999999999m").is_err());
    }

    #[test]
    fn gateway_paths_have_two_segments() {
        assert_eq!(gateway_path("/math.Arith/add"), Some(("math.Arith", "add")));
        assert_eq!(gateway_path("/math.Arith/"), None);
        assert_eq!(gateway_path("/a/b/c"), None);
        assert_eq!(gateway_path("/"), None);
    }
}
