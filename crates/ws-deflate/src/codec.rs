//! The compressor and the decompressor: reused zlib-rs streams writing into reused buffers.
//!
//! Both write straight into a [`BytesMut`] and hand out `split().freeze()`: once the application
//! drops the previous payload, the next message reclaims the same allocation, so a connection in
//! its steady state allocates nothing per message. Buffers are zero-filled before zlib writes into
//! them (the only way to lend uninitialised memory to zlib is `unsafe`, which this crate forbids);
//! the memset costs a few percent of the inflate time at most.

use bytes::{Bytes, BytesMut};
use ws_extensions::ExtensionError;

use crate::history::History;
#[cfg(feature = "zlib")]
use crate::zlib::{Deflate, Inflate};
#[cfg(not(feature = "zlib"))]
use zlib_rs::{Deflate, Inflate};
use zlib_rs::{
    DeflateConfig, DeflateError, DeflateFlush, InflateError, InflateFlush, Method, Status, Strategy,
};

/// What a sync flush ends with, and what RFC 7692 §7.2.1 strips from each message.
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Buffers that grew beyond this for one message are released instead of kept for the next.
const RETAIN_MAX: usize = 64 * 1024;
/// The smallest output chunk handed to zlib.
const MIN_CHUNK: usize = 256;
/// The largest output chunk handed to zlib at once.
const MAX_CHUNK: usize = 1 << 20;

/// The zlib window to configure for an RFC 7692 window size.
///
/// zlib (and zlib-rs) refuse a raw deflate stream with an 8-bit window, and treat 8 as 9 where
/// they accept it. Compressing with 9 is still correct for a peer that negotiated 8: zlib never
/// emits a distance beyond `window - MIN_LOOKAHEAD` (512 − 262 = 250 bytes for a 9-bit window),
/// which fits in the 256-byte window the peer was promised. The tests check this with a strict
/// 256-byte-window decoder.
pub(crate) fn zlib_window_bits(bits: u8) -> u8 {
    bits.clamp(9, 15)
}

/// Makes room for `need` bytes in `buf` (which holds `buf.len()` bytes of the current message),
/// never allocating more than `cap` bytes when `cap >= need`: near a size limit the buffer grows
/// exactly, where `BytesMut` would double it.
fn grow(buf: &mut BytesMut, need: usize, cap: usize) {
    let additional = need - buf.len();
    if buf.capacity() >= need || buf.try_reclaim(additional) {
        return;
    }
    let new_cap = need.max(buf.len().saturating_mul(2)).min(cap.max(need));
    let mut fresh = BytesMut::with_capacity(new_cap);
    fresh.extend_from_slice(buf);
    *buf = fresh;
}

/// Hands out the buffer's content, keeping its allocation for the next message unless it grew big.
fn take(buf: &mut BytesMut) -> Bytes {
    let out = buf.split().freeze();
    if out.len() > RETAIN_MAX {
        // The payload now owns the big allocation alone and frees it when the application drops it.
        *buf = BytesMut::new();
    }
    out
}

/// What a compressor is configured with: two compressors with equal keys are interchangeable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompressorKey {
    /// The zlib window, 9–15 (see [`zlib_window_bits`]).
    window_bits: u8,
    level: u8,
    mem_level: u8,
}

impl CompressorKey {
    /// `window_bits` is the RFC value (8–15); the others are validated.
    pub(crate) fn new(window_bits: u8, level: u8, mem_level: u8) -> Self {
        Self { window_bits: zlib_window_bits(window_bits), level, mem_level }
    }
}

/// The sending half: one deflate stream, reset per message under no context takeover.
pub(crate) struct Compressor {
    stream: Deflate,
    buf: BytesMut,
    key: CompressorKey,
}

impl Compressor {
    /// A raw deflate stream.
    pub(crate) fn new(key: CompressorKey) -> Self {
        let config = DeflateConfig {
            level: i32::from(key.level),
            method: Method::Deflated,
            window_bits: -i32::from(key.window_bits),
            mem_level: i32::from(key.mem_level),
            strategy: Strategy::Default,
        };
        Self { stream: Deflate::new_with_config(config), buf: BytesMut::new(), key }
    }

    /// A new stream that carries on from `history`, the last window of data compressed before
    /// the previous stream was freed: the peer's decompressor still holds it, so matches may
    /// refer back into it.
    pub(crate) fn resume(key: CompressorKey, history: &[u8]) -> Result<Self, ExtensionError> {
        let mut compressor = Self::new(key);
        compressor.prime(history)?;
        Ok(compressor)
    }

    /// Loads `history` into a fresh (or just recycled) stream, as [`resume`](Self::resume) does.
    pub(crate) fn prime(&mut self, history: &[u8]) -> Result<(), ExtensionError> {
        if !history.is_empty() {
            self.stream.set_dictionary(history).map_err(deflate_error)?;
        }
        Ok(())
    }

    pub(crate) fn key(&self) -> CompressorKey {
        self.key
    }

