//! The `ws-handshake` harnesses: arbitrary bytes, cut into pieces, as an HTTP upgrade request
//! into a [`ServerHandshake`] (then `accept`), or as a response into a [`ClientHandshake`] that
//! sent a fixed key. Replayed by `crates/ws-handshake/tests/fuzz_replay.rs`.
//!
//! Input layout: byte 0 picks the configuration, byte 1 the chunk size (0 = all at once), the
//! rest is the wire.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ws_deflate::{ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory};
use ws_handshake::{ClientConfig, ClientError, ClientHandshake, Limits, ServerConfig, ServerHandshake};

/// The RFC 6455 §1.3 sample nonce, so seeds can hold a response with the right accept value
/// (`s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`).
pub const CLIENT_KEY: [u8; 16] = *b"the sample nonce";

/// Small limits for half the inputs, so the fuzzer reaches them quickly.
fn limits(small: bool) -> Limits {
    let mut limits = Limits::default();
    if small {
        limits.max_header_bytes = 512;
        limits.max_headers = 8;
        limits.max_line_length = 128;
    }
    limits
}

fn chunks(size: u8, wire: &[u8]) -> std::slice::Chunks<'_, u8> {
    wire.chunks(if size == 0 { wire.len().max(1) } else { usize::from(size) })
}

/// Asserts that serialized head bytes are one well-formed head: a single blank line, at its end,
/// and no bare CR or LF (header injection) nor NUL anywhere before it.
fn check_head(head: &[u8]) {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").expect("a head ends with CRLF CRLF");
    let head = &head[..end + 2];
    for (i, &b) in head.iter().enumerate() {
        assert_ne!(b, 0, "NUL in a written head");
        match b {
            b'\r' => assert_eq!(head.get(i + 1), Some(&b'\n'), "bare CR in a written head"),
            b'\n' => assert_eq!(head[i - 1], b'\r', "bare LF in a written head"),
            _ => {}
        }
    }
}

/// Server side: `receive` until a request, then `accept`; checks the limits held and that
/// whatever is written back (101 or error response) is a well-formed head.
pub fn run_server(data: &[u8]) {
    let [options, chunk, wire @ ..] = data else {
        return;
    };
    let mut config = ServerConfig::default();
    config.limits = limits(options & 0x01 != 0);
    if options & 0x02 != 0 {
        config.subprotocols = vec!["chat".into(), "superchat".into()];
        config.require_subprotocol = options & 0x04 != 0;
    }
    if options & 0x08 != 0 {
        config.origins = Some(vec!["https://example.com".into(), "http://localhost:8000".into()]);
        config.allow_missing_origin = options & 0x10 != 0;
    }
    if options & 0x20 != 0 {
        config.extensions = vec![Arc::new(ServerPerMessageDeflateFactory::default())];
    }
    let max_head = config.limits.max_header_bytes;
    let now = (options & 0x40 != 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let mut server = ServerHandshake::new(Arc::new(config));
    let mut request = None;
    for piece in chunks(*chunk, wire) {
        match server.receive(piece) {
            Ok(None) => assert!(server.buffered() <= max_head, "{} bytes buffered", server.buffered()),
            Ok(Some(r)) => {
                request = Some(r);
                break;
            }
            Err(rejection) => {
                let mut out = Vec::new();
                rejection.write_response(&mut out);
                check_head(&out);
                return;
            }
        }
    }
    let Some(request) = request else {
        return;
    };
    let mut out = Vec::new();
    match server.accept(&request, now) {
        Ok(accepted) => {
            assert_eq!(accepted.response.status(), 101);
            accepted.write_response(&mut out);
        }
        Err(rejection) => {
            assert!(rejection.status().is_client_error() || rejection.status().is_server_error());
            rejection.write_response(&mut out);
        }
    }
    check_head(&out);
}

/// Client side, with the fixed [`CLIENT_KEY`]: `receive` the response in pieces; a 101 must
/// carry the right accept value, and a rejection's body stays within `max_error_body`.
pub fn run_client(data: &[u8]) {
    let [options, chunk, wire @ ..] = data else {
        return;
    };
    let mut config = ClientConfig::default();
    config.limits = limits(options & 0x01 != 0);
    config.max_error_body = if options & 0x02 != 0 { 16 } else { 4096 };
    if options & 0x04 != 0 {
        config.subprotocols = vec!["chat".into(), "superchat".into()];
    }
    if options & 0x08 != 0 {
        config.extensions = vec![Arc::new(ClientPerMessageDeflateFactory::default())];
    }
    let max_head = config.limits.max_header_bytes;
    let max_body = config.max_error_body;
    let mut client = ClientHandshake::with_key("ws://example.com/chat", Arc::new(config), CLIENT_KEY)
        .expect("a valid client");
    let mut request = Vec::new();
    client.write_request(&mut request);
    check_head(&request);
    let mut done = false;
    for piece in chunks(*chunk, wire) {
        match client.receive(piece) {
            Ok(None) => assert!(client.buffered() <= max_head, "{} bytes buffered", client.buffered()),
            Ok(Some(accepted)) => {
                assert_eq!(accepted.response.status(), 101);
                let accept =
                    accepted.response.headers().get("sec-websocket-accept").expect("an accept header");
                assert_eq!(accept.as_bytes(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
                done = true;
                break;
            }
            Err(ClientError::Rejected(response)) => {
                assert!(response.body().len() <= max_body);
                done = true;
                break;
            }
            Err(_) => {
                done = true;
                break;
            }
        }
    }
    if !done {
        if let ClientError::Rejected(response) = client.receive_eof() {
            assert!(response.body().len() <= max_body);
        }
    }
}
