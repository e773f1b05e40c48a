//! Arbitrary frames through `PerMessageDeflate::decode` with a small budget, or a compress/decompress round trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_fuzz::deflate::run_decode(data));
