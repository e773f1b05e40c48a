//! The server side: [`ServerHandshake`] reads the request, [`ServerConfig::accept`] decides.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use ws_extensions::header::{parse_extension_headers, serialize_extensions};
use ws_extensions::{ConfigError, Extension, ServerExtensionFactory, negotiate_server};

use crate::accept_key::{accept_key_bytes, is_valid_key};
use crate::http1::{
    HeadReader, InvalidHeader, Limits, line_count, to_header_map, with_header_slots, write_response_head,
};
use crate::reject::{RejectReason, Rejection};
use crate::tokens::{each_token, has_connection_upgrade, upgrade_protocols};

/// The default `Server` header: this library and its version.
pub const SERVER: &str = concat!("ws-rs/", env!("CARGO_PKG_VERSION"));

/// Picks the subprotocol from the client's offers (in client order); `None` for none.
pub type SelectSubprotocol = Arc<dyn Fn(&Request<()>, &[&str]) -> Option<String> + Send + Sync>;

/// Runs before any WebSocket check; returning a response sends it instead of upgrading
/// (health checks, authentication, routing).
pub type ProcessRequest = Arc<dyn Fn(&Request<()>) -> Option<Response<Bytes>> + Send + Sync>;

/// Runs on the 101 response before it is returned: may edit it, or return a response to send
/// instead.
pub type ProcessResponse =
    Arc<dyn Fn(&Request<()>, &mut Response<()>) -> Option<Response<Bytes>> + Send + Sync>;

/// What a server accepts. Shared by all connections (`Arc`); build with `Default` and set fields.
#[non_exhaustive]
#[derive(Clone)]
pub struct ServerConfig {
    /// Limits on the request head.
    pub limits: Limits,
    /// Supported subprotocols, most preferred first.
    pub subprotocols: Vec<String>,
    /// Refuse clients that offer no supported subprotocol (400). Default `false`: such
    /// clients get no `Sec-WebSocket-Protocol` header.
    pub require_subprotocol: bool,
    /// Replaces the default choice (the server's first preference the client offered).
    pub select_subprotocol: Option<SelectSubprotocol>,
    /// Extension factories, tried in order for each offer.
    pub extensions: Vec<Arc<dyn ServerExtensionFactory>>,
    /// Allowed `Origin` values (compared ASCII case-insensitively); `None` allows any.
    pub origins: Option<Vec<String>>,
    /// With `origins` set, also accept requests without an `Origin` header (non-browser clients).
    pub allow_missing_origin: bool,
    /// See [`ProcessRequest`].
    pub process_request: Option<ProcessRequest>,
    /// See [`ProcessResponse`].
    pub process_response: Option<ProcessResponse>,
    /// The `Server` header on every response; `None` omits it. Default [`SERVER`].
    pub server_header: Option<HeaderValue>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            subprotocols: Vec::new(),
            require_subprotocol: false,
            select_subprotocol: None,
            extensions: Vec::new(),
            origins: None,
            allow_missing_origin: false,
            process_request: None,
            process_response: None,
            server_header: Some(HeaderValue::from_static(SERVER)),
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("limits", &self.limits)
            .field("subprotocols", &self.subprotocols)
            .field("require_subprotocol", &self.require_subprotocol)
            .field("select_subprotocol", &self.select_subprotocol.is_some())
            .field("extensions", &self.extensions.iter().map(|e| e.name()).collect::<Vec<_>>())
            .field("origins", &self.origins)
            .field("allow_missing_origin", &self.allow_missing_origin)
            .field("process_request", &self.process_request.is_some())
            .field("process_response", &self.process_response.is_some())
            .field("server_header", &self.server_header)
            .finish()
    }
}

/// An accepted handshake: send [`response`](Self::response), then speak WebSocket.
#[non_exhaustive]
pub struct ServerAccepted {
    /// The 101 response (write it with [`write_response`](Self::write_response)).
    pub response: Response<()>,
    /// The chosen subprotocol.
    pub subprotocol: Option<String>,
    /// The negotiated extensions, in order.
    pub extensions: Vec<Box<dyn Extension>>,
    /// Bytes the client sent after its request (pipelined frames): feed them to the connection
    /// first. Empty from [`ServerConfig::accept`].
    pub leftover: Bytes,
}

impl ServerAccepted {
    /// Serializes the 101 response to `out`.
    pub fn write_response(&self, out: &mut Vec<u8>) {
        write_response_head(&self.response, out);
    }
}

impl fmt::Debug for ServerAccepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAccepted")
            .field("response", &self.response)
            .field("subprotocol", &self.subprotocol)
            .field("extensions", &self.extensions.iter().map(|e| e.name()).collect::<Vec<_>>())
            .field("leftover", &self.leftover.len())
            .finish()
    }
}

