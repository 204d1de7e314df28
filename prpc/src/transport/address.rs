//! Where a server listens and a client dials, written as text: `tcp://host:port`,
//! `unix:///path/to.sock`, `tls://host:port`, `memory://name`, or a bare `host:port` (TCP).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// A transport and the place on it.
///
/// ```
/// use prpc::transport::Address;
///
/// let tcp: Address = "127.0.0.1:7000".parse()?;
/// assert_eq!(tcp, Address::tcp("127.0.0.1", 7000));
/// assert_eq!(tcp.to_string(), "tcp://127.0.0.1:7000");
///
/// let tls: Address = "tls://api.example.com:443".parse()?;
/// assert_eq!(tls.host(), Some("api.example.com"));
///
/// let unix: Address = "unix:///run/prpc.sock".parse()?;
/// assert_eq!(unix, Address::Unix("/run/prpc.sock".into()));
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// TCP to a host name or IP address (resolved when dialed).
    Tcp {
        /// Host name or IP address, without brackets for IPv6.
        host: String,
        /// Port.
        port: u16,
    },
    /// TLS over TCP; the host is also the name the server's certificate must carry (SNI).
    Tls {
        /// Host name or IP address, without brackets for IPv6.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix domain socket at this path.
    Unix(PathBuf),
    /// An in-process connection by name (see [`memory`](super::memory)).
    Memory(String),
}

/// Text that is not an address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// The scheme before `://` names no transport.
    UnknownScheme {
        /// The scheme written.
        scheme: String,
        /// The whole address.
        address: String,
    },
    /// A TCP or TLS address without `host:port`.
    NotHostPort(String),
    /// The port is not a number from 0 to 65535.
    BadPort(String),
    /// A Unix or memory address without a path or name.
    Empty(String),
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::UnknownScheme { scheme, address } => write!(
                f,
                "unknown scheme \"{scheme}\" in address \"{address}\" \
                 (expected tcp, unix, tls or memory)"
            ),
            AddressError::NotHostPort(address) => {
                write!(f, "address \"{address}\" is not host:port")
            }
            AddressError::BadPort(address) => write!(f, "address \"{address}\" has no valid port"),
            AddressError::Empty(address) => write!(f, "address \"{address}\" names no path"),
        }
    }
}

impl std::error::Error for AddressError {}

impl Address {
    /// A TCP address.
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Address::Tcp {
            host: host.into(),
            port,
        }
    }

    /// A TLS address.
    pub fn tls(host: impl Into<String>, port: u16) -> Self {
        Address::Tls {
            host: host.into(),
            port,
        }
    }

    /// The host of a TCP or TLS address.
    pub fn host(&self) -> Option<&str> {
        match self {
            Address::Tcp { host, .. } | Address::Tls { host, .. } => Some(host),
            Address::Unix(_) | Address::Memory(_) => None,
        }
    }

    /// The port of a TCP or TLS address.
    pub fn port(&self) -> Option<u16> {
        match self {
            Address::Tcp { port, .. } | Address::Tls { port, .. } => Some(*port),
            Address::Unix(_) | Address::Memory(_) => None,
        }
    }

    /// The socket address of a TCP or TLS address whose host is an IP address (no lookup).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip = self.host()?.parse().ok()?;
        Some(SocketAddr::new(ip, self.port()?))
    }

    /// The scheme as written in text (`tcp`, `tls`, `unix`, `memory`).
    pub fn scheme(&self) -> &'static str {
        match self {
            Address::Tcp { .. } => "tcp",
            Address::Tls { .. } => "tls",
            Address::Unix(_) => "unix",
            Address::Memory(_) => "memory",
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Address::tcp(addr.ip().to_string(), addr.port())
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = text.split_once("://").unwrap_or(("tcp", text));
        match scheme {
            "tcp" => host_port(text, rest).map(|(host, port)| Address::Tcp { host, port }),
            "tls" => host_port(text, rest).map(|(host, port)| Address::Tls { host, port }),
            "unix" if !rest.is_empty() => Ok(Address::Unix(PathBuf::from(rest))),
            "memory" if !rest.is_empty() => Ok(Address::Memory(rest.to_owned())),
            "unix" | "memory" => Err(AddressError::Empty(text.to_owned())),
            _ => Err(AddressError::UnknownScheme {
                scheme: scheme.to_owned(),
                address: text.to_owned(),
            }),
        }
    }
}

