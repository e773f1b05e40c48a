//! Client handshake: the request it builds and every check on the response.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::client_factory;
use http::{HeaderValue, StatusCode};
use ws_extensions::Rsv;
use ws_handshake::{ClientConfig, ClientError, ClientHandshake, LimitExceeded};

const KEY: [u8; 16] = *b"the sample nonce";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn with(f: impl FnOnce(&mut ClientConfig)) -> Arc<ClientConfig> {
    let mut config = ClientConfig::default();
    f(&mut config);
    Arc::new(config)
}

fn client(uri: &str, config: Arc<ClientConfig>) -> ClientHandshake {
    ClientHandshake::with_key(uri, config, KEY).unwrap()
}

fn request_text(c: &ClientHandshake) -> String {
    let mut out = Vec::new();
    c.write_request(&mut out);
    String::from_utf8(out).unwrap()
}

fn response(extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
    )
    .into_bytes()
}

#[test]
fn request_bytes() {
    let c = client("ws://example.com/chat?room=1", Arc::new(ClientConfig::default()));
    assert_eq!(
        request_text(&c),
        format!(
            "GET /chat?room=1 HTTP/1.1\r\n\
             Host: example.com\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\
             User-Agent: ws-rs/{}\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let t = c.target();
    assert_eq!((t.host.as_str(), t.port, t.secure), ("example.com", 80, false));
}

#[test]
fn uris() {
    let cases = [
        ("ws://example.com", "/", "example.com", 80, false),
        ("ws://example.com:80/", "/", "example.com", 80, false),
        ("WSS://example.com:443", "/", "example.com", 443, true),
        ("wss://example.com:8443/a/b", "/a/b", "example.com:8443", 8443, true),
        ("ws://example.com?x=1", "/?x=1", "example.com", 80, false),
        ("ws://[::1]:9000/", "/", "[::1]:9000", 9000, false),
    ];
    for (uri, path, host, port, secure) in cases {
        let c = client(uri, Arc::new(ClientConfig::default()));
        assert_eq!(c.request().uri(), path, "{uri}");
        assert_eq!(c.request().headers()["host"], host, "{uri}");
        assert_eq!((c.target().port, c.target().secure), (port, secure), "{uri}");
    }
    assert_eq!(client("ws://[::1]/", Arc::new(ClientConfig::default())).target().host, "::1");
    for bad in
        ["http://example.com", "example.com", "ws://", "ws://example.com/#frag", "ws://exa mple.com", ""]
    {
        let e = ClientHandshake::new(bad, Arc::new(ClientConfig::default())).unwrap_err();
        assert!(matches!(e, ClientError::InvalidUri(_)), "{bad}: {e}");
        assert!(e.to_string().starts_with("invalid WebSocket URI"));
    }
}

fn uri_error(uri: &str) -> String {
    match ClientHandshake::new(uri, Arc::new(ClientConfig::default())) {
        Err(e @ ClientError::InvalidUri(_)) => e.to_string(),
        Err(e) => panic!("{uri}: not InvalidUri: {e}"),
        Ok(c) => panic!("{uri}: accepted, target {:?}", c.target()),
    }
}

#[test]
fn bad_ports_are_errors_not_port_80() {
    let cases = [
        ("ws://127.0.0.1:99999/", "invalid port 99999: out of range 1-65535"),
        ("ws://example.com:65536/", "invalid port 65536: out of range"),
        ("ws://example.com:abc/", "invalid port \"abc\": not a number"),
        ("wss://example.com:+443/", "invalid port \"+443\": not a number"),
        ("ws://example.com:-1/", "invalid port \"-1\": not a number"),
        ("ws://example.com:0/", "invalid port 0"),
        ("ws://[::1]:99999/", "invalid port 99999"),
        ("ws://[::1]x/", "unexpected \"x\" after the host"),
    ];
    for (uri, why) in cases {
        let e = uri_error(uri);
        assert!(e.starts_with(&format!("invalid WebSocket URI: {uri:?}: ")), "{e}");
        assert!(e.contains(why), "{uri}: {e}");
    }
    // Leading zeros are digits; an empty port is the default (RFC 3986 §3.2.3).
    let c = client("ws://example.com:08080/", Arc::new(ClientConfig::default()));
    assert_eq!(c.target().port, 8080);
    assert_eq!(c.request().headers()["host"], "example.com:8080");
    let c = client("wss://example.com:/", Arc::new(ClientConfig::default()));
    assert_eq!(c.target().port, 443);
    assert_eq!(c.request().headers()["host"], "example.com");
    let c = client("ws://h:65535", Arc::new(ClientConfig::default()));
    assert_eq!(c.target().port, 65535);
}

#[test]
fn uri_edge_cases() {
    for uri in
        ["ws://", "wss://", "ws:///chat", "ws://?x=1", "ws://:8765/", "ws://alice:pw@/", "ws://u:p@:80/"]
    {
        let e = uri_error(uri);
        assert!(e.ends_with(": missing host"), "{uri}: {e}");
    }
    // RFC 6455 §3: no fragments, not even an empty one.
    for uri in ["ws://example.com/#frag", "ws://example.com/chat#", "ws://example.com#x"] {
        assert!(uri_error(uri).contains("fragments are not allowed"), "{uri}");
    }
    // Brackets hold IPv6 addresses only; anything else would be looked up in DNS.
    assert!(uri_error("ws://[zzz]/").contains("[zzz] is not an IPv6 address"));
    assert!(uri_error("ws://[v1.x]/").contains("not an IPv6 address"));
    let c = client("ws://[::1]:8765/chat", Arc::new(ClientConfig::default()));
    assert_eq!((c.target().host.as_str(), c.target().port), ("::1", 8765));
    assert_eq!(c.request().headers()["host"], "[::1]:8765");
    let c = client("wss://[2001:db8::1]/", Arc::new(ClientConfig::default()));
    assert_eq!((c.target().host.as_str(), c.target().port), ("2001:db8::1", 443));
    assert_eq!(c.request().headers()["host"], "[2001:db8::1]");
    let c = client("ws://[fe80::1%25eth0]:9/", Arc::new(ClientConfig::default()));
    assert_eq!(c.target().host, "fe80::1%25eth0");
    // Userinfo: Basic credentials need a password part (as in Python `websockets`), and the
    // password never appears in the error message.
    assert!(uri_error("ws://alice@example.com/").contains("user name without password"));
    assert!(uri_error("ws://@example.com/").contains("empty userinfo"));
    let e = uri_error("ws://alice:s3cret@example.com:99999/");
    assert!(e.contains("\"ws://alice:***@example.com:99999/\"") && !e.contains("s3cret"), "{e}");
    let e = uri_error("ws://alice:p%2Bw@example.com/#x");
    assert!(!e.contains("p%2Bw"), "{e}");
    for bad_escape in ["ws://alice:%+1@example.com/", "ws://alice:%4@example.com/", "ws://%zz:x@example.com/"]
    {
        assert!(uri_error(bad_escape).contains("invalid percent-encoding in userinfo"), "{bad_escape}");
    }
    let c = client("ws://alice:@example.com/", Arc::new(ClientConfig::default()));
    assert_eq!(c.request().headers()["authorization"], "Basic YWxpY2U6"); // base64("alice:")
}

#[test]
fn userinfo_becomes_basic_auth() {
    let c = client("ws://alice:s%40cret@example.com/", Arc::new(ClientConfig::default()));
    // base64("alice:s@cret")
    assert_eq!(c.request().headers()["authorization"], "Basic YWxpY2U6c0BjcmV0");
    assert_eq!(c.request().headers()["host"], "example.com");
    let parsed = ws_handshake::parse_basic_auth(&c.request().headers()["authorization"]).unwrap();
    assert_eq!(parsed, ("alice".to_owned(), "s@cret".to_owned()));
}

#[test]
fn offers_and_headers() {
    let config = with(|c| {
        c.origin = Some("https://example.com".into());
        c.subprotocols = vec!["chat".into(), "superchat".into()];
        c.extensions = vec![client_factory("ext-a", Rsv::RSV1), client_factory("ext-b", Rsv::RSV2)];
        c.headers.insert("x-custom", HeaderValue::from_static("1"));
        c.headers.insert("user-agent", HeaderValue::from_static("mine/2"));
    });
    let c = client("wss://example.com/", config);
    let h = c.request().headers();
    assert_eq!(h["origin"], "https://example.com");
    assert_eq!(h["sec-websocket-protocol"], "chat, superchat");
    assert_eq!(h["sec-websocket-extensions"], "ext-a; x=1, ext-a, ext-b; x=1, ext-b");
    assert_eq!(h["x-custom"], "1");
    assert_eq!(h.get_all("user-agent").iter().collect::<Vec<_>>(), ["mine/2"]);
    let c = client("ws://x/", with(|c| c.user_agent = None));
    assert!(c.request().headers().get("user-agent").is_none());
}

#[test]
fn bad_config_rejected_before_sending() {
    let cases: Vec<Arc<ClientConfig>> = vec![
        with(|c| c.origin = Some("http://x\r\nEvil: 1".into())),
        with(|c| c.user_agent = Some("a\nb".into())),
        with(|c| c.subprotocols = vec!["a b".into()]),
        with(|c| {
            c.headers.insert("sec-websocket-key", HeaderValue::from_static("x"));
        }),
        with(|c| {
            c.headers.insert("connection", HeaderValue::from_static("close"));
        }),
    ];
    for config in cases {
        let e = ClientHandshake::new("ws://x/", config).unwrap_err();
        assert!(matches!(e, ClientError::InvalidHeader { .. }), "{e}");
    }
}

#[test]
fn accepts_in_pieces_with_leftover() {
    let config = with(|c| {
        c.subprotocols = vec!["chat".into()];
        c.extensions = vec![client_factory("ext-a", Rsv::RSV1)];
    });
    let mut data = response("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: ext-a; x=\"1\"\r\n");
    data.extend_from_slice(b"\x81\x02hi");
    let head_len = data.len() - 4;
    for split in 0..data.len() {
        let mut c = client("ws://x/", config.clone());
        let (accepted, fed) = match c.receive(&data[..split]).unwrap() {
            Some(a) => (a, split),
            None => (c.receive(&data[split..]).unwrap().unwrap(), data.len()),
        };
        assert_eq!(accepted.subprotocol.as_deref(), Some("chat"));
        assert_eq!(accepted.extensions.len(), 1);
        assert_eq!(&accepted.leftover[..], &data[head_len..fed], "split {split}");
        assert!(matches!(c.receive(b"more"), Err(ClientError::Finished)));
    }
}

#[test]
fn response_checks() {
    let config = with(|c| {
        c.subprotocols = vec!["chat".into()];
        c.extensions = vec![client_factory("ext-a", Rsv::RSV1), client_factory("ext-b", Rsv::RSV1)];
    });
    let run = |data: &[u8]| client("ws://x/", config.clone()).receive(data);
    let wrong_accept = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n";
    let no_upgrade = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
    );
    let bad_upgrade = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket, h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
    );
    let no_connection = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
    );
    assert!(matches!(run(wrong_accept), Err(ClientError::Accept)));
    assert!(matches!(run(no_upgrade.as_bytes()), Err(ClientError::Upgrade)));
    assert!(matches!(run(bad_upgrade.as_bytes()), Err(ClientError::Upgrade)));
    assert!(matches!(run(no_connection.as_bytes()), Err(ClientError::Connection)));
    assert!(matches!(
        run(&response("Sec-WebSocket-Protocol: other\r\n")),
        Err(ClientError::Subprotocol(None))
    ));
    assert!(matches!(
        run(&response("Sec-WebSocket-Protocol: chat, chat\r\n")),
        Err(ClientError::Subprotocol(None))
    ));
    assert!(matches!(
        run(&response("Sec-WebSocket-Protocol: \"chat\"\r\n")),
        Err(ClientError::Subprotocol(Some(_)))
    ));
    assert!(matches!(
        run(&response("Sec-WebSocket-Extensions: ext-a; x=\"a b\"\r\n")),
        Err(ClientError::ExtensionsHeader(_))
    ));
    assert!(matches!(
        run(&response("Sec-WebSocket-Extensions: ext-z\r\n")),
        Err(ClientError::Negotiation(_))
    ));
    assert!(matches!(
        run(&response("Sec-WebSocket-Extensions: ext-a; bad\r\n")),
        Err(ClientError::Negotiation(_))
    ));
    // RSV conflict between two accepted extensions, across repeated headers.
    let e =
        run(&response("Sec-WebSocket-Extensions: ext-a\r\nSec-WebSocket-Extensions: ext-b\r\n")).unwrap_err();
    assert!(e.to_string().contains("RSV"), "{e}");
    assert!(std::error::Error::source(&e).is_some());
    // Lenient but valid forms.
    let ok = response("Connection: keep-alive\r\nSec-WebSocket-Extensions: , ext-a ;  x = 1 ,\r\n");
    let ok = String::from_utf8(ok).unwrap().replace("Upgrade: websocket", "Upgrade: WebSocket");
    assert_eq!(run(ok.as_bytes()).unwrap().unwrap().extensions.len(), 1);
    assert!(matches!(run(b"HTTP/1.1 abc\r\n\r\n"), Err(ClientError::Malformed(_))));
    let mut c = client("ws://x/", config.clone());
    assert!(matches!(c.receive(&vec![b'a'; 9000]), Err(ClientError::Limit(LimitExceeded::StartLineLength))));
    let mut c = client("ws://x/", config.clone());
    assert!(matches!(
        c.receive(&b"x: y\r\n".repeat(2000)),
        Err(ClientError::Limit(LimitExceeded::HeaderCount))
    ));
}

