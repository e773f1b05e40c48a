//! Masking (RFC 6455 §5.3): XOR with a 4-byte key, in place, a word or 16 aligned bytes at a time.

use rand_chacha::ChaCha12Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// XORs `buf` with `key`, as if `buf` started at offset 0 of the payload.
///
/// Safe code the compiler turns into SIMD: buffers of 128 bytes or more are XORed 16 bytes at a
/// time from the first 16-byte-aligned address on, so that no store straddles two cache lines
/// (payloads start at unaligned offsets: 8 bytes into a frame of 1 KiB, 14 from 64 KiB on).
/// Shorter ones go a word at a time.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    if buf.len() < 128 { apply_mask_words(buf, key) } else { apply_mask_blocks(buf, key) }
}

/// [`apply_mask`] for long buffers, out of line so that the short case inlines small.
#[inline(never)]
fn apply_mask_blocks(buf: &mut [u8], key: [u8; 4]) {
    let head = buf.as_ptr().align_offset(16).min(buf.len());
    let (unaligned, rest) = buf.split_at_mut(head);
    apply_mask_words(unaligned, key);
    let key = key_at(key, head);
    let mut key16 = [0u8; 16];
    for (i, k) in key16.iter_mut().enumerate() {
        *k = key[i % 4];
    }
    let mut blocks = rest.chunks_exact_mut(16);
    for block in &mut blocks {
        for (byte, k) in block.iter_mut().zip(&key16) {
            *byte ^= k;
        }
    }
    // The remainder starts at a multiple of 16 into `rest`: the key is still `key`.
    apply_mask_words(blocks.into_remainder(), key);
}

/// [`apply_mask`] eight bytes per step, for short buffers and the ends of long ones.
#[inline]
fn apply_mask_words(buf: &mut [u8], key: [u8; 4]) {
    let key_word = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ key_word).to_ne_bytes());
    }
    // The remainder starts at a multiple of 8, hence of 4: the key is still aligned.
    let tail = chunks.into_remainder();
    let bytes = match tail.split_first_chunk_mut::<4>() {
        Some((word, rest)) => {
            *word = (u32::from_ne_bytes(*word) ^ u32::from_ne_bytes(key)).to_ne_bytes();
            rest
        }
        None => tail,
    };
    for (byte, k) in bytes.iter_mut().zip(key) {
        *byte ^= k;
    }
}

/// XORs `buf` with `key`, as if `buf` started at `offset` in the payload: for masking a payload
/// piece by piece, as its bytes arrive.
#[inline]
pub(crate) fn apply_mask_from(buf: &mut [u8], key: [u8; 4], offset: usize) {
    apply_mask(buf, key_at(key, offset));
}

/// The key as seen from `offset` bytes into the payload.
fn key_at(key: [u8; 4], offset: usize) -> [u8; 4] {
    // Little-endian: the byte at index `k` of the result is the key's byte `k + offset`.
    let shift = 8 * (offset % 4) as u32;
    u32::from_le_bytes(key).rotate_right(shift).to_le_bytes()
}

/// Where masking keys come from: a ChaCha12 generator seeded once from the OS (one syscall per
/// connection, none per frame), or a caller-supplied source for reproducible tests.
pub(crate) enum MaskKeys {
    ChaCha(Box<ChaCha12Rng>),
    Custom(Box<dyn FnMut() -> [u8; 4] + Send>),
}

impl MaskKeys {
    pub(crate) fn from_seed(seed: [u8; 32]) -> Self {
        Self::ChaCha(Box::new(ChaCha12Rng::from_seed(seed)))
    }

    pub(crate) fn from_os() -> Self {
        let mut seed = [0u8; 32];
        // Without OS entropy there is nothing safe to fall back on for masking keys.
        getrandom::fill(&mut seed).expect("the OS random number generator failed");
        Self::from_seed(seed)
    }

    pub(crate) fn next_key(&mut self) -> [u8; 4] {
        match self {
            Self::ChaCha(rng) => rng.next_u32().to_ne_bytes(),
            Self::Custom(source) => source(),
        }
    }
}

impl std::fmt::Debug for MaskKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ChaCha(_) => "MaskKeys::ChaCha",
            Self::Custom(_) => "MaskKeys::Custom",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }

    #[test]
    fn matches_the_byte_at_a_time_definition() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        // Lengths across the word/aligned-block switch, at every alignment of the start.
        for offset in 0..16 {
            for len in (0..300).chain([1024, 1031]) {
                let data: Vec<u8> = (0..len + offset).map(|i| i as u8).collect();
                let (mut fast, mut slow) = (data.clone(), data.clone());
                apply_mask(&mut fast[offset..], key);
                naive(&mut slow[offset..], key);
                assert_eq!(fast, slow, "offset {offset}, len {len}");
                apply_mask(&mut fast[offset..], key);
                assert_eq!(fast, data, "masking twice is the identity");
            }
        }
    }

    #[test]
    fn masking_in_pieces_matches_masking_at_once() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let data: Vec<u8> = (0..200u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key);
        for cuts in [[0, 1, 2], [3, 7, 8], [5, 6, 150], [1, 100, 199], [64, 65, 66]] {
            let mut pieces = data.clone();
            let mut start = 0;
            for end in cuts.into_iter().chain([data.len()]) {
                apply_mask_from(&mut pieces[start..end], key, start);
                start = end;
            }
            assert_eq!(pieces, whole, "cuts {cuts:?}");
        }
    }

    #[test]
    fn seeded_keys_replay() {
        let mut a = MaskKeys::from_seed([7; 32]);
        let mut b = MaskKeys::from_seed([7; 32]);
        for _ in 0..100 {
            assert_eq!(a.next_key(), b.next_key());
        }
    }
}
