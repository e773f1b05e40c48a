//! Proxies: which one to use for a URI (set on the builder, or named by the environment as
//! Python `websockets` reads it), and a TCP connection tunnelled through it with HTTP `CONNECT`
//! or SOCKS5. TLS, when the URI asks for it, goes on top of the returned stream.

use std::{fmt, io};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::open_tcp;
use crate::error::{Error, Result};

/// Where [`ClientBuilder`](crate::ClientBuilder) finds its proxy.
#[derive(Clone, Default)]
pub(crate) enum ProxySetting {
    /// The environment's `*_proxy` variables (the default, as in Python).
    #[default]
    Env,
    /// No proxy.
    Off,
    /// This proxy URL.
    Url(String),
}

impl fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env => f.write_str("Env"),
            Self::Off => f.write_str("Off"),
            Self::Url(url) => f.debug_tuple("Url").field(&redact(url)).finish(),
        }
    }
}

/// Why the connection through a proxy failed. Each message says what to try.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy URL does not parse (the message says why).
    InvalidUrl {
        /// The URL, password hidden.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The proxy URL's scheme is not `http`, `socks5` or `socks5h`.
    UnsupportedScheme {
        /// The scheme.
        scheme: String,
    },
    /// The proxy could not be resolved or connected to.
    Unreachable {
        /// The proxy's `host:port`.
        proxy: String,
        /// Why.
        source: io::Error,
    },
    /// An HTTP proxy answered 407 Proxy Authentication Required (or 401).
    AuthRequired {
        /// The proxy's `host:port`.
        proxy: String,
        /// Whether credentials were sent (and so refused).
        sent_credentials: bool,
    },
    /// An HTTP proxy answered 403 Forbidden: its rules refuse this destination.
    Forbidden {
        /// The proxy's `host:port`.
        proxy: String,
        /// The destination `host:port`.
        target: String,
    },
    /// An HTTP proxy answered `CONNECT` with another non-2xx status.
    Status {
        /// The proxy's `host:port`.
        proxy: String,
        /// The destination `host:port`.
        target: String,
        /// The status.
        status: http::StatusCode,
    },
    /// An HTTP proxy's answer to `CONNECT` is not HTTP (or too large).
    Malformed {
        /// The proxy's `host:port`.
        proxy: String,
    },
    /// A SOCKS5 proxy refused the credentials, or wants some and none were given.
    SocksAuth {
        /// The proxy's `host:port`.
        proxy: String,
        /// Whether credentials were sent (and so refused).
        sent_credentials: bool,
    },
    /// A SOCKS5 proxy could not open the connection to the destination (host or network
    /// unreachable, connection refused, not allowed by its rules...).
    SocksConnect {
        /// The proxy's `host:port`.
        proxy: String,
        /// The destination `host:port`.
        target: String,
        /// The proxy's reply.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The SOCKS5 exchange failed otherwise (not a SOCKS5 proxy, connection lost...).
    Socks {
        /// The proxy's `host:port`.
        proxy: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url, reason } => write!(f, "invalid proxy URL {url:?}: {reason}"),
            Self::UnsupportedScheme { scheme } => write!(
                f,
                "unsupported proxy scheme {scheme:?}: use http://, socks5:// or socks5h://, or ClientBuilder::proxy(None)"
            ),
            Self::Unreachable { proxy, .. } => write!(
                f,
                "cannot reach proxy {proxy}: check the proxy URL (or the *_proxy environment variables), or disable it with ClientBuilder::proxy(None)"
            ),
            Self::AuthRequired { proxy, sent_credentials: false } => write!(
                f,
                "proxy requires authentication: put user:password in the proxy URL ({proxy} answered 407)"
            ),
            Self::AuthRequired { proxy, sent_credentials: true } => {
                write!(f, "proxy {proxy} refused the credentials (407): check user:password in the proxy URL")
            }
            Self::Forbidden { proxy, target } => write!(
                f,
                "proxy {proxy} refused to connect to {target} (403 Forbidden): its rules do not allow this host or port"
            ),
            Self::Status { proxy, target, status } => write!(
                f,
                "proxy {proxy} answered {status} to CONNECT {target}: check that it is an HTTP proxy that allows CONNECT"
            ),
            Self::Malformed { proxy } => write!(
                f,
                "proxy {proxy} did not answer CONNECT with HTTP: for a SOCKS proxy write socks5h://"
            ),
            Self::SocksAuth { proxy, sent_credentials: false } => {
                write!(f, "SOCKS proxy requires authentication: put user:password in the proxy URL ({proxy})")
            }
            Self::SocksAuth { proxy, sent_credentials: true } => {
                write!(f, "SOCKS proxy {proxy} refused the credentials: check user:password in the proxy URL")
            }
            Self::SocksConnect { proxy, target, source } => {
                write!(f, "SOCKS proxy {proxy} cannot connect to {target}: {source}")
            }
            Self::Socks { proxy, .. } => write!(
                f,
                "SOCKS5 handshake with {proxy} failed: check that it is a SOCKS5 proxy (for an HTTP proxy write http://)"
            ),
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unreachable { source, .. } => Some(source),
            Self::SocksConnect { source, .. } | Self::Socks { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl From<ProxyError> for Error {
    fn from(e: ProxyError) -> Self {
        Self::Proxy(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    /// SOCKS5; `remote_dns` for `socks5h` (the proxy resolves the host name), not for
    /// `socks5` (resolved here), as Python `websockets` (python-socks' `rdns`) and curl do.
    Socks5 {
        remote_dns: bool,
    },
}

/// A parsed proxy URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProxyUrl {
    kind: Kind,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl ProxyUrl {
    fn address(&self) -> String {
        host_port(&self.host, self.port)
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// `scheme://user:password@host` -> `scheme://user:****@host`, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((info, host)) => {
            let user = info.split_once(':').map_or(info, |(user, _)| user);
            format!("{scheme}://{user}:****@{host}{}", &rest[end..])
        }
        None => url.to_owned(),
    }
}

/// Parses `scheme://[user:password@]host[:port][/]`. A URL without a scheme is an HTTP
/// proxy (`http_proxy=proxy:3128`, as curl reads it).
fn parse_proxy(url: &str) -> Result<ProxyUrl, ProxyError> {
    let bad = |reason| ProxyError::InvalidUrl { url: redact(url), reason };
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let kind = match scheme.to_ascii_lowercase().as_str() {
        "http" => Kind::Http,
        "socks5" => Kind::Socks5 { remote_dns: false },
        "socks5h" => Kind::Socks5 { remote_dns: true },
        _ => return Err(ProxyError::UnsupportedScheme { scheme: scheme.to_owned() }),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err(bad("a proxy URL has no path, query or fragment"));
    }
    let (credentials, host_port) = match rest.rsplit_once('@') {
        Some((info, host_port)) => {
            let (user, pass) = info.split_once(':').ok_or_else(|| bad("user name without password"))?;
            let decode =
                |s| percent_decode(s).ok_or_else(|| bad("user:password is not UTF-8 once percent-decoded"));
            (Some((decode(user)?, decode(pass)?)), host_port)
        }
        None => (None, rest),
    };
    let default_port = if kind == Kind::Http { 80 } else { 1080 };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| bad("unclosed [ in the host"))?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(|| bad("unexpected text after ]"))?)),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    let port = match port {
        None | Some("") => default_port,
        Some(digits) => match digits.parse::<u16>() {
            Ok(port) if port != 0 && digits.bytes().all(|b| b.is_ascii_digit()) => port,
            _ => return Err(bad("the port must be 1 to 65535")),
        },
    };
    Ok(ProxyUrl { kind, host: host.to_ascii_lowercase(), port, credentials })
}

/// Percent-decoded user or password; `None` if the result is not UTF-8. Invalid escapes stay
/// as they are, as `urllib.parse.unquote` leaves them.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(std::borrow::Cow::into_owned)
}