#[test]
fn rejections_keep_the_response() {
    let config = Arc::new(ClientConfig::default());
    // Content-Length body, in pieces.
    let mut c = client("ws://x/", config.clone());
    let head =
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 5\r\n\r\nab";
    assert!(c.receive(head).unwrap().is_none());
    let Err(ClientError::Rejected(r)) = c.receive(b"cdeEXTRA") else { panic!() };
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"x\"");
    assert_eq!(&r.body()[..], b"abcde");
    // Redirect without a body.
    let mut c = client("ws://x/", config.clone());
    let Err(ClientError::Rejected(r)) =
        c.receive(b"HTTP/1.1 302 Found\r\nLocation: ws://y/\r\nContent-Length: 0\r\n\r\n")
    else {
        panic!()
    };
    assert_eq!(r.headers()["location"], "ws://y/");
    // Body to EOF.
    let mut c = client("ws://x/", config.clone());
    assert!(c.receive(b"HTTP/1.1 403 Forbidden\r\n\r\nno").unwrap().is_none());
    assert!(c.receive(b"pe").unwrap().is_none());
    let ClientError::Rejected(r) = c.receive_eof() else { panic!() };
    assert_eq!((r.status(), &r.body()[..]), (StatusCode::FORBIDDEN, &b"nope"[..]));
    assert!(matches!(c.receive_eof(), ClientError::Finished));
    // Body cut at the limit.
    let mut c = client("ws://x/", with(|c| c.max_error_body = 3));
    let Err(ClientError::Rejected(r)) =
        c.receive(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 10\r\n\r\n0123456789")
    else {
        panic!()
    };
    assert_eq!(&r.body()[..], b"012");
    // EOF mid-head.
    let mut c = client("ws://x/", config);
    assert!(c.receive(b"HTTP/1.1 101").unwrap().is_none());
    assert!(matches!(c.receive_eof(), ClientError::UnexpectedEof));
}

/// Frames that arrive in the same read as the 101 cannot be lost: `into_connection` has
/// received them already, and hands back the buffer to append the next reads to.
#[test]
fn frames_behind_the_response_are_received_by_into_connection() {
    let mut c = client("ws://example.com/", Arc::new(ClientConfig::default()));
    let mut bytes = response("");
    bytes.extend_from_slice(&[0x81, 0x02, b'h', b'i', 0x81, 0x03, b'y', b'o']); // "hi" and half of "you"
    let accepted = c.receive(&bytes).unwrap().expect("complete response");
    let (mut conn, mut buf) = accepted.into_connection(ws_handshake::Config::default());
    assert_eq!(conn.next_event(), Some(ws_proto::Event::Message(ws_proto::Message::text("hi"))));
    assert_eq!(conn.next_event(), None);
    buf.extend_from_slice(b"u");
    conn.receive(&mut buf).unwrap();
    assert_eq!(conn.next_event(), Some(ws_proto::Event::Message(ws_proto::Message::text("you"))));
}
