//! Stock zlib (through `libz-sys`) behind the part of zlib-rs's API the codec uses, selected by
//! the `zlib` feature. Stock zlib sizes its hash table by memLevel and its windows by the window
//! bits, so a busy connection at 12/5 holds about 49 KiB of streams instead of zlib-rs's 208 KiB,
//! at 1.5–1.9× the CPU time (docs/performance.md, "Deflate engines measured").
//!
//! The only unsafe code of the crate, confined here: a boxed `z_stream` (zlib's state points back
//! at it, so it never moves), initialised at creation, ended on drop, and given pointers into the
//! caller's slices for the length of one call.

use std::alloc::Layout;
use std::ffi::{CStr, c_int, c_uint, c_void};
use std::ptr::null_mut;

use libz_sys as z;
use zlib_rs::{DeflateConfig, DeflateError, DeflateFlush, InflateError, InflateFlush, Status, Strategy};

/// Bytes in front of each zlib allocation holding its size: `zfree` is not told it.
const HEADER: usize = 16;

/// zlib's allocations go through Rust's global allocator, so that an application's allocator
/// (the examples' jemalloc) serves them, and ws-deflate's memory tests count them.
unsafe extern "C" fn zalloc(_opaque: *mut c_void, items: c_uint, size: c_uint) -> *mut c_void {
    let Some(n) = (items as usize).checked_mul(size as usize).and_then(|n| n.checked_add(HEADER)) else {
        return null_mut();
    };
    let Ok(layout) = Layout::from_size_align(n, HEADER) else { return null_mut() };
    // SAFETY: `layout` has a non-zero size.
    let base = unsafe { std::alloc::alloc(layout) };
    if base.is_null() {
        return null_mut();
    }
    // SAFETY: `base` is valid for `n >= HEADER` bytes and aligned for `usize`.
    unsafe {
        base.cast::<usize>().write(n);
        base.add(HEADER).cast()
    }
}

