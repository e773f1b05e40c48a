//! The hook through which negotiated extensions transform frames.
//!
//! The trait lives here, at the bottom of the stack, so that [`Connection`](crate::Connection) can
//! run the chain without knowing any extension; the `ws-extensions` crate re-exports it together
//! with the negotiation factories, so third-party extensions depend on that crate alone.

use std::fmt;

use crate::{CloseCode, Frame, Rsv};

/// A negotiated extension: transforms outgoing frames and incoming frames, in place.
///
/// The connection runs outgoing data frames through the chain in negotiated order and incoming
/// frames in reverse order, before reassembly. Control frames pass through too, so an extension
/// that must leave them alone (as permessage-deflate does) checks `frame.opcode.is_control()`.
pub trait Extension: Send + 'static {
    /// The registered extension token, e.g. `permessage-deflate`.
    fn name(&self) -> &str;

    /// The RSV bits this extension may set. A frame using a bit that no negotiated extension
    /// owns is refused with 1002; two extensions that claim the same bit are refused at
    /// negotiation.
    fn rsv(&self) -> Rsv;

    /// Transforms an outgoing frame. Fragments of one message arrive in order.
    fn encode(&mut self, frame: &mut Frame) -> Result<(), ExtensionError>;

    /// Transforms an incoming frame. `max_size` is how many more payload bytes the message may
    /// still grow by (`None`: unlimited); exceeding it must fail with
    /// [`ExtensionError::TooBig`] before allocating the excess.
    fn decode(&mut self, frame: &mut Frame, max_size: Option<usize>) -> Result<(), ExtensionError>;

    /// A key for how this extension encodes messages, when `encode` depends on nothing but the
    /// frame and this key: no state carried from one message to the next, nothing particular
    /// to this connection. Connections whose extensions declare equal keys can then send a
    /// message that one of them encoded, so a broadcast encodes each message once per key (see
    /// [`PreparedMessage`](crate::PreparedMessage)). The key must capture every negotiated
    /// parameter that shapes the output (for compression without context takeover: at least
    /// the window size). The default, `None`, always encodes per connection, which is always
    /// correct; return `Some` only when this contract holds.
    fn shared_encoding(&self) -> Option<Vec<u8>> {
        None
    }

    /// The connection has been quiet for a while: free what the next message can rebuild, such
    /// as compression streams, keeping only what is needed to carry on where it left off (a
    /// compressor's history, for instance). Called between calls to `encode` and `decode`,
    /// possibly in the middle of a fragmented message, whose state must then be kept. The I/O
    /// layer decides when (ws-tokio: the `idle_release` setting); the default does nothing.
    fn release_memory(&mut self) {}
}

impl fmt::Debug for dyn Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extension({})", self.name())
    }
}

/// Why an extension refused a frame. Each variant maps to the close code that ends the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtensionError {
    /// The message would exceed its size limit (close 1009).
    TooBig,
    /// The frame breaks the extension's rules, e.g. RSV1 on a continuation frame (close 1002).
    Protocol(String),
    /// The payload cannot be decoded, e.g. corrupt deflate data (close 1007).
    InvalidData(String),
    /// The extension failed on its own side (close 1011).
    Internal(String),
}

impl ExtensionError {
    /// The close code the connection fails with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::TooBig => CloseCode::TOO_BIG,
            Self::Protocol(_) => CloseCode::PROTOCOL_ERROR,
            Self::InvalidData(_) => CloseCode::INVALID_DATA,
            Self::Internal(_) => CloseCode::INTERNAL_ERROR,
        }
    }
}

impl fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooBig => f.write_str("message too big"),
            Self::Protocol(why) => write!(f, "extension protocol error: {why}"),
            Self::InvalidData(why) => write!(f, "invalid extension data: {why}"),
            Self::Internal(why) => write!(f, "extension failure: {why}"),
        }
    }
}

impl std::error::Error for ExtensionError {}
