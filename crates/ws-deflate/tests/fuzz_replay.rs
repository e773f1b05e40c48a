//! Replays the permessage-deflate fuzz seeds and any corpus or crash files under `fuzz/`
//! through the fuzz harnesses (`fuzz/src/deflate.rs`, on top of `fuzz/src/proto.rs`) on stable.

#[allow(unreachable_pub, missing_docs, dead_code)]
#[path = "../../../fuzz/src/proto.rs"]
mod proto;

#[allow(unreachable_pub, missing_docs)]
#[path = "../../../fuzz/src/deflate.rs"]
mod deflate;

#[allow(unreachable_pub, dead_code)]
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use replay::replay;

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
