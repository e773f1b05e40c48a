//! Replays the handshake fuzz seeds and any corpus or crash files under `fuzz/` through the
//! fuzz harness (`fuzz/src/handshake.rs`), so plain `cargo test` on stable re-checks every
//! input the fuzzers kept.

use std::path::{Path, PathBuf};

#[allow(unreachable_pub, missing_docs, dead_code)]
#[path = "../../../fuzz/src/handshake.rs"]
mod handshake;

fn fuzz_dir() -> PathBuf {
    // `cargo test` sets the variable at run time too: prefer it, so a moved checkout works.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    Path::new(&manifest_dir).join("../../fuzz")
}

/// Runs `run` on every file under `fuzz/{seeds,corpus,artifacts}/<target>/`; a panic names the
/// input that caused it.
fn replay(target: &str, run: fn(&[u8])) {
    let mut files = Vec::new();
    for dir in ["seeds", "corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) else {
            continue;
        };
        files.extend(entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()));
    }
    files.sort();
    assert!(!files.is_empty(), "no seeds for {target} under {}", fuzz_dir().display());
    for file in &files {
        // A running fuzzer may replace corpus files under our feet: skip the ones that vanish.
        let Ok(data) = std::fs::read(file) else {
            continue;
        };
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{} failed", file.display());
    }
    println!("{target}: replayed {} inputs", files.len());
}

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
