//! The client side of RPC over HTTP: a [`Connector`] that asks for a tunnel with `CONNECT`
//! and then speaks prpc frames through it, directly to a prpc server's port or through a
//! forward proxy first.
//!
//! The handshake is a few lines of HTTP/1.1, so it is written here on the raw stream rather
//! than through hyper's client: hyper would want to own the connection, and what prpc needs
//! afterwards is the stream itself. Only the response head is parsed, by `httparse`, and only
//! the first [`MAX_RESPONSE_HEAD`] bytes of it; whatever the peer sent past the head already
//! belongs to the tunnel and is handed back in front of the stream ([`Prefixed`]).
//!
//! Through a proxy there are two heads on one stream: the proxy's answer to `CONNECT
//! host:port`, then the server's answer to `CONNECT /_prpc`. One read buffer serves both, so
//! bytes read past the first head are parsed as the start of the second, and the stream
//! stays a single `Prefixed<TcpStream>` whichever way it was dialed (one that prpc's
//! connections split into lock-free halves, as a bare `TcpStream`).

use std::fmt;
use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use prpc::transport::{Address, AddressError, Connector, IntoAddress, Prefixed, TcpConnector};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The path a prpc server's port answers `CONNECT` on (through [`Http`](crate::Http)), and
/// the one [`HttpConnect`] asks for unless told otherwise.
pub const DEFAULT_PATH: &str = "/_prpc";

/// The largest response head accepted, status line and headers together: a peer that sends
/// more without ending its head is not answering `CONNECT` the way a proxy or a prpc server
/// does.
pub(crate) const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// How many headers a response head may carry; more is a malformed head.
const MAX_HEADERS: usize = 64;

/// How long dialing and both handshakes may take unless told otherwise.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Dials prpc over HTTP: opens a stream with an inner [`Connector`], sends
/// `CONNECT /_prpc HTTP/1.1`, and on a `2xx` answer runs prpc frames through the same
/// stream. This is how prpc crosses networks where only HTTP passes: a prpc server whose
/// port is served through this crate answers the `CONNECT` itself, and
/// [`proxy`](HttpConnect::proxy) first asks a forward proxy (squid, tinyproxy, a corporate
/// gateway) for a tunnel to the server.
///
/// The stream is the inner connector's, wrapped in a [`Prefixed`] that replays any bytes read
/// past the response head. Directly, the inner connector is TCP ([`new`](HttpConnect::new))
/// or any other, TLS for instance ([`over`](HttpConnect::over)), so the `CONNECT` travels
/// inside TLS. Through a proxy the stream is always a TCP stream to the proxy, so `proxy` is
/// available on `HttpConnect<TcpConnector>` only: both ways of dialing give one
/// `Prefixed<TcpStream>` type, and a client can switch between them without changing type.
///
/// Bounds: the response head may take at most 8 KiB (else an
/// [`InvalidData`](io::ErrorKind::InvalidData) error), and dialing plus the handshakes at
/// most [`handshake_timeout`](HttpConnect::handshake_timeout) (10 s by default, else
/// [`TimedOut`](io::ErrorKind::TimedOut)). An answer other than `2xx` is an error whose
/// message names its status, its reason and who sent it (the proxy or the server):
/// [`PermissionDenied`](io::ErrorKind::PermissionDenied) for a proxy's `407 Proxy
/// Authentication Required` (or the `401` some proxies send for wrong credentials),
/// [`ConnectionRefused`](io::ErrorKind::ConnectionRefused) for any other. A head that is
/// not HTTP is [`InvalidData`](io::ErrorKind::InvalidData), a peer that closes before its
/// head ends [`UnexpectedEof`](io::ErrorKind::UnexpectedEof).
///
/// ```no_run
/// use prpc_http::HttpConnect;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), prpc::Error> {
/// // Straight to a prpc server's port, as HTTP.
/// let client = prpc::Client::builder()
///     .connect_with(HttpConnect::new(), "10.0.0.5:7000")
///     .await?;
///
/// // Through a forward proxy that allows CONNECT to port 7000.
/// let proxied = prpc::Client::builder()
///     .connect_with(
///         HttpConnect::new()
///             .proxy("tcp://proxy.internal:3128")
///             .proxy_basic_auth("build", "s3cret"),
///         "10.0.0.5:7000",
///     )
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct HttpConnect<C = TcpConnector> {
    inner: C,
    path: String,
    /// Set only on `HttpConnect<TcpConnector>` (see `proxy`), so `inner` dials it.
    proxy: Option<Proxy>,
    handshake_timeout: Duration,
}

