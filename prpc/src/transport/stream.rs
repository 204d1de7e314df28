//! One stream type for every transport, and its split into the half a connection's reader
//! owns and the half its writer owns.
//!
//! Whatever stream a client dials or a server accepts becomes an [`AnyStream`] first, so the
//! connection code (reader, writer, framing) is compiled once, in prpc, not once per transport
//! in every app. TCP and Unix streams, bare or [`Prefixed`], split into owned halves that need
//! no lock (the reader and the writer may run on two threads at once). Any other stream (TLS,
//! an in-memory duplex, a user's stream) is boxed and shared between its halves behind tokio's
//! lock; they take it once per read or write of a whole batch, not per call.

use std::any::Any;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, tcp};

use bytes::Bytes;

use super::{Io, Prefixed};

/// A connection's stream, of whichever transport.
pub(crate) enum AnyStream {
    /// A TCP stream, with any bytes read ahead of it.
    Tcp(Prefixed<TcpStream>),
    /// A Unix stream, with any bytes read ahead of it.
    #[cfg(unix)]
    Unix(Prefixed<tokio::net::UnixStream>),
    /// Any other stream (TLS, in-memory, a user's transport).
    Other(Box<dyn Io>),
}

impl AnyStream {
    /// `stream` as a [`AnyStream`]: which concrete stream it is, learnt once per connection (no
    /// specialisation in stable Rust): it is taken out of an `Option` only when its type
    /// matches.
    pub(crate) fn new<S: Io>(stream: S) -> AnyStream {
        let mut slot = Some(stream);
        if let Some(stream) = take::<S, AnyStream>(&mut slot) {
            return stream;
        }
        if let Some(tcp) = take::<S, TcpStream>(&mut slot) {
            return AnyStream::Tcp(Prefixed::new(Bytes::new(), tcp));
        }
        if let Some(tcp) = take::<S, Prefixed<TcpStream>>(&mut slot) {
            return AnyStream::Tcp(tcp);
        }
        #[cfg(unix)]
        {
            use tokio::net::UnixStream;
            if let Some(unix) = take::<S, UnixStream>(&mut slot) {
                return AnyStream::Unix(Prefixed::new(Bytes::new(), unix));
            }
            if let Some(unix) = take::<S, Prefixed<UnixStream>>(&mut slot) {
                return AnyStream::Unix(unix);
            }
        }
        let Some(stream) = slot else {
            unreachable!("the stream is taken only by a branch that returns");
        };
        AnyStream::Other(Box::new(stream))
    }

    /// Splits the stream for a reader and a writer: lock-free when it is a TCP or Unix stream
    /// (and a TCP stream without Nagle's algorithm).
    pub(crate) fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            AnyStream::Tcp(tcp) => {
                let (prefix, tcp) = tcp.into_parts();
                // Calls are small and latency-bound, and the writers batch: no Nagle, whoever
                // opened the stream. (A socket that refuses the option still carries calls.)
                let _ = tcp.set_nodelay(true);
                let (read, write) = tcp.into_split();
                (
                    ReadHalf::Tcp(Prefixed::new(prefix, read)),
                    WriteHalf::Tcp(write),
                )
            }
            #[cfg(unix)]
            AnyStream::Unix(unix) => {
                let (prefix, unix) = unix.into_parts();
                let (read, write) = unix.into_split();
                (
                    ReadHalf::Unix(Prefixed::new(prefix, read)),
                    WriteHalf::Unix(write),
                )
            }
            AnyStream::Other(stream) => {
                let (read, write) = tokio::io::split(stream);
                (ReadHalf::Shared(read), WriteHalf::Shared(write))
            }
        }
    }
}

