//! The client side: [`ClientHandshake`] builds the request and checks the response.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use ws_extensions::header::{HeaderError, parse_extension_headers, serialize_extensions};
use ws_extensions::{
    ClientExtensionFactory, ConfigError, Extension, ExtensionHeaderItem, NegotiationError, negotiate_client,
};

use crate::accept_key::{accept_key_bytes, encode_key};
use crate::auth::basic_auth_value;
use crate::http1::{HeadReader, LimitExceeded, Limits, to_header_map, with_header_slots, write_request_head};
use crate::tokens::{InvalidTokenList, each_token, upgrade_protocols};

/// The default `User-Agent` header: this library and its version.
pub const USER_AGENT: &str = concat!("ws-rs/", env!("CARGO_PKG_VERSION"));

/// Headers the handshake sets itself; [`ClientConfig::headers`] may not hold them.
const RESERVED: [HeaderName; 7] = [
    header::UPGRADE,
    header::CONNECTION,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_ACCEPT,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_EXTENSIONS,
];

/// What a client offers. Shared by connections (`Arc`); build with `Default` and set fields.
#[non_exhaustive]
#[derive(Clone)]
pub struct ClientConfig {
    /// The `Origin` header, if any.
    pub origin: Option<String>,
    /// Offered subprotocols (tokens), most preferred first.
    pub subprotocols: Vec<String>,
    /// Extension factories; their offers go into `Sec-WebSocket-Extensions` in this order.
    pub extensions: Vec<Arc<dyn ClientExtensionFactory>>,
    /// Extra headers. They replace same-named defaults (`Host`, `User-Agent`, `Origin`,
    /// `Authorization`); the WebSocket headers themselves are refused.
    pub headers: HeaderMap,
    /// The `User-Agent` header; `None` omits it. Default [`USER_AGENT`].
    pub user_agent: Option<String>,
    /// Limits on the response head.
    pub limits: Limits,
    /// How much of a non-101 response body to keep for [`ClientError::Rejected`]. Default 64 KiB.
    pub max_error_body: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            origin: None,
            subprotocols: Vec::new(),
            extensions: Vec::new(),
            headers: HeaderMap::new(),
            user_agent: Some(USER_AGENT.to_owned()),
            limits: Limits::default(),
            max_error_body: 64 * 1024,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("origin", &self.origin)
            .field("subprotocols", &self.subprotocols)
            .field("extensions", &self.extensions.iter().map(|e| e.name()).collect::<Vec<_>>())
            .field("headers", &self.headers)
            .field("user_agent", &self.user_agent)
            .field("limits", &self.limits)
            .field("max_error_body", &self.max_error_body)
            .finish()
    }
}

/// Where to connect, from the URI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port, explicit or the scheme's default (80, 443).
    pub port: u16,
    /// `wss://`: connect over TLS.
    pub secure: bool,
}

/// A successful handshake.
#[non_exhaustive]
pub struct ClientAccepted {
    /// The server's 101 response.
    pub response: Response<()>,
    /// The subprotocol the server chose.
    pub subprotocol: Option<String>,
    /// The negotiated extensions, in order.
    pub extensions: Vec<Box<dyn Extension>>,
    /// Bytes after the response head: the first WebSocket frames. Feed them to the connection.
    pub leftover: Bytes,
}

impl fmt::Debug for ClientAccepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAccepted")
            .field("response", &self.response)
            .field("subprotocol", &self.subprotocol)
            .field("extensions", &self.extensions.iter().map(|e| e.name()).collect::<Vec<_>>())
            .field("leftover", &self.leftover.len())
            .finish()
    }
}

