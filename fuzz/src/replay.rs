//! Replays fuzz inputs on stable Rust: the crates' `tests/fuzz_replay.rs` include this file, so
//! plain `cargo test` re-checks every input the fuzzers kept, through the same harness code.

use std::path::{Path, PathBuf};

/// The `fuzz/` directory, found from the including crate's manifest directory
/// (`crates/<name>/`). `cargo test` also sets the variable at run time: prefer it, so a moved
/// checkout works.
pub fn fuzz_dir() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    Path::new(&manifest_dir).join("../../fuzz")
}

/// Runs `run` on every file under `fuzz/{seeds,corpus,artifacts}/<target>/`; a panic names
/// the input that caused it. There must be seeds.
pub fn replay(target: &str, run: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
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
        // A fuzzer running alongside may delete corpus files while we replay: skip those.
        let Ok(data) = std::fs::read(file) else { continue };
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{} failed", file.display());
    }
    println!("{target}: replayed {} inputs", files.len());
}
