//! How often the handshake allocates, measured with a counting global allocator.
//!
//! The allocator lives in the `ws-handshake-alloc-counter` helper crate because `GlobalAlloc`
//! needs `unsafe impl` and this workspace forbids `unsafe_code` (a `forbid` cannot be relaxed
//! for one test file). This file has a single test so that no other thread allocates meanwhile.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use ws_handshake::{ClientConfig, ClientHandshake, ServerConfig, ServerHandshake};
use ws_handshake_alloc_counter::{Counting, measure};

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn allocation_counts() {
    let config = Arc::new(ServerConfig::default());
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut out = Vec::with_capacity(1024);
    // Warm up (lazy statics, if any).
    let mut server = ServerHandshake::new(config.clone());
    let request = server.receive(common::CHROME_REQUEST).unwrap().unwrap();
    server.accept(&request, Some(now)).unwrap().write_response(&mut out);

    out.clear();
    let ((), server_allocs, server_bytes) = measure(|| {
        let mut server = ServerHandshake::new(config.clone());
        let request = server.receive(common::CHROME_REQUEST).unwrap().unwrap();
        let accepted = server.accept(&request, Some(now)).unwrap();
        accepted.write_response(&mut out);
    });

    let client_config = Arc::new(ClientConfig::default());
    let response = out.clone();
    let ((), client_allocs, client_bytes) = measure(|| {
        let mut client =
            ClientHandshake::with_key("ws://example.com:8000/chat", client_config, *b"the sample nonce")
                .unwrap();
        let mut request = Vec::with_capacity(512);
        client.write_request(&mut request);
        client.receive(&response).unwrap().unwrap();
    });

    println!(
        "server: parse + accept + write a Chrome request: {server_allocs} allocations, {server_bytes} bytes"
    );
    println!(
        "client: build + write request, parse + check response: {client_allocs} allocations, {client_bytes} bytes"
    );
    assert!(server_allocs <= 10, "server path allocated {server_allocs} times");
    assert!(client_allocs <= 24, "client path allocated {client_allocs} times");
}
