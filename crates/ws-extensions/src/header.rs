//! The `Sec-WebSocket-Extensions` header grammar (RFC 6455 §9.1, RFC 7230 tokens and quoted strings).
//!
//! ```text
//! extension-list  = 1#extension
//! extension       = extension-token *( OWS ";" OWS extension-param )
//! extension-param = token [ OWS "=" OWS ( token / quoted-string ) ]
//! ```
//!
//! Parsing follows the RFC 7230 `#rule` leniency: empty list elements (`a, , b`) and optional
//! whitespace around delimiters are accepted. A quoted value must unquote to a token
//! (RFC 6455 §9.1). Parsing never panics; it fails with a [`HeaderError`] that says where and what.
//!
//! ```
//! use ws_extensions::header::{parse_extensions, serialize_extensions};
//!
//! let items = parse_extensions(r#"permessage-deflate; client_max_window_bits, foo; bar="1""#)?;
//! assert_eq!(items.len(), 2);
//! assert_eq!(items[1].params[0].value.as_deref(), Some("1"));
//! assert_eq!(
//!     serialize_extensions(&items),
//!     "permessage-deflate; client_max_window_bits, foo; bar=1",
//! );
//! # Ok::<(), ws_extensions::header::HeaderError>(())
//! ```

use std::fmt;

use crate::{ExtensionHeaderItem, ExtensionParam};

/// Why a `Sec-WebSocket-Extensions` value failed to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    header: usize,
    position: usize,
    kind: HeaderErrorKind,
}

/// What was wrong, for [`HeaderError::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderErrorKind {
    /// A token was expected (extension name, parameter name or value) but not found.
    ExpectedToken,
    /// After an item or parameter, only `,`, `;` or the end of the value may follow.
    ExpectedDelimiter,
    /// A quoted string was not closed before the end of the value.
    UnterminatedQuotedString,
    /// A quoted value does not unquote to a token (RFC 6455 §9.1).
    QuotedValueNotToken,
    /// The list holds no extension at all.
    EmptyList,
}

impl HeaderError {
    fn new(position: usize, kind: HeaderErrorKind) -> Self {
        Self { header: 0, position, kind }
    }

    /// What was wrong.
    pub fn kind(&self) -> HeaderErrorKind {
        self.kind
    }

    /// Byte offset of the problem in the header value.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Which header value (0-based), when several repeated headers were parsed together.
    pub fn header_index(&self) -> usize {
        self.header
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            HeaderErrorKind::ExpectedToken => "expected a token",
            HeaderErrorKind::ExpectedDelimiter => "expected ',', ';' or the end of the value",
            HeaderErrorKind::UnterminatedQuotedString => "unterminated quoted string",
            HeaderErrorKind::QuotedValueNotToken => "quoted parameter value is not a token",
            HeaderErrorKind::EmptyList => "no extension in the list",
        };
        write!(f, "invalid Sec-WebSocket-Extensions header: {what} at byte {}", self.position)?;
        if self.header > 0 {
            write!(f, " of header #{}", self.header + 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for HeaderError {}

/// Whether `b` is an RFC 7230 `tchar`.
pub const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|'
        | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Whether `s` is a non-empty RFC 7230 token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Parses one `Sec-WebSocket-Extensions` header value.
pub fn parse_extensions(value: &str) -> Result<Vec<ExtensionHeaderItem>, HeaderError> {
    let mut items = Vec::new();
    parse_into(value.as_bytes(), &mut items)?;
    if items.is_empty() {
        return Err(HeaderError::new(0, HeaderErrorKind::EmptyList));
    }
    Ok(items)
}

/// Parses several `Sec-WebSocket-Extensions` header values (a repeated header), in order, as
/// one list. Takes anything byte-like, e.g. `http::HeaderValue`s. An empty iterator gives an
/// empty list; each header that is present must hold at least one extension.
pub fn parse_extension_headers<I, V>(values: I) -> Result<Vec<ExtensionHeaderItem>, HeaderError>
where
    I: IntoIterator<Item = V>,
    V: AsRef<[u8]>,
{
    let mut items = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        let before = items.len();
        parse_into(value.as_ref(), &mut items).map_err(|e| HeaderError { header: index, ..e })?;
        if items.len() == before {
            return Err(HeaderError { header: index, position: 0, kind: HeaderErrorKind::EmptyList });
        }
    }
    Ok(items)
}

/// Serializes items as one header value: `name; param; param=value, name2`. Values that are not
/// tokens are sent as quoted strings (a peer following RFC 6455 §9.1 will refuse them, so
/// extensions should only use token values). Names must be tokens.
pub fn serialize_extensions(items: &[ExtensionHeaderItem]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item.name);
        for param in &item.params {
            out.push_str("; ");
            out.push_str(&param.name);
            if let Some(value) = &param.value {
                out.push('=');
                if is_token(value) {
                    out.push_str(value);
                } else {
                    out.push('"');
                    for c in value.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                }
            }
        }
    }
    out
}

