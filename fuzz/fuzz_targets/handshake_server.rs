//! An HTTP upgrade request, in pieces, into `ServerHandshake::receive`, then `accept`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_fuzz::handshake::run_server(data));
