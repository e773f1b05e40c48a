//! Errors: what the peer did wrong (each with its close code), and what the caller did wrong.

use std::fmt;

use crate::{CloseCode, ExtensionError};

/// A violation by the peer. The connection has failed: it queued a close frame with
/// [`close_code`](Self::close_code) and ignores further input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An opcode RFC 6455 reserves (3–7, 0xB–0xF).
    ReservedOpcode(u8),
    /// A control frame without FIN.
    FragmentedControlFrame,
    /// A control frame longer than 125 bytes.
    ControlFrameTooLong,
    /// A 64-bit length with its most significant bit set.
    LengthOverflow,
    /// RSV bits that no negotiated extension uses.
    ReservedBits(u8),
    /// A client sent an unmasked frame.
    UnmaskedFrame,
    /// A server sent a masked frame.
    MaskedFrame,
    /// A continuation frame with no message in progress.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is in progress.
    ExpectedContinuation,
    /// A text message or close reason that is not UTF-8.
    InvalidUtf8,
    /// A close frame whose payload is one byte or whose code may not appear on the wire.
    InvalidClosePayload,
    /// A frame larger than `max_frame_size`.
    FrameTooBig {
        /// The announced payload length.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// A message larger than `max_size`.
    MessageTooBig {
        /// The limit.
        max: usize,
    },
    /// An extension refused a frame.
    Extension(ExtensionError),
}

impl ProtocolError {
    /// The close code the connection fails with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 => CloseCode::INVALID_DATA,
            Self::FrameTooBig { .. } | Self::MessageTooBig { .. } => CloseCode::TOO_BIG,
            Self::Extension(e) => e.close_code(),
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::FragmentedControlFrame => f.write_str("fragmented control frame"),
            Self::ControlFrameTooLong => f.write_str("control frame longer than 125 bytes"),
            Self::LengthOverflow => f.write_str("payload length with the most significant bit set"),
            Self::ReservedBits(bits) => write!(f, "reserved bits {bits:#x} set without an extension"),
            Self::UnmaskedFrame => f.write_str("unmasked frame from a client"),
            Self::MaskedFrame => f.write_str("masked frame from a server"),
            Self::UnexpectedContinuation => f.write_str("continuation frame without a message in progress"),
            Self::ExpectedContinuation => f.write_str("new data frame inside a fragmented message"),
            Self::InvalidUtf8 => f.write_str("invalid UTF-8 in a text message or close reason"),
            Self::InvalidClosePayload => f.write_str("invalid close frame payload"),
            Self::FrameTooBig { size, max } => write!(f, "frame of {size} bytes exceeds the limit of {max}"),
            Self::MessageTooBig { max } => write!(f, "message exceeds the limit of {max} bytes"),
            Self::Extension(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ProtocolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Extension(e) => Some(e),
            _ => None,
        }
    }
}

/// A send the connection's state does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// A close frame was already sent: nothing may follow it.
    Closed,
    /// A control frame payload over 125 bytes.
    ControlFrameTooLong,
    /// A continuation without a fragmented message in progress, or a new message inside one.
    Fragmentation,
    /// A close code that may not be sent (1005, 1006, 1015, unassigned ranges).
    InvalidCloseCode(CloseCode),
    /// A close reason longer than 123 bytes (its length).
    CloseReasonTooLong(usize),
    /// An extension failed to encode the frame.
    Extension(ExtensionError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("the connection is closing or closed"),
            Self::ControlFrameTooLong => f.write_str("control frame payload longer than 125 bytes"),
            Self::Fragmentation => f.write_str("frame out of order for a fragmented message"),
            Self::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            Self::CloseReasonTooLong(len) => {
                write!(f, "close reason of {len} bytes is longer than the 123 a close frame holds")
            }
            Self::Extension(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Extension(e) => Some(e),
            _ => None,
        }
    }
}
