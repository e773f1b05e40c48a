//! HTTP Basic authentication (RFC 7617): a ready-made `process_request` check for servers and
//! the `Authorization` header for clients.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{self, HeaderValue, InvalidHeaderValue};
use http::{Request, StatusCode};

use crate::reject::Rejection;
use crate::server::ProcessRequest;

/// A `process_request` hook that answers 401 with `WWW-Authenticate: Basic realm="…"` unless
/// the request carries Basic credentials that `check(username, password)` accepts.
///
/// Fails if `realm` cannot go into a header (control characters).
///
/// ```
/// use std::sync::Arc;
/// use ws_handshake::{ServerConfig, basic_auth};
///
/// let mut config = ServerConfig::default();
/// config.process_request = Some(basic_auth("chat", |user, pass| user == "alice" && pass == "secret")?);
/// # Ok::<(), http::header::InvalidHeaderValue>(())
/// ```
pub fn basic_auth<F>(realm: &str, check: F) -> Result<ProcessRequest, InvalidHeaderValue>
where
    F: Fn(&str, &str) -> bool + Send + Sync + 'static,
{
    let escaped = realm.replace('\\', "\\\\").replace('"', "\\\"");
    let challenge = HeaderValue::from_str(&format!("Basic realm=\"{escaped}\", charset=\"UTF-8\""))?;
    Ok(Arc::new(move |request: &Request<()>| {
        let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
        let text = match (values.next(), values.next()) {
            (None, _) => "Missing credentials",
            (Some(value), None) => match parse_basic_auth(value) {
                Some((user, pass)) if check(&user, &pass) => return None,
                Some(_) => "Invalid credentials",
                None => "Unsupported credentials",
            },
            (Some(_), Some(_)) => "Too many credentials",
        };
        let mut response = Rejection::new(StatusCode::UNAUTHORIZED, text).into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge.clone());
        Some(response)
    }))
}

/// Decodes `Authorization: Basic <base64(user:pass)>` into `(user, pass)`; `None` for another
/// scheme or malformed credentials.
pub fn parse_basic_auth(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(credentials.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// The `Authorization` value for Basic credentials.
pub(crate) fn basic_auth_value(user: &str, pass: &str) -> Result<HeaderValue, InvalidHeaderValue> {
    let encoded = STANDARD.encode(format!("{user}:{pass}"));
    HeaderValue::from_maybe_shared(Bytes::from(format!("Basic {encoded}")))
}
