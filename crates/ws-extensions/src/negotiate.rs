//! Negotiation across factories, for the handshake layer.
//!
//! TODO(owner: handshake work): negotiate_client / negotiate_server.
