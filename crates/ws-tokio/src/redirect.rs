//! Following redirects during the opening handshake, as Python `websockets` does: 300, 301,
//! 302, 303, 307 and 308 with a `Location`, relative or absolute; never from `wss://` to
//! `ws://`; credentials dropped when the origin changes.

use bytes::Bytes;
use http::Response;

use crate::error::Error;

/// Python's `MAX_REDIRECTS` default.
pub(crate) const DEFAULT_MAX_REDIRECTS: usize = 10;

/// The URI a non-101 `response` to a request for `current` redirects to: `None` when it is not
/// a redirect (another status, or no usable `Location`); an error when it must not be followed.
pub(crate) fn next_uri(current: &str, response: &Response<Bytes>) -> Option<Result<String, Error>> {
    if !matches!(response.status().as_u16(), 300 | 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = response.headers().get(http::header::LOCATION)?.to_str().ok()?;
    let next = resolve(current, location.trim());
    Some(check(current, next))
}

/// Refuses to leave TLS, and a `Location` that is not a WebSocket URI.
pub(crate) fn check(current: &str, next: String) -> Result<String, Error> {
    match (is_secure(current), is_secure(&next)) {
        (_, None) => Err(Error::InvalidUri(format!("redirect to {next}: not a ws:// or wss:// URI"))),
        (Some(true), Some(false)) => Err(Error::InsecureRedirect { from: current.to_owned(), to: next }),
        _ => Ok(next),
    }
}

fn is_secure(uri: &str) -> Option<bool> {
    let (scheme, _) = uri.split_once("://")?;
    match scheme.to_ascii_lowercase().as_str() {
        "ws" => Some(false),
        "wss" => Some(true),
        _ => None,
    }
}

/// `(secure, host, port)`, lower-cased, the port defaulted.
fn origin(uri: &str) -> Option<(bool, String, u16)> {
    let parsed: http::Uri = uri.parse().ok()?;
    let secure = is_secure(uri)?;
    let authority = parsed.authority()?;
    let port = authority.port_u16().unwrap_or(if secure { 443 } else { 80 });
    Some((secure, authority.host().to_ascii_lowercase(), port))
}

/// Whether a redirect from `a` to `b` changes scheme, host or port (then credentials go).
pub(crate) fn cross_origin(a: &str, b: &str) -> bool {
    origin(a).is_none() || origin(a) != origin(b)
}

/// RFC 3986 §5.2 reference resolution of `reference` against the absolute `base`; the
/// fragment, meaningless to WebSocket, is dropped.
pub(crate) fn resolve(base: &str, reference: &str) -> String {
    let reference = reference.split_once('#').map_or(reference, |(r, _)| r);
    let has_scheme = reference.find(':').is_some_and(|i| {
        let scheme = &reference[..i];
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        return reference.to_owned();
    }
    let base = base.split_once('#').map_or(base, |(b, _)| b);
    let Some((scheme, rest)) = base.split_once("://") else { return reference.to_owned() };
    if let Some(network_path) = reference.strip_prefix("//") {
        return format!("{scheme}://{network_path}");
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(authority_end);
    let (base_path, base_query) =
        path_query.split_once('?').map_or((path_query, None), |(p, q)| (p, Some(q)));
    let (ref_path, ref_query) = reference.split_once('?').map_or((reference, None), |(p, q)| (p, Some(q)));
    let path = if ref_path.is_empty() {
        base_path.to_owned()
    } else if ref_path.starts_with('/') {
        remove_dot_segments(ref_path)
    } else {
        // Merge: the base path up to its last '/', then the reference.
        let dir = base_path.rfind('/').map_or("/", |i| &base_path[..=i]);
        remove_dot_segments(&format!("{dir}{ref_path}"))
    };
    let query = if ref_path.is_empty() && ref_query.is_none() { base_query } else { ref_query };
    match query {
        Some(q) => format!("{scheme}://{authority}{path}?{q}"),
        None => format!("{scheme}://{authority}{path}"),
    }
}

/// RFC 3986 §5.2.4, on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn response(status: u16, location: Option<&str>) -> Response<Bytes> {
        let mut builder = Response::builder().status(status);
        if let Some(location) = location {
            builder = builder.header("Location", location);
        }
        builder.body(Bytes::new()).unwrap()
    }

    #[test]
    fn resolves_relative_locations() {
        let base = "ws://h:8000/a/b/c?q=1";
        assert_eq!(resolve(base, "ws://other/x"), "ws://other/x");
        assert_eq!(resolve(base, "WSS://other"), "WSS://other");
        assert_eq!(resolve(base, "//other:9/x"), "ws://other:9/x");
        assert_eq!(resolve(base, "/x?y=2"), "ws://h:8000/x?y=2");
        assert_eq!(resolve(base, "d"), "ws://h:8000/a/b/d");
        assert_eq!(resolve(base, "../d"), "ws://h:8000/a/d");
        assert_eq!(resolve(base, "./"), "ws://h:8000/a/b/");
        assert_eq!(resolve(base, "?z=3"), "ws://h:8000/a/b/c?z=3");
        assert_eq!(resolve(base, ""), "ws://h:8000/a/b/c?q=1");
        assert_eq!(resolve(base, "/x#frag"), "ws://h:8000/x");
        assert_eq!(resolve("ws://h", "x"), "ws://h/x");
        assert_eq!(resolve("ws://u:p@h/a", "b"), "ws://u:p@h/b");
        assert_eq!(resolve(base, "/../../x/./y/.."), "ws://h:8000/x/");
    }

    #[test]
    fn which_responses_redirect() {
        for status in [300, 301, 302, 303, 307, 308] {
            let next = next_uri("ws://h/", &response(status, Some("/next"))).unwrap().unwrap();
            assert_eq!(next, "ws://h/next");
        }
        assert!(next_uri("ws://h/", &response(304, Some("/next"))).is_none());
        assert!(next_uri("ws://h/", &response(403, Some("/next"))).is_none());
        assert!(next_uri("ws://h/", &response(302, None)).is_none());
    }

    #[test]
    fn never_from_wss_to_ws() {
        let e = next_uri("wss://h/", &response(302, Some("ws://h/"))).unwrap().unwrap_err();
        assert!(matches!(&e, Error::InsecureRedirect { to, .. } if to == "ws://h/"), "{e:?}");
        assert!(e.to_string().contains("ws://h/"), "{e}");
        assert_eq!(next_uri("ws://h/", &response(302, Some("wss://h/"))).unwrap().unwrap(), "wss://h/");
        assert_eq!(next_uri("wss://h/", &response(302, Some("/x"))).unwrap().unwrap(), "wss://h/x");
        let e = next_uri("ws://h/", &response(302, Some("https://h/"))).unwrap().unwrap_err();
        assert!(matches!(e, Error::InvalidUri(_)), "{e:?}");
    }

    #[test]
    fn origins() {
        assert!(!cross_origin("ws://h/a", "ws://H:80/b"));
        assert!(cross_origin("ws://h/a", "wss://h/a"));
        assert!(cross_origin("ws://h/a", "ws://h:81/a"));
        assert!(cross_origin("ws://h/a", "ws://g/a"));
        assert!(!cross_origin("wss://h/a", "wss://h:443/x"));
    }
}
