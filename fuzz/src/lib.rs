//! Fuzz harnesses for the ws stack. Each target is a thin `fuzz_target!` over a function here,
//! and the same functions replay the corpus in ordinary `cargo test` (see `fuzz/README.md`).

pub mod deflate;
pub mod driver;
pub mod extensions;
pub mod handshake;
pub mod input;
pub mod lifecycle;
pub mod proto;
pub mod replay;