/// A forward proxy to ask for a tunnel first.
#[derive(Clone)]
struct Proxy {
    /// A text that is not an address is reported when dialing: builders do not fail.
    address: Result<Address, AddressError>,
    /// The value of `Proxy-Authorization`.
    authorization: Option<String>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The credentials stay out of logs.
        f.debug_struct("Proxy")
            .field("address", &self.address)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl HttpConnect<TcpConnector> {
    /// Dials TCP (`tcp://` and bare `host:port` addresses), then asks for
    /// [`CONNECT_PATH`](crate::CONNECT_PATH).
    ///
    /// ```
    /// let connector = prpc_http::HttpConnect::new();
    /// ```
    pub fn new() -> Self {
        HttpConnect::over(TcpConnector)
    }

    /// Asks the forward proxy at `address` (`host:port` or `tcp://host:port`; TCP only) for a
    /// tunnel first: `CONNECT host:port HTTP/1.1` with the target's host and port, then
    /// `CONNECT /_prpc` through the tunnel. Targets must then be `tcp://` addresses. An
    /// address that cannot be parsed fails each dial with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput).
    ///
    /// ```
    /// let connector = prpc_http::HttpConnect::new().proxy("127.0.0.1:3128");
    /// ```
    pub fn proxy(mut self, address: impl IntoAddress) -> Self {
        let authorization = self.proxy.take().and_then(|proxy| proxy.authorization);
        self.proxy = Some(Proxy {
            address: address.into_address(),
            authorization,
        });
        self
    }

    /// Sends `Proxy-Authorization: Basic ...` with `user` and `password` to the proxy (RFC
    /// 7617; `user` must not contain `:`). Without a [`proxy`](Self::proxy) it does nothing.
    /// The credentials travel in clear text to the proxy, as with any Basic authentication.
    ///
    /// ```
    /// let connector = prpc_http::HttpConnect::new()
    ///     .proxy("127.0.0.1:3128")
    ///     .proxy_basic_auth("build", "s3cret");
    /// ```
    pub fn proxy_basic_auth(mut self, user: &str, password: &str) -> Self {
        use base64::Engine as _;
        if let Some(proxy) = &mut self.proxy {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            proxy.authorization = Some(format!("Basic {token}"));
        }
        self
    }
}

impl Default for HttpConnect<TcpConnector> {
    fn default() -> Self {
        HttpConnect::new()
    }
}

impl<C> HttpConnect<C> {
    /// Dials with `inner` and sends the `CONNECT` on its stream: with prpc's `TlsConnector`
    /// the request goes inside TLS, to a prpc server's TLS port.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use prpc::transport::tls::ClientTls;
    /// let connector = prpc_http::HttpConnect::over(ClientTls::new().connector()?);
    /// // then: Client::builder().connect_with(connector, "tls://rpc.example.com:443")
    /// # Ok(()) }
    /// ```
    pub fn over(inner: C) -> Self {
        HttpConnect {
            inner,
            path: DEFAULT_PATH.to_owned(),
            proxy: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// The path to ask for (default [`CONNECT_PATH`](crate::CONNECT_PATH), `/_prpc`), for a server whose `CONNECT` handling is
    /// mounted elsewhere. It must start with `/` and hold no spaces or control characters,
    /// else each dial fails with [`InvalidInput`](io::ErrorKind::InvalidInput).
    ///
    /// ```
    /// let connector = prpc_http::HttpConnect::new().path("/rpc/_prpc");
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// How long dialing and the handshakes (the proxy's and the server's) may take together
    /// (default 10 s); past it the dial fails with [`TimedOut`](io::ErrorKind::TimedOut).
    ///
    /// ```
    /// use std::time::Duration;
    /// let connector = prpc_http::HttpConnect::new().handshake_timeout(Duration::from_secs(3));
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

impl<C: Connector> Connector for HttpConnect<C> {
    type Io = Prefixed<C::Io>;

    async fn connect(&self, address: &Address) -> io::Result<Self::Io> {
        match tokio::time::timeout(self.handshake_timeout, self.dial(address)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "HTTP CONNECT to {address}{} did not finish within {:?}",
                    self.through(),
                    self.handshake_timeout
                ),
            )),
        }
    }
}

impl<C: Connector> HttpConnect<C> {
    /// Dials (the proxy or the server), then runs the handshakes.
    async fn dial(&self, address: &Address) -> io::Result<Prefixed<C::Io>> {
        check_path(&self.path)?;
        let mut buffer = BytesMut::new();
        let mut stream = match &self.proxy {
            None => self.inner.connect(address).await?,
            Some(proxy) => self.tunnel(proxy, address, &mut buffer).await?,
        };
        let request = match address.host().zip(address.port()) {
            Some((host, port)) => server_request(&self.path, &authority(host, port)?),
            // A stream with no host (a Unix socket, say) still carries a valid request.
            None => server_request(&self.path, "localhost"),
        };
        let hop = Hop::Server {
            server: address,
            proxy: self.proxy_address(),
        };
        handshake(&mut stream, &mut buffer, &request, &self.path, hop).await?;
        Ok(Prefixed::new(buffer.freeze(), stream))
    }

