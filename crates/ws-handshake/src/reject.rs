//! Server-side refusals: [`Rejection`] (the HTTP response to send) and [`RejectReason`].

use std::fmt;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use ws_extensions::header::HeaderError;

use crate::http1::{LimitExceeded, write_response};
use crate::tokens::InvalidTokenList;

/// Why the server refused a handshake request. Each reason has its status ([`Self::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// The head exceeded a [`Limits`](crate::Limits) field (431, or 400 for the request line).
    Limit(LimitExceeded),
    /// Not a well-formed HTTP/1.x request (400).
    Malformed(String),
    /// The method is not `GET` (405).
    Method,
    /// HTTP/1.0 (400).
    HttpVersion,
    /// The request announces a body (`Content-Length` other than 0, or any
    /// `Transfer-Encoding`) (400). An upgrade request has none; after a 101 its body would be
    /// read as WebSocket frames, which a proxy in front would not expect (request smuggling).
    Body,
    /// The request target is neither a path (`/chat`) nor an absolute `http`/`https` URI,
    /// e.g. `*` or `host:port` (400).
    Target,
    /// No `Host` header, or several (400).
    Host,
    /// `Upgrade` lacks `websocket` (426).
    Upgrade,
    /// `Connection` lacks `upgrade` (426).
    Connection,
    /// `Sec-WebSocket-Key` is missing, repeated or does not decode to 16 bytes (400).
    Key,
    /// `Sec-WebSocket-Version` is missing or not `13` (426).
    Version,
    /// `Origin` is missing or not allowed (403).
    Origin,
    /// `Sec-WebSocket-Extensions` does not parse (400).
    Extensions(HeaderError),
    /// `Sec-WebSocket-Protocol` is not a token list (400).
    Subprotocols(InvalidTokenList),
    /// The server requires a subprotocol and the client offered none it supports (400).
    NoSubprotocol,
    /// A server-side callback misbehaved, e.g. chose a subprotocol that is not a valid
    /// header value (500).
    Internal(&'static str),
}

impl RejectReason {
    /// The response status for this reason.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Limit(LimitExceeded::StartLineLength) => StatusCode::BAD_REQUEST,
            Self::Limit(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Method => StatusCode::METHOD_NOT_ALLOWED,
            Self::Upgrade | Self::Connection | Self::Version => StatusCode::UPGRADE_REQUIRED,
            Self::Origin => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Malformed(_)
            | Self::HttpVersion
            | Self::Body
            | Self::Target
            | Self::Host
            | Self::Key
            | Self::Extensions(_)
            | Self::Subprotocols(_)
            | Self::NoSubprotocol => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Limit(l) => write!(f, "{l}"),
            Self::Malformed(why) => write!(f, "malformed HTTP request: {why}"),
            Self::Method => f.write_str("method must be GET"),
            Self::HttpVersion => f.write_str("HTTP/1.1 or later required"),
            Self::Body => f.write_str(
                "an upgrade request has no body: Content-Length must be 0 and Transfer-Encoding absent",
            ),
            Self::Target => f.write_str("the request target must be a path or an absolute http(s) URI"),
            Self::Host => f.write_str("missing or repeated Host header"),
            Self::Upgrade => f.write_str("missing or invalid Upgrade header: expected websocket"),
            Self::Connection => f.write_str("missing or invalid Connection header: expected Upgrade"),
            Self::Key => f.write_str("missing, repeated or invalid Sec-WebSocket-Key header"),
            Self::Version => f.write_str("missing or unsupported Sec-WebSocket-Version: expected 13"),
            Self::Origin => f.write_str("missing or disallowed Origin header"),
            Self::Extensions(e) => write!(f, "{e}"),
            Self::Subprotocols(e) => write!(f, "invalid Sec-WebSocket-Protocol header: {e}"),
            Self::NoSubprotocol => f.write_str("no supported subprotocol offered"),
            Self::Internal(why) => write!(f, "internal error: {why}"),
        }
    }
}

impl std::error::Error for RejectReason {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Limit(e) => Some(e),
            Self::Extensions(e) => Some(e),
            Self::Subprotocols(e) => Some(e),
            _ => None,
        }
    }
}

