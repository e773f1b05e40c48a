//! The tail of a deflate stream's uncompressed data: what a stream freed between messages needs
//! to be re-created with the same LZ77 history.
//!
//! zlib-rs's safe API cannot read a stream's window back, so each direction that keeps context
//! copies the last `2^window_bits` bytes it processes here. That costs one `memcpy` of at most a
//! window per message. [`PerMessageDeflate::release_memory`](crate::PerMessageDeflate) then frees
//! the stream and keeps only this, and the next message primes a new stream with
//! `set_dictionary`.

use crate::codec::zlib_window_bits;

/// A ring of the last `cap` bytes written, growing up to `cap` as data arrives.
pub(crate) struct History {
    /// The bytes in order while not full; once `len == cap`, a ring whose oldest byte is at `start`.
    buf: Vec<u8>,
    start: usize,
    cap: usize,
}

impl History {
    /// The history a stream with an RFC 7692 window of `window_bits` (8–15) refers back into. Window 8
    /// keeps 512 bytes, the zlib window that stands in for it.
    pub(crate) fn new(window_bits: u8) -> Self {
        Self { buf: Vec::new(), start: 0, cap: 1 << zlib_window_bits(window_bits) }
    }

    /// Appends `data`, forgetting what falls out of the window.
    pub(crate) fn push(&mut self, mut data: &[u8]) {
        if data.len() >= self.cap {
            // Only the tail of a big message matters.
            self.buf.clear();
            self.start = 0;
            self.reserve(self.cap);
            self.buf.extend_from_slice(&data[data.len() - self.cap..]);
            return;
        }
        if self.buf.len() < self.cap {
            let (head, rest) = data.split_at(data.len().min(self.cap - self.buf.len()));
            self.reserve(self.buf.len() + head.len());
            self.buf.extend_from_slice(head);
            data = rest;
        }
        // Full: overwrite the oldest bytes, wrapping around (data.len() < cap here).
        let first = data.len().min(self.cap - self.start);
        let (end_part, start_part) = data.split_at(first);
        self.buf[self.start..self.start + first].copy_from_slice(end_part);
        self.buf[..start_part.len()].copy_from_slice(start_part);
        self.start = (self.start + data.len()) % self.cap;
    }

    /// The history, oldest byte first. Puts the ring in order, which is free when it already is.
    pub(crate) fn as_slice(&mut self) -> &[u8] {
        self.buf.rotate_left(self.start);
        self.start = 0;
        &self.buf
    }

    /// Forgets everything (the peer started a new deflate stream).
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }

    /// Puts the ring in order and frees spare capacity, for an idle connection.
    pub(crate) fn compact(&mut self) {
        let _ = self.as_slice();
        self.buf.shrink_to_fit();
    }

    /// Grows the capacity to `need`, doubling but never beyond `cap`, so that a full ring stops
    /// allocating.
    fn reserve(&mut self, need: usize) {
        if need > self.buf.capacity() {
            let target = need.max(self.buf.capacity() * 2).min(self.cap);
            self.buf.reserve_exact(target - self.buf.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: the last `cap` bytes of everything pushed.
    fn tail(all: &[u8], cap: usize) -> &[u8] {
        &all[all.len().saturating_sub(cap)..]
    }

    #[test]
    fn keeps_the_last_window_in_order() {
        let mut history = History::new(9);
        let mut all = Vec::new();
        let mut next = 0u8;
        for len in [0, 1, 100, 300, 511, 512, 513, 7, 1000, 0, 250, 260, 3] {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            history.push(&data);
            all.extend_from_slice(&data);
            assert_eq!(history.as_slice(), tail(&all, 512), "after {len}");
            // Pushing into a ring already put in order and into one left wrapped must agree.
            history.push(&data[..len / 2]);
            all.extend_from_slice(&data[..len / 2]);
        }
        history.compact();
        assert_eq!(history.as_slice(), tail(&all, 512));
        assert_eq!(history.buf.capacity(), 512);
    }

    #[test]
    fn never_grows_beyond_the_window() {
        let mut history = History::new(8);
        for _ in 0..100 {
            history.push(&[1; 37]);
        }
        assert!(history.buf.capacity() <= 512);
        history.clear();
        assert!(history.as_slice().is_empty());
    }
}
