//! Server handshake: acceptance, each rejection, hooks, negotiation, limits and leftovers.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use common::{CHROME_REQUEST, server_factory, with_header};
use http::{Response, StatusCode};
use ws_extensions::Rsv;
use ws_handshake::{
    LimitExceeded, Limits, RejectReason, Rejection, ServerAccepted, ServerConfig, ServerHandshake, basic_auth,
};

fn run(config: ServerConfig, request: &[u8]) -> Result<ServerAccepted, Rejection> {
    let mut server = ServerHandshake::new(Arc::new(config));
    let request = server.receive(request)?.expect("complete request");
    server.accept(&request, None)
}

fn with(mut config: ServerConfig, f: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
    f(&mut config);
    config
}

fn text(r: &Rejection) -> &str {
    std::str::from_utf8(r.response().body()).unwrap()
}

#[test]
fn accepts_chrome() {
    let accepted = run(ServerConfig::default(), CHROME_REQUEST).unwrap();
    let mut out = Vec::new();
    accepted.write_response(&mut out);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         Server: ws-rs/0.1.0\r\n\r\n"
    );
    assert!(accepted.extensions.is_empty());
    assert!(accepted.subprotocol.is_none());
    assert!(accepted.leftover.is_empty());
}

#[test]
fn date_and_server_headers() {
    let config = with(ServerConfig::default(), |c| c.server_header = Some("custom/1".parse().unwrap()));
    let mut server = ServerHandshake::new(Arc::new(config));
    let request = server.receive(CHROME_REQUEST).unwrap().unwrap();
    let accepted = server.accept(&request, Some(UNIX_EPOCH + Duration::from_secs(784_111_777))).unwrap();
    let h = accepted.response.headers();
    assert_eq!(h["date"], "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(h["server"], "custom/1");
    let config = with(ServerConfig::default(), |c| c.server_header = None);
    let accepted = run(config, CHROME_REQUEST).unwrap();
    assert!(accepted.response.headers().get("server").is_none());
    assert!(accepted.response.headers().get("date").is_none());
}

#[test]
fn rejection_table() {
    let req = CHROME_REQUEST;
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (req.replacen(b"GET", b"POST"), StatusCode::METHOD_NOT_ALLOWED, "method must be GET"),
        (req.replacen(b"HTTP/1.1", b"HTTP/1.0"), StatusCode::BAD_REQUEST, "HTTP/1.1 or later required"),
        (with_header(req, "Host", None), StatusCode::BAD_REQUEST, "missing or repeated Host header"),
        (with_header(req, "Upgrade", None), StatusCode::UPGRADE_REQUIRED, "invalid Upgrade header"),
        (with_header(req, "Upgrade", Some("h2c")), StatusCode::UPGRADE_REQUIRED, "invalid Upgrade header"),
        (with_header(req, "Connection", None), StatusCode::UPGRADE_REQUIRED, "invalid Connection header"),
        (with_header(req, "Connection", Some("keep-alive")), StatusCode::UPGRADE_REQUIRED, "Connection"),
        (with_header(req, "Sec-WebSocket-Key", None), StatusCode::BAD_REQUEST, "Sec-WebSocket-Key"),
        (
            with_header(req, "Sec-WebSocket-Key", Some("c2hvcnQ=")),
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key",
        ),
        (
            with_header(req, "Sec-WebSocket-Key", Some("not base64 at all!!!!!!!")),
            StatusCode::BAD_REQUEST,
            "Key",
        ),
        (with_header(req, "Sec-WebSocket-Version", None), StatusCode::UPGRADE_REQUIRED, "expected 13"),
        (with_header(req, "Sec-WebSocket-Version", Some("8")), StatusCode::UPGRADE_REQUIRED, "expected 13"),
        (b"GET / HTTP/1.1\r\nHost a\r\n\r\n".to_vec(), StatusCode::BAD_REQUEST, "malformed HTTP request"),
        (b"NOT HTTP\r\n\r\n".to_vec(), StatusCode::BAD_REQUEST, "malformed HTTP request"),
    ];
    for (request, status, needle) in cases {
        let rejection = run(ServerConfig::default(), &request).unwrap_err();
        assert_eq!(rejection.status(), status, "{}", String::from_utf8_lossy(&request));
        let body = text(&rejection);
        assert!(body.starts_with("Failed to open a WebSocket connection: "), "{body}");
        assert!(body.contains(needle), "{body:?} lacks {needle:?}");
        let h = rejection.response().headers();
        assert_eq!(h["content-type"], "text/plain; charset=utf-8");
        assert_eq!(h["content-length"], body.len().to_string().as_str());
        assert_eq!(h["connection"], "close");
        assert_eq!(h["server"], ws_handshake::SERVER);
        assert!(rejection.reason().is_some());
        assert!(std::error::Error::source(&rejection).is_some());
        if status == StatusCode::UPGRADE_REQUIRED {
            assert_eq!(h["sec-websocket-version"], "13");
            assert_eq!(h["upgrade"], "websocket");
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(h["allow"], "GET");
        }
        let mut out = Vec::new();
        rejection.write_response(&mut out);
        assert!(out.starts_with(format!("HTTP/1.1 {status}").as_bytes()));
        assert!(out.ends_with(body.as_bytes()));
    }
}