    /// Compresses one fragment with a sync flush. On the final fragment, the `00 00 ff ff` tail is
    /// stripped (after adding an empty stored block if the output lacks one). `history`, when
    /// context is kept, receives the input.
    pub(crate) fn compress(
        &mut self,
        input: &[u8],
        fin: bool,
        history: Option<&mut History>,
    ) -> Result<Bytes, ExtensionError> {
        debug_assert!(self.buf.is_empty());
        let whole = input;
        let mut input = input;
        loop {
            let len = self.buf.len();
            let chunk = (input.len() / 2 + 64).clamp(MIN_CHUNK, MAX_CHUNK);
            grow(&mut self.buf, len + chunk, usize::MAX);
            self.buf.resize(len + chunk, 0);
            let (in_before, out_before) = (self.stream.total_in(), self.stream.total_out());
            let status = self.stream.compress(input, &mut self.buf[len..], DeflateFlush::SyncFlush);
            let consumed = delta(self.stream.total_in(), in_before);
            let produced = delta(self.stream.total_out(), out_before);
            self.buf.truncate(len + produced);
            input = &input[consumed..];
            match status {
                Ok(Status::Ok | Status::StreamEnd) => {}
                // No progress possible: nothing left to compress or flush.
                Ok(Status::BufError) => break,
                Err(err) => return Err(deflate_error(err)),
            }
            // Output space left over means the flush is complete.
            if produced < chunk && input.is_empty() {
                break;
            }
        }
        if fin {
            if self.buf.ends_with(&TAIL) {
                self.buf.truncate(self.buf.len() - TAIL.len());
            } else {
                // zlib emits nothing for an empty flush: the message then ends with an empty
                // stored block, whose header byte is all that remains once the tail is stripped.
                self.buf.extend_from_slice(&[0x00]);
            }
        }
        if let Some(history) = history {
            history.push(whole);
        }
        Ok(take(&mut self.buf))
    }

    /// Forgets the history: the next message is compressed without references to earlier ones.
    pub(crate) fn reset(&mut self) {
        self.stream.reset();
    }

    /// Ready for another connection's message, even after a failed one.
    pub(crate) fn recycle(&mut self) {
        self.stream.reset();
        self.buf.clear();
    }
}

/// The receiving half: one inflate stream, kept across messages.
pub(crate) struct Decompressor {
    stream: Inflate,
    buf: BytesMut,
    /// The peer ended its deflate stream (a block with BFINAL set, RFC 7692 §7.2.3.4): the rest of
    /// the message is ignored and the stream restarts with the next message.
    ended: bool,
}

impl Decompressor {
    /// A raw inflate stream for a peer window of `window_bits` (8–15).
    pub(crate) fn new(window_bits: u8) -> Self {
        Self {
            stream: Inflate::new(false, zlib_window_bits(window_bits)),
            buf: BytesMut::new(),
            ended: false,
        }
    }

    /// A new stream that carries on from `history`, the last window of data decompressed before
    /// the previous stream was freed: the peer's compressor may still refer back into it.
    pub(crate) fn resume(window_bits: u8, history: &[u8]) -> Result<Self, ExtensionError> {
        let mut decompressor = Self::new(window_bits);
        decompressor.prime(history)?;
        Ok(decompressor)
    }

    /// Loads `history` into a fresh (or just recycled) stream, as [`resume`](Self::resume) does.
    pub(crate) fn prime(&mut self, history: &[u8]) -> Result<(), ExtensionError> {
        if !history.is_empty() {
            // A raw inflate takes a dictionary at any time, without checking its Adler-32.
            self.stream.set_dictionary(history).map_err(|err| {
                ExtensionError::Internal(format!("inflate set_dictionary failed: {}", err.as_str()))
            })?;
        }
        Ok(())
    }

    /// Decompresses one fragment; on the final one, the stripped tail is fed back first.
    /// Fails with [`ExtensionError::TooBig`] as soon as the output would exceed `max_size`,
    /// having allocated at most `max_size` bytes for it. `history`, when the peer keeps context,
    /// receives the output, and is cleared when the peer ends its deflate stream.
    pub(crate) fn decompress(
        &mut self,
        input: &[u8],
        fin: bool,
        max_size: Option<usize>,
        history: Option<&mut History>,
    ) -> Result<Bytes, ExtensionError> {
        debug_assert!(self.buf.is_empty());
        let limit = max_size.unwrap_or(usize::MAX);
        let result =
            self.feed(input, limit).and_then(|()| if fin { self.feed(&TAIL, limit) } else { Ok(()) });
        if let Err(err) = result {
            self.buf.clear();
            return Err(err);
        }
        let restart = fin && self.ended;
        if restart {
            // zlib-rs resets to a 15-bit window, which decodes any smaller window too; stock
            // zlib keeps the configured one, which the peer's window fits in.
            self.stream.reset(false);
            self.ended = false;
        }
        if let Some(history) = history {
            match restart {
                // The next message starts a new deflate stream, which cannot refer back.
                true => history.clear(),
                false => history.push(&self.buf),
            }
        }
        Ok(take(&mut self.buf))
    }

