//! Just enough HTTP/1.1 for the opening handshake: an incremental head reader with limits,
//! conversion of parsed heads into `http` types without copying header values, and writers.

use std::fmt;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Limits on an HTTP head (request or response line plus headers). A head over a limit is
/// refused as soon as the limit is crossed, without buffering more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Maximum size of the head in bytes, final empty line included. Default 8192.
    pub max_header_bytes: usize,
    /// Maximum number of header lines. Default 128.
    pub max_headers: usize,
    /// Maximum length of one line (start line or header), line ending excluded. Default 4096.
    pub max_line_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_header_bytes: 8192, max_headers: 128, max_line_length: 4096 }
    }
}

/// Which [`Limits`] field a head exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// The head is longer than `max_header_bytes`.
    HeaderBytes,
    /// More than `max_headers` header lines.
    HeaderCount,
    /// The request or status line is longer than `max_line_length`.
    StartLineLength,
    /// A header line is longer than `max_line_length`.
    HeaderLineLength,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HeaderBytes => "header section too large",
            Self::HeaderCount => "too many headers",
            Self::StartLineLength => "start line too long",
            Self::HeaderLineLength => "header line too long",
        })
    }
}

impl std::error::Error for LimitExceeded {}

/// Buffers a head until its final empty line, enforcing [`Limits`] byte by byte.
#[derive(Debug)]
pub(crate) struct HeadReader {
    buf: BytesMut,
    limits: Limits,
    /// Start of the current line, as an offset into the stream.
    line_start: usize,
    /// Non-empty lines seen (start line included).
    lines: usize,
    last: u8,
    head_len: Option<usize>,
}

impl HeadReader {
    pub(crate) fn new(limits: Limits) -> Self {
        Self { buf: BytesMut::new(), limits, line_start: 0, lines: 0, last: 0, head_len: None }
    }

    /// Feeds bytes. Returns `Some(head_len)` once the head is complete; everything pushed is
    /// then buffered, including what follows the head. Nothing is buffered past a failure.
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<Option<usize>, LimitExceeded> {
        if self.head_len.is_some() {
            self.buf.extend_from_slice(data);
            return Ok(self.head_len);
        }
        let base = self.buf.len();
        for (j, &b) in data.iter().enumerate() {
            let i = base + j;
            if i >= self.limits.max_header_bytes {
                return Err(LimitExceeded::HeaderBytes);
            }
            if b == b'\n' {
                let len = i - self.line_start - usize::from(self.last == b'\r');
                if len == 0 && self.lines > 0 {
                    let head_len = i + 1;
                    self.head_len = Some(head_len);
                    if self.buf.capacity() == 0 {
                        // One allocation for the whole head when it arrives in one piece.
                        self.buf.reserve(data.len());
                    }
                    self.buf.extend_from_slice(data);
                    return Ok(Some(head_len));
                }
                if len > 0 {
                    // Empty lines before the start line are ignored (RFC 7230 §3.5).
                    self.lines += 1;
                    if self.lines > self.limits.max_headers.saturating_add(1) {
                        return Err(LimitExceeded::HeaderCount);
                    }
                }
                self.line_start = i + 1;
            } else if b != b'\r' && i - self.line_start >= self.limits.max_line_length {
                return Err(if self.lines == 0 {
                    LimitExceeded::StartLineLength
                } else {
                    LimitExceeded::HeaderLineLength
                });
            }
            self.last = b;
        }
        self.buf.extend_from_slice(data);
        Ok(None)
    }

    /// Bytes buffered so far.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Number of header lines (start line excluded) of a complete head.
    pub(crate) fn header_count(&self) -> usize {
        self.lines.saturating_sub(1)
    }

    /// Takes everything buffered.
    pub(crate) fn take(&mut self) -> Bytes {
        std::mem::take(&mut self.buf).freeze()
    }
}

/// An upper bound on the header lines in `head`.
pub(crate) fn line_count(head: &[u8]) -> usize {
    head.iter().filter(|&&b| b == b'\n').count()
}

/// Header slots for httparse: on the stack for typical heads, on the heap beyond.
const STACK_HEADERS: usize = 32;

/// Runs `f` with at least `n` empty httparse header slots.
pub(crate) fn with_header_slots<'h, R>(n: usize, f: impl FnOnce(&mut [httparse::Header<'h>]) -> R) -> R {
    if n <= STACK_HEADERS {
        let mut slots = [httparse::EMPTY_HEADER; STACK_HEADERS];
        f(&mut slots)
    } else {
        let mut slots = vec![httparse::EMPTY_HEADER; n];
        f(&mut slots)
    }
}

