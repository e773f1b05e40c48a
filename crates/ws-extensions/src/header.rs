//! The `Sec-WebSocket-Extensions` header grammar (RFC 6455 §9.1, RFC 7230 tokens and quoted strings).
//!
//! TODO(owner: handshake work): parse and serialize.