    /// Ready for another connection's message, even after a failed one.
    pub(crate) fn recycle(&mut self) {
        self.stream.reset(false);
        self.ended = false;
        self.buf.clear();
    }

    fn feed(&mut self, mut input: &[u8], limit: usize) -> Result<(), ExtensionError> {
        // The first chunk is sized by the input alone: the 4-byte tail, fed after the message's
        // output, then needs no growth and no zero fill of the output so far.
        let mut first = true;
        while !self.ended {
            let len = self.buf.len();
            let room = limit - len;
            if room == 0 {
                // At the limit: one more output byte means the message is too big.
                let mut probe = [0u8; 1];
                let (consumed, produced) = inflate(&mut self.stream, &mut self.ended, input, &mut probe)?;
                if produced > 0 {
                    return Err(ExtensionError::TooBig);
                }
                input = &input[consumed..];
                if input.is_empty() || consumed == 0 {
                    return Ok(());
                }
                continue;
            }
            let done = if first { 0 } else { len };
            first = false;
            let chunk = input.len().saturating_mul(4).max(done).clamp(MIN_CHUNK, MAX_CHUNK).min(room);
            grow(&mut self.buf, len + chunk, limit);
            self.buf.resize(len + chunk, 0);
            let step = inflate(&mut self.stream, &mut self.ended, input, &mut self.buf[len..]);
            let (consumed, produced) = step.inspect_err(|_| self.buf.truncate(len))?;
            self.buf.truncate(len + produced);
            input = &input[consumed..];
            if produced < chunk && (input.is_empty() || self.ended) {
                return Ok(());
            }
            if consumed == 0 && produced == 0 {
                return Err(ExtensionError::InvalidData("deflate stream stalled".into()));
            }
        }
        Ok(())
    }
}

/// One inflate call; returns the bytes consumed and produced.
fn inflate(
    stream: &mut Inflate,
    ended: &mut bool,
    input: &[u8],
    output: &mut [u8],
) -> Result<(usize, usize), ExtensionError> {
    let (in_before, out_before) = (stream.total_in(), stream.total_out());
    let status = stream.decompress(input, output, InflateFlush::NoFlush);
    let consumed = delta(stream.total_in(), in_before);
    let produced = delta(stream.total_out(), out_before);
    match status {
        Ok(Status::StreamEnd) => *ended = true,
        Ok(Status::Ok | Status::BufError) => {}
        Err(InflateError::DataError | InflateError::NeedDict { .. }) => {
            let why = stream.error_message().unwrap_or("invalid deflate data");
            return Err(ExtensionError::InvalidData(why.to_owned()));
        }
        Err(err @ (InflateError::StreamError | InflateError::MemError)) => {
            return Err(ExtensionError::Internal(format!("inflate failed: {}", err.as_str())));
        }
    }
    Ok((consumed, produced))
}

fn delta(after: u64, before: u64) -> usize {
    usize::try_from(after - before).unwrap_or(usize::MAX)
}

fn deflate_error(err: DeflateError) -> ExtensionError {
    ExtensionError::Internal(format!("deflate failed: {}", err.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grow_is_exact_near_the_cap() {
        let mut buf = BytesMut::with_capacity(600);
        buf.resize(600, 1);
        grow(&mut buf, 700, 1000);
        assert_eq!(buf.capacity(), 1000);
        assert_eq!(buf.len(), 600);
        assert!(buf.iter().all(|&b| b == 1));
    }

    /// Why the level is not chosen per message size: the safe `Deflate::set_level` clears the
    /// output pointer before zlib-rs flushes the stream, so switching between match functions
    /// (level 1 `deflate_quick`, 2 `deflate_fast`, 3–6 `deflate_medium`) fails once the stream has
    /// compressed anything. If this starts passing `Ok`, a size-dependent level becomes possible.
    #[test]
    #[cfg(not(feature = "zlib"))]
    fn zlib_rs_cannot_switch_match_function_mid_stream() {
        let mut compressor = Compressor::new(CompressorKey::new(12, 6, 5));
        compressor.compress(b"{\"id\":1,\"op\":\"buy\"}", true, None).expect("compress");
        assert!(compressor.stream.set_level(1).is_err());
        // Within one match function it works.
        assert!(compressor.stream.set_level(4).is_ok());
        // And on a fresh stream too, which is of no use under context takeover.
        let mut fresh = Compressor::new(CompressorKey::new(12, 6, 5));
        assert!(fresh.stream.set_level(1).is_ok());
    }

    #[test]
    fn big_buffers_are_not_retained() {
        let mut buf = BytesMut::new();
        buf.resize(RETAIN_MAX + 1, 0);
        let out = take(&mut buf);
        assert_eq!(out.len(), RETAIN_MAX + 1);
        assert_eq!(buf.capacity(), 0);
    }
}