/// Why the client handshake failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The URI is not a usable `ws://` or `wss://` URI: another scheme, no host, a port that is
    /// not 1-65535, a fragment, a user name without a password... The message says which.
    InvalidUri(String),
    /// A configured extension factory's settings are invalid (nothing was sent).
    InvalidExtension(ConfigError),
    /// A configured header (or origin, user agent, subprotocol, credentials) cannot be sent.
    InvalidHeader {
        /// The header.
        name: HeaderName,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The system random source failed while generating the key.
    Random(getrandom::Error),
    /// The response head exceeded a limit.
    Limit(LimitExceeded),
    /// The response is not well-formed HTTP/1.1.
    Malformed(String),
    /// The server answered something other than 101. The response (body cut at
    /// `max_error_body`) lets callers follow redirects or authenticate.
    Rejected(Box<Response<Bytes>>),
    /// `Upgrade` is not `websocket`.
    Upgrade,
    /// `Connection` lacks `upgrade`.
    Connection,
    /// `Sec-WebSocket-Accept` is missing or wrong.
    Accept,
    /// `Sec-WebSocket-Protocol` is malformed, repeated, or names a subprotocol not offered.
    Subprotocol(Option<InvalidTokenList>),
    /// `Sec-WebSocket-Extensions` does not parse.
    ExtensionsHeader(HeaderError),
    /// The server's extension choice is unacceptable.
    Negotiation(NegotiationError),
    /// The connection closed before the response was complete.
    UnexpectedEof,
    /// The handshake already finished or failed; no more input is expected.
    Finished,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUri(why) => write!(f, "invalid WebSocket URI: {why}"),
            Self::InvalidExtension(e) => write!(f, "{e}"),
            Self::InvalidHeader { name, reason } => write!(f, "invalid {name} header: {reason}"),
            Self::Random(e) => write!(f, "cannot generate Sec-WebSocket-Key: {e}"),
            Self::Limit(l) => write!(f, "response head rejected: {l}"),
            Self::Malformed(why) => write!(f, "malformed HTTP response: {why}"),
            Self::Rejected(r) => write!(f, "server rejected WebSocket connection: HTTP {}", r.status()),
            Self::Upgrade => f.write_str("missing or invalid Upgrade header in response"),
            Self::Connection => f.write_str("missing or invalid Connection header in response"),
            Self::Accept => f.write_str("missing or wrong Sec-WebSocket-Accept header"),
            Self::Subprotocol(_) => f.write_str("invalid Sec-WebSocket-Protocol header in response"),
            Self::ExtensionsHeader(e) => write!(f, "{e}"),
            Self::Negotiation(e) => write!(f, "{e}"),
            Self::UnexpectedEof => f.write_str("connection closed during the WebSocket handshake"),
            Self::Finished => f.write_str("the WebSocket handshake is already over"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Random(e) => Some(e),
            Self::InvalidExtension(e) => Some(e),
            Self::Limit(e) => Some(e),
            Self::Subprotocol(Some(e)) => Some(e),
            Self::ExtensionsHeader(e) => Some(e),
            Self::Negotiation(e) => Some(e),
            _ => None,
        }
    }
}

/// One client handshake, without I/O.
///
/// Call order: [`new`](Self::new); write [`write_request`](Self::write_request)'s bytes; then
/// [`receive`](Self::receive) bytes as they are read until it returns the
/// [`ClientAccepted`] (or an error); on EOF call [`receive_eof`](Self::receive_eof).
#[derive(Debug)]
pub struct ClientHandshake {
    config: Arc<ClientConfig>,
    target: Target,
    request: Request<()>,
    accept: [u8; 28],
    reader: HeadReader,
    state: State,
}

#[derive(Debug)]
enum State {
    Reading,
    /// A non-101 response whose body is being read: it is complete at `want` bytes.
    Body {
        response: Response<()>,
        body: Vec<u8>,
        want: Option<usize>,
    },
    Done,
}

impl ClientHandshake {
    /// Prepares the handshake for `uri` (`ws://` or `wss://`) with a random key.
    pub fn new(uri: &str, config: Arc<ClientConfig>) -> Result<Self, ClientError> {
        let mut key = [0u8; 16];
        getrandom::fill(&mut key).map_err(ClientError::Random)?;
        Self::with_key(uri, config, key)
    }

