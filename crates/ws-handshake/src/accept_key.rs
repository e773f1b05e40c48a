//! `Sec-WebSocket-Key` generation and `Sec-WebSocket-Accept` derivation (RFC 6455 §4.1, §4.2.2).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

/// The GUID appended to the key before hashing (RFC 6455 §1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Derives the `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` value (the base64 text as
/// sent, not the decoded bytes).
///
/// ```
/// assert_eq!(
///     ws_handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
/// );
/// ```
pub fn derive_accept_key(key: &[u8]) -> String {
    let bytes = accept_key_bytes(key);
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// The accept value as 28 ASCII bytes, without allocating.
pub(crate) fn accept_key_bytes(key: &[u8]) -> [u8; 28] {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    let digest = sha1.finalize();
    let mut out = [0u8; 28];
    // 20 bytes always encode to exactly 28 base64 characters.
    let _ = STANDARD.encode_slice(digest, &mut out);
    out
}

/// Encodes 16 key bytes as the 24-character `Sec-WebSocket-Key` value.
pub(crate) fn encode_key(key: &[u8; 16]) -> [u8; 24] {
    let mut out = [0u8; 24];
    let _ = STANDARD.encode_slice(key, &mut out);
    out
}

/// Whether a `Sec-WebSocket-Key` value is the base64 encoding of exactly 16 bytes.
pub(crate) fn is_valid_key(value: &[u8]) -> bool {
    let mut buf = [0u8; 24];
    value.len() == 24 && matches!(STANDARD.decode_slice(value, &mut buf), Ok(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_section_1_3() {
        assert_eq!(derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(&encode_key(b"the sample nonce"), b"dGhlIHNhbXBsZSBub25jZQ==");
    }

    #[test]
    fn invalid_keys() {
        for key in [
            &b""[..],
            b"dGhlIHNhbXBsZSBub25jZQ",
            b"dGhlIHNhbXBsZSBub25jZQ=",
            b"dGhlIHNhbXBsZSBub25jZ===",
            b"dGhlIHNhbXBsZSBub25jZWE=",
            b"!!!!!!!!!!!!!!!!!!!!!!==",
            b"dGhlIHNhbXBsZSBub25jZQ==x",
        ] {
            assert!(!is_valid_key(key), "{key:?}");
        }
    }
}
