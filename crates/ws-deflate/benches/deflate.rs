//! Compress and decompress JSON-like text through `PerMessageDeflate`, with raw flate2 (same
//! zlib-rs engine, same window and level) as the reference line.
//!
//! `cargo bench -p ws-deflate --bench deflate`

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use ws_deflate::{PerMessageDeflate, PerMessageDeflateConfig};
use ws_extensions::{Bytes, Extension, Frame, OpCode, Rsv};

#[path = "../tests/support/json.rs"]
mod json;
use json::json;

/// Window 15, level 6, memLevel 8: what flate2 uses, so both lines do the same work. Context is
/// reset per message on both sides so that every iteration compresses the same thing.
fn config() -> PerMessageDeflateConfig {
    PerMessageDeflateConfig {
        local_no_context_takeover: true,
        remote_no_context_takeover: true,
        mem_level: 8,
        compression_threshold: Some(0),
        ..Default::default()
    }
}

fn benches(c: &mut Criterion) {
    let sizes = [("1KiB", 1 << 10), ("64KiB", 64 << 10), ("1MiB", 1 << 20)];

    let mut group = c.benchmark_group("compress");
    for (name, size) in sizes {
        let data = Bytes::from(json(size, 42));
        group.throughput(Throughput::Bytes(size as u64));
        let mut ext = PerMessageDeflate::new(config()).expect("config");
        group.bench_with_input(BenchmarkId::new("ws-deflate", name), &data, |b, data| {
            b.iter(|| {
                let mut frame = Frame::new(OpCode::Text, data.clone(), true);
                ext.encode(&mut frame).expect("encode");
                black_box(frame.payload.len())
            })
        });
        let mut compress = Compress::new_with_window_bits(Compression::new(6), false, 15);
        let mut out = Vec::with_capacity(size + 1024);
        group.bench_with_input(BenchmarkId::new("flate2", name), &data, |b, data| {
            b.iter(|| {
                out.clear();
                compress.reset();
                compress.compress_vec(data, &mut out, FlushCompress::Sync).expect("compress");
                black_box(out.len())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decompress");
    for (name, size) in sizes {
        let data = json(size, 42);
        let mut tx = PerMessageDeflate::new(config()).expect("config");
        let mut frame = Frame::new(OpCode::Text, data.clone(), true);
        tx.encode(&mut frame).expect("encode");
        let compressed = frame.payload.clone();
        let mut with_tail = compressed.to_vec();
        with_tail.extend_from_slice(&[0, 0, 0xff, 0xff]);
        println!("{name}: {size} -> {} bytes", compressed.len());
        group.throughput(Throughput::Bytes(size as u64));

        let mut rx = PerMessageDeflate::new(config()).expect("config");
        group.bench_with_input(BenchmarkId::new("ws-deflate", name), &compressed, |b, compressed| {
            b.iter(|| {
                let mut frame = Frame::new(OpCode::Text, compressed.clone(), true);
                frame.rsv = Rsv::RSV1;
                rx.decode(&mut frame, Some(usize::MAX)).expect("decode");
                black_box(frame.payload.len())
            })
        });
        let mut decompress = Decompress::new_with_window_bits(false, 15);
        let mut out = Vec::with_capacity(size + 1024);
        group.bench_with_input(BenchmarkId::new("flate2", name), &with_tail, |b, input| {
            b.iter(|| {
                out.clear();
                decompress.reset(false);
                decompress.decompress_vec(input, &mut out, FlushDecompress::Sync).expect("decompress");
                black_box(out.len())
            })
        });
    }
    group.finish();
}

/// The server default (12-bit windows, memLevel 5, context takeover) at the levels worth
/// comparing: distinct JSON-like messages, one connection kept across iterations. The full
/// matrix with ratios is `cargo run --release -p ws-deflate --example levels`.
fn levels(c: &mut Criterion) {
    let mut group = c.benchmark_group("compress-takeover-w12");
    for (name, size) in [("1KiB", 1usize << 10), ("64KiB", 64 << 10)] {
        let count = ((4 << 20) / size).max(8);
        let corpus = json(size * count, 42);
        let messages: Vec<Bytes> = corpus.chunks(size).map(Bytes::copy_from_slice).collect();
        group.throughput(Throughput::Bytes(size as u64));
        for level in [1u8, 2, 6] {
            let config = PerMessageDeflateConfig {
                local_max_window_bits: 12,
                remote_max_window_bits: 12,
                level,
                compression_threshold: Some(0),
                ..Default::default()
            };
            let mut ext = PerMessageDeflate::new(config).expect("config");
            let mut next = messages.iter().cycle();
            group.bench_function(BenchmarkId::new(format!("level{level}"), name), |b| {
                b.iter(|| {
                    let data = next.next().expect("cycle").clone();
                    let mut frame = Frame::new(OpCode::Text, data, true);
                    ext.encode(&mut frame).expect("encode");
                    black_box(frame.payload.len())
                })
            });
        }
    }
    group.finish();
}

criterion_group!(deflate, benches, levels);
criterion_main!(deflate);