/// The proxy the environment names for `host:port`, read as Python `websockets`' `get_proxy`
/// reads `urllib.request.getproxies()` and `proxy_bypass()`:
/// - `*_proxy` names in any case, the lower-case spelling winning (an empty lower-case one
///   removes the entry); `http_proxy` ignored when `REQUEST_METHOD` is set (CGI, httpoxy);
/// - `no_proxy`: `*`, or comma-separated host suffixes (leading dot optional), each matched
///   against the host and against `host:port`;
/// - `wss://` tries `wss_proxy`, `socks_proxy`, `https_proxy`; `ws://` tries `ws_proxy`,
///   `socks_proxy`, `https_proxy`, `http_proxy`; then (unlike Python, like curl) `all_proxy`.
///
/// A `socks_proxy` written `http://host:port` (as some desktops set it) is `socks5h://`.
pub(crate) fn proxy_from_env<I>(vars: I, host: &str, port: u16, secure: bool) -> Option<String>
where
    I: IntoIterator<Item = (String, String)>,
{
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    let mut proxies = std::collections::HashMap::new();
    for (name, value) in &vars {
        let name = name.to_ascii_lowercase();
        if let (Some(scheme), false) = (name.strip_suffix("_proxy"), value.is_empty()) {
            proxies.insert(scheme.to_owned(), value.clone());
        }
    }
    if vars.iter().any(|(name, _)| name == "REQUEST_METHOD") {
        proxies.remove("http");
    }
    for (name, value) in &vars {
        if let Some(scheme) = name.strip_suffix("_proxy") {
            let scheme = scheme.to_ascii_lowercase();
            if value.is_empty() {
                proxies.remove(&scheme);
            } else {
                proxies.insert(scheme, value.clone());
            }
        }
    }
    if proxies.get("no").is_some_and(|no_proxy| bypass(no_proxy, host, port)) {
        return None;
    }
    let schemes: &[&str] =
        if secure { &["wss", "socks", "https", "all"] } else { &["ws", "socks", "https", "http", "all"] };
    let (scheme, proxy) = schemes.iter().find_map(|s| proxies.get(*s).map(|p| (*s, p)))?;
    match (scheme, proxy.strip_prefix("http://")) {
        ("socks", Some(rest)) => Some(format!("socks5h://{rest}")),
        _ => Some(proxy.clone()),
    }
}