trait Replace {
    fn replacen(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl Replace for &[u8] {
    fn replacen(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let s = String::from_utf8(self.to_vec()).unwrap();
        let from = std::str::from_utf8(from).unwrap();
        let to = std::str::from_utf8(to).unwrap();
        s.replacen(from, to, 1).into_bytes()
    }
}

#[test]
fn lenient_header_forms_accepted() {
    let mut req = with_header(CHROME_REQUEST, "Connection", Some("keep-alive,  UPGRADE"));
    req = with_header(&req, "Upgrade", Some("WebSocket"));
    assert!(run(ServerConfig::default(), &req).is_ok());
    // Connection split over repeated headers.
    let req = with_header(CHROME_REQUEST, "Connection", Some("keep-alive\r\nConnection: Upgrade"));
    assert!(run(ServerConfig::default(), &req).is_ok());
}

#[test]
fn repeated_keys_rejected() {
    let req = with_header(
        CHROME_REQUEST,
        "Sec-WebSocket-Key",
        Some("dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
    );
    assert_eq!(run(ServerConfig::default(), &req).unwrap_err().reason(), Some(&RejectReason::Key));
}

#[test]
fn limits() {
    let limits = Limits::default();
    // Header bytes: a header line pushes the head over 8192.
    let big = "a".repeat(4000);
    let mut req = with_header(CHROME_REQUEST, "X-A", Some(&big));
    req = with_header(&req, "X-B", Some(&big));
    let r = run(ServerConfig::default(), &req).unwrap_err();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(r.reason(), Some(&RejectReason::Limit(LimitExceeded::HeaderBytes)));
    assert!(text(&r).contains("header section too large"));
    // One line too long.
    let req = with_header(CHROME_REQUEST, "X-A", Some(&"a".repeat(limits.max_line_length)));
    let r = run(ServerConfig::default(), &req).unwrap_err();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(text(&r).contains("header line too long"));
    // Request line too long: 400.
    let req = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000));
    let r = run(ServerConfig::default(), req.as_bytes()).unwrap_err();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(&r).contains("start line too long"));
    // Header count.
    let mut req = CHROME_REQUEST.to_vec();
    req.truncate(req.len() - 2);
    for i in 0..120 {
        req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let r = run(ServerConfig::default(), &req).unwrap_err();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(text(&r).contains("too many headers"));
    // More headers than the stack slots, under the limit, are fine.
    let mut req = CHROME_REQUEST.to_vec();
    req.truncate(req.len() - 2);
    for i in 0..60 {
        req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    assert!(run(ServerConfig::default(), &req).is_ok());
}

#[test]
fn over_limit_is_not_read_further() {
    let mut server = ServerHandshake::new(Arc::new(ServerConfig::default()));
    assert!(server.receive(&[b'a'; 5000]).is_err());
    assert_eq!(server.buffered(), 0);
    let again = server.receive(CHROME_REQUEST).unwrap_err();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(server.buffered(), 0);
}

#[test]
fn leftover_bytes() {
    let mut data = CHROME_REQUEST.to_vec();
    data.extend_from_slice(b"\x81\x80abcd");
    for split in [1, 10, CHROME_REQUEST.len() - 1, CHROME_REQUEST.len(), CHROME_REQUEST.len() + 2] {
        let mut server = ServerHandshake::new(Arc::new(ServerConfig::default()));
        let request = match server.receive(&data[..split]).unwrap() {
            Some(request) => {
                assert!(split >= CHROME_REQUEST.len());
                assert!(server.receive(&data[split..]).unwrap().is_none());
                request
            }
            None => server.receive(&data[split..]).unwrap().unwrap_or_else(|| panic!("split {split}")),
        };
        let accepted = server.accept(&request, None).unwrap();
        assert_eq!(&accepted.leftover[..], b"\x81\x80abcd", "split {split}");
    }
    // Fed after the request, before accept: still leftover.
    let mut server = ServerHandshake::new(Arc::new(ServerConfig::default()));
    let request = server.receive(&data[..CHROME_REQUEST.len() + 2]).unwrap().unwrap();
    assert!(server.receive(&data[CHROME_REQUEST.len() + 2..]).unwrap().is_none());
    assert_eq!(&server.accept(&request, None).unwrap().leftover[..], b"\x81\x80abcd");
}

#[test]
fn origin_check() {
    let config =
        || with(ServerConfig::default(), |c| c.origins = Some(vec!["http://EXAMPLE.com:8000".into()]));
    assert!(run(config(), CHROME_REQUEST).is_ok());
    let req = with_header(CHROME_REQUEST, "Origin", Some("http://evil.com"));
    let r = run(config(), &req).unwrap_err();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(text(&r).contains("Origin"));
    let req = with_header(CHROME_REQUEST, "Origin", None);
    assert_eq!(run(config(), &req).unwrap_err().status(), StatusCode::FORBIDDEN);
    assert!(run(with(config(), |c| c.allow_missing_origin = true), &req).is_ok());
    // No list: anything goes.
    assert!(run(ServerConfig::default(), &with_header(CHROME_REQUEST, "Origin", Some("x"))).is_ok());
}

#[test]
fn subprotocols() {
    let config = || with(ServerConfig::default(), |c| c.subprotocols = vec!["b".into(), "a".into()]);
    let req = with_header(CHROME_REQUEST, "Sec-WebSocket-Protocol", Some(" a ,\tb"));
    let accepted = run(config(), &req).unwrap();
    assert_eq!(accepted.subprotocol.as_deref(), Some("b"));
    assert_eq!(accepted.response.headers()["sec-websocket-protocol"], "b");
    // Repeated headers.
    let req = with_header(CHROME_REQUEST, "Sec-WebSocket-Protocol", Some("x\r\nSec-WebSocket-Protocol: ,a"));
    assert_eq!(run(config(), &req).unwrap().subprotocol.as_deref(), Some("a"));
    // None in common: no header, or 400 if required.
    let req = with_header(CHROME_REQUEST, "Sec-WebSocket-Protocol", Some("x"));
    let accepted = run(config(), &req).unwrap();
    assert!(accepted.subprotocol.is_none());
    assert!(accepted.response.headers().get("sec-websocket-protocol").is_none());
    let r = run(with(config(), |c| c.require_subprotocol = true), &req).unwrap_err();
    assert_eq!((r.status(), r.reason()), (StatusCode::BAD_REQUEST, Some(&RejectReason::NoSubprotocol)));
    assert!(run(with(config(), |c| c.require_subprotocol = true), CHROME_REQUEST).is_err());
    // Quoted strings are not tokens.
    let req = with_header(CHROME_REQUEST, "Sec-WebSocket-Protocol", Some("\"a\""));
    let r = run(config(), &req).unwrap_err();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(&r).contains("Sec-WebSocket-Protocol"), "{}", text(&r));
    // A selection callback.
    let select: ws_handshake::SelectSubprotocol =
        Arc::new(|_, offered: &[&str]| offered.last().map(|s| s.to_string()));
    let config = with(ServerConfig::default(), |c| c.select_subprotocol = Some(select));
    let req = with_header(CHROME_REQUEST, "Sec-WebSocket-Protocol", Some("a, z"));
    assert_eq!(run(config, &req).unwrap().subprotocol.as_deref(), Some("z"));
}

#[test]
fn extensions() {
    let config = || {
        with(ServerConfig::default(), |c| {
            c.extensions =
                vec![server_factory("permessage-deflate", Rsv::RSV1), server_factory("other", Rsv::RSV2)]
        })
    };
    let accepted = run(config(), CHROME_REQUEST).unwrap();
    assert_eq!(accepted.extensions.len(), 1);
    assert_eq!(
        accepted.response.headers()["sec-websocket-extensions"],
        "permessage-deflate; client_max_window_bits"
    );
    // Fallback offers, odd whitespace, quoted values, repeated headers.
    let req = with_header(
        CHROME_REQUEST,
        "Sec-WebSocket-Extensions",
        Some(
            "permessage-deflate;bad , permessage-deflate ; a=\"1\"\r\nSec-WebSocket-Extensions: , other;  b",
        ),
    );
    let accepted = run(config(), &req).unwrap();
    assert_eq!(
        accepted.extensions.iter().map(|e| e.name()).collect::<Vec<_>>(),
        ["permessage-deflate", "other"]
    );
    assert_eq!(accepted.response.headers()["sec-websocket-extensions"], "permessage-deflate; a=1, other; b");
    // Malformed header: 400.
    let req = with_header(CHROME_REQUEST, "Sec-WebSocket-Extensions", Some("permessage-deflate; a=\"x y\""));
    let r = run(config(), &req).unwrap_err();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(&r).contains("Sec-WebSocket-Extensions"));
    // Without factories the header is not even parsed.
    assert!(run(ServerConfig::default(), &req).is_ok());
}

