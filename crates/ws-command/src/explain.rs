//! One line for a person: what went wrong and what to try.

use std::io;

use ws_tokio::{ClientError, Error, Timeout, http};

/// Why connecting to `uri` failed, and what to try.
pub(crate) fn connect_error(uri: &str, e: &Error) -> String {
    match e {
        Error::Connect { addr, source } if source.kind() == io::ErrorKind::ConnectionRefused => format!(
            "connection refused by {addr}: nothing listens there; check the port, or start a server \
             (`ws serve {addr} --echo`)"
        ),
        Error::Connect { addr, source } if source.kind() == io::ErrorKind::TimedOut => {
            format!("cannot connect to {addr}: timed out; is the host up, or a firewall dropping packets?")
        }
        Error::Connect { addr, source } => {
            format!("cannot connect to {addr}: {source}; check the host and port")
        }
        Error::Resolve { host, source } => format!("cannot resolve `{host}`: {source}; check the host name"),
        Error::Rejected(rejection) => rejected(rejection.status(), rejection.response().body()),
        Error::Handshake(ClientError::Rejected(response)) => rejected(response.status(), response.body()),
        Error::Handshake(ClientError::InvalidUri(why)) | Error::InvalidUri(why) => {
            format!("invalid URL `{uri}`: {why}; expected ws://host[:port][/path] or wss://…")
        }
        Error::Handshake(e) => format!(
            "the WebSocket handshake with {uri} failed: {e}; is this a WebSocket endpoint (right path, \
             ws:// versus wss://)?"
        ),
        Error::Timeout(Timeout::Open) => format!(
            "timed out opening {uri}: the server did not complete the handshake; is it a WebSocket \
             server, and does it want wss:// (TLS) instead of ws://?"
        ),
        Error::Tls { message, .. } => format!(
            "TLS failed with {uri}: {message}{}",
            if message.contains("not trusted") || message.contains("not valid for") {
                "; for a test server with a self-signed certificate, --insecure skips the check"
            } else {
                ""
            }
        ),
        Error::Proxy(e) => format!("{e}; check HTTP_PROXY / HTTPS_PROXY / ALL_PROXY and NO_PROXY"),
        Error::Io(source) if is_reset(source) => format!(
            "{uri} closed the connection during the handshake ({source}); does it speak TLS (try wss://), \
             or plain ws:// rather than wss://?"
        ),
        other => format!("cannot open {uri}: {other}"),
    }
}

/// The handshake was answered with something other than 101.
fn rejected(status: http::StatusCode, body: &[u8]) -> String {
    let reason = status.canonical_reason().unwrap_or("");
    let body = String::from_utf8_lossy(body);
    let first = body.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let said = if first.is_empty() { String::new() } else { format!(" (\"{}\")", truncate(first, 120)) };
    let hint = match status.as_u16() {
        400 => "the server did not take the handshake request; check --header values and --subprotocol",
        401 | 403 => {
            "the server wants credentials: pass them with --header, e.g. --header 'Authorization: Bearer …'"
        }
        404 => "no WebSocket endpoint at this path; check the URL's path",
        426 => "the server wants another protocol version or TLS; try wss://",
        300..=399 => "the server redirects elsewhere; connect to the Location it gives",
        500..=599 => "the server failed; look at its logs",
        _ => "check the URL, --header and --subprotocol",
    };
    format!("the server refused the WebSocket handshake: HTTP {} {reason}{said}; {hint}", status.as_u16())
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe
    )
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Why a load run against `url` failed, and what to try.
pub(crate) fn load_error(url: &str, e: &ws_load::Error) -> String {
    match e {
        ws_load::Error::Connect { addr, source } if source.kind() == io::ErrorKind::ConnectionRefused => {
            format!(
                "connection refused by {addr}: nothing listens there; start an echo server first \
             (`ws serve {addr} --echo`)"
            )
        }
        ws_load::Error::Connect { addr, source } => {
            format!("cannot connect to {addr}: {source}; check the host and port")
        }
        ws_load::Error::Handshake { source, .. } => format!(
            "the WebSocket handshake with {url} failed: {source}; is it a WebSocket echo server at this path?"
        ),
        ws_load::Error::NoEcho => {
            format!("no echo came back from {url}: `ws bench` needs an echo server (`ws serve ADDR --echo`)")
        }
        other => format!("the load run against {url} failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_says_status_reason_and_what_to_try() {
        let line = rejected(http::StatusCode::FORBIDDEN, b"\nForbidden origin\n");
        assert_eq!(
            line,
            "the server refused the WebSocket handshake: HTTP 403 Forbidden (\"Forbidden origin\"); \
             the server wants credentials: pass them with --header, e.g. --header 'Authorization: Bearer …'"
        );
    }
}