/// urllib's `proxy_bypass_environment` on `host:port`.
fn bypass(no_proxy: &str, host: &str, port: u16) -> bool {
    if no_proxy == "*" {
        return true;
    }
    let host = host.to_ascii_lowercase();
    let with_port = format!("{host}:{port}");
    no_proxy.split(',').map(str::trim).filter(|n| !n.is_empty()).any(|name| {
        let name = name.trim_start_matches('.').to_ascii_lowercase();
        let suffix = format!(".{name}");
        host == name || with_port == name || host.ends_with(&suffix) || with_port.ends_with(&suffix)
    })
}

/// Opens a TCP connection to `host:port`: directly, or tunnelled through the proxy that
/// `setting` selects. `user_agent` goes in the `CONNECT` request, as Python sends it.
pub(crate) async fn open(
    setting: &ProxySetting,
    host: &str,
    port: u16,
    secure: bool,
    user_agent: Option<&str>,
) -> Result<TcpStream> {
    let url = match setting {
        ProxySetting::Off => None,
        ProxySetting::Url(url) => Some(url.clone()),
        ProxySetting::Env => proxy_from_env(
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
            host,
            port,
            secure,
        ),
    };
    let Some(url) = url else { return open_tcp(host, port).await };
    let proxy = parse_proxy(&url)?;
    tracing::debug!(proxy = %redact(&url), target = %host_port(host, port), "connecting through proxy");
    let mut stream = open_tcp(&proxy.host, proxy.port).await.map_err(|e| match e {
        Error::Resolve { source, .. } | Error::Connect { source, .. } => {
            ProxyError::Unreachable { proxy: proxy.address(), source }
        }
        other => {
            ProxyError::Unreachable { proxy: proxy.address(), source: io::Error::other(other.to_string()) }
        }
    })?;
    stream.set_nodelay(true)?;
    match proxy.kind {
        Kind::Http => http_connect(&mut stream, &proxy, host, port, user_agent).await?,
        Kind::Socks5 { remote_dns } => return socks5(stream, &proxy, host, port, remote_dns).await,
    }
    Ok(stream)
}

/// The largest `CONNECT` response head read.
const MAX_HEAD: usize = 8192;

