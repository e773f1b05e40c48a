//! permessage-deflate (RFC 7692) for the `ws` stack, on zlib-rs.
//!
//! TODO docs
#![forbid(unsafe_code)]

mod codec;
mod config;
mod extension;
mod factory;
mod params;

pub use config::ConfigError;
pub use extension::{PerMessageDeflate, PerMessageDeflateConfig};
pub use factory::{ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory};

/// The default zlib compression level (zlib's own default).
pub const DEFAULT_LEVEL: u8 = 6;
/// The default zlib memLevel, as in Python `websockets`.
pub const DEFAULT_MEM_LEVEL: u8 = 5;
/// The default [`compression_threshold`](PerMessageDeflateConfig::compression_threshold).
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 0;