/// A handshake the server does not upgrade: the HTTP response to send, then close the
/// connection. Either a refusal ([`reason`](Self::reason) says why) or an answer from the
/// `process_request` / `process_response` hooks (a health check, a 401...).
#[derive(Debug)]
pub struct Rejection(Box<Inner>);

/// Boxed: responses are large and rejections are the cold path.
#[derive(Debug)]
struct Inner {
    response: Response<Bytes>,
    reason: Option<RejectReason>,
}

impl Rejection {
    /// A plain-text response, like Python `websockets`' `reject(status, text)`: the body is
    /// `text` plus a newline, with `Content-Type`, `Content-Length` and `Connection: close`.
    pub fn new(status: StatusCode, text: &str) -> Self {
        Self(Box::new(Inner { response: plain_text(status, format!("{text}\n")), reason: None }))
    }

    /// Wraps a response built elsewhere, e.g. by a hook, completing its framing: the
    /// connection closes after it, so it gets `Connection: close`, and `Content-Length` from
    /// the body (not for 1xx, 204 and 304 responses, nor beside `Transfer-Encoding`). Headers
    /// already set are kept. [`ServerConfig::accept`](crate::ServerConfig::accept) also adds
    /// `Server` and `Date` to the responses of its hooks.
    pub fn from_response(mut response: Response<Bytes>) -> Self {
        complete_framing(&mut response);
        Self(Box::new(Inner { response, reason: None }))
    }

    pub(crate) fn from_reason(reason: RejectReason) -> Self {
        let mut response =
            plain_text(reason.status(), format!("Failed to open a WebSocket connection: {reason}.\n"));
        let headers = response.headers_mut();
        match reason {
            RejectReason::Method => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            RejectReason::Version | RejectReason::Upgrade | RejectReason::Connection => {
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            _ => {}
        }
        Self(Box::new(Inner { response, reason: Some(reason) }))
    }

    /// Adds `Server` and `Date` unless already present. Every rejection the server sends goes
    /// through here, so that all carry the same headers.
    pub(crate) fn finish(mut self, server: Option<&HeaderValue>, now: Option<SystemTime>) -> Self {
        let headers = self.0.response.headers_mut();
        if let Some(server) = server {
            headers.entry(header::SERVER).or_insert_with(|| server.clone());
        }
        if let Some(now) = now {
            headers.entry(header::DATE).or_insert_with(|| crate::server::date_value(now));
        }
        self
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        self.0.response.status()
    }

    /// Why the server refused, or `None` for a response from a hook.
    pub fn reason(&self) -> Option<&RejectReason> {
        self.0.reason.as_ref()
    }

    /// The response to send.
    pub fn response(&self) -> &Response<Bytes> {
        &self.0.response
    }

    /// Takes the response.
    pub fn into_response(self) -> Response<Bytes> {
        self.0.response
    }

    /// Serializes the response (head and body) to `out`.
    pub fn write_response(&self, out: &mut Vec<u8>) {
        write_response(&self.0.response, out);
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.reason {
            Some(reason) => write!(f, "WebSocket handshake rejected ({}): {reason}", self.status()),
            None => write!(f, "WebSocket handshake answered without upgrading ({})", self.status()),
        }
    }
}

impl std::error::Error for Rejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.reason.as_ref().map(|r| r as _)
    }
}

fn plain_text(status: StatusCode, body: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    complete_framing(&mut response);
    response
}

/// Lets the client find the end of a response sent before closing: without `Content-Length`
/// (or chunking) it can only wait for the close ("no chunk, no close, no size"). Keeps what the
/// response already says, e.g. the `Content-Length` of a `HEAD` answer.
fn complete_framing(response: &mut Response<Bytes>) {
    let status = response.status();
    let len = response.body().len();
    let headers = response.headers_mut();
    // RFC 9110 §8.6: no Content-Length on 1xx and 204, nor one that is not the resource's on
    // 304; RFC 9112 §6.2: never beside Transfer-Encoding.
    let bodiless =
        status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    if !bodiless
        && !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key(header::TRANSFER_ENCODING)
    {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    headers.entry(header::CONNECTION).or_insert_with(|| HeaderValue::from_static("close"));
}
