//! A connection's stream split into the half its reader owns and the half its writer owns.
//!
//! TCP and Unix streams, bare or [`Prefixed`], split into owned halves that need no lock (the
//! reader and the writer may run on two threads at once). Any other stream (TLS, an in-memory duplex, a user's
//! stream) shares one stream between its halves behind tokio's lock; they take it once per
//! read or write of a whole batch, not per call.

use std::any::Any;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, tcp};

use bytes::Bytes;

use super::{Io, Prefixed};

/// The reading half of a connection's stream.
pub(crate) enum ReadHalf<S> {
    Tcp(Prefixed<tcp::OwnedReadHalf>),
    #[cfg(unix)]
    Unix(Prefixed<tokio::net::unix::OwnedReadHalf>),
    Shared(tokio::io::ReadHalf<S>),
}

/// The writing half of a connection's stream.
pub(crate) enum WriteHalf<S> {
    Tcp(tcp::OwnedWriteHalf),
    #[cfg(unix)]
    Unix(tokio::net::unix::OwnedWriteHalf),
    Shared(tokio::io::WriteHalf<S>),
}

/// Splits `stream` for a reader and a writer: lock-free when it is a TCP or Unix stream (and a
/// TCP stream without Nagle's algorithm).
pub(crate) fn split<S: Io>(stream: S) -> (ReadHalf<S>, WriteHalf<S>) {
    // Which concrete stream this is, learnt once per connection (no specialisation in stable
    // Rust): the stream is taken out of an `Option` only when its type matches.
    let mut slot = Some(stream);
    let tcp = take::<S, TcpStream>(&mut slot)
        .map(|tcp| (Bytes::new(), tcp))
        .or_else(|| take::<S, Prefixed<TcpStream>>(&mut slot).map(Prefixed::into_parts));
    if let Some((prefix, tcp)) = tcp {
        // Calls are small and latency-bound, and the writers batch: no Nagle, whoever opened
        // the stream. (A socket that refuses the option still carries calls.)
        let _ = tcp.set_nodelay(true);
        let (read, write) = tcp.into_split();
        return (
            ReadHalf::Tcp(Prefixed::new(prefix, read)),
            WriteHalf::Tcp(write),
        );
    }
    #[cfg(unix)]
    {
        use tokio::net::UnixStream;
        let unix = take::<S, UnixStream>(&mut slot)
            .map(|unix| (Bytes::new(), unix))
            .or_else(|| take::<S, Prefixed<UnixStream>>(&mut slot).map(Prefixed::into_parts));
        if let Some((prefix, unix)) = unix {
            let (read, write) = unix.into_split();
            return (
                ReadHalf::Unix(Prefixed::new(prefix, read)),
                WriteHalf::Unix(write),
            );
        }
    }
    let Some(stream) = slot else {
        unreachable!("the stream is taken only by a branch that returns");
    };
    let (read, write) = tokio::io::split(stream);
    (ReadHalf::Shared(read), WriteHalf::Shared(write))
}

/// The stream in `slot`, if it is a `T`.
fn take<S: 'static, T: 'static>(slot: &mut Option<S>) -> Option<T> {
    (slot as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadHalf<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(read) => Pin::new(read).poll_read(cx, buf),
            #[cfg(unix)]
            ReadHalf::Unix(read) => Pin::new(read).poll_read(cx, buf),
            ReadHalf::Shared(read) => Pin::new(read).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteHalf<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(write) => Pin::new(write).poll_write(cx, buf),
            #[cfg(unix)]
            WriteHalf::Unix(write) => Pin::new(write).poll_write(cx, buf),
            WriteHalf::Shared(write) => Pin::new(write).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(write) => Pin::new(write).poll_write_vectored(cx, bufs),
            #[cfg(unix)]
            WriteHalf::Unix(write) => Pin::new(write).poll_write_vectored(cx, bufs),
            WriteHalf::Shared(write) => Pin::new(write).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WriteHalf::Tcp(write) => write.is_write_vectored(),
            #[cfg(unix)]
            WriteHalf::Unix(write) => write.is_write_vectored(),
            WriteHalf::Shared(write) => write.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(write) => Pin::new(write).poll_flush(cx),
            #[cfg(unix)]
            WriteHalf::Unix(write) => Pin::new(write).poll_flush(cx),
            WriteHalf::Shared(write) => Pin::new(write).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(write) => Pin::new(write).poll_shutdown(cx),
            #[cfg(unix)]
            WriteHalf::Unix(write) => Pin::new(write).poll_shutdown(cx),
            WriteHalf::Shared(write) => Pin::new(write).poll_shutdown(cx),
        }
    }
}
