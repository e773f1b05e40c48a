//! Replays the handshake fuzz seeds and any corpus or crash files under `fuzz/` through the
//! fuzz harness (`fuzz/src/handshake.rs`), so plain `cargo test` on stable re-checks every
//! input the fuzzers kept.

#[allow(unreachable_pub, missing_docs, dead_code)]
#[path = "../../../fuzz/src/handshake.rs"]
mod handshake;

#[allow(unreachable_pub, dead_code)]
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use replay::replay;

#[test]
fn replay_handshake_server() {
    replay("handshake_server", handshake::run_server);
}

#[test]
fn replay_handshake_client() {
    replay("handshake_client", handshake::run_client);
}

#[test]
fn harness_edge_cases() {
    for data in [&b""[..], b"\x00", b"\xff\x01", b"\x00\x00\r\n\r\n", b"\x3f\x01GET / HTTP/1.1\r\n\r\n"] {
        handshake::run_server(data);
        handshake::run_client(data);
    }
}

/// Security review checks: header injection and folding are refused on the way in, and
/// nothing with a line break can get into a response on the way out.
#[test]
fn header_injection_is_refused() {
    use std::sync::Arc;
    use ws_handshake::{ServerConfig, ServerHandshake};

    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let base = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    for extra in [
        "X-A: 1\rX-Injected: 2\r\n",           // bare CR inside a line
        "X-A: 1\r\n folded: continuation\r\n", // obs-fold
        "X-A: 1\0\r\n",                        // NUL
        "X A: 1\r\n",                          // space in a name
    ] {
        let request = format!("{base}{extra}{key}\r\n");
        let mut server = ServerHandshake::new(Arc::new(ServerConfig::default()));
        let outcome = server.receive(request.as_bytes());
        assert!(outcome.is_err(), "{extra:?} accepted: {outcome:?}");
        let mut out = Vec::new();
        outcome.unwrap_err().write_response(&mut out);
        assert!(out.starts_with(b"HTTP/1.1 400"), "{}", String::from_utf8_lossy(&out));
    }

    // A subprotocol chooser that returns a CRLF cannot inject a header: the handshake fails.
    let mut config = ServerConfig::default();
    config.select_subprotocol = Some(Arc::new(|_, _| Some("chat\r\nSet-Cookie: x=1".to_owned())));
    let mut server = ServerHandshake::new(Arc::new(config));
    let request = format!("{base}{key}Sec-WebSocket-Protocol: chat\r\n\r\n");
    let request = server.receive(request.as_bytes()).unwrap().unwrap();
    let Err(rejection) = server.accept(&request, None) else { panic!("a CRLF subprotocol was accepted") };
    assert_eq!(rejection.status(), 500);
}
