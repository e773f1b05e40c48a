//! Server-side cost of a typical Chrome handshake: parse the request and build the 101.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ws_handshake::{ClientConfig, ClientHandshake, ServerConfig, ServerHandshake};

#[path = "../tests/common/mod.rs"]
mod common;

fn server(c: &mut Criterion) {
    let config = Arc::new(ServerConfig::default());
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut out = Vec::with_capacity(1024);
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Bytes(common::CHROME_REQUEST.len() as u64));
    group.bench_function("server_parse_accept_chrome", |b| {
        b.iter(|| {
            let mut server = ServerHandshake::new(config.clone());
            let request = server.receive(black_box(common::CHROME_REQUEST)).unwrap().unwrap();
            let accepted = server.accept(&request, Some(now)).unwrap();
            out.clear();
            accepted.write_response(&mut out);
            black_box(&out);
        });
    });
    let mut response = Vec::new();
    {
        let mut server = ServerHandshake::new(config.clone());
        let request = server.receive(common::CHROME_REQUEST).unwrap().unwrap();
        server.accept(&request, Some(now)).unwrap().write_response(&mut response);
    }
    let client_config = Arc::new(ClientConfig::default());
    group.bench_function("client_request_and_response", |b| {
        b.iter(|| {
            let mut client = ClientHandshake::with_key(
                "ws://example.com:8000/chat",
                client_config.clone(),
                *b"the sample nonce",
            )
            .unwrap();
            out.clear();
            client.write_request(&mut out);
            black_box(client.receive(black_box(&response)).unwrap().unwrap());
        });
    });
    group.finish();
}

criterion_group!(benches, server);
criterion_main!(benches);