    /// Like [`new`](Self::new) with a given key, for deterministic tests.
    pub fn with_key(uri: &str, config: Arc<ClientConfig>, key: [u8; 16]) -> Result<Self, ClientError> {
        let (target, request_uri, host, userinfo) = parse_uri(uri)?;
        for factory in &config.extensions {
            factory.validate().map_err(ClientError::InvalidExtension)?;
        }
        let key = encode_key(&key);
        let mut request = Request::new(());
        *request.method_mut() = Method::GET;
        *request.uri_mut() = request_uri;
        *request.version_mut() = Version::HTTP_11;
        let h = request.headers_mut();
        h.insert(header::HOST, value(header::HOST, &host)?);
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::SEC_WEBSOCKET_KEY, bytes_value(header::SEC_WEBSOCKET_KEY, &key)?);
        h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        if let Some(origin) = &config.origin {
            h.insert(header::ORIGIN, value(header::ORIGIN, origin)?);
        }
        if !config.subprotocols.is_empty() {
            if !config.subprotocols.iter().all(|p| ws_extensions::header::is_token(p)) {
                return Err(invalid(header::SEC_WEBSOCKET_PROTOCOL, "subprotocols must be tokens"));
            }
            let joined = config.subprotocols.join(", ");
            h.insert(header::SEC_WEBSOCKET_PROTOCOL, value(header::SEC_WEBSOCKET_PROTOCOL, &joined)?);
        }
        let offers: Vec<ExtensionHeaderItem> = config
            .extensions
            .iter()
            .flat_map(|f| {
                f.request_params().into_iter().map(|params| ExtensionHeaderItem::new(f.name(), params))
            })
            .collect();
        if !offers.is_empty() {
            let name = header::SEC_WEBSOCKET_EXTENSIONS;
            h.insert(name.clone(), value(name, &serialize_extensions(&offers))?);
        }
        if let Some((user, pass)) = userinfo {
            let auth = basic_auth_value(&user, &pass)
                .map_err(|_| invalid(header::AUTHORIZATION, "credentials cannot be sent"))?;
            h.insert(header::AUTHORIZATION, auth);
        }
        if let Some(agent) = &config.user_agent {
            h.insert(header::USER_AGENT, value(header::USER_AGENT, agent)?);
        }
        for name in config.headers.keys() {
            if RESERVED.contains(name) {
                return Err(invalid(name.clone(), "set by the handshake itself"));
            }
            h.remove(name);
        }
        for (name, v) in &config.headers {
            h.append(name.clone(), v.clone());
        }
        // HeaderValue refuses CR and LF, but check anyway: nothing with a line break may be sent.
        if let Some((name, _)) =
            h.iter().find(|(_, v)| v.as_bytes().iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)))
        {
            return Err(invalid(name.clone(), "contains CR, LF or NUL"));
        }
        let accept = accept_key_bytes(&key);
        let reader = HeadReader::new(config.limits);
        Ok(Self { config, target, request, accept, reader, state: State::Reading })
    }

    /// Where to connect.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The request to send.
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// Bytes held while waiting for the end of the response head.
    pub fn buffered(&self) -> usize {
        self.reader.buffered()
    }

    /// Serializes the request to `out`: write these bytes to the connection.
    pub fn write_request(&self, out: &mut Vec<u8>) {
        write_request_head(&self.request, out);
    }

    /// Feeds bytes read from the connection. Returns `Ok(None)` until the response is complete,
    /// then the accepted handshake, or an error (a non-101 response is
    /// [`ClientError::Rejected`]). After either, the handshake is over.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<ClientAccepted>, ClientError> {
        match &mut self.state {
            State::Reading => {}
            State::Body { body, want, .. } => {
                let room = self.config.max_error_body.saturating_sub(body.len());
                body.extend_from_slice(&data[..data.len().min(room)]);
                if want.is_some_and(|w| body.len() >= w) || body.len() >= self.config.max_error_body {
                    return Err(self.finish_rejected());
                }
                return Ok(None);
            }
            State::Done => return Err(ClientError::Finished),
        }
        let head_len = match self.reader.push(data) {
            Ok(Some(n)) => n,
            Ok(None) => return Ok(None),
            Err(limit) => {
                self.state = State::Done;
                return Err(ClientError::Limit(limit));
            }
        };
        self.state = State::Done;
        let count = self.reader.header_count();
        let all = self.reader.take();
        let head = all.slice(..head_len);
        let leftover = all.slice(head_len..);
        let response = parse_response(&head, count)?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return self.rejected(response, &leftover);
        }
        self.check(response, leftover).map(Some)
    }

    /// Reports that the connection closed. Completes a rejection whose body runs to EOF;
    /// otherwise the handshake failed with [`ClientError::UnexpectedEof`].
    pub fn receive_eof(&mut self) -> ClientError {
        match self.state {
            State::Body { .. } => self.finish_rejected(),
            State::Reading => {
                self.state = State::Done;
                ClientError::UnexpectedEof
            }
            State::Done => ClientError::Finished,
        }
    }

    fn rejected(
        &mut self,
        response: Response<()>,
        leftover: &[u8],
    ) -> Result<Option<ClientAccepted>, ClientError> {
        let status = response.status();
        let chunked = response
            .headers()
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .any(|v| v.as_bytes().windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked")));
        let length = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        let want = if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Some(0)
        } else if chunked {
            // Transfer codings are not decoded: the body is kept raw, up to EOF or the limit.
            None
        } else {
            length
        };
        let mut body = Vec::new();
        body.extend_from_slice(&leftover[..leftover.len().min(self.config.max_error_body)]);
        let complete = want.is_some_and(|w| body.len() >= w) || body.len() >= self.config.max_error_body;
        self.state = State::Body { response, body, want };
        if complete { Err(self.finish_rejected()) } else { Ok(None) }
    }

    fn finish_rejected(&mut self) -> ClientError {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Body { response, mut body, want } => {
                if let Some(w) = want {
                    body.truncate(w);
                }
                let (parts, ()) = response.into_parts();
                ClientError::Rejected(Box::new(Response::from_parts(parts, Bytes::from(body))))
            }
            _ => ClientError::Finished,
        }
    }

    fn check(&self, response: Response<()>, leftover: Bytes) -> Result<ClientAccepted, ClientError> {
        let headers = response.headers();
        let upgrade = upgrade_protocols(headers.get_all(header::UPGRADE));
        if !matches!(upgrade.as_deref(), Some([p]) if p.eq_ignore_ascii_case(b"websocket")) {
            return Err(ClientError::Upgrade);
        }
        if !crate::tokens::has_connection_upgrade(headers.get_all(header::CONNECTION)) {
            return Err(ClientError::Connection);
        }
        let mut accepts = headers.get_all(header::SEC_WEBSOCKET_ACCEPT).iter();
        if !matches!((accepts.next(), accepts.next()), (Some(a), None) if a.as_bytes() == self.accept) {
            return Err(ClientError::Accept);
        }
        let mut protocols = Vec::new();
        each_token(headers.get_all(header::SEC_WEBSOCKET_PROTOCOL), |t| protocols.push(t))
            .map_err(|e| ClientError::Subprotocol(Some(e)))?;
        let subprotocol = match protocols[..] {
            [] => None,
            [p] if self.config.subprotocols.iter().any(|s| s == p) => Some(p.to_owned()),
            _ => return Err(ClientError::Subprotocol(None)),
        };
        let items = parse_extension_headers(headers.get_all(header::SEC_WEBSOCKET_EXTENSIONS))
            .map_err(ClientError::ExtensionsHeader)?;
        let extensions =
            negotiate_client(&self.config.extensions, &items).map_err(ClientError::Negotiation)?;
        Ok(ClientAccepted { response, subprotocol, extensions, leftover })
    }
}

