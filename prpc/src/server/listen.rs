//! The listeners a server binds by address: TCP, a Unix socket, TLS; served as one listener
//! of [`AnyStream`]s, so an app compiles the accept loop once rather than once per transport.

use std::io;

#[cfg(feature = "tls")]
use crate::transport::tls::{ServerTls, TlsListener};
use crate::transport::{Address, AnyStream, Listener};

/// The listeners [`Builder::bind`](super::Builder::bind) makes, itself a [`Listener`] of
/// [`AnyStream`]s.
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

impl Listener for Bound {
    type Io = AnyStream;

    async fn accept(&mut self) -> io::Result<Option<(AnyStream, Option<Address>)>> {
        Ok(match self {
            Bound::Tcp(listener) => Listener::accept(listener)
                .await?
                .map(|(stream, peer)| (AnyStream::new(stream), peer)),
            #[cfg(unix)]
            Bound::Unix(listener) => Listener::accept(listener)
                .await?
                .map(|(stream, peer)| (AnyStream::new(stream), peer)),
            #[cfg(feature = "tls")]
            Bound::Tls(listener) => listener
                .accept()
                .await?
                .map(|(stream, peer)| (AnyStream::Other(Box::new(stream)), peer)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::stream::ReadHalf;
    use tokio::net::TcpStream;

    /// What the server's own listeners accept splits as the bare socket does: no lock between
    /// a connection's reader and writer (a TCP connection accepted through `bind` once took
    /// the shared, locked split).
    #[tokio::test]
    async fn bound_tcp_and_unix_connections_split_without_a_lock() {
        let (mut bound, local) = bind(
            &Address::tcp("127.0.0.1", 0),
            #[cfg(feature = "tls")]
            None,
        )
        .await
        .unwrap();
        let Address::Tcp { host, port } = &local else {
            panic!("bound {local}");
        };
        let _client = TcpStream::connect((host.as_str(), *port)).await.unwrap();
        let (stream, peer) = bound.accept().await.unwrap().unwrap();
        assert!(peer.is_some());
        let (read, _) = stream.split();
        assert!(matches!(read, ReadHalf::Tcp(_)));

        #[cfg(unix)]
        {
            let dir = std::env::temp_dir().join(format!("prpc-listen-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("bound.sock");
            let _ = std::fs::remove_file(&path);
            let (mut bound, _) = bind(
                &Address::Unix(path.clone()),
                #[cfg(feature = "tls")]
                None,
            )
            .await
            .unwrap();
            let _client = tokio::net::UnixStream::connect(&path).await.unwrap();
            let (stream, _) = bound.accept().await.unwrap().unwrap();
            let (read, _) = stream.split();
            assert!(matches!(read, ReadHalf::Unix(_)));
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
