//! Token lists: `Sec-WebSocket-Protocol`, `Connection` and `Upgrade` (RFC 7230 `#token`).

use std::fmt;

use http::header::{GetAll, HeaderValue};
use ws_extensions::header::is_tchar;

use crate::http1::list_elements;

/// A header value that is not a comma-separated list of tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTokenList {
    element: String,
}

impl fmt::Display for InvalidTokenList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a token", self.element)
    }
}

impl std::error::Error for InvalidTokenList {}

/// Parses one comma-separated token list value, e.g. `Sec-WebSocket-Protocol: chat, superchat`.
/// Optional whitespace and empty elements are tolerated; anything else that is not a token
/// (a quoted string, a space inside an element) is an error.
///
/// ```
/// assert_eq!(ws_handshake::parse_token_list(" chat ,, v2.chat").unwrap(), ["chat", "v2.chat"]);
/// assert!(ws_handshake::parse_token_list("\"chat\"").is_err());
/// ```
pub fn parse_token_list(value: &str) -> Result<Vec<&str>, InvalidTokenList> {
    list_elements(value.as_bytes())
        .map(|e| {
            let s =
                token(e).ok_or_else(|| InvalidTokenList { element: String::from_utf8_lossy(e).into() })?;
            Ok(s)
        })
        .collect()
}

/// `e` as a `&str` if it is a token.
fn token(e: &[u8]) -> Option<&str> {
    if e.iter().all(|&b| is_tchar(b)) { std::str::from_utf8(e).ok() } else { None }
}

/// Calls `f` on every token of every value, in order; fails on the first non-token.
pub(crate) fn each_token<'a>(
    values: GetAll<'a, HeaderValue>,
    mut f: impl FnMut(&'a str),
) -> Result<(), InvalidTokenList> {
    for value in values {
        for e in list_elements(value.as_bytes()) {
            f(token(e).ok_or_else(|| InvalidTokenList { element: String::from_utf8_lossy(e).into() })?);
        }
    }
    Ok(())
}

/// Whether a `Connection` header set holds the `upgrade` option.
pub(crate) fn has_connection_upgrade(values: GetAll<'_, HeaderValue>) -> bool {
    let mut found = false;
    // An invalid element elsewhere in the list does not hide a valid `upgrade`.
    for value in values {
        found |= list_elements(value.as_bytes()).any(|e| e.eq_ignore_ascii_case(b"upgrade"));
    }
    found
}

/// The `Upgrade` protocols (`name` or `name/version`), all values in order; `None` if one is
/// malformed.
pub(crate) fn upgrade_protocols(values: GetAll<'_, HeaderValue>) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    for value in values {
        for e in list_elements(value.as_bytes()) {
            let mut parts = e.splitn(2, |&b| b == b'/');
            let valid = parts.all(|p| !p.is_empty() && p.iter().all(|&b| is_tchar(b)));
            if !valid {
                return None;
            }
            out.push(e);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http::HeaderMap;

    use super::*;

    fn map(name: &'static str, values: &[&'static str]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for v in values {
            m.append(name, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn protocol_lists() {
        assert_eq!(parse_token_list("chat").unwrap(), ["chat"]);
        assert_eq!(parse_token_list("  chat\t,superchat ,").unwrap(), ["chat", "superchat"]);
        assert_eq!(parse_token_list("").unwrap(), Vec::<&str>::new());
        for bad in ["\"chat\"", "chat superchat", "a, b;c", "ch@t", "é"] {
            let e = parse_token_list(bad).unwrap_err();
            assert!(e.to_string().contains("is not a token"), "{bad}: {e}");
        }
        let m = map("sec-websocket-protocol", &["a, b", " c", ", d ,"]);
        let mut all = Vec::new();
        each_token(m.get_all("sec-websocket-protocol"), |t| all.push(t)).unwrap();
        assert_eq!(all, ["a", "b", "c", "d"]);
        let m = map("sec-websocket-protocol", &["a", "\"b\""]);
        assert!(each_token(m.get_all("sec-websocket-protocol"), |_| ()).is_err());
    }

    #[test]
    fn connection_and_upgrade() {
        let m = map("connection", &["keep-alive", "Upgrade"]);
        assert!(has_connection_upgrade(m.get_all("connection")));
        let m = map("connection", &["keep-alive, UPGRADE "]);
        assert!(has_connection_upgrade(m.get_all("connection")));
        let m = map("connection", &["keep-alive, upgrades"]);
        assert!(!has_connection_upgrade(m.get_all("connection")));
        let m = map("upgrade", &["WebSocket", "h2c, foo/1.0"]);
        assert_eq!(upgrade_protocols(m.get_all("upgrade")).unwrap().len(), 3);
        let m = map("upgrade", &["foo/"]);
        assert!(upgrade_protocols(m.get_all("upgrade")).is_none());
    }
}