    /// A stream to `proxy` that it has agreed to tunnel to `address`; bytes read past its
    /// answer stay in `buffer`.
    async fn tunnel(
        &self,
        proxy: &Proxy,
        address: &Address,
        buffer: &mut BytesMut,
    ) -> io::Result<C::Io> {
        let proxy_address = proxy.address.as_ref().map_err(|error| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("proxy: {error}"))
        })?;
        let Address::Tcp { host, port } = address else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("HttpConnect through a proxy dials tcp:// addresses only, not {address}"),
            ));
        };
        let authority = authority(host, *port)?;
        // `proxy` is set only when `C` is `TcpConnector`, which dials the proxy.
        let mut stream = self.inner.connect(proxy_address).await?;
        let request = proxy_request(&authority, proxy.authorization.as_deref());
        let hop = Hop::Proxy {
            proxy: proxy_address,
            authenticated: proxy.authorization.is_some(),
        };
        handshake(&mut stream, buffer, &request, &authority, hop).await?;
        Ok(stream)
    }

    fn proxy_address(&self) -> Option<&Address> {
        self.proxy
            .as_ref()
            .and_then(|proxy| proxy.address.as_ref().ok())
    }

    /// " through proxy tcp://..." when there is a proxy, for messages.
    fn through(&self) -> String {
        self.proxy_address()
            .map(|proxy| format!(" through proxy {proxy}"))
            .unwrap_or_default()
    }
}

/// The peer whose response head is being read, for error messages.
#[derive(Clone, Copy)]
enum Hop<'a> {
    Proxy {
        proxy: &'a Address,
        authenticated: bool,
    },
    Server {
        server: &'a Address,
        proxy: Option<&'a Address>,
    },
}

impl fmt::Display for Hop<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hop::Proxy { proxy, .. } => write!(f, "proxy {proxy}"),
            Hop::Server {
                server,
                proxy: None,
            } => write!(f, "server {server}"),
            Hop::Server {
                server,
                proxy: Some(proxy),
            } => write!(f, "server {server} (through proxy {proxy})"),
        }
    }
}

/// Sends `request`, reads the response head into `buffer` and takes it off; a `2xx` is
/// success, anything else an error naming `hop` and `target` (what was asked for).
async fn handshake<S>(
    stream: &mut S,
    buffer: &mut BytesMut,
    request: &str,
    target: &str,
    hop: Hop<'_>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let head = read_head(stream, buffer)
        .await
        .map_err(|error| error.at(hop))?;
    buffer.advance(head.len);
    if (200..300).contains(&head.code) {
        return Ok(());
    }
    Err(refusal(&head, target, hop))
}

/// The error for a non-`2xx` answer. A proxy asking for credentials, or refusing the ones
/// sent, is a permission error: `407`, and `401`, which some proxies (tinyproxy) send for
/// wrong credentials.
fn refusal(head: &ResponseHead, target: &str, hop: Hop<'_>) -> io::Error {
    let ResponseHead { code, reason, .. } = head;
    let refused = format!("{hop} refused CONNECT {target}: {code} {reason}");
    match hop {
        Hop::Proxy { authenticated, .. } if *code == 401 || *code == 407 => {
            let hint = if authenticated {
                "the proxy refused the credentials of proxy_basic_auth"
            } else {
                "set credentials with proxy_basic_auth"
            };
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{refused} ({hint})"),
            )
        }
        _ => io::Error::new(io::ErrorKind::ConnectionRefused, refused),
    }
}

