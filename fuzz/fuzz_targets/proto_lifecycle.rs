//! The close/timer state machine of a `Connection` under random event orders and time jumps.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_fuzz::lifecycle::run(data));
