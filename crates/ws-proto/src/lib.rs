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
