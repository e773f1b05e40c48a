//! Outgoing bytes, ready for vectored writes.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::header::{FrameHeader, MAX_HEADER_LEN};
use crate::mask::apply_mask;

/// Payloads up to this size are copied next to their header (one write segment); larger ones
/// are queued as their own segment, without a copy, for `write_vectored`.
const INLINE_PAYLOAD_MAX: usize = 4096;

/// Encoded frames waiting to be written: a [`Buf`] whose [`chunks_vectored`](Buf::chunks_vectored)
/// gives header and payload segments for one `writev`.
///
/// Small frames are packed into one growing buffer; large payloads stay the caller's [`Bytes`].
/// Once drained, the buffers are reused: a steady stream of frames allocates nothing.
#[derive(Debug, Default)]
pub struct Transmit {
    /// Segments sealed before `tail`, in order; never empty.
    sealed: VecDeque<Bytes>,
    /// Packed small frames and headers, after every sealed segment.
    tail: BytesMut,
    remaining: usize,
}

impl Transmit {
    /// Appends one frame: its header, then its payload, masked with `mask` if given.
    #[inline]
    pub(crate) fn push_frame(&mut self, header: &FrameHeader, payload: Bytes) {
        let head_len = match header.encode_short() {
            // The usual headers, stored whole (see `encode_short`).
            Some((word, 2)) => {
                self.tail.put_u16(word as u16);
                2
            }
            Some((word, _)) => {
                self.tail.put_u32(word);
                4
            }
            None => {
                let mut head = [0u8; MAX_HEADER_LEN];
                let head_len = header.encode(&mut head);
                self.tail.put_slice(&head[..head_len]);
                head_len
            }
        };
        self.remaining += head_len + payload.len();
        if let Some(key) = header.mask {
            // Masking needs a private copy anyway: make it in the tail.
            let start = self.tail.len();
            self.tail.put_slice(&payload);
            apply_mask(&mut self.tail[start..], key);
        } else if payload.len() <= INLINE_PAYLOAD_MAX {
            self.tail.put_slice(&payload);
        } else {
            self.sealed.push_back(self.tail.split().freeze());
            self.sealed.push_back(payload);
        }
    }

    /// Whether nothing is waiting.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// Frees the buffers kept for reuse, if nothing is waiting.
    pub(crate) fn release_memory(&mut self) {
        if self.is_empty() {
            *self = Self::default();
        }
    }
}

impl Buf for Transmit {
    #[inline]
    fn remaining(&self) -> usize {
        self.remaining
    }

    #[inline]
    fn chunk(&self) -> &[u8] {
        self.sealed.front().map_or(&self.tail[..], |segment| &segment[..])
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let segments = self.sealed.iter().map(|s| &s[..]).chain(Some(&self.tail[..]));
        let mut n = 0;
        for (slot, segment) in dst.iter_mut().zip(segments.filter(|s| !s.is_empty())) {
            *slot = IoSlice::new(segment);
            n += 1;
        }
        n
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end of the transmit buffer");
        self.remaining -= cnt;
        while cnt > 0 {
            match self.sealed.front_mut() {
                Some(front) if front.len() <= cnt => {
                    cnt -= front.len();
                    self.sealed.pop_front();
                }
                Some(front) => {
                    front.advance(cnt);
                    cnt = 0;
                }
                None => {
                    self.tail.advance(cnt);
                    cnt = 0;
                }
            }
        }
        if self.remaining == 0 {
            // Drained: let the next frames reuse the tail's storage from its start.
            self.tail.clear();
        }
    }
}
