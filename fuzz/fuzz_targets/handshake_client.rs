//! An HTTP response, in pieces, into `ClientHandshake::receive` (fixed key).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_fuzz::handshake::run_client(data));
