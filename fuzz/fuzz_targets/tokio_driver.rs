//! The ws-tokio driver against a scripted in-memory peer, with paused time.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ws_fuzz::driver::run(data);
});