/// Converts parsed headers into a `HeaderMap` whose values share `head`'s memory.
pub(crate) fn to_header_map(
    head: &Bytes,
    headers: &[httparse::Header<'_>],
) -> Result<HeaderMap, InvalidHeader> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for h in headers {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| InvalidHeader::Name)?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(h.value))
            .map_err(|_| InvalidHeader::Value(name.clone()))?;
        map.append(name, value);
    }
    Ok(map)
}

/// A header httparse accepted but `http` refuses.
#[derive(Debug)]
pub(crate) enum InvalidHeader {
    Name,
    Value(HeaderName),
}

/// Writes a header name in its conventional capitalization (`Sec-WebSocket-Key`), since some
/// peers compare names case-sensitively despite RFC 7230.
fn write_name(name: &HeaderName, out: &mut Vec<u8>) {
    let s = name.as_str();
    let rest = if let Some(rest) = s.strip_prefix("sec-websocket-") {
        out.extend_from_slice(b"Sec-WebSocket-");
        rest
    } else if s == "www-authenticate" {
        out.extend_from_slice(b"WWW-Authenticate");
        return;
    } else {
        s
    };
    let mut upper = true;
    for &b in rest.as_bytes() {
        out.push(if upper { b.to_ascii_uppercase() } else { b });
        upper = b == b'-';
    }
}

/// Writes `Name: value\r\n` lines and the final empty line.
pub(crate) fn write_headers(headers: &HeaderMap, out: &mut Vec<u8>) {
    for (name, value) in headers {
        write_name(name, out);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes a request head (request line and headers).
pub fn write_request_head<T>(request: &http::Request<T>, out: &mut Vec<u8>) {
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_headers(request.headers(), out);
}

/// Writes a response head (status line and headers), not the body. Set `Content-Length`
/// yourself if a body follows.
pub fn write_response_head<T>(response: &http::Response<T>, out: &mut Vec<u8>) {
    let status = response.status();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    write_headers(response.headers(), out);
}

/// Writes a response head and its body.
pub fn write_response<B: AsRef<[u8]>>(response: &http::Response<B>, out: &mut Vec<u8>) {
    write_response_head(response, out);
    out.extend_from_slice(response.body().as_ref());
}

/// Splits a comma-separated header list (RFC 7230 `#rule`) into trimmed, non-empty elements.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows).filter(|e| !e.is_empty())
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reader_in_pieces() {
        let head = b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        for split in 0..head.len() {
            let mut r = HeadReader::new(Limits::default());
            let first = r.push(&head[..split]).unwrap();
            let second = r.push(&head[split..]).unwrap();
            assert_eq!(first.or(second), Some(head.len() - 4), "split {split}");
            assert_eq!(r.header_count(), 1);
            assert_eq!(&r.take()[..], &head[..]);
        }
    }

    #[test]
    fn reader_limits() {
        let limits = Limits { max_header_bytes: 64, max_headers: 2, max_line_length: 20 };
        let mut r = HeadReader::new(limits);
        assert_eq!(r.push(&[b'a'; 21]), Err(LimitExceeded::StartLineLength));
        let mut r = HeadReader::new(limits);
        assert_eq!(
            r.push(b"GET / HTTP/1.1\r\nx: 123456789012345678\r\n"),
            Err(LimitExceeded::HeaderLineLength)
        );
        let mut r = HeadReader::new(limits);
        assert_eq!(r.push(b"GET / HTTP/1.1\r\na:1\r\nb:2\r\nc:3\r\n"), Err(LimitExceeded::HeaderCount));
        let mut r = HeadReader::new(limits);
        assert_eq!(r.push(&b"a:1\r\n".repeat(20)), Err(LimitExceeded::HeaderCount));
        let limits = Limits { max_headers: 100, ..limits };
        let mut r = HeadReader::new(limits);
        assert_eq!(r.push(&b"a:1\r\n".repeat(20)), Err(LimitExceeded::HeaderBytes));
        assert_eq!(r.buffered(), 0);
        // Exactly at the limit is fine.
        let mut r = HeadReader::new(Limits { max_header_bytes: 9, ..limits });
        assert_eq!(r.push(b"G / 1\r\n\r\nmore").unwrap(), Some(9));
    }

    #[test]
    fn names_capitalized() {
        let mut map = HeaderMap::new();
        map.insert("sec-websocket-key", HeaderValue::from_static("k"));
        map.insert("www-authenticate", HeaderValue::from_static("w"));
        map.insert("x-my-header", HeaderValue::from_static("x"));
        let mut out = Vec::new();
        write_headers(&map, &mut out);
        assert_eq!(out, b"Sec-WebSocket-Key: k\r\nWWW-Authenticate: w\r\nX-My-Header: x\r\n\r\n");
    }

    #[test]
    fn lists() {
        let v: Vec<_> = list_elements(b" a ,, b\t,c ,").collect();
        assert_eq!(v, [&b"a"[..], b"b", b"c"]);
    }
}