/// `host:port` or `[v6]:port`.
fn host_port(address: &str, text: &str) -> Result<(String, u16), AddressError> {
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let (host, rest) = bracketed
            .split_once(']')
            .ok_or_else(|| AddressError::NotHostPort(address.to_owned()))?;
        let port = rest
            .strip_prefix(':')
            .ok_or_else(|| AddressError::NotHostPort(address.to_owned()))?;
        (host, port)
    } else {
        text.rsplit_once(':')
            .filter(|(host, _)| !host.contains(':'))
            .ok_or_else(|| AddressError::NotHostPort(address.to_owned()))?
    };
    if host.is_empty() || host.contains('/') {
        return Err(AddressError::NotHostPort(address.to_owned()));
    }
    let port = port
        .parse()
        .map_err(|_| AddressError::BadPort(address.to_owned()))?;
    Ok((host.to_owned(), port))
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } | Address::Tls { host, port } if host.contains(':') => {
                write!(f, "{}://[{host}]:{port}", self.scheme())
            }
            Address::Tcp { host, port } | Address::Tls { host, port } => {
                write!(f, "{}://{host}:{port}", self.scheme())
            }
            Address::Unix(path) => write!(f, "unix://{}", path.display()),
            Address::Memory(name) => write!(f, "memory://{name}"),
        }
    }
}

/// What a server binds to and a client dials: an [`Address`], its text, or a socket address.
///
/// ```
/// use prpc::transport::{Address, IntoAddress};
/// let addr: std::net::SocketAddr = "127.0.0.1:80".parse().unwrap();
/// assert_eq!(addr.into_address()?, Address::tcp("127.0.0.1", 80));
/// assert_eq!("unix:///tmp/s".into_address()?, Address::Unix("/tmp/s".into()));
/// # Ok::<(), prpc::transport::AddressError>(())
/// ```
pub trait IntoAddress {
    /// The address, or why the text is not one.
    fn into_address(self) -> Result<Address, AddressError>;
}

impl IntoAddress for Address {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(self)
    }
}

impl IntoAddress for &Address {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(self.clone())
    }
}

impl IntoAddress for SocketAddr {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(self.into())
    }
}

impl IntoAddress for &str {
    fn into_address(self) -> Result<Address, AddressError> {
        self.parse()
    }
}

impl IntoAddress for String {
    fn into_address(self) -> Result<Address, AddressError> {
        self.parse()
    }
}

impl IntoAddress for &String {
    fn into_address(self) -> Result<Address, AddressError> {
        self.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_prints_back() {
        for (text, printed) in [
            ("127.0.0.1:80", "tcp://127.0.0.1:80"),
            ("tcp://localhost:7000", "tcp://localhost:7000"),
            ("tls://api.example.com:443", "tls://api.example.com:443"),
            ("[::1]:9000", "tcp://[::1]:9000"),
            ("tls://[::1]:9000", "tls://[::1]:9000"),
            ("unix:///run/x.sock", "unix:///run/x.sock"),
            ("unix://relative.sock", "unix://relative.sock"),
            ("memory://a", "memory://a"),
        ] {
            let address: Address = text.parse().unwrap();
            assert_eq!(address.to_string(), printed);
            assert_eq!(printed.parse::<Address>().unwrap(), address);
        }
        assert_eq!(
            "[::1]:9000".parse::<Address>().unwrap().socket_addr(),
            Some("[::1]:9000".parse().unwrap())
        );
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        assert!(matches!(
            "http://x:1".parse::<Address>(),
            Err(AddressError::UnknownScheme { .. })
        ));
        for text in ["localhost", "::1:80", ":80", "tcp://", "[::1]80", "a/b:1"] {
            assert!(
                matches!(text.parse::<Address>(), Err(AddressError::NotHostPort(_))),
                "{text}"
            );
        }
        assert!(matches!(
            "host:99999".parse::<Address>(),
            Err(AddressError::BadPort(_))
        ));
        assert!(matches!(
            "unix://".parse::<Address>(),
            Err(AddressError::Empty(_))
        ));
    }
}
