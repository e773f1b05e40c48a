//! Compression ratio and speed per level and memLevel, with context takeover on a 12-bit window
//! (the server default), for 1 KiB and 64 KiB JSON-like messages. Two corpora:
//! - `distinct`: consecutive slices of a long JSON-like text, every message different;
//! - `echo`: the same message again and again, as `cargo xtask bench` sends it.
//!
//! Configurations are interleaved within each round and the median of the rounds is printed, because
//! the machine is shared and noisy.
//!
//! `cargo run --release -p ws-deflate --example levels [rounds] [window_bits]`; the environment
//! variables `LEVELS`, `MEM_LEVELS` and `SIZES` (comma-separated) narrow the matrix.

use std::hint::black_box;
use std::time::Instant;

use ws_deflate::{PerMessageDeflate, PerMessageDeflateConfig};
use ws_extensions::{Bytes, Extension, Frame, OpCode};

#[path = "../tests/support/json.rs"]
mod json;
use json::json;

/// The load generator's payload (`bench/loadgen`).
fn loadgen_payload(size: usize) -> Vec<u8> {
    let mut out = String::with_capacity(size + 128);
    out.push('[');
    let mut i: u64 = 0;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let names = ["alice", "bob", "carol", "dave", "erin", "frank"];
        let events = ["update", "create", "delete", "login"];
        out.push_str(&format!(
            "{{\"id\":{i},\"user\":\"{}\",\"event\":\"{}\",\"active\":{},\"score\":{}.{:02},\"tags\":[\"t{}\",\"t{}\"]}},",
            names[(x % 6) as usize],
            events[((x >> 8) % 4) as usize],
            (x >> 16) & 1 == 1,
            (x >> 20) % 1000,
            (x >> 32) % 100,
            (x >> 40) % 10,
            (x >> 44) % 10,
        ));
        i += 1;
    }
    out.truncate(size);
    out.into_bytes()
}

struct Case {
    corpus: &'static str,
    size: usize,
    level: u8,
    mem_level: u8,
    messages: Vec<Bytes>,
    /// Compressed bytes / raw bytes, over all messages.
    ratio: f64,
    /// Nanoseconds per message, one entry per round.
    compress: Vec<f64>,
    decompress: Vec<f64>,
}

fn config(level: u8, mem_level: u8, bits: u8) -> PerMessageDeflateConfig {
    PerMessageDeflateConfig {
        local_max_window_bits: bits,
        remote_max_window_bits: bits,
        level,
        mem_level,
        compression_threshold: Some(0),
        ..Default::default()
    }
}

/// Compresses every message in order with one connection, then decompresses them with another;
/// returns (compressed bytes, ns per compress, ns per decompress).
fn run(case: &Case, bits: u8) -> (usize, f64, f64) {
    let mut tx = PerMessageDeflate::new(config(case.level, case.mem_level, bits)).expect("config");
    let mut rx = PerMessageDeflate::new(config(case.level, case.mem_level, bits)).expect("config");
    // Warm-up: one message each way, so that streams and buffers exist.
    let mut warm = Frame::new(OpCode::Text, case.messages[0].clone(), true);
    tx.encode(&mut warm).expect("encode");
    rx.decode(&mut warm, None).expect("decode");
    let mut frames = Vec::with_capacity(case.messages.len());
    let start = Instant::now();
    for msg in &case.messages {
        let mut frame = Frame::new(OpCode::Text, msg.clone(), true);
        tx.encode(&mut frame).expect("encode");
        frames.push(frame);
    }
    let compress = start.elapsed().as_nanos() as f64 / case.messages.len() as f64;
    let wire: usize = frames.iter().map(|f| f.payload.len()).sum();
    let start = Instant::now();
    for frame in &mut frames {
        rx.decode(frame, None).expect("decode");
        black_box(frame.payload.len());
    }
    let decompress = start.elapsed().as_nanos() as f64 / case.messages.len() as f64;
    (wire, compress, decompress)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The cost of zero-filling `len` bytes of a reused buffer, in ns (what codec.rs does before
/// every zlib call, since lending zlib uninitialised memory would need `unsafe`).
fn zero_fill_ns(len: usize) -> f64 {
    let mut buf = bytes::BytesMut::with_capacity(len);
    let n = (64 << 20) / len;
    let start = Instant::now();
    for _ in 0..n {
        buf.clear();
        buf.resize(len, 0);
        black_box(&mut buf[..]);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let bits: u8 = args.next().and_then(|a| a.parse().ok()).unwrap_or(12);
    let levels: Vec<u8> = std::env::var("LEVELS")
        .ok()
        .map(|v| v.split(',').filter_map(|l| l.parse().ok()).collect())
        .unwrap_or_else(|| (0..=9).collect());
    let mem_levels: Vec<u8> = std::env::var("MEM_LEVELS")
        .ok()
        .map(|v| v.split(',').filter_map(|l| l.parse().ok()).collect())
        .unwrap_or_else(|| vec![5, 8]);
    let sizes: Vec<usize> = std::env::var("SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_else(|| vec![1024, 64 * 1024]);
    let mut cases = Vec::new();
    for size in sizes {
        // About 2 MiB of input per case and round.
        let count = ((2 << 20) / size).max(4);
        let long = json(size * count, 42);
        let distinct: Vec<Bytes> = long.chunks(size).map(Bytes::copy_from_slice).collect();
        let echo = vec![Bytes::from(loadgen_payload(size)); count];
        for (corpus, messages) in [("distinct", distinct), ("echo", echo)] {
            for &level in &levels {
                for &mem_level in &mem_levels {
                    cases.push(Case {
                        corpus,
                        size,
                        level,
                        mem_level,
                        messages: messages.clone(),
                        ratio: 0.0,
                        compress: vec![],
                        decompress: vec![],
                    });
                }
            }
        }
    }
    for round in 0..rounds {
        // Rotate the order each round so that no case always runs first after a pause.
        let n = cases.len();
        for i in 0..n {
            let case = &cases[(i + round * 7) % n];
            let (wire, compress, decompress) = run(case, bits);
            let raw: usize = case.messages.iter().map(Bytes::len).sum();
            let case = &mut cases[(i + round * 7) % n];
            case.ratio = wire as f64 / raw as f64;
            case.compress.push(compress);
            case.decompress.push(decompress);
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    println!("window bits {bits}, context takeover, median of {rounds} rounds\n");
    println!(
        "| corpus | size | level | memLevel | compressed/raw | compress µs/msg | MB/s | decompress µs/msg |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for case in &cases {
        let compress = median(&case.compress);
        println!(
            "| {} | {} KiB | {} | {} | {:.3} | {:.1} | {:.0} | {:.1} |",
            case.corpus,
            case.size / 1024,
            case.level,
            case.mem_level,
            case.ratio,
            compress / 1000.0,
            case.size as f64 / compress * 1000.0,
            median(&case.decompress) / 1000.0
        );
    }
    println!("\nzero fill of a reused buffer (codec.rs does one per zlib call):");
    for len in [576usize, 4096, 32 * 1024 + 64, 256 * 1024] {
        let ns: Vec<f64> = (0..rounds).map(|_| zero_fill_ns(len)).collect();
        println!("- {len} B: {:.2} µs", median(&ns) / 1000.0);
    }
}
