//! Sans-I/O WebSocket protocol (RFC 6455): frames, masking, UTF-8, fragmentation, control
//! frames, the closing handshake and limits.
//!
//! No I/O, no clock, no global randomness: bytes in, events out; messages in, bytes out.
#![forbid(unsafe_code)]

mod close;
mod extension;
mod frame;
mod opcode;

pub use bytes::{Bytes, BytesMut};
pub use close::{CloseCode, CloseFrame};
pub use extension::{Extension, ExtensionError};
pub use frame::{Frame, Rsv};
pub use opcode::OpCode;
