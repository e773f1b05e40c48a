//! `Sec-WebSocket-Extensions` values into the parser, and a serialize-parse round trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_fuzz::extensions::run(data));