/// Why a response head could not be read.
#[derive(Debug)]
enum ReadHeadError {
    Head(HeadError),
    /// The peer closed after this many bytes, before the head ended.
    Eof(usize),
    Io(io::Error),
}

impl ReadHeadError {
    /// The `io::Error`, its message naming who sent the head.
    fn at(self, hop: Hop<'_>) -> io::Error {
        match self {
            ReadHeadError::Head(error) => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{hop} answered CONNECT with a {error}"),
            ),
            ReadHeadError::Eof(0) => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{hop} closed the connection without answering CONNECT"),
            ),
            ReadHeadError::Eof(read) => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{hop} closed the connection within its answer to CONNECT ({read} bytes of the head)"
                ),
            ),
            ReadHeadError::Io(error) => io::Error::new(
                error.kind(),
                format!("reading the answer of {hop}: {error}"),
            ),
        }
    }
}

/// Reads until `buffer` starts with a whole response head (bytes past it stay in `buffer`).
async fn read_head<S>(stream: &mut S, buffer: &mut BytesMut) -> Result<ResponseHead, ReadHeadError>
where
    S: AsyncRead + Unpin,
{
    // Reads are at most this long, so the buffer never holds more than the largest head and
    // one read.
    let mut chunk = [0; 4096];
    loop {
        if let Some(head) = parse_response_head(buffer).map_err(ReadHeadError::Head)? {
            return Ok(head);
        }
        let read = stream.read(&mut chunk).await.map_err(ReadHeadError::Io)?;
        if read == 0 {
            return Err(ReadHeadError::Eof(buffer.len()));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// A response head: its status and where it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResponseHead {
    code: u16,
    reason: String,
    /// Bytes from the status line through the blank line ending the head.
    len: usize,
}

/// Why bytes are not a response head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum HeadError {
    #[error("response head over {MAX_RESPONSE_HEAD} bytes")]
    TooLarge,
    #[error("malformed response head ({0})")]
    Malformed(httparse::Error),
}

/// The response head at the start of `bytes`, `None` while it has not ended. Only the first
/// [`MAX_RESPONSE_HEAD`] bytes are looked at.
fn parse_response_head(bytes: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
    let window = &bytes[..bytes.len().min(MAX_RESPONSE_HEAD)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(window).map_err(HeadError::Malformed)? {
        httparse::Status::Complete(len) => Ok(Some(ResponseHead {
            code: response.code.unwrap_or_default(),
            reason: response.reason.unwrap_or_default().to_owned(),
            len,
        })),
        httparse::Status::Partial if window.len() == MAX_RESPONSE_HEAD => Err(HeadError::TooLarge),
        httparse::Status::Partial => Ok(None),
    }
}

/// `host:port`, with an IPv6 host in brackets; refuses text that would break the request.
fn authority(host: &str, port: u16) -> io::Result<String> {
    if host.is_empty() || host.bytes().any(|byte| byte <= b' ' || byte == 0x7f) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host:?} cannot be the host of an HTTP request"),
        ));
    }
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// Refuses a path that is not an origin-form path (RFC 9112): one that would break the
/// request line.
fn check_path(path: &str) -> io::Result<()> {
    if path.starts_with('/') && !path.bytes().any(|byte| byte <= b' ' || byte == 0x7f) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{path:?} cannot be the path of a CONNECT request (it must start with /, without spaces)"
        ),
    ))
}

/// The request to a proxy for a tunnel to `authority`.
fn proxy_request(authority: &str, authorization: Option<&str>) -> String {
    match authorization {
        Some(authorization) => format!(
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: {authorization}\r\n\r\n"
        ),
        None => format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"),
    }
}

/// The request to a prpc server's port for prpc frames.
fn server_request(path: &str, authority: &str) -> String {
    format!("CONNECT {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n")
}

