//! Arbitrary bytes into a server `Connection` with permessage-deflate installed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_fuzz::deflate::run_connection(data));
