//! Frame opcodes (RFC 6455 §5.2).

/// The opcode of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: continues a fragmented message.
    Continuation,
    /// `0x1`: the first frame of a text message.
    Text,
    /// `0x2`: the first frame of a binary message.
    Binary,
    /// `0x8`: starts or answers the closing handshake.
    Close,
    /// `0x9`: a ping.
    Ping,
    /// `0xA`: a pong.
    Pong,
}

impl OpCode {
    /// Control frames (close, ping, pong) may interleave with fragments and carry at most 125 bytes.
    pub const fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }

    /// Data frames: text, binary and continuation.
    pub const fn is_data(self) -> bool {
        !self.is_control()
    }

    /// The 4-bit wire value.
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Decodes a 4-bit wire value; reserved opcodes (3–7, 0xB–0xF) give `None`.
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }
}