async fn http_connect(
    stream: &mut TcpStream,
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
    user_agent: Option<&str>,
) -> Result<()> {
    let target = host_port(host, port);
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(agent) = user_agent {
        request.push_str(&format!("User-Agent: {agent}\r\n"));
    }
    if let Some((user, pass)) = &proxy.credentials {
        let token = STANDARD.encode(format!("{user}:{pass}"));
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    // Byte by byte: what follows the head belongs to the tunnel, and a CONNECT answer is short.
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() == MAX_HEAD {
            return Err(ProxyError::Malformed { proxy: proxy.address() }.into());
        }
        let byte = match stream.read_u8().await {
            Ok(byte) => byte,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(ProxyError::Malformed { proxy: proxy.address() }.into());
            }
            Err(e) => return Err(e.into()),
        };
        head.push(byte);
        // Not HTTP (a SOCKS proxy answers two bytes, then waits): say so now, not at the timeout.
        if !b"HTTP/".starts_with(&head[..head.len().min(5)]) {
            return Err(ProxyError::Malformed { proxy: proxy.address() }.into());
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let status = match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => response.code.and_then(|c| http::StatusCode::from_u16(c).ok()),
        _ => None,
    };
    let status = status.ok_or_else(|| ProxyError::Malformed { proxy: proxy.address() })?;
    let (proxy_addr, sent_credentials) = (proxy.address(), proxy.credentials.is_some());
    Err(match status {
        s if s.is_success() => return Ok(()),
        // tinyproxy answers wrong credentials with 401: to CONNECT, it can only mean the proxy's.
        http::StatusCode::PROXY_AUTHENTICATION_REQUIRED | http::StatusCode::UNAUTHORIZED => {
            ProxyError::AuthRequired { proxy: proxy_addr, sent_credentials }
        }
        http::StatusCode::FORBIDDEN => ProxyError::Forbidden { proxy: proxy_addr, target },
        status => ProxyError::Status { proxy: proxy_addr, target, status },
    }
    .into())
}

