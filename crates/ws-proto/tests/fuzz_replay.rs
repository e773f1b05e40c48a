//! Replays the fuzz seeds and any corpus or crash files under `fuzz/` through the fuzz
//! harness, so plain `cargo test` (stable, no libFuzzer) re-checks every input the fuzzers
//! ever kept. The harness source is shared with the fuzz targets.

use std::path::{Path, PathBuf};

use ws_proto::Role;

#[allow(unreachable_pub, missing_docs)]
#[path = "../../../fuzz/src/proto.rs"]
mod proto;

fn fuzz_dir() -> PathBuf {
    // `cargo test` sets the variable at run time too: prefer it, so a moved checkout works.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    Path::new(&manifest_dir).join("../../fuzz")
}

/// Every file under `fuzz/{seeds,corpus,artifacts}/<target>/`.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["seeds", "corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) else {
            continue;
        };
        files.extend(entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()));
    }
    files.sort();
    files
}

fn replay(target: &str, role: Role) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no seeds for {target} under {}", fuzz_dir().display());
    for file in &files {
        // A fuzzer running alongside may delete corpus files while we replay: skip those.
        let Ok(data) = std::fs::read(file) else { continue };
        // A panic names the input that caused it.
        let outcome = std::panic::catch_unwind(|| proto::run(role, &data));
        assert!(outcome.is_ok(), "{} failed", file.display());
    }
    println!("{target}: replayed {} inputs", files.len());
}

#[test]
fn replay_proto_server() {
    replay("proto_server", Role::Server);
}

#[test]
fn replay_proto_client() {
    replay("proto_client", Role::Client);
}

/// The harness on a few hand-made shapes: empty, header-only, every cut length.
#[test]
fn harness_edge_cases() {
    for role in [Role::Server, Role::Client] {
        proto::run(role, &[]);
        proto::run(role, &[0xFF]);
        for options in [0u8, 0x07, 0x38, 0xC6] {
            for cut in 0..=4u8 {
                proto::run(
                    role,
                    &[options, 1, cut, 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
                );
            }
        }
    }
}
