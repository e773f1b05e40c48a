//! Replays the `Sec-WebSocket-Extensions` fuzz seeds and any corpus or crash files under
//! `fuzz/` through the fuzz harness (`fuzz/src/extensions.rs`) on stable.

#[allow(unreachable_pub, missing_docs)]
#[path = "../../../fuzz/src/extensions.rs"]
mod extensions;

#[allow(unreachable_pub, dead_code)]
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use replay::replay;

#[test]
fn replay_extensions_header() {
    replay("extensions_header", extensions::run);
}

#[test]
fn harness_edge_cases() {
    for data in [&b""[..], b",", b"a", b"a;b=\"\"", b"a\nb", b"\xff", b"a; b=\"\\\xff\""] {
        extensions::run(data);
    }
}
