//! Arbitrary bytes, cut arbitrarily, into a server `Connection`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_fuzz::proto::run(ws_proto::Role::Server, data));
