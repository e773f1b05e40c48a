//! `ws-proto` micro-benchmarks: unmasking, frame parsing, frame encoding and UTF-8 validation,
//! each group with a plain `memcpy` (or a bare validator) of the same bytes as the reference line.
//!
//! Run with `cargo bench --bench proto` (add `-- --warm-up-time 1 --measurement-time 2` for a
//! quick pass); results are recorded in `docs/benchmarks-proto.md`.
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::{Buf, Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ws_proto::{Config, Connection, Event, Role, apply_mask};

const SIZES: [(usize, &str); 4] = [(16, "16B"), (1 << 10, "1KiB"), (64 << 10, "64KiB"), (1 << 20, "1MiB")];
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(7)).collect()
}

/// One masked frame as a client puts it on the wire.
fn client_frame(opcode: u8, data: &[u8]) -> Vec<u8> {
    let mut client =
        Connection::new(Role::Client, Config::default().with_max_size(None)).with_mask_seed([5; 32]);
    client.send_binary(Bytes::copy_from_slice(data)).expect("an open client sends");
    let out = client.transmit();
    let mut wire = out.copy_to_bytes(out.remaining()).to_vec();
    wire[0] = 0x80 | opcode;
    wire
}

fn server() -> Connection {
    Connection::new(Role::Server, Config::default().with_max_size(None))
}

/// The reference line of a group: copy `len` bytes from one buffer into another.
fn bench_memcpy(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    len: usize,
    id: &str,
) {
    // Source and destination in one allocation, 128 bytes off a page multiple apart: separate
    // large allocations tend to be page-aligned alike, and on some CPUs (AMD Zen under glibc's
    // `rep movsb` path) such 4 KiB-aliased copies run an order of magnitude slower, which would
    // make a poor reference line.
    let mut both = vec![0u8; 2 * len + 128];
    let (src, dst) = both.split_at_mut(len + 128);
    src[..len].copy_from_slice(&payload(len));
    let (src, dst) = (&src[..len], &mut dst[..len]);
    group.bench_function(BenchmarkId::new("memcpy", id), |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(src));
            black_box(&mut *dst);
        });
    });
}

fn batch_size(len: usize) -> BatchSize {
    if len >= 1 << 20 { BatchSize::LargeInput } else { BatchSize::SmallInput }
}

fn unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("unmask");
    for (len, id) in SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        let mut buf = payload(len);
        group.bench_function(BenchmarkId::new("apply_mask", id), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box(KEY)));
        });
        bench_memcpy(&mut group, len, id);
    }
    group.finish();
}

/// `Connection::receive` of one masked binary frame (server role): header parse, checks, split
/// off the buffer, unmask in place, deliver the message. `receive` gets a fresh buffer holding
/// the frame each time (made outside the timing); `read_and_receive` copies the frame into one
/// reused buffer first, as a socket read would.
fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (len, id) in SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        let wire = client_frame(0x2, &payload(len));
        let mut conn = server();
        group.bench_function(BenchmarkId::new("receive", id), |b| {
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                |mut buf| {
                    conn.receive(&mut buf).expect("a valid frame");
                    let event = conn.next_event();
                    debug_assert!(matches!(event, Some(Event::Message(_))));
                    (buf, event)
                },
                batch_size(len),
            );
        });
        // Steady state, as a socket loop runs: the frame is copied into a reused read buffer
        // (the "read"), received, and the message dropped, so the buffer's storage is reused.
        let mut buf = BytesMut::with_capacity(wire.len());
        group.bench_function(BenchmarkId::new("read_and_receive", id), |b| {
            b.iter(|| {
                buf.extend_from_slice(black_box(&wire));
                conn.receive(&mut buf).expect("a valid frame");
                black_box(conn.next_event())
            });
        });
        bench_memcpy(&mut group, len, id);
    }
    group.finish();
}

/// `send_binary` then drain `transmit` into a reused sink, as a write to a socket would: server
/// role (unmasked; large payloads go out without a copy until the write) and client role
/// (masked into the transmit buffer).
fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (len, id) in SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        let data = Bytes::from(payload(len));
        for (role, name) in [(Role::Server, "send_binary_server"), (Role::Client, "send_binary_client")] {
            let mut conn =
                Connection::new(role, Config::default().with_max_size(None)).with_mask_seed([5; 32]);
            let mut sink = Vec::with_capacity(len + 14);
            group.bench_function(BenchmarkId::new(name, id), |b| {
                b.iter(|| {
                    conn.send_binary(data.clone()).expect("an open connection sends");
                    let out = conn.transmit();
                    sink.clear();
                    while out.has_remaining() {
                        let chunk = out.chunk();
                        sink.extend_from_slice(chunk);
                        let n = chunk.len();
                        out.advance(n);
                    }
                    black_box(&mut sink);
                });
            });
        }
        bench_memcpy(&mut group, len, id);
    }
    group.finish();
}

/// 64 KiB of valid text (ASCII with two-, three- and four-byte code points mixed in).
fn text_64k() -> String {
    let pattern = "The quick brown fox jumps over the lazy dog. κόσμε — 漢字 ✓ 𝄞 ";
    let mut text = String::with_capacity(64 << 10);
    while text.len() + pattern.len() <= 64 << 10 {
        text.push_str(pattern);
    }
    while text.len() < 64 << 10 {
        text.push('.');
    }
    text
}

fn utf8(c: &mut Criterion) {
    let text = text_64k();
    let len = text.len();
    let mut group = c.benchmark_group("utf8");
    group.throughput(Throughput::Bytes(len as u64));
    for (opcode, name) in [(0x1, "connection_text_frame"), (0x2, "connection_binary_frame")] {
        let wire = client_frame(opcode, text.as_bytes());
        let mut conn = server();
        group.bench_function(BenchmarkId::new(name, "64KiB"), |b| {
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                |mut buf| {
                    conn.receive(&mut buf).expect("a valid frame");
                    (buf, conn.next_event())
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.bench_function(BenchmarkId::new("simdutf8_basic", "64KiB"), |b| {
        b.iter(|| simdutf8::basic::from_utf8(black_box(text.as_bytes())).is_ok());
    });
    group.bench_function(BenchmarkId::new("simdutf8_compat", "64KiB"), |b| {
        b.iter(|| simdutf8::compat::from_utf8(black_box(text.as_bytes())).is_ok());
    });
    group.bench_function(BenchmarkId::new("std_from_utf8", "64KiB"), |b| {
        b.iter(|| std::str::from_utf8(black_box(text.as_bytes())).is_ok());
    });
    bench_memcpy(&mut group, len, "64KiB");
    group.finish();
}

criterion_group!(benches, unmask, parse, encode, utf8);
criterion_main!(benches);