#[test]
fn process_request_hook() {
    let hook: ws_handshake::ProcessRequest = Arc::new(|req| {
        (req.uri().path() == "/health").then(|| {
            let mut r = Response::new(Bytes::from_static(b"OK\n"));
            r.headers_mut().insert("content-length", "3".parse().unwrap());
            r
        })
    });
    let config = with(ServerConfig::default(), |c| c.process_request = Some(hook));
    let config = Arc::new(config);
    // Health checks need no WebSocket headers at all.
    let mut server = ServerHandshake::new(config.clone());
    let req = server.receive(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap().unwrap();
    let r = server.accept(&req, Some(UNIX_EPOCH)).unwrap_err();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.reason().is_none());
    assert_eq!(r.response().headers()["date"], "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(r.response().headers()["server"], ws_handshake::SERVER);
    let mut out = Vec::new();
    r.write_response(&mut out);
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n") && out.ends_with(b"\r\n\r\nOK\n"));
    let mut server = ServerHandshake::new(config);
    let req = server.receive(CHROME_REQUEST).unwrap().unwrap();
    assert!(server.accept(&req, None).is_ok());
}

/// The header names of a rejection, sorted.
fn header_names(r: &Rejection) -> Vec<String> {
    let mut names: Vec<String> = r.response().headers().keys().map(|n| n.to_string()).collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_rejection_carries_date_and_server() {
    let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
    let date = "Sun, 06 Nov 1994 08:49:37 GMT";
    let config = Arc::new(with(ServerConfig::default(), |c| c.limits.max_header_bytes = 1024));
    // Refused while reading (malformed, over a limit), and again on the next call.
    let mut read_stage = Vec::new();
    for request in [&b"NOT HTTP\r\n\r\n"[..], &[b'a'; 2000]] {
        let mut server = ServerHandshake::new(config.clone());
        read_stage.push(server.receive_at(request, Some(now)).unwrap_err());
        read_stage.push(server.receive_at(b"more", Some(now)).unwrap_err());
    }
    // Refused by the checks after reading.
    let mut server = ServerHandshake::new(config.clone());
    let request = server.receive_at(&with_header(CHROME_REQUEST, "Host", None), Some(now)).unwrap().unwrap();
    let checked = server.accept(&request, Some(now)).unwrap_err();
    for r in &read_stage {
        let h = r.response().headers();
        assert_eq!(h["date"], date, "{r}");
        assert_eq!(h["server"], ws_handshake::SERVER, "{r}");
        assert_eq!(header_names(r), header_names(&checked), "{r}");
    }
    assert_eq!(header_names(&checked), ["connection", "content-length", "content-type", "date", "server"]);
    // `receive` has no clock: no Date, everything else the same.
    let r = ServerHandshake::new(config).receive(b"NOT HTTP\r\n\r\n").unwrap_err();
    assert!(r.response().headers().get("date").is_none());
    assert_eq!(r.response().headers()["server"], ws_handshake::SERVER);
}

/// Parses a serialized response and returns its body as framed by `Content-Length`.
fn framed_body(wire: &[u8]) -> (u16, http::HeaderMap, Vec<u8>) {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = parsed.parse(wire).unwrap() else { panic!("partial head") };
    let mut map = http::HeaderMap::new();
    for h in parsed.headers.iter() {
        map.append(
            http::HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(h.value).unwrap(),
        );
    }
    let len: usize = map["content-length"].to_str().unwrap().parse().unwrap();
    (parsed.code.unwrap(), map, wire[head_len..head_len + len].to_vec())
}

#[test]
fn hook_responses_are_completed() {
    let bare: ws_handshake::ProcessRequest = Arc::new(|req| match req.uri().path() {
        "/health" => Some(Response::new(Bytes::from_static(b"OK\n"))),
        "/teapot" => {
            let mut r = Response::new(Bytes::from_static(b"short and stout"));
            *r.status_mut() = StatusCode::IM_A_TEAPOT;
            Some(r)
        }
        _ => None,
    });
    let config = Arc::new(with(ServerConfig::default(), |c| c.process_request = Some(bare)));
    for (path, status, body) in [("/health", 200, &b"OK\n"[..]), ("/teapot", 418, b"short and stout")] {
        let mut server = ServerHandshake::new(config.clone());
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let req = server.receive_at(request.as_bytes(), Some(UNIX_EPOCH)).unwrap().unwrap();
        let r = server.accept(&req, Some(UNIX_EPOCH)).unwrap_err();
        let mut wire = Vec::new();
        r.write_response(&mut wire);
        let (code, h, framed) = framed_body(&wire);
        assert_eq!((code, &framed[..]), (status, body), "{path}");
        assert_eq!(h["connection"], "close", "{path}");
        assert_eq!(h["date"], "Thu, 01 Jan 1970 00:00:00 GMT", "{path}");
        assert_eq!(h["server"], ws_handshake::SERVER, "{path}");
    }
    // A response that replaces the 101 is completed the same way.
    let replace: ws_handshake::ProcessResponse =
        Arc::new(|_, _| Some(Response::new(Bytes::from_static(b"later"))));
    let config = Arc::new(with(ServerConfig::default(), |c| c.process_response = Some(replace)));
    let mut server = ServerHandshake::new(config);
    let req = server.receive_at(CHROME_REQUEST, Some(UNIX_EPOCH)).unwrap().unwrap();
    let r = server.accept(&req, Some(UNIX_EPOCH)).unwrap_err();
    let h = r.response().headers();
    assert_eq!(h["content-length"], "5");
    assert_eq!(h["connection"], "close");
    assert_eq!(h["date"], "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(h["server"], ws_handshake::SERVER);
}

#[test]
fn hook_headers_are_kept() {
    let response = |status: u16, headers: &[(&'static str, &'static str)], body: &'static [u8]| {
        let mut r = Response::new(Bytes::from_static(body));
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        for (name, value) in headers {
            r.headers_mut().append(*name, value.parse().unwrap());
        }
        Rejection::from_response(r).into_response()
    };
    // The size of a HEAD answer, and a deliberate Connection value, stay.
    let r = response(200, &[("content-length", "1234"), ("connection", "keep-alive")], b"");
    assert_eq!(r.headers()["content-length"], "1234");
    assert_eq!(r.headers()["connection"], "keep-alive");
    // A chunked body gets no Content-Length beside its Transfer-Encoding.
    let r = response(200, &[("transfer-encoding", "chunked")], b"3\r\nabc\r\n0\r\n\r\n");
    assert!(r.headers().get("content-length").is_none());
    assert_eq!(r.headers()["connection"], "close");
    // No Content-Length where none may be sent (RFC 9110 §8.6).
    for status in [204, 304] {
        let r = response(status, &[], b"");
        assert!(r.headers().get("content-length").is_none(), "{status}");
        assert_eq!(r.headers()["connection"], "close");
    }
    // Server and Date set by the hook stay too.
    let hook: ws_handshake::ProcessRequest = Arc::new(|_| {
        let mut r = Response::new(Bytes::new());
        r.headers_mut().insert("server", "mine".parse().unwrap());
        r.headers_mut().insert("date", "Mon, 01 Jan 2024 00:00:00 GMT".parse().unwrap());
        Some(r)
    });
    let config = Arc::new(with(ServerConfig::default(), |c| c.process_request = Some(hook)));
    let r = config.accept(&http::Request::new(()), Some(UNIX_EPOCH)).unwrap_err();
    let h = r.response().headers();
    assert_eq!(h["server"], "mine");
    assert_eq!(h["date"], "Mon, 01 Jan 2024 00:00:00 GMT");
    assert_eq!(h["content-length"], "0");
}

#[test]
fn process_response_hook() {
    let hook: ws_handshake::ProcessResponse = Arc::new(|_, resp| {
        resp.headers_mut().insert("x-edited", "yes".parse().unwrap());
        None
    });
    let config = with(ServerConfig::default(), |c| c.process_response = Some(hook));
    let accepted = run(config, CHROME_REQUEST).unwrap();
    assert_eq!(accepted.response.headers()["x-edited"], "yes");
    let hook: ws_handshake::ProcessResponse =
        Arc::new(|_, _| Some(Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()));
    let config = with(ServerConfig::default(), |c| c.process_response = Some(hook));
    let r = run(config, CHROME_REQUEST).unwrap_err();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(text(&r), "busy\n");
}

#[test]
fn basic_auth_hook() {
    let hook = basic_auth("my \"realm\"", |u, p| u == "alice" && p == "s3cr:t").unwrap();
    let config = Arc::new(with(ServerConfig::default(), |c| c.process_request = Some(hook)));
    let check = |auth: Option<&str>| {
        let req = with_header(CHROME_REQUEST, "Authorization", auth);
        let mut server = ServerHandshake::new(config.clone());
        let req = server.receive(&req).unwrap().unwrap();
        server.accept(&req, None)
    };
    let r = check(None).unwrap_err();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.response().headers()["www-authenticate"],
        "Basic realm=\"my \\\"realm\\\"\", charset=\"UTF-8\""
    );
    assert_eq!(text(&r), "Missing credentials\n");
    // alice:wrong
    let r = check(Some("Basic YWxpY2U6d3Jvbmc=")).unwrap_err();
    assert_eq!(text(&r), "Invalid credentials\n");
    let r = check(Some("Bearer abc")).unwrap_err();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // alice:s3cr:t
    assert!(check(Some("basic YWxpY2U6czNjcjp0")).is_ok());
    assert!(basic_auth("bad\nrealm", |_, _| true).is_err());
}

/// Request smuggling surfaces (issue 23): a body on the upgrade request, bare-LF line endings,
/// and request targets that are not a resource. Python `websockets` refuses the first two.
#[test]
fn smuggling_surfaces_are_refused() {
    let req = CHROME_REQUEST;
    let refused: Vec<(Vec<u8>, RejectReason)> = vec![
        (with_header(req, "Content-Length", Some("5")), RejectReason::Body),
        (with_header(req, "Content-Length", Some("0\r\nContent-Length: 5")), RejectReason::Body),
        (with_header(req, "Transfer-Encoding", Some("chunked")), RejectReason::Body),
        (with_header(req, "Transfer-Encoding", Some("identity")), RejectReason::Body),
        (with_header(req, "Transfer-Encoding", Some("")), RejectReason::Body),
        (req.replacen(b"/chat", b"*"), RejectReason::Target),
        (req.replacen(b"/chat", b"example.com:8000"), RejectReason::Target),
        (req.replacen(b"/chat", b"ftp://example.com/chat"), RejectReason::Target),
    ];
    for (request, reason) in refused {
        let rejection = run(ServerConfig::default(), &request).unwrap_err();
        assert_eq!(rejection.status(), StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&request));
        assert_eq!(rejection.reason(), Some(&reason), "{}", String::from_utf8_lossy(&request));
    }
    // Bare LF anywhere in the head: the end of a header line, the request line, the final line.
    let text = std::str::from_utf8(req).unwrap();
    for (n, _) in text.match_indices("\r\n").enumerate() {
        let nth = text.match_indices("\r\n").nth(n).unwrap().0;
        let bare = format!("{}\n{}", &text[..nth], &text[nth + 2..]);
        let rejection = run(ServerConfig::default(), bare.as_bytes()).unwrap_err();
        assert_eq!(rejection.status(), StatusCode::BAD_REQUEST, "LF #{n}");
        assert!(
            matches!(rejection.reason(), Some(RejectReason::Malformed(why)) if why.contains("without CR")),
            "LF #{n}: {:?}",
            rejection.reason()
        );
    }
    // What stays accepted: `Content-Length: 0` (some clients send it, repeated even), and an
    // absolute http(s) URI (RFC 6455 §4.2.1).
    let zero = with_header(req, "Content-Length", Some("0\r\nContent-Length: 0"));
    assert!(run(ServerConfig::default(), &zero).is_ok());
    for target in ["http://example.com:8000/chat", "HTTPS://example.com/chat?x=1"] {
        let accepted = run(ServerConfig::default(), &req.replacen(b"/chat", target.as_bytes())).unwrap();
        assert!(accepted.response.status() == StatusCode::SWITCHING_PROTOCOLS, "{target}");
    }
}
