//! Sans-I/O WebSocket protocol (RFC 6455): frames, masking, UTF-8, fragmentation, control
//! frames, the closing handshake and limits.
//!
//! No I/O, no clock, no global randomness: bytes in, events out; messages in, bytes out. The
//! [`Connection`] is the whole protocol; [`FrameHeader`] and [`apply_mask`] are exposed for
//! those who build their own.
//!
//! Negotiated extensions plug in through the [`Extension`] trait (re-exported with the
//! negotiation factories by `ws-extensions`): incoming frames pass through them in reverse order
//! before reassembly, outgoing frames in order; they own RSV bits.
//!
//! # When to depend on this crate alone
//!
//! When you own the I/O: blocking sockets, mio, an embedded event loop, a simulation, or a
//! connection already upgraded by your HTTP server. Add `ws-handshake` for the opening
//! handshake and `ws-deflate` for compression; on tokio, `ws-tokio` runs all of them for you.
//! The repository's `docs/howto/sans-io.md` shows the loop, and `examples/sansio_blocking.rs`
//! is a complete client and server on `std::net`.
//!
//! ```
//! use ws_proto::{Buf, BytesMut, CloseCode, Config, Connection, Event, Message, Role};
//!
//! let mut client = Connection::new(Role::Client, Config::default());
//! let mut server = Connection::new(Role::Server, Config::default());
//!
//! // The client queues a message; its transmit buffer holds the masked frame.
//! client.send_text("hello")?;
//! let out = client.transmit();
//! let mut wire = BytesMut::from(out.copy_to_bytes(out.remaining()).as_ref());
//!
//! // The server parses what arrived and reports the message.
//! server.receive(&mut wire)?;
//! assert_eq!(server.next_event(), Some(Event::Message(Message::text("hello"))));
//! server.close(CloseCode::NORMAL, "bye")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
// One audited exception, `Utf8Bytes::as_str` (see there); everything else is safe.
#![deny(unsafe_code)]

mod close;
mod connection;
mod error;
mod extension;
mod frame;
mod header;
mod lifecycle;
mod mask;
mod message;
mod opcode;
mod prepared;
mod transmit;
mod utf8;

pub use bytes::{Buf, Bytes, BytesMut};
pub use close::{CloseCode, CloseFrame};
pub use connection::{Config, Connection, Event, Role, State};
pub use error::{ProtocolError, SendError};
pub use extension::{Extension, ExtensionError};
pub use frame::{Frame, Rsv};
pub use header::{FrameHeader, HeaderParse, MAX_HEADER_LEN};
pub use lifecycle::{Cause, Closure};
pub use mask::apply_mask;
pub use message::{Message, Utf8Bytes};
pub use opcode::OpCode;
pub use prepared::PreparedMessage;
pub use transmit::Transmit;
pub use utf8::{InvalidUtf8, Utf8Validator};