/// Fuzzing entry point (feature `fuzzing`): the first byte of `data` is the size of the reads
/// (1 to 256 bytes) in which the rest arrives. Parses the rest whole, then reads it in pieces
/// as the handshake does, and panics where they disagree: the same head (or the same
/// error), a head no longer than the input nor than the limit, the bytes past the head kept
/// intact, and an end of input before the head's end reported as such.
#[cfg(feature = "fuzzing")]
pub fn fuzz_response_head(data: &[u8]) {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    let [piece, stream @ ..] = data else {
        return;
    };
    let piece = 1 + usize::from(*piece);
    let whole = parse_response_head(stream);
    if let Ok(Some(head)) = &whole {
        assert!(head.len <= stream.len() && head.len <= MAX_RESPONSE_HEAD);
        // A head ends where it says: its own bytes parse to the same head.
        assert_eq!(parse_response_head(&stream[..head.len]), whole);
    }

    // The reads of a slice are always ready, so one poll runs the loop to its end.
    let mut reader = Pieces {
        rest: stream,
        piece,
    };
    let mut buffer = BytesMut::new();
    let result = {
        let mut read = pin!(read_head(&mut reader, &mut buffer));
        let Poll::Ready(result) = read.as_mut().poll(&mut Context::from_waker(Waker::noop()))
        else {
            panic!("reading from a slice did not finish in one poll");
        };
        result
    };
    match (whole, result) {
        (Ok(Some(expected)), Ok(head)) => {
            assert_eq!(head, expected);
            let mut after = buffer[head.len..].to_vec();
            after.extend_from_slice(reader.rest);
            assert_eq!(after, &stream[head.len..]);
        }
        (Ok(None), Err(ReadHeadError::Eof(read))) => assert_eq!(read, stream.len()),
        (Err(expected), Err(ReadHeadError::Head(error))) => assert_eq!(error, expected),
        (whole, pieces) => panic!("whole: {whole:?}; in pieces of {piece}: {pieces:?}"),
    }
}

/// A slice read in pieces of at most `piece` bytes.
#[cfg(feature = "fuzzing")]
struct Pieces<'a> {
    rest: &'a [u8],
    piece: usize,
}