impl ServerConfig {
    /// Checks every extension factory's settings (see [`ServerExtensionFactory::validate`]):
    /// call it before serving, so that a misconfigured extension is an error rather than one
    /// that every client is silently refused.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.extensions.iter().try_for_each(|factory| factory.validate())
    }

    /// Decides on a parsed request: runs `process_request`, checks the request (RFC 6455
    /// §4.2.1), negotiates subprotocol and extensions, builds the 101 and runs
    /// `process_response`. `now` sets the `Date` header (`None` omits it, for deterministic
    /// tests). Use this directly when another HTTP stack parsed the request; otherwise
    /// [`ServerHandshake::accept`] also returns the leftover bytes.
    pub fn accept(
        &self,
        request: &Request<()>,
        now: Option<SystemTime>,
    ) -> Result<ServerAccepted, Rejection> {
        if let Some(hook) = &self.process_request {
            if let Some(response) = hook(request) {
                return Err(self.finish(Rejection::from_response(response), now));
            }
        }
        self.upgrade(request, now)
            .and_then(|mut accepted| {
                if let Some(hook) = &self.process_response {
                    if let Some(response) = hook(request, &mut accepted.response) {
                        return Err(Rejection::from_response(response));
                    }
                }
                Ok(accepted)
            })
            .map_err(|r| self.finish(r, now))
    }

    /// A response decided outside [`accept`](Self::accept) (an asynchronous hook, say), sent
    /// instead of the handshake with the same completion as a `process_request` response:
    /// `Content-Length`, `Connection: close`, `Server` and `Date` (`now`).
    pub fn respond(&self, response: Response<Bytes>, now: Option<SystemTime>) -> Rejection {
        self.finish(Rejection::from_response(response), now)
    }

    /// The headers every rejection carries, whichever path produced it.
    fn finish(&self, rejection: Rejection, now: Option<SystemTime>) -> Rejection {
        rejection.finish(self.server_header.as_ref(), now)
    }

    fn upgrade(&self, request: &Request<()>, now: Option<SystemTime>) -> Result<ServerAccepted, Rejection> {
        let reject = |reason| Err(Rejection::from_reason(reason));
        let headers = request.headers();
        if request.method() != Method::GET {
            return reject(RejectReason::Method);
        }
        if request.version() < Version::HTTP_11 {
            return reject(RejectReason::HttpVersion);
        }
        if !is_resource_target(request.uri()) {
            return reject(RejectReason::Target);
        }
        if has_body(headers) {
            return reject(RejectReason::Body);
        }
        if headers.get_all(header::HOST).iter().count() != 1 {
            return reject(RejectReason::Host);
        }
        if !has_connection_upgrade(headers.get_all(header::CONNECTION)) {
            return reject(RejectReason::Connection);
        }
        let upgrade = upgrade_protocols(headers.get_all(header::UPGRADE));
        if !upgrade.is_some_and(|u| u.iter().any(|p| p.eq_ignore_ascii_case(b"websocket"))) {
            return reject(RejectReason::Upgrade);
        }
        let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
        let key = match (keys.next(), keys.next()) {
            (Some(key), None) if is_valid_key(key.as_bytes()) => key,
            _ => return reject(RejectReason::Key),
        };
        let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
        if !matches!((versions.next(), versions.next()), (Some(v), None) if v.as_bytes() == b"13") {
            return reject(RejectReason::Version);
        }
        if let Some(origins) = &self.origins {
            let mut values = headers.get_all(header::ORIGIN).iter();
            let allowed = match (values.next(), values.next()) {
                (None, _) => self.allow_missing_origin,
                (Some(origin), None) => {
                    origins.iter().any(|o| o.as_bytes().eq_ignore_ascii_case(origin.as_bytes()))
                }
                (Some(_), Some(_)) => false,
            };
            if !allowed {
                return reject(RejectReason::Origin);
            }
        }

        let (response_extensions, extensions) = if self.extensions.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let offers = match parse_extension_headers(headers.get_all(header::SEC_WEBSOCKET_EXTENSIONS)) {
                Ok(offers) => offers,
                Err(e) => return reject(RejectReason::Extensions(e)),
            };
            negotiate_server(&self.extensions, &offers)
        };

        let subprotocol = self.select(request)?;

        let mut response = Response::new(());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = response.headers_mut();
        h.reserve(8);
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        let accept = accept_key_bytes(key.as_bytes());
        h.insert(header::SEC_WEBSOCKET_ACCEPT, bytes_value(&accept)?);
        if let Some(protocol) = &subprotocol {
            let value = HeaderValue::from_str(protocol)
                .map_err(|_| Rejection::from_reason(RejectReason::Internal("invalid subprotocol chosen")))?;
            h.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        if !response_extensions.is_empty() {
            let value =
                HeaderValue::from_maybe_shared(Bytes::from(serialize_extensions(&response_extensions)))
                    .map_err(|_| {
                        Rejection::from_reason(RejectReason::Internal("invalid extension parameters"))
                    })?;
            h.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
        }
        if let Some(server) = &self.server_header {
            h.insert(header::SERVER, server.clone());
        }
        if let Some(now) = now {
            h.insert(header::DATE, date_value(now));
        }
        Ok(ServerAccepted { response, subprotocol, extensions, leftover: Bytes::new() })
    }

    fn select(&self, request: &Request<()>) -> Result<Option<String>, Rejection> {
        let values = request.headers().get_all(header::SEC_WEBSOCKET_PROTOCOL);
        let chosen = if let Some(select) = &self.select_subprotocol {
            let mut offered = Vec::new();
            each_token(values, |t| offered.push(t))
                .map_err(|e| Rejection::from_reason(RejectReason::Subprotocols(e)))?;
            select(request, &offered)
        } else if self.subprotocols.is_empty() {
            None
        } else {
            let mut offered = Vec::new();
            each_token(values, |t| offered.push(t))
                .map_err(|e| Rejection::from_reason(RejectReason::Subprotocols(e)))?;
            self.subprotocols.iter().find(|s| offered.contains(&s.as_str())).cloned()
        };
        if chosen.is_none() && self.require_subprotocol {
            return Err(Rejection::from_reason(RejectReason::NoSubprotocol));
        }
        Ok(chosen)
    }
}

