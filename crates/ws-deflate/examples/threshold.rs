//! Measures what compressing small messages pays: bytes on the wire and CPU time per message,
//! with and without context takeover, for JSON-like messages of increasing size.
//!
//! `cargo run --release -p ws-deflate --example threshold`

use std::time::Instant;

use ws_deflate::{PerMessageDeflate, PerMessageDeflateConfig};
use ws_extensions::{Bytes, Extension, Frame, OpCode};

/// Distinct JSON-like messages of about `len` bytes, as a chat or a ticker would send.
fn messages(len: usize, count: usize) -> Vec<Bytes> {
    let words = ["buy", "sell", "hold", "cancel"];
    let mut state = 7u64;
    (0..count)
        .map(|_| {
            let mut msg = String::new();
            while msg.len() < len {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let n = (state >> 33) as usize;
                msg.push_str(&format!(
                    r#"{{"op":"{}","px":{}.{:02},"qty":{},"id":{}}}"#,
                    words[n % 4],
                    100 + n % 50,
                    n % 100,
                    n % 500,
                    n % 100_000
                ));
            }
            msg.truncate(len);
            Bytes::from(msg)
        })
        .collect()
}

fn main() {
    println!("| size | takeover | compressed/raw | encode+decode ns/msg |");
    println!("|---:|---|---:|---:|");
    for len in [16usize, 32, 64, 128, 256, 512, 1024, 4096] {
        let msgs = messages(len, 20_000);
        for no_context_takeover in [false, true] {
            let config = PerMessageDeflateConfig {
                local_no_context_takeover: no_context_takeover,
                remote_no_context_takeover: no_context_takeover,
                compression_threshold: Some(0),
                local_max_window_bits: 12,
                remote_max_window_bits: 12,
                ..Default::default()
            };
            let mut tx = PerMessageDeflate::new(config).expect("config");
            let mut rx = PerMessageDeflate::new(config).expect("config");
            let (mut raw, mut wire) = (0usize, 0usize);
            let start = Instant::now();
            for msg in &msgs {
                let mut frame = Frame::new(OpCode::Text, msg.clone(), true);
                tx.encode(&mut frame).expect("encode");
                wire += frame.payload.len();
                raw += msg.len();
                rx.decode(&mut frame, None).expect("decode");
            }
            let ns = start.elapsed().as_nanos() as f64 / msgs.len() as f64;
            let mode = if no_context_takeover { "no" } else { "yes" };
            println!("| {len} | {mode} | {:.2} | {ns:.0} |", wire as f64 / raw as f64);
        }
    }
}
