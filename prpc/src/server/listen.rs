//! The listeners a server binds by address: TCP, a Unix socket, TLS.

use std::io;

use crate::transport::Address;
#[cfg(feature = "tls")]
use crate::transport::tls::{ServerTls, TlsListener};

/// The listeners [`Builder::bind`](super::Builder::bind) makes.
pub(super) enum Bound {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
    #[cfg(feature = "tls")]
    Tls(TlsListener),
}

/// Binds the listener `address` names; the address it is bound to (with the real port).
pub(super) async fn bind(
    address: &Address,
    #[cfg(feature = "tls")] tls: Option<&ServerTls>,
) -> io::Result<(Bound, Address)> {
    let bound = match address {
        Address::Tcp { host, port } => {
            let listener = tokio::net::TcpListener::bind((host.as_str(), *port)).await?;
            let local_addr = listener.local_addr()?.into();
            (Bound::Tcp(listener), local_addr)
        }
        #[cfg(unix)]
        Address::Unix(path) => (
            Bound::Unix(tokio::net::UnixListener::bind(path)?),
            address.clone(),
        ),
        #[cfg(feature = "tls")]
        Address::Tls { host, port } => {
            let Some(tls) = tls else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("binding {address}: tls:// needs Builder::tls"),
                ));
            };
            let tcp = tokio::net::TcpListener::bind((host.as_str(), *port)).await?;
            let bound = tcp.local_addr()?;
            let listener = TlsListener::new(tcp, tls)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
            let local_addr = Address::tls(bound.ip().to_string(), bound.port());
            (Bound::Tls(listener), local_addr)
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a server cannot bind {address} (serve a {} listener with Router::serve_with_listener)",
                    address.scheme()
                ),
            ));
        }
    };
    Ok(bound)
}
