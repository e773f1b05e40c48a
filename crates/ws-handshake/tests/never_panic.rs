//! Property tests: arbitrary bytes, fed in arbitrary pieces, never panic and never make either
//! side buffer more than its head limit.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use ws_extensions::Rsv;
use ws_handshake::{ClientConfig, ClientHandshake, Limits, ServerConfig, ServerHandshake};

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_header_bytes = 512;
    limits.max_line_length = 200;
    limits.max_headers = 8;
    limits
}

fn server_config() -> Arc<ServerConfig> {
    let mut config = ServerConfig::default();
    config.limits = limits();
    config.subprotocols = vec!["chat".into()];
    config.extensions = vec![common::server_factory("permessage-deflate", Rsv::RSV1)];
    Arc::new(config)
}

fn client_config() -> Arc<ClientConfig> {
    let mut config = ClientConfig::default();
    config.limits = limits();
    config.subprotocols = vec!["chat".into()];
    config.extensions = vec![common::client_factory("permessage-deflate", Rsv::RSV1)];
    Arc::new(config)
}

/// Splits `data` at the given (sorted, deduplicated) cut points.
fn pieces(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        out.push(data[start..c].to_vec());
        start = c;
    }
    out.push(data[start..].to_vec());
    out
}

/// Bytes that look like a handshake request, to get past the first line often.
fn requestish() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"GET /chat HTTP/1.1".to_vec()),
        Just(b"Host: x".to_vec()),
        Just(b"Upgrade: websocket".to_vec()),
        Just(b"Connection: Upgrade".to_vec()),
        Just(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".to_vec()),
        Just(b"Sec-WebSocket-Version: 13".to_vec()),
        "Sec-WebSocket-Protocol: [a-z ,\"]{0,10}".prop_map(String::into_bytes),
        "Sec-WebSocket-Extensions: [a-z ,;=\"-]{0,30}".prop_map(String::into_bytes),
        "HTTP/1.1 [0-9]{3} [A-Z]{0,5}".prop_map(String::into_bytes),
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\\+xOo=".prop_map(String::into_bytes),
        "Content-Length: [0-9]{1,3}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..40),
    ];
    proptest::collection::vec(line, 0..12).prop_map(|lines| {
        let mut out = lines.join(&b"\r\n"[..]);
        out.extend_from_slice(b"\r\n\r\n");
        out
    })
}

fn any_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..2048), requestish()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn server_never_panics(data in any_input(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let mut server = ServerHandshake::new(server_config());
        for piece in pieces(&data, &cuts) {
            let before = server.buffered();
            match server.receive(&piece) {
                Ok(Some(request)) => {
                    let _ = server.accept(&request, None);
                    break;
                }
                Ok(None) => prop_assert!(server.buffered() <= 512, "buffered {}", server.buffered()),
                Err(rejection) => {
                    prop_assert!(rejection.status().is_client_error());
                    prop_assert!(server.buffered() <= before.max(512));
                    let mut out = Vec::new();
                    rejection.write_response(&mut out);
                    break;
                }
            }
        }
    }

    #[test]
    fn client_never_panics(data in any_input(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let mut client =
            ClientHandshake::with_key("ws://x/", client_config(), *b"the sample nonce").unwrap();
        let mut done = false;
        for piece in pieces(&data, &cuts) {
            match client.receive(&piece) {
                Ok(Some(_)) | Err(_) => {
                    done = true;
                    break;
                }
                Ok(None) => prop_assert!(client.buffered() <= 512),
            }
        }
        if !done {
            let _ = client.receive_eof();
        }
    }
}

/// Strings shaped like WebSocket URIs, with the characters that make authorities tricky.
fn uriish() -> impl Strategy<Value = String> {
    "(ws|wss|WS|http)?(://)?[a-z0-9@:%+\\-.\\[\\]]{0,24}([/?#][a-z0-9/?#%:]{0,8})?"
}

proptest! {
    /// Any string: an error or a usable target, never a panic, never port 0 or an empty host,
    /// and a port in the `Host` header is the one connected to.
    #[test]
    fn uri_parsing_never_panics(uri in prop_oneof![uriish(), any::<String>()]) {
        if let Ok(client) = ClientHandshake::new(&uri, Arc::new(ClientConfig::default())) {
            let target = client.target();
            prop_assert!(target.port != 0 && !target.host.is_empty(), "{uri}: {target:?}");
            let host = client.request().headers()["host"].to_str().unwrap();
            if let Some((_, port)) = host.rsplit_once(':').filter(|_| !host.ends_with(']')) {
                prop_assert_eq!(port.parse::<u16>().ok(), Some(target.port), "{}", uri);
            }
        }
    }
}
