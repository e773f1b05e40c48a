//! Replays the `tokio_driver` fuzz target's seeds and any corpus or crash files under `fuzz/`
//! through its harness, so plain `cargo test` (stable, no libFuzzer) re-checks every input the
//! fuzzer kept. The harness source is shared with the fuzz target.

#[allow(unreachable_pub, missing_docs)]
#[path = "../../../fuzz/src/driver.rs"]
mod driver;

#[allow(unreachable_pub, missing_docs, dead_code)]
#[path = "../../../fuzz/src/input.rs"]
mod input;

#[allow(unreachable_pub, dead_code)]
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn replay_tokio_driver() {
    replay::replay("tokio_driver", |data| {
        driver::run(data);
    });
}

/// The seeds get somewhere: messages arrive both ways and closing handshakes complete, in both
/// roles, with and without permessage-deflate.
#[test]
fn seeds_reach_messages_and_closes() {
    let dir = replay::fuzz_dir().join("seeds/tokio_driver");
    for (name, messages, code) in [
        ("echo_00_0b", 1, Some(1000)),
        ("echo_01_4a", 1, Some(1000)),
        ("deflate_42_87", 2, None),
        ("deflate_43_d6", 2, None),
        ("fragmented_00_0b", 1, None),
        // The peer's close comes after close_timeout (1 s): 1006.
        ("app_close_01_4a", 0, Some(1006)),
    ] {
        let data = std::fs::read(dir.join(format!("{name}.bin"))).expect("the seed");
        let reached = driver::run(&data);
        assert_eq!(reached.messages, messages, "{name}: {reached:?}");
        assert_eq!(reached.code, code, "{name}: {reached:?}");
        // A closing handshake goes through the peer's reads.
        assert!(code.is_none() || reached.peer_read > 0, "{name}: {reached:?}");
    }
}

/// The harness on a few hand-made shapes: empty, options only, every role and end behaviour.
#[test]
fn harness_edge_cases() {
    driver::run(&[]);
    driver::run(&[0xFF]);
    for options in [0u8, 1, 2, 3, 0x41, 0xC2] {
        for more in [0u8, 0x45, 0x8a, 0xff] {
            driver::run(&[options, more]);
            // A text message from the peer, received, then a close from the application.
            driver::run(&[options, more, 0, 0, 0x81, 2, b'h', b'i', 2, 3, 7, 2, 9, 2, 0]);
        }
    }
}
