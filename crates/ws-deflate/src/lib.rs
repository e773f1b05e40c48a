#![doc = include_str!("../README.md")]
// Without the `zlib` feature the crate has no unsafe code at all. With it, the FFI to stock zlib
// in `zlib.rs` is the one module allowed unsafe code (`deny` elsewhere).
#![cfg_attr(not(feature = "zlib"), forbid(unsafe_code))]
#![cfg_attr(feature = "zlib", deny(unsafe_code))]

mod codec;
mod config;
mod extension;
mod factory;
mod history;
mod params;
mod shared;
#[cfg(feature = "zlib")]
#[allow(unsafe_code)]
mod zlib;

pub use config::ConfigError;
pub use extension::{Memory, PARK_MAX, PerMessageDeflate, PerMessageDeflateConfig, WARM_UP_MESSAGES};
pub use factory::{ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory};
pub use shared::release_thread_streams;

/// The default zlib compression level (zlib's own default). Measured on zlib-rs with context
/// takeover, levels 2–5 are no faster on messages up to about 1 KiB and compress worse; level 2
/// is 1.4–2.3× faster on 64 KiB messages for 25 % more bytes. See "Choosing the level".
pub const DEFAULT_LEVEL: u8 = 6;
/// The default zlib memLevel, as in Python `websockets`.
pub const DEFAULT_MEM_LEVEL: u8 = 5;
/// Without context takeover, single-frame messages shorter than this are sent uncompressed by
/// default: measured on JSON-like messages, 16- and 32-byte messages grow when compressed alone
/// (×1.12, ×1.06) and 64-byte ones barely shrink (×0.84).
pub const NO_CONTEXT_TAKEOVER_THRESHOLD: usize = 64;
