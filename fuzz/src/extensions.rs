//! The `Sec-WebSocket-Extensions` harness: arbitrary text into `parse_extensions`, and every
//! successful parse serialized and parsed again, which must give the same items back.
//! Replayed by `crates/ws-extensions/tests/fuzz_replay.rs`.

use ws_extensions::header::{is_token, parse_extension_headers, parse_extensions, serialize_extensions};

/// Runs `data` (as text, lossily) through the parser, and its raw bytes split at `\n`
/// through `parse_extension_headers` as several header values.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(items) = parse_extensions(&text) {
        assert!(!items.is_empty());
        for item in &items {
            assert!(is_token(&item.name), "name {:?}", item.name);
            for param in &item.params {
                assert!(is_token(&param.name), "param {:?}", param.name);
                if let Some(value) = &param.value {
                    assert!(is_token(value), "value {:?}", value);
                }
            }
        }
        let serialized = serialize_extensions(&items);
        let again = parse_extensions(&serialized).expect("serialized items parse");
        assert_eq!(again, items, "round trip through {serialized:?}");
        assert_eq!(serialize_extensions(&again), serialized);
    }
    // Raw bytes here: header values need not be UTF-8.
    if let Ok(items) = parse_extension_headers(data.split(|&b| b == b'\n')) {
        let serialized = serialize_extensions(&items);
        assert_eq!(parse_extensions(&serialized).expect("serialized items parse"), items);
    }
}