fn invalid(name: HeaderName, reason: &'static str) -> ClientError {
    ClientError::InvalidHeader { name, reason }
}

fn value(name: HeaderName, s: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(s).map_err(|_| invalid(name, "contains CR, LF or other control characters"))
}

fn bytes_value(name: HeaderName, s: &[u8]) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_bytes(s).map_err(|_| invalid(name, "contains CR, LF or other control characters"))
}

type ParsedUri = (Target, Uri, String, Option<(String, String)>);

/// Splits a `ws://` / `wss://` URI into the target, the request-target, the `Host` value and
/// the percent-decoded userinfo.
fn parse_uri(uri: &str) -> Result<ParsedUri, ClientError> {
    let bad = |why: &str| ClientError::InvalidUri(format!("{:?}: {why}", redact_password(uri)));
    if uri.contains('#') {
        // RFC 6455 §3: fragments MUST NOT be used; a literal '#' must be written %23.
        return Err(bad("fragments are not allowed (write a literal # as %23)"));
    }
    // `http` reports `ws://` as "empty string", `ws:///x` as "invalid format" and `ws://u:p@/`
    // as "invalid authority": say what is missing.
    if let Some((_, rest)) = uri.split_once("://") {
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, host_port)| host_port);
        if host_port.is_empty() || host_port.starts_with(':') {
            return Err(bad("missing host"));
        }
    }
    let parsed: Uri = uri.parse().map_err(|e| bad(&format!("{e}")))?;
    let secure = match parsed.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("ws") => false,
        Some(s) if s.eq_ignore_ascii_case("wss") => true,
        Some(_) => return Err(bad("scheme must be ws or wss")),
        None => return Err(bad("missing scheme")),
    };
    let authority = parsed.authority().ok_or_else(|| bad("missing host"))?;
    let host = authority.host();
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    let (userinfo, host_port) = match authority.as_str().rsplit_once('@') {
        Some((info, host_port)) => (Some(info), host_port),
        None => (None, authority.as_str()),
    };
    let host_name = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(literal) => {
            // Brackets hold an IPv6 address (an RFC 6874 zone, `%25eth0`, may follow): anything
            // else would be looked up as a host name.
            let address = literal.split_once("%25").map_or(literal, |(address, _)| address);
            if address.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(&format!("{host} is not an IPv6 address")));
            }
            literal
        }
        None => host,
    };
    let default_port = if secure { 443 } else { 80 };
    // `Authority::port_u16` is `None` for a port it cannot parse, which would mean "no port":
    // read it here so that a bad one is an error.
    let port = match host_port.strip_prefix(host) {
        // RFC 3986 §3.2.3: an empty port is the scheme's default.
        Some("" | ":") => default_port,
        Some(text) => match text.strip_prefix(':') {
            Some(digits) => parse_port(digits).map_err(|why| bad(&why))?,
            None => return Err(bad(&format!("unexpected {text:?} after the host"))),
        },
        None => return Err(bad("invalid authority")),
    };
    let host_header = if port == default_port { host.to_owned() } else { format!("{host}:{port}") };
    let userinfo = match userinfo {
        // As in Python `websockets`: Basic credentials need both parts (`user:` for none).
        Some("") => return Err(bad("empty userinfo before @")),
        Some(info) => {
            let (user, pass) = info.split_once(':').ok_or_else(|| bad("user name without password"))?;
            let decode = |s| percent_decode(s).ok_or_else(|| bad("invalid percent-encoding in userinfo"));
            Some((decode(user)?, decode(pass)?))
        }
        None => None,
    };
    let target = match parsed.path_and_query().map(|pq| pq.as_str()) {
        None | Some("") => "/".to_owned(),
        Some(pq) if pq.starts_with('?') => format!("/{pq}"),
        Some(pq) => pq.to_owned(),
    };
    let request_uri: Uri = target.parse().map_err(|e| bad(&format!("{e}")))?;
    Ok((Target { host: host_name.to_owned(), port, secure }, request_uri, host_header, userinfo))
}