#[cfg(feature = "fuzzing")]
impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let take = self.rest.len().min(self.piece).min(buf.remaining());
        let (now, later) = self.rest.split_at(take);
        buf.put_slice(now);
        self.rest = later;
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream};
    use tokio::net::TcpListener;

    #[test]
    fn a_head_ends_at_its_blank_line() {
        let bytes = b"HTTP/1.1 200 OK\r\nX-Seen: yes\r\n\r\nPRPC";
        let head = parse_response_head(bytes).unwrap().unwrap();
        assert_eq!(head.code, 200);
        assert_eq!(head.reason, "OK");
        assert_eq!(&bytes[head.len..], b"PRPC");
    }

    #[test]
    fn an_unfinished_head_wants_more() {
        assert_eq!(parse_response_head(b""), Ok(None));
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nX-A: b\r\n"),
            Ok(None)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let error = parse_response_head(b"\x00\x01prpc frames\r\n\r\n").unwrap_err();
        assert!(matches!(error, HeadError::Malformed(_)), "{error:?}");
        let error = parse_response_head(b"HTTP/1.1 2OO OK\r\n\r\n").unwrap_err();
        assert!(matches!(error, HeadError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn a_head_over_8_kib_is_refused() {
        let mut bytes = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        bytes.resize(MAX_RESPONSE_HEAD + 100, b'a');
        bytes.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_response_head(&bytes), Err(HeadError::TooLarge));
        // Unfinished, the limit applies as soon as it is reached.
        assert_eq!(
            parse_response_head(&bytes[..MAX_RESPONSE_HEAD]),
            Err(HeadError::TooLarge)
        );
        assert_eq!(
            parse_response_head(&bytes[..MAX_RESPONSE_HEAD - 1]),
            Ok(None)
        );
    }

    #[test]
    fn a_head_of_exactly_8_kib_passes() {
        let mut bytes = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        bytes.resize(MAX_RESPONSE_HEAD - 4, b'a');
        bytes.extend_from_slice(b"\r\n\r\nafter");
        let head = parse_response_head(&bytes).unwrap().unwrap();
        assert_eq!(head.len, MAX_RESPONSE_HEAD);
    }

    #[test]
    fn hosts_and_paths_that_would_break_the_request_are_refused() {
        assert_eq!(authority("::1", 7).unwrap(), "[::1]:7");
        assert_eq!(authority("example.com", 80).unwrap(), "example.com:80");
        let error = authority("a\r\nX-Evil: 1", 80).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(check_path("/_prpc").is_ok());
        for bad in ["_prpc", "/a b", "/a\r\nX: y", ""] {
            assert_eq!(
                check_path(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
    }

    /// A connector that hands out one end of an in-memory duplex, and the other end to the
    /// test through a channel: the test plays the server (or proxy).
    struct Duplex(std::sync::Mutex<Option<DuplexStream>>);

    impl Connector for Duplex {
        type Io = DuplexStream;

        async fn connect(&self, _: &Address) -> io::Result<DuplexStream> {
            Ok(self.0.lock().unwrap().take().expect("dialed once"))
        }
    }

    /// Dials through a duplex whose far end plays the server: it reads the request, writes
    /// `answer` piece by piece, and then closes if `then_close`, else is returned open.
    async fn dial_answered(
        answer: &[&[u8]],
        then_close: bool,
    ) -> (
        io::Result<Prefixed<DuplexStream>>,
        String,
        Option<DuplexStream>,
    ) {
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let connector = HttpConnect::over(Duplex(std::sync::Mutex::new(Some(near))));
        let peer = async move {
            let request = read_request(&mut far).await;
            for piece in answer {
                far.write_all(piece).await.unwrap();
                far.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            (request, (!then_close).then_some(far))
        };
        let address = Address::tcp("127.0.0.1", 7000);
        let (result, (request, far)) = tokio::join!(connector.connect(&address), peer);
        (result, request, far)
    }

    /// The request head the client sent (through its blank line).
    async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> String {
        let mut reader = BufReader::new(stream);
        let mut request = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            request.push_str(&line);
            if line == "\r\n" || line.is_empty() {
                return request;
            }
        }
    }

    #[tokio::test]
    async fn a_200_hands_over_the_stream_with_the_bytes_after_the_head() {
        let (result, request, far) =
            dial_answered(&[b"HTTP/1.1 200 OK\r\n\r\nfirst bytes"], false).await;
        assert_eq!(
            request,
            "CONNECT /_prpc HTTP/1.1\r\nHost: 127.0.0.1:7000\r\n\r\n"
        );
        let mut stream = result.unwrap();
        let mut far = far.unwrap();
        far.write_all(b", then more").await.unwrap();
        drop(far);
        let mut rest = String::new();
        stream.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "first bytes, then more");
    }

    #[tokio::test]
    async fn a_head_split_across_reads_is_put_together() {
        let (result, _, far) = dial_answered(
            &[
                b"HTT",
                b"P/1.1 20",
                b"0 Connection established\r",
                b"\nVia: test\r\n",
                b"\r",
                b"\nab",
            ],
            true,
        )
        .await;
        assert!(far.is_none());
        let mut rest = Vec::new();
        result.unwrap().read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"ab");
    }

    #[tokio::test]
    async fn a_refusal_names_its_status_and_sender() {
        let (result, _, _far) = dial_answered(
            &[b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 11\r\n\r\nno upstream"],
            false,
        )
        .await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(
            error.to_string(),
            "server tcp://127.0.0.1:7000 refused CONNECT /_prpc: 502 Bad Gateway"
        );
    }

    #[tokio::test]
    async fn garbage_and_early_ends_are_typed() {
        let (result, _, _far) =
            dial_answered(&[b"\x50\x52\x50\x43\x00\x01\x02\r\n\r\n"], false).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
        assert!(
            error.to_string().contains("malformed response head"),
            "{error}"
        );

        let (result, _, _) = dial_answered(&[b"HTTP/1.1 200 OK\r\n"], true).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
    }

    #[tokio::test]
    async fn a_huge_head_is_refused() {
        let mut head = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        head.resize(MAX_RESPONSE_HEAD * 2, b'a');
        let (result, _, _far) = dial_answered(&[&head], false).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("over 8192 bytes"), "{error}");
    }

    /// A loopback listener that plays a forward proxy for one connection: reads the
    /// proxy's request, answers `proxy_answer`, and if that is a 200, reads the inner
    /// request and answers `server_answer`. Returns what it read.
    async fn fake_proxy(
        proxy_answer: &'static str,
        server_answer: &'static str,
    ) -> (Address, tokio::task::JoinHandle<(String, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::from(listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let to_proxy = read_request(&mut stream).await;
            stream.write_all(proxy_answer.as_bytes()).await.unwrap();
            if !proxy_answer.starts_with("HTTP/1.1 200")
                && !proxy_answer.starts_with("HTTP/1.0 200")
            {
                return (to_proxy, String::new());
            }
            let to_server = read_request(&mut stream).await;
            stream.write_all(server_answer.as_bytes()).await.unwrap();
            // Keep the socket until the client is done with it.
            let _ = stream.read(&mut [0; 1]).await;
            (to_proxy, to_server)
        });
        (address, task)
    }

    #[tokio::test]
    async fn through_a_proxy_both_requests_are_sent_and_bytes_carry_over() {
        // The proxy's 200 and the server's 200 arrive in one read.
        let (proxy, task) = fake_proxy(
            "HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK\r\n\r\nframes",
            "",
        )
        .await;
        let connector = HttpConnect::new()
            .proxy(proxy)
            .proxy_basic_auth("aladdin", "opensesame");
        let mut stream = connector
            .connect(&Address::tcp("10.1.2.3", 7000))
            .await
            .unwrap();
        let mut first = [0; 6];
        stream.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"frames");
        drop(stream);
        let (to_proxy, to_server) = task.await.unwrap();
        assert_eq!(
            to_proxy,
            "CONNECT 10.1.2.3:7000 HTTP/1.1\r\nHost: 10.1.2.3:7000\r\n\
             Proxy-Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\r\n\r\n"
        );
        assert_eq!(
            to_server,
            "CONNECT /_prpc HTTP/1.1\r\nHost: 10.1.2.3:7000\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_407_from_the_proxy_is_permission_denied() {
        let (proxy, _task) = fake_proxy(
            "HTTP/1.1 407 Proxy Authentication Required\r\n\
             Proxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n",
            "",
        )
        .await;
        let proxy_text = proxy.to_string();
        let error = HttpConnect::new()
            .proxy(proxy)
            .connect(&Address::tcp("10.1.2.3", 7000))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            error.to_string(),
            format!(
                "proxy {proxy_text} refused CONNECT 10.1.2.3:7000: 407 Proxy Authentication \
                 Required (set credentials with proxy_basic_auth)"
            )
        );
    }

    #[tokio::test]
    async fn a_refusal_behind_the_proxy_names_the_server() {
        let (proxy, _task) = fake_proxy(
            "HTTP/1.0 200 Connection established\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let proxy_text = proxy.to_string();
        let error = HttpConnect::new()
            .proxy(proxy)
            .connect(&Address::tcp("10.1.2.3", 7000))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(
            error.to_string(),
            format!(
                "server tcp://10.1.2.3:7000 (through proxy {proxy_text}) refused CONNECT \
                 /_prpc: 404 Not Found"
            )
        );
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::from(listener.local_addr().unwrap());
        let error = HttpConnect::new()
            .handshake_timeout(Duration::from_millis(50))
            .connect(&address)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        drop(listener);
    }

    #[tokio::test]
    async fn misuse_is_invalid_input() {
        let tls_through_proxy = HttpConnect::new()
            .proxy("127.0.0.1:1")
            .connect(&Address::tls("example.com", 443))
            .await
            .unwrap_err();
        assert_eq!(tls_through_proxy.kind(), io::ErrorKind::InvalidInput);
        let bad_proxy = HttpConnect::new()
            .proxy("ftp://proxy:21")
            .connect(&Address::tcp("127.0.0.1", 1))
            .await
            .unwrap_err();
        assert_eq!(bad_proxy.kind(), io::ErrorKind::InvalidInput);
        let bad_path = HttpConnect::new()
            .path("no-slash")
            .connect(&Address::tcp("127.0.0.1", 1))
            .await
            .unwrap_err();
        assert_eq!(bad_path.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn credentials_stay_out_of_debug_output() {
        let connector = HttpConnect::new()
            .proxy("127.0.0.1:3128")
            .proxy_basic_auth("user", "hunter2");
        let text = format!("{connector:?}");
        assert!(!text.contains("dXNlcjpodW50ZXIy"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}
