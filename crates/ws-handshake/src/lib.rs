//! Sans-I/O WebSocket opening handshake (RFC 6455 §4), client and server.
//!
//! This crate does no I/O and reads no clock: it turns bytes into decisions and decisions into
//! bytes. The caller reads and writes the socket, and passes the time for the `Date` header
//! (or `None`). Limits are [`Limits`] fields, never environment variables.
//!
//! Depend on it alone (with `ws-proto` for what follows the handshake) when you bring your own
//! I/O, or when a server that already parses HTTP wants only the WebSocket checks and the
//! extension negotiation. On tokio, `ws-tokio` runs it for you.
//!
//! The flow, on each side:
//!
//! * **Client**: [`ClientHandshake::new`] → write [`ClientHandshake::write_request`]'s bytes →
//!   feed what you read to [`ClientHandshake::receive`] until it returns [`ClientAccepted`] →
//!   hand its `extensions` and `leftover` bytes to the WebSocket connection. A non-101 answer is
//!   [`ClientError::Rejected`] with the whole response (follow a 3xx, authenticate on a 401).
//! * **Server**: [`ServerHandshake::new`] → feed what you read to
//!   [`ServerHandshake::receive_at`] until it returns the request → [`ServerHandshake::accept`]
//!   → write the [`ServerAccepted::response`] and hand over `extensions` and `leftover`, or write the
//!   [`Rejection`]'s response and close. Both take the time for the `Date` header.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::SystemTime;
//! use ws_handshake::{ClientConfig, ClientHandshake, ServerConfig, ServerHandshake};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut server_config = ServerConfig::default();
//! server_config.subprotocols = vec!["chat".into()];
//! let mut server = ServerHandshake::new(Arc::new(server_config));
//!
//! let mut client_config = ClientConfig::default();
//! client_config.subprotocols = vec!["chat".into()];
//! let mut client = ClientHandshake::new("ws://example.com/chat", Arc::new(client_config))?;
//!
//! // Client → server: the request, followed at once by a (pipelined) first frame.
//! let mut wire = Vec::new();
//! client.write_request(&mut wire);
//! wire.extend_from_slice(b"\x81\x85frame");
//! let request = loop {
//!     // Bytes may arrive in any pieces; here, 10 at a time.
//!     let (chunk, rest) = wire.split_at(wire.len().min(10));
//!     let chunk = chunk.to_vec();
//!     wire = rest.to_vec();
//!     if let Some(request) = server.receive_at(&chunk, Some(SystemTime::now()))? {
//!         // The rest of this read belongs to the WebSocket stream.
//!         server.receive_at(&wire, Some(SystemTime::now()))?;
//!         break request;
//!     }
//! };
//! assert_eq!(request.uri().path(), "/chat");
//! let accepted = server.accept(&request, Some(SystemTime::now()))?;
//! assert_eq!(accepted.subprotocol.as_deref(), Some("chat"));
//! assert_eq!(&accepted.leftover[..], b"\x81\x85frame");
//!
//! // Server → client: the 101 response.
//! let mut wire = Vec::new();
//! accepted.write_response(&mut wire);
//! let accepted = client.receive(&wire)?.expect("complete response");
//! assert_eq!(accepted.subprotocol.as_deref(), Some("chat"));
//! assert!(accepted.leftover.is_empty());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept_key;
mod auth;
mod client;
mod date;
mod http1;
mod opened;
mod reject;
mod server;
mod tokens;

pub use accept_key::derive_accept_key;
pub use auth::{basic_auth, parse_basic_auth};
pub use client::{
    ClientAccepted, ClientConfig, ClientError, ClientHandshake, Target, USER_AGENT, parse_response_head,
};
pub use date::http_date;
pub use http1::{LimitExceeded, Limits, write_request_head, write_response, write_response_head};
pub use reject::{RejectReason, Rejection};
pub use server::{
    ProcessRequest, ProcessResponse, SERVER, SelectSubprotocol, ServerAccepted, ServerConfig,
    ServerHandshake, parse_request_head,
};
pub use tokens::{InvalidTokenList, parse_token_list};

/// The `http` crate, whose types this API uses.
pub use http;
pub use ws_extensions::ConfigError;
pub use ws_proto::{BytesMut, Config, Connection, Role};
