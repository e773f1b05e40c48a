//! Incremental UTF-8 validation across fragments, failing on the first invalid byte.

/// Validates a text message fragment by fragment, failing on the first invalid byte. A code point
/// split across fragments is held (at most 3 bytes) until the next one completes it.
///
/// ```
/// use ws_proto::Utf8Validator;
///
/// let mut utf8 = Utf8Validator::default();
/// let text = "héllo".as_bytes();
/// assert!(utf8.feed(&text[..2]).is_ok()); // "h" and half of "é"
/// assert!(utf8.feed(&text[2..]).is_ok());
/// assert!(utf8.finish().is_ok());
/// ```
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: usize,
}

/// The fragment holds a byte that can never be part of valid UTF-8 here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl std::fmt::Display for InvalidUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid UTF-8")
    }
}

impl std::error::Error for InvalidUtf8 {}

/// Below this length simdutf8 does not use SIMD.
const SIMD_MIN: usize = 64;

fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Validates a whole message at once.
pub(crate) fn validate(bytes: &[u8]) -> Result<(), InvalidUtf8> {
    if bytes.len() < SIMD_MIN && bytes.is_ascii() {
        return Ok(()); // see `feed`
    }
    simdutf8::basic::from_utf8(bytes).map(|_| ()).map_err(|_| InvalidUtf8)
}

impl Utf8Validator {
    /// Validates the next fragment.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let need = sequence_len(self.partial[0]) - self.partial_len;
            let take = need.min(chunk.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&chunk[..take]);
            let held = self.partial_len + take;
            match simdutf8::compat::from_utf8(&self.partial[..held]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still a valid prefix: the fragment ended inside the code point.
                    self.partial_len = held;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
            chunk = &chunk[take..];
        }
        if chunk.len() < SIMD_MIN && chunk.is_ascii() {
            // simdutf8 hands inputs this short to `core::str::from_utf8`, which costs several
            // times this word-at-a-time scan on the ASCII text most small messages are.
            return Ok(());
        }
        match simdutf8::compat::from_utf8(chunk) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &chunk[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Ends the message: a code point left incomplete is an error. Resets for the next message.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.partial_len == 0;
        self.partial_len = 0;
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_everywhere(bytes: &[u8]) -> Vec<Result<(), InvalidUtf8>> {
        (0..=bytes.len())
            .map(|at| {
                let mut v = Utf8Validator::default();
                v.feed(&bytes[..at])?;
                v.feed(&bytes[at..])?;
                v.finish()
            })
            .collect()
    }

    #[test]
    fn valid_text_in_any_split() {
        let text = "κόσμε ✓ 𝄞 ascii".as_bytes();
        assert!(split_everywhere(text).iter().all(Result::is_ok));
    }

    #[test]
    fn invalid_text_in_any_split() {
        for bad in [
            &b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"[..],
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
        ] {
            assert!(split_everywhere(bad).iter().all(Result::is_err), "{bad:?}");
        }
    }

    #[test]
    fn fails_on_the_first_invalid_byte_not_at_the_end() {
        let mut v = Utf8Validator::default();
        assert!(v.feed(b"hello").is_ok());
        // 0xED 0xA0 starts a surrogate: invalid as soon as the second byte arrives.
        assert_eq!(v.feed(b"\xed\xa0"), Err(InvalidUtf8));
    }

    #[test]
    fn truncated_code_point_fails_at_finish() {
        let mut v = Utf8Validator::default();
        assert!(v.feed(b"\xe2\x9c").is_ok());
        assert_eq!(v.finish(), Err(InvalidUtf8));
        // and the validator is ready for the next message
        assert!(v.feed(b"ok").is_ok());
        assert!(v.finish().is_ok());
    }

    #[test]
    fn byte_by_byte() {
        let text = "ĥéĺĺõ 𝄞".as_bytes();
        let mut v = Utf8Validator::default();
        for b in text {
            v.feed(std::slice::from_ref(b)).expect("valid prefix");
        }
        assert!(v.finish().is_ok());
    }
}