async fn socks5(
    stream: TcpStream,
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
    remote_dns: bool,
) -> Result<TcpStream> {
    use tokio_socks::{Error as Socks, TargetAddr, tcp::Socks5Stream};
    let target = if remote_dns {
        TargetAddr::Domain(host.into(), port)
    } else {
        let addr = tokio::net::lookup_host((host, port)).await.and_then(|mut addrs| {
            addrs.next().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no addresses"))
        });
        TargetAddr::Ip(addr.map_err(|source| Error::Resolve { host: host.to_owned(), source })?)
    };
    // An IP literal goes as an address even with remote DNS.
    let target = match (&target, host.parse::<std::net::IpAddr>()) {
        (TargetAddr::Domain(..), Ok(ip)) => TargetAddr::Ip((ip, port).into()),
        _ => target,
    };
    let tunnel = match &proxy.credentials {
        Some((user, pass)) => {
            Socks5Stream::connect_with_password_and_socket(stream, target, user, pass).await
        }
        None => Socks5Stream::connect_with_socket(stream, target).await,
    };
    let (address, sent_credentials) = (proxy.address(), proxy.credentials.is_some());
    tunnel.map(Socks5Stream::into_inner).map_err(|e| {
        match e {
            Socks::NoAcceptableAuthMethods | Socks::PasswordAuthFailure(_) | Socks::AuthorizationRequired => {
                ProxyError::SocksAuth { proxy: address, sent_credentials }
            }
            Socks::ConnectionNotAllowedByRuleset
            | Socks::NetworkUnreachable
            | Socks::HostUnreachable
            | Socks::ConnectionRefused
            | Socks::TtlExpired
            | Socks::GeneralSocksServerFailure => ProxyError::SocksConnect {
                proxy: address,
                target: host_port(host, port),
                source: Box::new(e),
            },
            e => ProxyError::Socks { proxy: address, source: Box::new(e) },
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn pick(pairs: &[(&str, &str)], host: &str, port: u16, secure: bool) -> Option<String> {
        proxy_from_env(env(pairs), host, port, secure)
    }

    #[test]
    fn scheme_order_follows_python() {
        let all = [
            ("http_proxy", "http://h:1"),
            ("https_proxy", "http://s:2"),
            ("ws_proxy", "http://w:3"),
            ("wss_proxy", "http://ws:4"),
        ];
        assert_eq!(pick(&all, "example.com", 443, true).as_deref(), Some("http://ws:4"));
        assert_eq!(pick(&all, "example.com", 80, false).as_deref(), Some("http://w:3"));
        // Without ws(s)_proxy: https_proxy serves both, http_proxy only ws://.
        assert_eq!(pick(&all[..2], "example.com", 443, true).as_deref(), Some("http://s:2"));
        assert_eq!(pick(&all[..2], "example.com", 80, false).as_deref(), Some("http://s:2"));
        assert_eq!(pick(&all[..1], "example.com", 443, true), None);
        assert_eq!(pick(&all[..1], "example.com", 80, false).as_deref(), Some("http://h:1"));
        // socks_proxy comes before https/http; `http://` there means SOCKS with remote DNS.
        let socks = [("https_proxy", "http://s:2"), ("socks_proxy", "http://k:1080")];
        assert_eq!(pick(&socks, "example.com", 443, true).as_deref(), Some("socks5h://k:1080"));
        // all_proxy is the last resort.
        let last = [("all_proxy", "socks5://a:1080"), ("http_proxy", "http://h:1")];
        assert_eq!(pick(&last, "example.com", 80, false).as_deref(), Some("http://h:1"));
        assert_eq!(pick(&last, "example.com", 443, true).as_deref(), Some("socks5://a:1080"));
        assert_eq!(pick(&[], "example.com", 80, false), None);
    }

    #[test]
    fn lower_case_wins_and_empty_lower_case_removes() {
        let both = [("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "http://lower:2")];
        assert_eq!(pick(&both, "e.com", 443, true).as_deref(), Some("http://lower:2"));
        let rev = [("https_proxy", "http://lower:2"), ("HTTPS_PROXY", "http://upper:1")];
        assert_eq!(pick(&rev, "e.com", 443, true).as_deref(), Some("http://lower:2"));
        assert_eq!(
            pick(&[("HTTPS_PROXY", "http://upper:1")], "e.com", 443, true).as_deref(),
            Some("http://upper:1")
        );
        let cleared = [("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "")];
        assert_eq!(pick(&cleared, "e.com", 443, true), None);
        // CGI: HTTP_PROXY may come from a request header (httpoxy) and is ignored.
        let cgi = [("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")];
        assert_eq!(pick(&cgi, "e.com", 80, false), None);
    }

    #[test]
    fn no_proxy_as_urllib_reads_it() {
        let p = |no: &str, host: &str, port: u16| {
            pick(&[("http_proxy", "http://p:1"), ("no_proxy", no)], host, port, false)
        };
        assert_eq!(p("*", "example.com", 80), None);
        assert_eq!(p("example.com", "example.com", 80), None);
        assert_eq!(p("example.com", "www.EXAMPLE.com", 80), None);
        assert_eq!(p(".example.com", "example.com", 80), None);
        assert_eq!(p("localhost, .internal", "db.internal", 80), None);
        assert_eq!(p("example.com:8080", "example.com", 8080), None);
        assert!(p("example.com:8080", "example.com", 80).is_some());
        assert!(p("ample.com", "example.com", 80).is_some());
        assert!(p("*.example.com", "www.example.com", 80).is_some(), "urllib has no wildcards but *");
        assert_eq!(p("127.0.0.1", "127.0.0.1", 80), None);
        assert_eq!(p("::1", "::1", 80), None);
        assert!(p("", "example.com", 80).is_some());
        let upper = [("http_proxy", "http://p:1"), ("NO_PROXY", "example.com")];
        assert_eq!(pick(&upper, "example.com", 80, false), None);
    }

    #[test]
    fn proxy_urls() {
        let p = parse_proxy("http://user:p%40ss@Proxy.example:3128/").unwrap();
        assert_eq!(p.kind, Kind::Http);
        assert_eq!((p.host.as_str(), p.port), ("proxy.example", 3128));
        assert_eq!(p.credentials, Some(("user".into(), "p@ss".into())));
        assert_eq!(parse_proxy("proxy:3128").unwrap().kind, Kind::Http);
        assert_eq!(parse_proxy("http://proxy").unwrap().port, 80);
        let s = parse_proxy("socks5h://[::1]:1080").unwrap();
        assert_eq!((s.kind, s.host.as_str(), s.port), (Kind::Socks5 { remote_dns: true }, "::1", 1080));
        assert_eq!(s.address(), "[::1]:1080");
        assert_eq!(parse_proxy("socks5://h").unwrap().kind, Kind::Socks5 { remote_dns: false });
        assert_eq!(parse_proxy("socks5://h").unwrap().port, 1080);
        assert!(matches!(parse_proxy("https://h:1"), Err(ProxyError::UnsupportedScheme { .. })));
        assert!(matches!(parse_proxy("socks4://h:1"), Err(ProxyError::UnsupportedScheme { .. })));
        for bad in ["http://", "http://h:0", "http://h:x", "http://h/path", "http://user@h", "http://[::1"] {
            assert!(matches!(parse_proxy(bad), Err(ProxyError::InvalidUrl { .. })), "{bad}");
        }
        let e = parse_proxy("http://u:secret@h/x").unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
        assert_eq!(
            format!("{:?}", ProxySetting::Url("http://u:secret@h".into())),
            "Url(\"http://u:****@h\")"
        );
    }
}
