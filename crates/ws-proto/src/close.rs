//! Close codes and the close frame payload (RFC 6455 §5.5.1, §7.4).

use bytes::{BufMut, Bytes, BytesMut};

/// A close status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection closed without a close frame (never sent on the wire).
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: data inconsistent with the message type (invalid UTF-8).
    pub const INVALID_DATA: Self = Self(1007);
    /// 1008: a policy violation.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message too big to process.
    pub const TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: an unexpected condition on the server (also used for keepalive timeouts).
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: service restart (IANA registry).
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: bad gateway (IANA registry).
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: TLS handshake failure (never sent on the wire).
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Whether an endpoint may put this code in a close frame: the codes RFC 6455 §7.4.1 and
    /// the IANA registry define for the wire (1000–1003, 1007–1014) and the ranges for
    /// libraries and applications (3000–4999). 1004–1006, 1015, other 1xxx/2xxx and ≥ 5000 never
    /// appear on the wire.
    pub const fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A close code and its reason, as carried by a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason (at most 123 bytes of UTF-8 on the wire).
    pub reason: String,
}

/// Why a close frame payload is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClosePayloadError {
    /// One byte, or a code that may not appear on the wire (1002).
    Protocol,
    /// The reason is not UTF-8 (1007).
    InvalidUtf8,
}

impl CloseFrame {
    /// A close frame with this code and reason.
    pub fn new(code: impl Into<CloseCode>, reason: impl Into<String>) -> Self {
        Self { code: code.into(), reason: reason.into() }
    }

    /// Parses a received close payload: empty (no status) or a sendable code and a UTF-8 reason.
    pub(crate) fn parse(payload: &[u8]) -> Result<Option<Self>, ClosePayloadError> {
        match payload {
            [] => Ok(None),
            [_] => Err(ClosePayloadError::Protocol),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_sendable() {
                    return Err(ClosePayloadError::Protocol);
                }
                let reason =
                    simdutf8::basic::from_utf8(reason).map_err(|_| ClosePayloadError::InvalidUtf8)?;
                Ok(Some(Self { code, reason: reason.to_owned() }))
            }
        }
    }

    /// Encodes the payload: code then reason, the reason cut at a character boundary so the
    /// payload fits a control frame (125 bytes).
    pub(crate) fn encode(&self) -> Bytes {
        let mut reason = self.reason.as_str();
        if reason.len() > 123 {
            let mut end = 123;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason = &reason[..end];
        }
        let mut out = BytesMut::with_capacity(2 + reason.len());
        out.put_u16(self.code.0);
        out.put_slice(reason.as_bytes());
        out.freeze()
    }
}