/// The stream in `slot`, if it is a `T`.
fn take<S: 'static, T: 'static>(slot: &mut Option<S>) -> Option<T> {
    (slot as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
}

/// The reading half of a connection's stream.
pub(crate) enum ReadHalf {
    Tcp(Prefixed<tcp::OwnedReadHalf>),
    #[cfg(unix)]
    Unix(Prefixed<tokio::net::unix::OwnedReadHalf>),
    Shared(tokio::io::ReadHalf<Box<dyn Io>>),
}

/// The writing half of a connection's stream.
pub(crate) enum WriteHalf {
    Tcp(tcp::OwnedWriteHalf),
    #[cfg(unix)]
    Unix(tokio::net::unix::OwnedWriteHalf),
    Shared(tokio::io::WriteHalf<Box<dyn Io>>),
}

/// Runs `$body` with `$io` bound to the stream inside `$value`, one of the three enums here
/// (their variants are TCP, Unix and `$other`).
macro_rules! each {
    ($value:expr, $enum:ident::$other:ident, $io:ident => $body:expr) => {
        match $value {
            $enum::Tcp($io) => $body,
            #[cfg(unix)]
            $enum::Unix($io) => $body,
            $enum::$other($io) => $body,
        }
    };
}

/// `AsyncRead` and `AsyncWrite` for an enum of streams, through [`each`].
macro_rules! delegate_io {
    (read: $enum:ident::$other:ident) => {
        impl AsyncRead for $enum {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                each!(self.get_mut(), $enum::$other, io => Pin::new(io).poll_read(cx, buf))
            }
        }
    };
    (write: $enum:ident::$other:ident) => {
        impl AsyncWrite for $enum {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                each!(self.get_mut(), $enum::$other, io => Pin::new(io).poll_write(cx, buf))
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                each!(self.get_mut(), $enum::$other, io => {
                    Pin::new(io).poll_write_vectored(cx, bufs)
                })
            }

            fn is_write_vectored(&self) -> bool {
                each!(self, $enum::$other, io => io.is_write_vectored())
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                each!(self.get_mut(), $enum::$other, io => Pin::new(io).poll_flush(cx))
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                each!(self.get_mut(), $enum::$other, io => Pin::new(io).poll_shutdown(cx))
            }
        }
    };
}

delegate_io!(read: AnyStream::Other);
delegate_io!(write: AnyStream::Other);
delegate_io!(read: ReadHalf::Shared);
delegate_io!(write: WriteHalf::Shared);

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A connected pair of TCP streams on loopback.
    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap());
        let (near, far) = tokio::join!(near, listener.accept());
        (near.unwrap(), far.unwrap().0)
    }

    #[tokio::test]
    async fn tcp_streams_bare_prefixed_or_wrapped_split_without_a_lock() {
        let (near, _far) = tcp_pair().await;
        let (read, write) = AnyStream::new(near).split();
        assert!(matches!(read, ReadHalf::Tcp(_)));
        assert!(matches!(write, WriteHalf::Tcp(_)));

        // An `AnyStream` given again (a bound listener's) is not boxed a second time.
        let (near, _far) = tcp_pair().await;
        let (read, _) = AnyStream::new(AnyStream::new(near)).split();
        assert!(matches!(read, ReadHalf::Tcp(_)));

        // A prefixed stream's prefix is read first, then the socket, which has no Nagle.
        let (near, mut far) = tcp_pair().await;
        let prefixed = Prefixed::new(Bytes::from_static(b"ab"), near);
        let (mut read, _write) = AnyStream::new(prefixed).split();
        let ReadHalf::Tcp(tcp) = &read else {
            panic!("a prefixed TCP stream takes the lock-free split");
        };
        assert!(tcp.get_ref().as_ref().nodelay().unwrap());
        far.write_all(b"c").await.unwrap();
        let mut got = [0; 3];
        read.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abc");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn unix_streams_split_without_a_lock() {
        let (near, _far) = tokio::net::UnixStream::pair().unwrap();
        let (read, write) = AnyStream::new(near).split();
        assert!(matches!(read, ReadHalf::Unix(_)));
        assert!(matches!(write, WriteHalf::Unix(_)));
    }

    #[tokio::test]
    async fn other_streams_share_one_boxed_stream() {
        let (near, mut far) = tokio::io::duplex(64);
        let (mut read, mut write) = AnyStream::new(near).split();
        assert!(matches!(read, ReadHalf::Shared(_)));
        write.write_all(b"ping").await.unwrap();
        let mut got = [0; 4];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        far.write_all(b"pong").await.unwrap();
        read.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
    }
}
