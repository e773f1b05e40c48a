//! Messages: what the application sends and receives.

use std::fmt;

use bytes::Bytes;

/// UTF-8 text held in [`Bytes`]: a text message's payload without a copy.
///
/// The bytes are checked once, when the value is built (received text is checked as it
/// arrives); [`as_str`](Self::as_str) is then free.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Utf8Bytes(
    /// Always UTF-8: every constructor checks, or takes a `str`.
    Bytes,
);

impl Utf8Bytes {
    /// Checks that `bytes` are UTF-8 and wraps them without a copy; `None` if they are not.
    pub fn from_bytes(bytes: Bytes) -> Option<Self> {
        simdutf8::basic::from_utf8(&bytes).ok()?;
        Some(Self(bytes))
    }

    /// Wraps bytes the caller already validated.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(simdutf8::basic::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// Wraps a static string.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }

    /// The text, without a copy or a check.
    #[inline]
    pub fn as_str(&self) -> &str {
        // The one `unsafe` in this crate. Checking again here (safe Rust has no unchecked
        // `&[u8]` to `&str`) costs a pass over the text on every call, about 1.4 µs for 64 KiB;
        // checking once when building with `core::str::from_utf8` (as `bytestring` does) is up
        // to 12x slower than the SIMD check received text already gets. The invariant is local
        // to this module: the field is private and every constructor checks or takes a `str`.
        // `tests/proptest.rs` holds every received text to `std`'s check, and the tests below
        // run under Miri (`cargo xtask miri`).
        #[allow(unsafe_code)]
        // SAFETY: `self.0` is UTF-8, the type's invariant (see the field).
        unsafe {
            std::str::from_utf8_unchecked(&self.0)
        }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Byte length.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Self(Bytes::from(text))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Self(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.0
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// A complete data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::Binary(data.into())
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(data) => data,
        }
    }

    /// The payload, without copying.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Self::Text(text) => text.into_bytes(),
            Self::Binary(data) => data,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::Text(text.into())
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Self::Binary(data.into())
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Self::Binary(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text built from received bytes shares their memory, and so does its `&str`.
    #[test]
    fn no_copy() {
        let received = Bytes::from(String::from("héllo, wörld"));
        let text = Utf8Bytes::from_validated(received.clone());
        assert_eq!(text.as_bytes().as_ptr(), received.as_ptr());
        assert_eq!(text.as_str().as_ptr(), received.as_ptr());
        let text = Utf8Bytes::from_bytes(received.slice(1..)).expect("valid UTF-8");
        assert_eq!(text.as_str().as_ptr(), received[1..].as_ptr());
        assert_eq!(text.as_str(), "éllo, wörld");
        assert_eq!(Message::Text(text).into_bytes().as_ptr(), received[1..].as_ptr());
        // Cut inside `é`: not text.
        assert!(Utf8Bytes::from_bytes(received.slice(2..)).is_none());
    }
}
