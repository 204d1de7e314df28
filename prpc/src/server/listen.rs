//! The listeners a server binds by address: TCP, a Unix socket, TLS; served as one listener
//! whose stream is any of theirs, so an app compiles the server's connection code once rather
//! than once per transport.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

#[cfg(feature = "tls")]
use crate::transport::tls::{ServerTls, TlsListener};
use crate::transport::{Address, Listener};

/// The listeners [`Builder::bind`](super::Builder::bind) makes, itself a [`Listener`] of
/// [`BoundStream`]s.
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
    type Io = BoundStream;

    async fn accept(&mut self) -> io::Result<Option<(BoundStream, Option<Address>)>> {
        Ok(match self {
            Bound::Tcp(listener) => Listener::accept(listener)
                .await?
                .map(|(stream, peer)| (BoundStream::Tcp(stream), peer)),
            #[cfg(unix)]
            Bound::Unix(listener) => Listener::accept(listener)
                .await?
                .map(|(stream, peer)| (BoundStream::Unix(stream), peer)),
            #[cfg(feature = "tls")]
            Bound::Tls(listener) => listener
                .accept()
                .await?
                .map(|(stream, peer)| (BoundStream::Tls(Box::new(stream)), peer)),
        })
    }
}

/// A connection accepted by a [`Bound`] listener.
pub(crate) enum BoundStream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Runs `$body` with `$io` bound to the stream inside, pinned.
macro_rules! each {
    ($self:ident, $io:ident => $body:expr) => {
        match $self.get_mut() {
            BoundStream::Tcp($io) => {
                let $io = Pin::new($io);
                $body
            }
            #[cfg(unix)]
            BoundStream::Unix($io) => {
                let $io = Pin::new($io);
                $body
            }
            #[cfg(feature = "tls")]
            BoundStream::Tls($io) => {
                let $io = Pin::new(&mut **$io);
                $body
            }
        }
    };
}

impl AsyncRead for BoundStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, io => io.poll_read(cx, buf))
    }
}

impl AsyncWrite for BoundStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, io => io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, io => io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            BoundStream::Tcp(io) => io.is_write_vectored(),
            #[cfg(unix)]
            BoundStream::Unix(io) => io.is_write_vectored(),
            #[cfg(feature = "tls")]
            BoundStream::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, io => io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, io => io.poll_shutdown(cx))
    }
}