/// A destination port: decimal digits only (RFC 3986 §3.2.3; `u16::from_str` would also take
/// `+80`), 1 to 65535.
fn parse_port(digits: &str) -> Result<u16, String> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port {digits:?}: not a number"));
    }
    match digits.parse::<u16>() {
        Ok(0) => Err("invalid port 0: cannot connect to port 0".to_owned()),
        Ok(port) => Ok(port),
        Err(_) => Err(format!("invalid port {digits}: out of range 1-65535")),
    }
}

/// `uri` with the password in its userinfo replaced by `***`, for error messages (which end up
/// in logs).
fn redact_password(uri: &str) -> std::borrow::Cow<'_, str> {
    let start = uri.find("://").map_or(0, |i| i + 3);
    let end = uri[start..].find(['/', '?', '#']).map_or(uri.len(), |i| start + i);
    let Some(at) = uri[start..end].rfind('@').map(|i| start + i) else {
        return uri.into();
    };
    match uri[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}***{}", &uri[..=colon], &uri[at..]).into(),
        None => uri.into(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits exactly: `from_str_radix` alone would also take "+1".
            let [hi, lo] = *bytes.get(i + 1..i + 3)? else { return None };
            out.push(hex_value(hi)? << 4 | hex_value(lo)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|d| d as u8)
}

/// Parses a complete response head into an `http::Response` sharing `head`'s memory.
/// Parses a response head (e.g. one written by
/// [`write_response_head`](crate::write_response_head)): `None` if it is not a well-formed
/// HTTP/1.1 response head. The header values share `head`'s memory.
///
/// ```
/// use ws_handshake::{http, parse_response_head, write_response_head};
///
/// let response = http::Response::builder().status(101).header("upgrade", "websocket").body(())?;
/// let mut head = Vec::new();
/// write_response_head(&response, &mut head);
/// let parsed = parse_response_head(&head.into()).expect("a valid head");
/// assert_eq!(parsed.status(), 101);
/// assert_eq!(parsed.headers()["upgrade"], "websocket");
/// # Ok::<(), http::Error>(())
/// ```
pub fn parse_response_head(head: &Bytes) -> Option<Response<()>> {
    parse_response(head, crate::http1::line_count(head)).ok()
}

fn parse_response(head: &Bytes, count: usize) -> Result<Response<()>, ClientError> {
    with_header_slots(count, |slots| {
        let mut parsed = httparse::Response::new(slots);
        match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(ClientError::Malformed("incomplete head".into())),
            Err(e) => return Err(ClientError::Malformed(e.to_string())),
        }
        let code = parsed.code.ok_or_else(|| ClientError::Malformed("missing status".into()))?;
        let mut response = Response::new(());
        *response.status_mut() =
            StatusCode::from_u16(code).map_err(|_| ClientError::Malformed("invalid status code".into()))?;
        *response.version_mut() = if parsed.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
        *response.headers_mut() = to_header_map(head, parsed.headers)
            .map_err(|_| ClientError::Malformed("invalid header".into()))?;
        Ok(response)
    })
}
