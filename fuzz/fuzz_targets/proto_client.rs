//! Arbitrary bytes, cut arbitrarily, into a client `Connection`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_fuzz::proto::run(ws_proto::Role::Client, data));