/// Origin-form (`/chat?x`), or absolute-form with an `http`/`https` URI, as RFC 6455 §4.2.1
/// allows; not `*` (OPTIONS only) nor `host:port` (CONNECT only).
fn is_resource_target(uri: &Uri) -> bool {
    match uri.scheme_str() {
        None => uri.authority().is_none() && uri.path().starts_with('/'),
        Some(scheme) => {
            (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
                && uri.authority().is_some()
        }
    }
}

/// Whether the request announces a body: any `Transfer-Encoding`, or a `Content-Length` other
/// than 0 (some clients send `Content-Length: 0`, repeated even; Python `websockets` accepts
/// those and refuses the rest, as here).
fn has_body(headers: &http::HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get_all(header::CONTENT_LENGTH).iter().any(|v| v.as_bytes() != b"0")
}

fn bytes_value(bytes: &[u8]) -> Result<HeaderValue, Rejection> {
    HeaderValue::from_bytes(bytes).map_err(|_| Rejection::from_reason(RejectReason::Internal("header value")))
}

/// The `Date` header value for `now`.
pub(crate) fn date_value(now: SystemTime) -> HeaderValue {
    let date = crate::date::http_date_bytes(now);
    // An IMF-fixdate is visible ASCII, always a valid header value.
    HeaderValue::from_bytes(&date)
        .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

/// Reads one handshake request from a connection, without I/O.
///
/// Call order: [`receive_at`](Self::receive_at) with bytes as they are read until it returns
/// the request, then [`accept`](Self::accept); write the [`ServerAccepted::response`] or the
/// [`Rejection`] response. After a rejection, close the connection.
#[derive(Debug)]
pub struct ServerHandshake {
    config: Arc<ServerConfig>,
    reader: HeadReader,
    state: State,
}

#[derive(Debug)]
enum State {
    Reading,
    Received { leftover: Bytes },
    Failed(RejectReason),
    Done,
}

impl ServerHandshake {
    /// A handshake for one connection.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        let reader = HeadReader::new(config.limits);
        Self { config, reader, state: State::Reading }
    }

    /// Feeds bytes read from the connection. Returns `Ok(None)` while the request head is
    /// incomplete, then the request. A request over a limit or malformed is rejected at once and
    /// nothing more is buffered; every later call returns the same rejection. Bytes fed after
    /// the request was returned are appended to the leftover.
    ///
    /// `now` sets the `Date` header of a rejection, as in [`accept`](Self::accept) (`None` omits
    /// it, for deterministic tests).
    pub fn receive_at(
        &mut self,
        data: &[u8],
        now: Option<SystemTime>,
    ) -> Result<Option<Request<()>>, Rejection> {
        match &mut self.state {
            State::Reading => {}
            State::Failed(reason) => {
                let reason = reason.clone();
                return Err(self.reject(reason, now));
            }
            State::Received { leftover } => {
                let mut buf = Vec::with_capacity(leftover.len() + data.len());
                buf.extend_from_slice(leftover);
                buf.extend_from_slice(data);
                *leftover = buf.into();
                return Ok(None);
            }
            State::Done => return Ok(None),
        }
        let head_len = match self.reader.push(data) {
            Ok(Some(n)) => n,
            Ok(None) => return Ok(None),
            Err(limit) => return Err(self.fail(RejectReason::Limit(limit), now)),
        };
        let count = self.reader.header_count();
        let all = self.reader.take();
        let head = all.slice(..head_len);
        match parse_request(&head, count) {
            Ok(request) => {
                self.state = State::Received { leftover: all.slice(head_len..) };
                Ok(Some(request))
            }
            Err(reason) => Err(self.fail(reason, now)),
        }
    }

    /// [`receive_at`](Self::receive_at) without a clock: a rejection has no `Date` header.
    /// Servers should pass the time to `receive_at`, as they do to [`accept`](Self::accept).
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<Request<()>>, Rejection> {
        self.receive_at(data, None)
    }

    /// Decides on the request [`receive_at`](Self::receive_at) returned (see
    /// [`ServerConfig::accept`]); the result carries the leftover bytes.
    pub fn accept(
        &mut self,
        request: &Request<()>,
        now: Option<SystemTime>,
    ) -> Result<ServerAccepted, Rejection> {
        let leftover = match std::mem::replace(&mut self.state, State::Done) {
            State::Received { leftover } => leftover,
            _ => Bytes::new(),
        };
        let mut accepted = self.config.accept(request, now)?;
        accepted.leftover = leftover;
        Ok(accepted)
    }

    /// Bytes held while waiting for the end of the request head (never more than
    /// `limits.max_header_bytes`, plus whatever followed the head in the same read).
    pub fn buffered(&self) -> usize {
        self.reader.buffered()
    }

    fn fail(&mut self, reason: RejectReason, now: Option<SystemTime>) -> Rejection {
        self.state = State::Failed(reason.clone());
        self.reject(reason, now)
    }

    fn reject(&self, reason: RejectReason, now: Option<SystemTime>) -> Rejection {
        self.config.finish(Rejection::from_reason(reason), now)
    }
}

/// Parses a request head that was accepted before (e.g. one kept by [`write_request_head`](crate::write_request_head)):
/// `None` if it is not a well-formed HTTP/1.1 request head. The header values share `head`'s
/// memory.
///
/// ```
/// use ws_handshake::{http, parse_request_head, write_request_head};
///
/// let request = http::Request::get("/chat").header("host", "example.com").body(())?;
/// let mut head = Vec::new();
/// write_request_head(&request, &mut head);
/// let parsed = parse_request_head(&head.into()).expect("a valid head");
/// assert_eq!(parsed.uri().path(), "/chat");
/// assert_eq!(parsed.headers()["host"], "example.com");
/// # Ok::<(), http::Error>(())
/// ```
pub fn parse_request_head(head: &Bytes) -> Option<Request<()>> {
    parse_request(head, line_count(head)).ok()
}

fn parse_request(head: &Bytes, count: usize) -> Result<Request<()>, RejectReason> {
    // httparse accepts lines ending in a bare LF (RFC 9112 §2.2 allows it); a proxy in front
    // may split the head differently, so, like Python `websockets`, only CRLF is accepted.
    if has_bare_lf(head) {
        return Err(RejectReason::Malformed("line ending without CR".into()));
    }
    with_header_slots(count, |slots| {
        let mut parsed = httparse::Request::new(slots);
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(RejectReason::Malformed("incomplete head".into())),
            Err(e) => return Err(RejectReason::Malformed(e.to_string())),
        }
        let (Some(method), Some(path), Some(version)) = (parsed.method, parsed.path, parsed.version) else {
            return Err(RejectReason::Malformed("incomplete request line".into()));
        };
        let mut request = Request::new(());
        *request.method_mut() = Method::from_bytes(method.as_bytes())
            .map_err(|_| RejectReason::Malformed("invalid method".into()))?;
        *request.uri_mut() = Uri::from_maybe_shared(head.slice_ref(path.as_bytes()))
            .map_err(|_| RejectReason::Malformed("invalid request target".into()))?;
        *request.version_mut() = if version == 0 { Version::HTTP_10 } else { Version::HTTP_11 };
        *request.headers_mut() = to_header_map(head, parsed.headers).map_err(|e| match e {
            InvalidHeader::Name => RejectReason::Malformed("invalid header name".into()),
            InvalidHeader::Value(name) => RejectReason::Malformed(format!("invalid {name} header value")),
        })?;
        Ok(request)
    })
}

/// Whether a line of `head` ends with LF alone.
fn has_bare_lf(head: &[u8]) -> bool {
    head.first() == Some(&b'\n') || head.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r')
}
