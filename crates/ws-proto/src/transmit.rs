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
/// Headers and small payloads are packed into one growing buffer, the tail; large payloads stay
/// the caller's [`Bytes`], each recorded with the place in the tail where it belongs. The tail is
/// never split, so queueing a large payload costs no reference count and no allocation, and
/// once drained the tail is reused from its start: a steady stream of frames allocates nothing.
#[derive(Debug, Default)]
pub struct Transmit {
    /// Packed headers and small payloads; bytes before `written` are already written.
    tail: BytesMut,
    written: usize,
    /// Large payloads in order, each with the tail offset it goes before.
    payloads: VecDeque<(usize, Bytes)>,
    remaining: usize,
}

impl Transmit {
    /// Appends one frame: its header, then its payload, masked with `mask` if given.
    // Always inlined: with a second caller (prepared messages) the compiler stops inlining it
    // into `write_frame`, and every send pays for moving the frame through a call (+12 %
    // instructions in the perf gate's send_small_batch).
    #[inline(always)]
    pub(crate) fn push_frame(&mut self, header: &FrameHeader, payload: Bytes) {
        if self.push_header(header, &payload) {
            self.payloads.push_back((self.tail.len(), payload));
        }
    }

    /// Appends one frame whose payload is shared (a broadcast): copied like any small payload,
    /// referenced (one reference count) only when it is large.
    pub(crate) fn push_shared_frame(&mut self, header: &FrameHeader, payload: &Bytes) {
        if self.push_header(header, payload) {
            self.payloads.push_back((self.tail.len(), payload.clone()));
        }
    }

    /// Appends the header and, when it goes in the tail (masked or small), the payload; returns
    /// whether the payload must be queued as its own segment instead.
    #[inline(always)]
    fn push_header(&mut self, header: &FrameHeader, payload: &[u8]) -> bool {
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
            self.tail.put_slice(payload);
            apply_mask(&mut self.tail[start..], key);
            false
        } else if payload.len() <= INLINE_PAYLOAD_MAX {
            self.tail.put_slice(payload);
            false
        } else {
            true
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

    /// The unwritten tail bytes before the next payload (all of them if none is queued).
    #[inline]
    fn tail_run(&self) -> &[u8] {
        let end = self.payloads.front().map_or(self.tail.len(), |&(at, _)| at);
        &self.tail[self.written..end]
    }
}

impl Buf for Transmit {
    #[inline]
    fn remaining(&self) -> usize {
        self.remaining
    }

    #[inline]
    fn chunk(&self) -> &[u8] {
        match self.payloads.front() {
            Some((at, payload)) if *at == self.written => payload,
            _ => self.tail_run(),
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut push = |segment: &'a [u8]| {
            if !segment.is_empty() && n < dst.len() {
                dst[n] = IoSlice::new(segment);
                n += 1;
            }
        };
        let mut from = self.written;
        for (at, payload) in &self.payloads {
            push(&self.tail[from..*at]);
            push(payload);
            from = *at;
        }
        push(&self.tail[from..]);
        n
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end of the transmit buffer");
        self.remaining -= cnt;
        while cnt > 0 {
            let run = self.tail_run().len();
            if run > 0 {
                let step = run.min(cnt);
                self.written += step;
                cnt -= step;
                continue;
            }
            match self.payloads.front_mut() {
                Some((_, payload)) if payload.len() <= cnt => {
                    cnt -= payload.len();
                    self.payloads.pop_front();
                }
                Some((_, payload)) => {
                    payload.advance(cnt);
                    cnt = 0;
                }
                // `remaining` counts every queued byte, so the tail run above took the rest.
                None => break,
            }
        }
        if self.remaining == 0 {
            // Drained: let the next frames reuse the tail's storage from its start.
            self.tail.clear();
            self.written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcode::OpCode;

    fn frame(len: usize, seed: u8, mask: Option<[u8; 4]>) -> (FrameHeader, Bytes) {
        let header = FrameHeader {
            fin: true,
            rsv: Default::default(),
            opcode: OpCode::Binary,
            mask,
            payload_len: len as u64,
        };
        (header, (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect())
    }

    /// The bytes `push_frame` must produce: header, then the (masked) payload.
    fn expected(header: &FrameHeader, payload: &[u8]) -> Vec<u8> {
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        let mut out = head[..n].to_vec();
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = header.mask {
            apply_mask(&mut out[start..], key);
        }
        out
    }

    #[test]
    fn drains_small_and_large_frames_in_order_through_any_writes() {
        let lens = [0, 20, INLINE_PAYLOAD_MAX + 1, 1024, 70_000, 3, INLINE_PAYLOAD_MAX, 100_000, 5];
        // Each write takes at most `iovecs` segments and then at most `limit` bytes of them.
        for (iovecs, limit) in [(1, 7), (2, 1000), (3, 4096), (64, usize::MAX), (4, 65_537)] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = Transmit::default();
                let mut want = Vec::new();
                // Two bursts, so the second reuses the drained tail.
                for burst in 0..2u8 {
                    for (i, &len) in lens.iter().enumerate() {
                        let (header, payload) = frame(len, burst * 16 + i as u8, mask);
                        want.extend(expected(&header, &payload));
                        out.push_frame(&header, payload);
                    }
                    let mut got = Vec::new();
                    while out.has_remaining() {
                        let mut first = [IoSlice::new(&[]); 1];
                        out.chunks_vectored(&mut first);
                        assert_eq!(out.chunk(), &first[0][..], "chunk is the first segment");
                        let mut slices = vec![IoSlice::new(&[]); iovecs];
                        let n = out.chunks_vectored(&mut slices);
                        assert!(n > 0);
                        let before = got.len();
                        for s in &slices[..n] {
                            let take = s.len().min(limit - (got.len() - before).min(limit));
                            got.extend_from_slice(&s[..take]);
                        }
                        out.advance(got.len() - before);
                    }
                    assert_eq!(got, want, "iovecs {iovecs}, limit {limit}, mask {mask:?}");
                    assert!(out.is_empty() && out.payloads.is_empty() && out.tail.is_empty());
                    want.clear();
                }
            }
        }
    }
}
