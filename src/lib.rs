//! `ws`: a layered WebSocket stack (RFC 6455, RFC 7692).
//!
//! This umbrella crate re-exports the layers so that `ws::connect` / `ws::serve` work out of the
//! box; depend on a single layer (`ws-proto`, `ws-handshake`, ...) when you bring your own I/O.
#![forbid(unsafe_code)]

pub use ws_deflate as deflate;
pub use ws_extensions as extensions;
pub use ws_handshake as handshake;
pub use ws_proto as proto;
pub use ws_tokio::*;

/// Scale-out through Redis pub/sub: the `ws-redis` crate (feature `redis`).
#[cfg(feature = "redis")]
pub use ws_redis as redis;

/// The README's snippets, compiled as doctests so that they keep up with the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
