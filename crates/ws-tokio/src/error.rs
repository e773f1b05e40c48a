//! The one error type of the tokio layer; the only place `io::Error` meets the protocol.

use std::{fmt, io};

use ws_proto::{CloseCode, ProtocolError, SendError};

use crate::proxy::ProxyError;

/// How a connection ended, as seen by `recv`/`send` after it closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionClosed {
    /// The peer's close code: 1005 if its close frame had none, 1006 if there was no close frame.
    pub code: CloseCode,
    /// The peer's close reason.
    pub reason: String,
    /// Both close frames were exchanged and each carried 1000, 1001 or no code — Python
    /// `websockets`' `ConnectionClosedOK`, as opposed to `ConnectionClosedError`.
    pub ok: bool,
}

impl fmt::Display for ConnectionClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "connection closed ({})", self.code)
        } else {
            write!(f, "connection closed ({} {})", self.code, self.reason)
        }
    }
}

/// Which timeout expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// The opening handshake took longer than `open_timeout`.
    Open,
    /// No pong arrived within `ping_timeout` of a keepalive ping (the connection closed with 1011).
    Keepalive,
    /// The closing handshake took longer than `close_timeout`.
    Close,
}

/// Everything that can go wrong on a connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The connection is closed; `ok` tells a normal closure from an error.
    Closed(ConnectionClosed),
    /// The peer broke the protocol; the connection was closed with the error's code.
    Protocol(ProtocolError),
    /// The local side asked for something the protocol forbids (e.g. a close code that may not be sent).
    Send(SendError),
    /// The client's opening handshake failed (a non-101 answer keeps the whole response).
    Handshake(ws_handshake::ClientError),
    /// The server refused the client's opening handshake with this response.
    Rejected(Box<ws_handshake::Rejection>),
    /// A timeout expired.
    Timeout(Timeout),
    /// The transport failed.
    Io(io::Error),
    /// The URI is not a `ws://` or `wss://` URI this build can connect to.
    InvalidUri(String),
    /// A ping with the same payload is still waiting for its pong.
    DuplicatePing,
    /// The fragments given to `send_fragmented` mix text and binary.
    MixedFragments,
    /// The URI's host name could not be resolved.
    Resolve {
        /// The host name.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// The TCP connection could not be opened (the last address tried, when the host has several).
    Connect {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why (refused, unreachable, timed out).
        source: io::Error,
    },
    /// The connection through the proxy failed (see [`ProxyError`] for which step).
    Proxy(ProxyError),
    /// The server redirected a `wss://` URI to a `ws://` one: following it would drop TLS.
    InsecureRedirect {
        /// The URI that answered the redirect.
        from: String,
        /// Where it pointed.
        to: String,
    },
    /// The server redirected more than `max_redirects` times in a row (a redirect loop?).
    TooManyRedirects {
        /// The last URI redirected to (not followed).
        uri: String,
        /// The limit ([`ClientBuilder::max_redirects`](crate::ClientBuilder::max_redirects)).
        limit: usize,
    },
    /// TLS failed: the handshake (a certificate not trusted or not valid for the host name,
    /// the peer hung up or refused) or its setup (no trust roots could be loaded).
    Tls {
        /// What happened and what to try, e.g. "certificate not trusted (unknown issuer) for
        /// localhost: set SSL_CERT_FILE to its CA, or use ClientBuilder::tls_config".
        message: String,
        /// The TLS library's error (a `rustls::Error`), or the I/O error that ended the handshake.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Whether this is a normal closure: a complete closing handshake whose close frames each
    /// carried 1000, 1001 or no code (see [`ConnectionClosed::ok`]).
    pub fn is_normal_closure(&self) -> bool {
        matches!(self, Self::Closed(ConnectionClosed { ok: true, .. }))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed(closed) => closed.fmt(f),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::Send(e) => write!(f, "cannot send: {e}"),
            Self::Handshake(e) => write!(f, "opening handshake failed: {e}"),
            Self::Rejected(r) => write!(f, "opening handshake refused with HTTP {}", r.status()),
            Self::Timeout(Timeout::Open) => f.write_str("timed out during the opening handshake"),
            Self::Timeout(Timeout::Keepalive) => f.write_str("keepalive ping timeout"),
            Self::Timeout(Timeout::Close) => f.write_str("timed out during the closing handshake"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::InvalidUri(why) => write!(f, "invalid URI: {why}"),
            Self::DuplicatePing => f.write_str("a ping with this payload is already waiting for its pong"),
            Self::MixedFragments => f.write_str("the fragments of one message mix text and binary"),
            Self::Resolve { host, .. } => write!(f, "cannot resolve {host}"),
            Self::Connect { addr, source } if source.kind() == io::ErrorKind::ConnectionRefused => {
                write!(f, "connection refused: {addr}")
            }
            Self::Connect { addr, .. } => write!(f, "cannot connect to {addr}"),
            Self::Proxy(e) => e.fmt(f),
            Self::InsecureRedirect { from, to } => {
                write!(f, "refusing the redirect from {from} to {to}: it would drop TLS (use the wss:// URI)")
            }
            Self::TooManyRedirects { uri, limit } => write!(
                f,
                "more than {limit} redirects, the last to {uri}: a redirect loop? fix the server, or raise ClientBuilder::max_redirects"
            ),
            Self::Tls { message, .. } => write!(f, "TLS: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Protocol(e) => Some(e),
            Self::Send(e) => Some(e),
            Self::Handshake(e) => Some(e),
            // The proxy error's message is this one's: skip to its cause.
            Self::Proxy(e) => std::error::Error::source(e),
            Self::Io(e) | Self::Resolve { source: e, .. } | Self::Connect { source: e, .. } => Some(e),
            Self::Tls { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        Self::Send(e)
    }
}

impl From<ws_handshake::ClientError> for Error {
    fn from(e: ws_handshake::ClientError) -> Self {
        Self::Handshake(e)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
