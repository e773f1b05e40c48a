//! Replays the permessage-deflate fuzz seeds and any corpus or crash files under `fuzz/`
//! through the fuzz harnesses (`fuzz/src/deflate.rs`, on top of `fuzz/src/proto.rs`) on stable.

use std::path::{Path, PathBuf};

#[allow(unreachable_pub, missing_docs, dead_code)]
#[path = "../../../fuzz/src/proto.rs"]
mod proto;

#[allow(unreachable_pub, missing_docs)]
#[path = "../../../fuzz/src/deflate.rs"]
mod deflate;

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
fn replay_deflate_decode() {
    replay("deflate_decode", deflate::run_decode);
}

#[test]
fn replay_deflate_connection() {
    replay("deflate_connection", deflate::run_connection);
}

#[test]
fn harness_edge_cases() {
    for data in [&b""[..], b"\x00", b"\x80", b"\x07\x03\x00\x00", b"\xff\x03\x01\x00x"] {
        deflate::run_decode(data);
        deflate::run_connection(data);
    }
}
