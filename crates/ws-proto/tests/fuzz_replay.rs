//! Replays the fuzz seeds and any corpus or crash files under `fuzz/` through the fuzz
//! harness, so plain `cargo test` (stable, no libFuzzer) re-checks every input the fuzzers
//! ever kept. The harness source is shared with the fuzz targets.

use ws_proto::Role;

#[allow(unreachable_pub, missing_docs)]
#[path = "../../../fuzz/src/proto.rs"]
mod proto;

#[allow(unreachable_pub, missing_docs)]
#[path = "../../../fuzz/src/lifecycle.rs"]
mod lifecycle;

#[allow(unreachable_pub, missing_docs, dead_code)]
#[path = "../../../fuzz/src/input.rs"]
mod input;

#[allow(unreachable_pub, dead_code)]
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use replay::replay;

#[test]
fn replay_proto_server() {
    replay("proto_server", |data| proto::run(Role::Server, data));
}

#[test]
fn replay_proto_client() {
    replay("proto_client", |data| proto::run(Role::Client, data));
}

#[test]
fn replay_proto_lifecycle() {
    replay("proto_lifecycle", lifecycle::run);
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
