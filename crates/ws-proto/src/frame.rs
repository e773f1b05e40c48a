//! The frame: what extensions see and transform.

use bytes::Bytes;

use crate::OpCode;

/// The three reserved bits of a frame header, as they sit in its first byte.
///
/// Extensions declare the bits they own (permessage-deflate owns [`Rsv::RSV1`]); a frame that sets
/// a bit no negotiated extension owns is a protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rsv(u8);

impl Rsv {
    /// No reserved bit.
    pub const NONE: Self = Self(0);
    /// RSV1 (`0x40`), used by permessage-deflate.
    pub const RSV1: Self = Self(0x40);
    /// RSV2 (`0x20`).
    pub const RSV2: Self = Self(0x20);
    /// RSV3 (`0x10`).
    pub const RSV3: Self = Self(0x10);

    /// Builds from the first header byte, keeping only the RSV bits.
    pub const fn from_bits(byte: u8) -> Self {
        Self(byte & 0x70)
    }

    /// The bits in header-byte position.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every bit of `other` is set here.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the two share a bit.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets of bits.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// These bits without those of `other`.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Sets or clears the bits of `other`.
    pub fn set(&mut self, other: Self, on: bool) {
        if on {
            self.0 |= other.0;
        } else {
            self.0 &= !other.0;
        }
    }
}

/// An unmasked frame, as it travels between the codec and the extensions.
///
/// The payload is a [`Bytes`] slice, usually of the read buffer itself: passing a frame through
/// the extension chain moves it, it never copies the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Whether this is the final fragment of a message (always set on control frames).
    pub fin: bool,
    /// The reserved bits; extensions set and clear the ones they own.
    pub rsv: Rsv,
    /// The opcode.
    pub opcode: OpCode,
    /// The application data (unmasked).
    pub payload: Bytes,
    /// A hint from the application that this message must not be compressed (it carries a
    /// secret that must not share a compression context with attacker-influenced data).
    /// Compressing extensions honour it; others ignore it. Never set on received frames.
    pub no_compress: bool,
}

impl Frame {
    /// A frame with no reserved bits set.
    pub fn new(opcode: OpCode, payload: impl Into<Bytes>, fin: bool) -> Self {
        Self { fin, rsv: Rsv::NONE, opcode, payload: payload.into(), no_compress: false }
    }
}
