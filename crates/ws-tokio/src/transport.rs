//! The transports `connect` and `serve` open and accept: one type for TCP and Unix sockets
//! and TLS over TCP, so that every transport goes through one accept path and one
//! `WebSocket` type.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};

/// A stream `connect` opened or a server accepted. [`WebSocket`](crate::WebSocket)'s default
/// transport.
#[derive(Debug)]
#[non_exhaustive]
pub enum Transport {
    /// Plain TCP (`ws://`).
    Tcp(TcpStream),
    /// A Unix domain socket.
    #[cfg(unix)]
    Unix(UnixStream),
    /// TLS over TCP (`wss://`, or a server given a TLS configuration): the client or the
    /// server side of rustls' stream (boxed: its buffers would make every transport large).
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl Transport {
    /// The TCP stream underneath (plain or under TLS).
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Self::Tcp(s) => Some(s),
            #[cfg(unix)]
            Self::Unix(_) => None,
            #[cfg(feature = "tls")]
            Self::Tls(s) => Some(s.get_ref().0),
        }
    }

    /// The local address, for TCP (plain or under TLS).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.tcp().and_then(|s| s.local_addr().ok())
    }

    /// The peer's address, for TCP (plain or under TLS).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.tcp().and_then(|s| s.peer_addr().ok())
    }

    /// Small frames go out at once (no Nagle delay); a no-op where there is no such thing.
    pub(crate) fn set_nodelay(&self) {
        if let Some(s) = self.tcp() {
            let _ = s.set_nodelay(true);
        }
    }
}

impl From<TcpStream> for Transport {
    fn from(stream: TcpStream) -> Self {
        Self::Tcp(stream)
    }
}

#[cfg(unix)]
impl From<UnixStream> for Transport {
    fn from(stream: UnixStream) -> Self {
        Self::Unix(stream)
    }
}

#[cfg(feature = "tls")]
impl From<tokio_rustls::TlsStream<TcpStream>> for Transport {
    fn from(stream: tokio_rustls::TlsStream<TcpStream>) -> Self {
        Self::Tls(Box::new(stream))
    }
}

/// Forwards a call to whichever stream the transport holds.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self.get_mut() {
            Transport::Tcp($s) => $call,
            #[cfg(unix)]
            Transport::Unix($s) => $call,
            #[cfg(feature = "tls")]
            Transport::Tls($s) => $call,
        }
    };
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(s) => s.is_write_vectored(),
            #[cfg(unix)]
            Self::Unix(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// What a server accepts connections from: a TCP or a Unix socket listener. Every kind gets the
/// same handshake, limits, graceful shutdown and connection count.
#[derive(Debug)]
#[non_exhaustive]
pub enum Listener {
    /// A bound TCP listener.
    Tcp(TcpListener),
    /// A bound Unix socket listener.
    #[cfg(unix)]
    Unix(UnixListener),
}

impl Listener {
    /// The address listened on, for TCP.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr().ok(),
            #[cfg(unix)]
            Self::Unix(_) => None,
        }
    }

    /// The next connection.
    pub(crate) async fn accept(&self) -> io::Result<Transport> {
        match self {
            Self::Tcp(l) => l.accept().await.map(|(s, _)| Transport::Tcp(s)),
            #[cfg(unix)]
            Self::Unix(l) => l.accept().await.map(|(s, _)| Transport::Unix(s)),
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Self::Tcp(listener)
    }
}

#[cfg(unix)]
impl From<UnixListener> for Listener {
    fn from(listener: UnixListener) -> Self {
        Self::Unix(listener)
    }
}