/// A cursor over one header value.
struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Result<String, HeaderError> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(HeaderError::new(start, HeaderErrorKind::ExpectedToken));
        }
        // tchars are ASCII, so this is valid UTF-8.
        Ok(self.input[start..self.pos].iter().map(|&b| char::from(b)).collect())
    }

    /// A quoted string, cursor on the opening quote; returns the unquoted content.
    fn quoted(&mut self) -> Result<String, HeaderError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(HeaderError::new(start, HeaderErrorKind::UnterminatedQuotedString)),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let Some(&escaped) = self.input.get(self.pos + 1) else {
                        return Err(HeaderError::new(start, HeaderErrorKind::UnterminatedQuotedString));
                    };
                    out.push(char::from(escaped));
                    self.pos += 2;
                }
                Some(b) => {
                    out.push(char::from(b));
                    self.pos += 1;
                }
            }
        }
        if !is_token(&out) {
            return Err(HeaderError::new(start, HeaderErrorKind::QuotedValueNotToken));
        }
        Ok(out)
    }
}

fn parse_into(input: &[u8], items: &mut Vec<ExtensionHeaderItem>) -> Result<(), HeaderError> {
    let mut c = Cursor { input, pos: 0 };
    loop {
        // Empty list elements are tolerated (RFC 7230 §7).
        c.skip_ows();
        match c.peek() {
            None => return Ok(()),
            Some(b',') => {
                c.pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = c.token()?;
        let mut params = Vec::new();
        loop {
            c.skip_ows();
            match c.peek() {
                None => {
                    items.push(ExtensionHeaderItem { name, params });
                    return Ok(());
                }
                Some(b',') => {
                    c.pos += 1;
                    items.push(ExtensionHeaderItem { name, params });
                    break;
                }
                Some(b';') => {
                    c.pos += 1;
                    c.skip_ows();
                    let pname = c.token()?;
                    c.skip_ows();
                    let value = if c.peek() == Some(b'=') {
                        c.pos += 1;
                        c.skip_ows();
                        Some(if c.peek() == Some(b'"') { c.quoted()? } else { c.token()? })
                    } else {
                        None
                    };
                    params.push(ExtensionParam { name: pname, value });
                }
                Some(_) => return Err(HeaderError::new(c.pos, HeaderErrorKind::ExpectedDelimiter)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn item(name: &str, params: &[(&str, Option<&str>)]) -> ExtensionHeaderItem {
        ExtensionHeaderItem::new(
            name,
            params
                .iter()
                .map(|(n, v)| ExtensionParam { name: (*n).into(), value: v.map(Into::into) })
                .collect(),
        )
    }

    #[test]
    fn simple() {
        assert_eq!(parse_extensions("permessage-deflate").unwrap(), vec![item("permessage-deflate", &[])]);
    }

    #[test]
    fn params_with_and_without_values() {
        assert_eq!(
            parse_extensions("permessage-deflate; client_max_window_bits; server_max_window_bits=10")
                .unwrap(),
            vec![item(
                "permessage-deflate",
                &[("client_max_window_bits", None), ("server_max_window_bits", Some("10"))]
            )]
        );
    }

    #[test]
    fn odd_whitespace() {
        let expected = vec![item("a", &[("x", Some("1")), ("y", None)]), item("b", &[])];
        for s in [
            "a;x=1;y,b",
            "  a ; x = 1 ;\ty ,  b  ",
            "\ta\t;\tx\t=\t1\t;\ty\t,\tb\t",
            "a; x=\"1\"; y, b",
            "a;x= \"1\" ;y ,b",
        ] {
            assert_eq!(parse_extensions(s).unwrap(), expected, "{s:?}");
        }
    }

    #[test]
    fn empty_elements_tolerated() {
        assert_eq!(parse_extensions(", a ,, , b,").unwrap(), vec![item("a", &[]), item("b", &[])]);
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(parse_extensions(r#"a; b="10""#).unwrap(), vec![item("a", &[("b", Some("10"))])]);
        // Escapes unquote to a token.
        assert_eq!(parse_extensions(r#"a; b="1\0""#).unwrap(), vec![item("a", &[("b", Some("10"))])]);
        let e = parse_extensions(r#"a; b="x y""#).unwrap_err();
        assert_eq!(e.kind(), HeaderErrorKind::QuotedValueNotToken);
        assert_eq!(e.position(), 5);
        let e = parse_extensions(r#"a; b="""#).unwrap_err();
        assert_eq!(e.kind(), HeaderErrorKind::QuotedValueNotToken);
        let e = parse_extensions(r#"a; b="10"#).unwrap_err();
        assert_eq!(e.kind(), HeaderErrorKind::UnterminatedQuotedString);
        let e = parse_extensions(r#"a; b="10\"#).unwrap_err();
        assert_eq!(e.kind(), HeaderErrorKind::UnterminatedQuotedString);
    }

    #[test]
    fn repeated_headers() {
        let items = parse_extension_headers(["a; x", " b , c;y=2"]).unwrap();
        assert_eq!(items, vec![item("a", &[("x", None)]), item("b", &[]), item("c", &[("y", Some("2"))])]);
        assert_eq!(parse_extension_headers(Vec::<&str>::new()).unwrap(), vec![]);
        let e = parse_extension_headers(["a", "b;;"]).unwrap_err();
        assert_eq!((e.header_index(), e.position(), e.kind()), (1, 2, HeaderErrorKind::ExpectedToken));
        assert!(e.to_string().contains("header #2"), "{e}");
        let e = parse_extension_headers(["a", " , "]).unwrap_err();
        assert_eq!(e.kind(), HeaderErrorKind::EmptyList);
    }

    #[test]
    fn multiple_offers_of_one_extension() {
        let items = parse_extensions(
            "permessage-deflate; client_max_window_bits=10, permessage-deflate, permessage-deflate; x",
        )
        .unwrap();
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(|i| i.name == "permessage-deflate"));
    }

    #[test]
    fn bad_input() {
        for (s, kind, pos) in [
            ("", HeaderErrorKind::EmptyList, 0),
            (" , ", HeaderErrorKind::EmptyList, 0),
            (";a", HeaderErrorKind::ExpectedToken, 0),
            ("a;", HeaderErrorKind::ExpectedToken, 2),
            ("a; =1", HeaderErrorKind::ExpectedToken, 3),
            ("a; b=", HeaderErrorKind::ExpectedToken, 5),
            ("a; b=,", HeaderErrorKind::ExpectedToken, 5),
            ("a b", HeaderErrorKind::ExpectedDelimiter, 2),
            ("a; b=1 2", HeaderErrorKind::ExpectedDelimiter, 7),
            ("a; b=\"1\"2", HeaderErrorKind::ExpectedDelimiter, 8),
            ("a=1", HeaderErrorKind::ExpectedDelimiter, 1),
            ("é", HeaderErrorKind::ExpectedToken, 0),
            ("a\r\n", HeaderErrorKind::ExpectedDelimiter, 1),
        ] {
            let e = parse_extensions(s).unwrap_err();
            assert_eq!((e.kind(), e.position()), (kind, pos), "{s:?}: {e}");
            assert!(e.to_string().starts_with("invalid Sec-WebSocket-Extensions header"));
        }
    }

    #[test]
    fn serialize_round_trip_and_quoting() {
        let items = vec![item("a", &[("x", Some("1")), ("y", None)]), item("b", &[])];
        let s = serialize_extensions(&items);
        assert_eq!(s, "a; x=1; y, b");
        assert_eq!(parse_extensions(&s).unwrap(), items);
        assert_eq!(serialize_extensions(&[item("a", &[("x", Some("a b\"c"))])]), r#"a; x="a b\"c""#);
        assert_eq!(serialize_extensions(&[]), "");
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in ".*") {
            let _ = parse_extensions(&s);
        }

        #[test]
        fn arbitrary_grammar_like_strings_never_panic(s in "[a-z ,;=\"\\\\\t]{0,40}") {
            if let Ok(items) = parse_extensions(&s) {
                // What parses serializes to something that parses back the same.
                prop_assert_eq!(parse_extensions(&serialize_extensions(&items)).unwrap(), items);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_extension_headers([&v[..], b"x; y"]);
        }
    }
}
