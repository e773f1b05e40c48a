//! The frame header codec (RFC 6455 §5.2): parse from a partial buffer, encode into 14 bytes.

use crate::{OpCode, ProtocolError, Rsv};

/// The longest header: 2 bytes, an 8-byte length and a 4-byte masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment.
    pub fin: bool,
    /// Reserved bits as sent (checked against the negotiated extensions by the connection).
    pub rsv: Rsv,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

/// The outcome of [`FrameHeader::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderParse {
    /// A header, and how many bytes it took.
    Complete(FrameHeader, usize),
    /// The buffer holds part of a header: at least this many more bytes are needed.
    Incomplete(usize),
}

impl FrameHeader {
    /// Parses a header from the start of `buf`, which may hold less than a header (never
    /// blocks, never panics). Checks what the header alone decides: reserved opcodes, control
    /// frames that are fragmented or longer than 125 bytes, and 64-bit lengths with the top bit
    /// set. RSV bits and masking depend on the connection and are checked there.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<HeaderParse, ProtocolError> {
        let [b0, b1, rest @ ..] = buf else {
            return Ok(HeaderParse::Incomplete(2 - buf.len()));
        };
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
        let fin = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        let (len_bytes, short_len) = match b1 & 0x7F {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if short_len.is_none() {
                return Err(ProtocolError::ControlFrameTooLong);
            }
        }
        let header_len = 2 + len_bytes + if masked { 4 } else { 0 };
        if buf.len() < header_len {
            return Ok(HeaderParse::Incomplete(header_len - buf.len()));
        }
        let payload_len = match short_len {
            Some(n) => n,
            None if len_bytes == 2 => u64::from(u16::from_be_bytes([rest[0], rest[1]])),
            None => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&rest[..8]);
                let n = u64::from_be_bytes(be);
                if n >> 63 != 0 {
                    return Err(ProtocolError::LengthOverflow);
                }
                n
            }
        };
        if opcode.is_control() && payload_len > 125 {
            return Err(ProtocolError::ControlFrameTooLong);
        }
        let mask = masked.then(|| {
            let k = &rest[len_bytes..len_bytes + 4];
            [k[0], k[1], k[2], k[3]]
        });
        Ok(HeaderParse::Complete(
            Self { fin, rsv: Rsv::from_bits(*b0), opcode, mask, payload_len },
            header_len,
        ))
    }

    /// The header of an unmasked frame with a 7- or 16-bit length (a server's frames up to
    /// 64 KiB), as the big-endian bytes of a `u32` and its length, 2 or 4: built in a register
    /// and stored whole. (Written byte by byte into an array and read back as a word, it stalls
    /// the store buffer.)
    #[inline]
    pub(crate) fn encode_short(&self) -> Option<(u32, usize)> {
        if self.mask.is_some() || self.payload_len > 0xFFFF {
            return None;
        }
        let b0 = u32::from((u8::from(self.fin) << 7) | self.rsv.bits() | self.opcode.as_u8());
        let len = self.payload_len as u32;
        Some(if len <= 125 { ((b0 << 8) | len, 2) } else { ((b0 << 24) | (126 << 16) | len, 4) })
    }

    /// Encodes the header into `dst`, using the shortest length form; returns its length.
    #[inline]
    pub fn encode(&self, dst: &mut [u8; MAX_HEADER_LEN]) -> usize {
        dst[0] = (u8::from(self.fin) << 7) | self.rsv.bits() | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = match self.payload_len {
            n @ 0..=125 => {
                dst[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xFFFF => {
                dst[1] = mask_bit | 126;
                dst[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                dst[1] = mask_bit | 127;
                dst[2..10].copy_from_slice(&n.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            dst[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> (FrameHeader, usize) {
        match FrameHeader::parse(buf) {
            Ok(HeaderParse::Complete(h, n)) => (h, n),
            other => panic!("expected a header, got {other:?}"),
        }
    }

    #[test]
    fn says_how_many_bytes_are_missing() {
        assert_eq!(FrameHeader::parse(&[]), Ok(HeaderParse::Incomplete(2)));
        assert_eq!(FrameHeader::parse(&[0x81]), Ok(HeaderParse::Incomplete(1)));
        assert_eq!(FrameHeader::parse(&[0x82, 0x7E, 0x01]), Ok(HeaderParse::Incomplete(1)));
        assert_eq!(FrameHeader::parse(&[0x82, 0xFF, 0, 0]), Ok(HeaderParse::Incomplete(10)));
    }

    #[test]
    fn short_encoding_matches_encode() {
        for (len, mask) in [
            (0u64, None),
            (20, None),
            (125, None),
            (126, None),
            (65535, None),
            (65536, None),
            (20, Some([1, 2, 3, 4])),
        ] {
            for (fin, rsv, opcode) in [
                (true, Rsv::NONE, OpCode::Text),
                (false, Rsv::RSV1, OpCode::Binary),
                (true, Rsv::NONE, OpCode::Pong),
            ] {
                let h = FrameHeader { fin, rsv, opcode, mask, payload_len: len };
                let mut buf = [0; MAX_HEADER_LEN];
                let n = h.encode(&mut buf);
                match h.encode_short() {
                    Some((word, 2)) => assert_eq!(&(word as u16).to_be_bytes()[..], &buf[..n]),
                    Some((word, 4)) => assert_eq!(&word.to_be_bytes()[..], &buf[..n]),
                    Some((_, other)) => panic!("length {other}"),
                    None => assert!(mask.is_some() || len > 0xFFFF, "len {len}"),
                }
            }
        }
    }

    #[test]
    fn three_length_forms() {
        for (len, header_len) in [(0u64, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (1 << 40, 10)] {
            let h = FrameHeader {
                fin: true,
                rsv: Rsv::NONE,
                opcode: OpCode::Binary,
                mask: None,
                payload_len: len,
            };
            let mut buf = [0; MAX_HEADER_LEN];
            let n = h.encode(&mut buf);
            assert_eq!(n, header_len);
            assert_eq!(parse(&buf[..n]), (h, n));
        }
    }

    #[test]
    fn rejects_what_the_header_alone_forbids() {
        assert_eq!(FrameHeader::parse(&[0x83, 0]), Err(ProtocolError::ReservedOpcode(3)));
        assert_eq!(FrameHeader::parse(&[0x8B, 0]), Err(ProtocolError::ReservedOpcode(0xB)));
        assert_eq!(FrameHeader::parse(&[0x09, 0]), Err(ProtocolError::FragmentedControlFrame));
        assert_eq!(FrameHeader::parse(&[0x89, 126, 0, 126]), Err(ProtocolError::ControlFrameTooLong));
        let mut huge = vec![0x82, 127];
        huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(FrameHeader::parse(&huge), Err(ProtocolError::LengthOverflow));
    }

    #[test]
    fn masked_header_carries_its_key() {
        let (h, n) = parse(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(n, 6);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.payload_len, 5);
    }
}