unsafe extern "C" fn zfree(_opaque: *mut c_void, ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` came from `zalloc`, which stored the allocation's size HEADER bytes before
    // it, with the same alignment.
    unsafe {
        let base = ptr.cast::<u8>().sub(HEADER);
        let n = base.cast::<usize>().read();
        std::alloc::dealloc(base, Layout::from_size_align_unchecked(n, HEADER));
    }
}

fn new_stream() -> Box<z::z_stream> {
    Box::new(z::z_stream {
        next_in: null_mut(),
        avail_in: 0,
        total_in: 0,
        next_out: null_mut(),
        avail_out: 0,
        total_out: 0,
        msg: null_mut(),
        state: null_mut(),
        zalloc,
        zfree,
        opaque: null_mut(),
        data_type: 0,
        adler: 0,
        reserved: 0,
    })
}

const STREAM_SIZE: c_int = std::mem::size_of::<z::z_stream>() as c_int;

/// The byte counts of a stream, kept here in 64 bits: zlib's own are `unsigned long`, 32 bits on
/// Windows.
#[derive(Default)]
struct Totals {
    input: u64,
    output: u64,
}

/// Runs `call` on the stream pointed at `input` and `output` (at most 4 GiB of each per call:
/// zlib counts in `c_uint`; the caller sees what was consumed and produced through the totals and
/// calls again), counts what it consumed and produced, and forgets the buffers afterwards so
/// that no pointer outlives its borrow.
fn with_buffers(
    s: &mut z::z_stream,
    totals: &mut Totals,
    input: &[u8],
    output: &mut [u8],
    call: impl FnOnce(&mut z::z_stream) -> c_int,
) -> c_int {
    let avail_in = c_uint::try_from(input.len()).unwrap_or(c_uint::MAX);
    let avail_out = c_uint::try_from(output.len()).unwrap_or(c_uint::MAX);
    s.next_in = input.as_ptr().cast_mut();
    s.avail_in = avail_in;
    s.next_out = output.as_mut_ptr();
    s.avail_out = avail_out;
    let rc = call(s);
    totals.input += u64::from(avail_in - s.avail_in);
    totals.output += u64::from(avail_out - s.avail_out);
    s.next_in = null_mut();
    s.avail_in = 0;
    s.next_out = null_mut();
    s.avail_out = 0;
    rc
}

fn status(rc: c_int) -> Result<Status, c_int> {
    match rc {
        z::Z_OK => Ok(Status::Ok),
        z::Z_STREAM_END => Ok(Status::StreamEnd),
        z::Z_BUF_ERROR => Ok(Status::BufError),
        other => Err(other),
    }
}

fn deflate_error(rc: c_int) -> DeflateError {
    match rc {
        z::Z_DATA_ERROR => DeflateError::DataError,
        z::Z_MEM_ERROR => DeflateError::MemError,
        _ => DeflateError::StreamError,
    }
}

fn inflate_error(rc: c_int) -> InflateError {
    match rc {
        z::Z_NEED_DICT => InflateError::NeedDict { dict_id: 0 },
        z::Z_DATA_ERROR => InflateError::DataError,
        z::Z_MEM_ERROR => InflateError::MemError,
        _ => InflateError::StreamError,
    }
}

/// A deflate stream.
pub(crate) struct Deflate(Box<z::z_stream>, Totals);

// SAFETY: the stream and everything its state points to are owned by this value alone; zlib keeps
// no thread-local or global state, so the stream may move to another thread. `&self` methods only
// read the totals.
unsafe impl Send for Deflate {}
// SAFETY: as above; shared references never mutate the stream.
unsafe impl Sync for Deflate {}

impl Deflate {
    pub(crate) fn new_with_config(config: DeflateConfig) -> Self {
        let mut stream = new_stream();
        let strategy = match config.strategy {
            Strategy::Default => z::Z_DEFAULT_STRATEGY,
            Strategy::Filtered => z::Z_FILTERED,
            Strategy::HuffmanOnly => z::Z_HUFFMAN_ONLY,
            Strategy::Rle => z::Z_RLE,
            Strategy::Fixed => z::Z_FIXED,
        };
        // SAFETY: a fresh stream whose allocation functions are set; zlib copies the version
        // string's first character only.
        let rc = unsafe {
            z::deflateInit2_(
                &mut *stream,
                config.level,
                z::Z_DEFLATED,
                config.window_bits,
                config.mem_level,
                strategy,
                z::zlibVersion(),
                STREAM_SIZE,
            )
        };
        // As zlib-rs does: the configuration was validated before, so only an allocation
        // failure gets here, and allocation failures abort elsewhere too.
        assert!(rc == z::Z_OK, "deflateInit2 failed: {rc}");
        Self(stream, Totals::default())
    }

    pub(crate) fn total_in(&self) -> u64 {
        self.1.input
    }

    pub(crate) fn total_out(&self) -> u64 {
        self.1.output
    }

    pub(crate) fn compress(
        &mut self,
        input: &[u8],
        output: &mut [u8],
        flush: DeflateFlush,
    ) -> Result<Status, DeflateError> {
        let flush = match flush {
            DeflateFlush::NoFlush => z::Z_NO_FLUSH,
            DeflateFlush::PartialFlush => z::Z_PARTIAL_FLUSH,
            DeflateFlush::SyncFlush => z::Z_SYNC_FLUSH,
            DeflateFlush::FullFlush => z::Z_FULL_FLUSH,
            DeflateFlush::Finish => z::Z_FINISH,
            DeflateFlush::Block => z::Z_BLOCK,
        };
        // SAFETY: an initialised stream; next_in/next_out cover `input` and `output`, which
        // outlive the call, and are cleared after it.
        let rc = with_buffers(&mut self.0, &mut self.1, input, output, |s| unsafe { z::deflate(s, flush) });
        status(rc).map_err(deflate_error)
    }

    pub(crate) fn reset(&mut self) {
        self.1 = Totals::default();
        // SAFETY: an initialised stream. It cannot fail on one.
        unsafe { z::deflateReset(&mut *self.0) };
    }

    pub(crate) fn set_dictionary(&mut self, dictionary: &[u8]) -> Result<u32, DeflateError> {
        let len = c_uint::try_from(dictionary.len()).map_err(|_| DeflateError::StreamError)?;
        // SAFETY: an initialised stream; zlib reads `len` bytes of `dictionary` during the call.
        let rc = unsafe { z::deflateSetDictionary(&mut *self.0, dictionary.as_ptr(), len) };
        if rc == z::Z_OK { Ok(self.0.adler as u32) } else { Err(deflate_error(rc)) }
    }
}

impl Drop for Deflate {
    fn drop(&mut self) {
        // SAFETY: an initialised stream, ended once.
        unsafe { z::deflateEnd(&mut *self.0) };
    }
}

/// An inflate stream.
pub(crate) struct Inflate(Box<z::z_stream>, Totals);

// SAFETY: as for `Deflate`.
unsafe impl Send for Inflate {}
// SAFETY: as for `Deflate`.
unsafe impl Sync for Inflate {}

impl Inflate {
    pub(crate) fn new(zlib_header: bool, window_bits: u8) -> Self {
        let mut stream = new_stream();
        let bits = c_int::from(window_bits);
        let bits = if zlib_header { bits } else { -bits };
        // SAFETY: a fresh stream whose allocation functions are set.
        let rc = unsafe { z::inflateInit2_(&mut *stream, bits, z::zlibVersion(), STREAM_SIZE) };
        assert!(rc == z::Z_OK, "inflateInit2 failed: {rc}");
        Self(stream, Totals::default())
    }

    pub(crate) fn total_in(&self) -> u64 {
        self.1.input
    }

    pub(crate) fn total_out(&self) -> u64 {
        self.1.output
    }

    /// zlib's message for the last error (static strings).
    pub(crate) fn error_message(&self) -> Option<&'static str> {
        if self.0.msg.is_null() {
            return None;
        }
        // SAFETY: zlib sets `msg` only to string literals.
        unsafe { CStr::from_ptr(self.0.msg) }.to_str().ok()
    }

    /// Ready for a new stream with the same window (`zlib_header` must be what it was created
    /// with).
    pub(crate) fn reset(&mut self, _zlib_header: bool) {
        self.1 = Totals::default();
        // SAFETY: an initialised stream. It cannot fail on one.
        unsafe { z::inflateReset(&mut *self.0) };
    }

    pub(crate) fn decompress(
        &mut self,
        input: &[u8],
        output: &mut [u8],
        flush: InflateFlush,
    ) -> Result<Status, InflateError> {
        let flush = match flush {
            InflateFlush::NoFlush => z::Z_NO_FLUSH,
            InflateFlush::SyncFlush => z::Z_SYNC_FLUSH,
            InflateFlush::Finish => z::Z_FINISH,
            InflateFlush::Block => z::Z_BLOCK,
            InflateFlush::Trees => z::Z_TREES,
        };
        // SAFETY: an initialised stream; next_in/next_out cover `input` and `output`, which
        // outlive the call, and are cleared after it.
        let rc = with_buffers(&mut self.0, &mut self.1, input, output, |s| unsafe { z::inflate(s, flush) });
        status(rc).map_err(inflate_error)
    }

    pub(crate) fn set_dictionary(&mut self, dictionary: &[u8]) -> Result<u32, InflateError> {
        let len = c_uint::try_from(dictionary.len()).map_err(|_| InflateError::StreamError)?;
        // SAFETY: an initialised stream; zlib copies `len` bytes of `dictionary` during the call.
        let rc = unsafe { z::inflateSetDictionary(&mut *self.0, dictionary.as_ptr(), len) };
        if rc == z::Z_OK { Ok(0) } else { Err(inflate_error(rc)) }
    }
}

impl Drop for Inflate {
    fn drop(&mut self) {
        // SAFETY: an initialised stream, ended once.
        unsafe { z::inflateEnd(&mut *self.0) };
    }
}
