//! Deflate engines as permessage-deflate uses them (raw deflate, a sync flush per message, the
//! `00 00 ff ff` tail stripped), measured side by side: zlib-rs (as ws-deflate uses it), stock
//! zlib and zlib-ng (C, through `libz-sys` and `libz-ng-sys`) and miniz_oxide.
//!
//! For each engine it reports:
//! - memory: the bytes a compressor and a decompressor keep allocated after one message, counted
//!   by a counting global allocator (the C libraries are given allocation functions that go
//!   through it), for every memLevel at window bits 12 and 15;
//! - ratio: compressed bytes / message bytes over a stream of distinct JSON-like messages;
//! - CPU per message: the thread's CPU time (median of rounds, configurations interleaved;
//!   noisy on a shared machine) and, with `--callgrind`, instructions counted by valgrind (repeatable).
//!
//! Every decompressor decodes the same input, stock zlib's output for the configuration, as a
//! browser would send it. Each engine's own output is checked by decoding it with stock zlib
//! through a window of the configured size, in small output steps, so that a back-reference
//! further than the window fails ("valid" column).
//!
//! ```text
//! cargo run --release --manifest-path bench/Cargo.toml -p ws-deflate-engines -- [--rounds N] [--callgrind]
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{c_int, c_uint, c_void};
use std::hint::black_box;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

// The root workspace's MSRV (1.85) predates `is_multiple_of`, which this lint suggests.
#[allow(clippy::manual_is_multiple_of)]
#[path = "../../../crates/ws-deflate/tests/support/json.rs"]
mod json;

// ---------------------------------------------------------------------------------------------
// Counting allocator (single-threaded program: process-wide counters are exact).

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn record(delta: isize) {
    let now = LIVE.fetch_add(delta, Relaxed) + delta;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments; the bookkeeping only
// touches atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f`; returns its result, the bytes it left allocated and its peak.
fn measure<T>(f: impl FnOnce() -> T) -> (T, isize, isize) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = f();
    (out, LIVE.load(Relaxed) - base, PEAK.load(Relaxed) - base)
}

/// Header in front of each C allocation: zlib's `zfree` does not pass the size back.
const HEADER: usize = 16;

/// zlib's `zalloc`, through the Rust global allocator (so counted). The 16-byte header is
/// counted too: a few allocations per stream.
unsafe extern "C" fn zalloc(_opaque: *mut c_void, items: c_uint, size: c_uint) -> *mut c_void {
    let n = items as usize * size as usize + HEADER;
    let Ok(layout) = Layout::from_size_align(n, HEADER) else { return null_mut() };
    // SAFETY: non-zero size.
    let base = unsafe { std::alloc::alloc(layout) };
    if base.is_null() {
        return null_mut();
    }
    // SAFETY: `base` holds at least HEADER bytes, aligned for usize.
    unsafe {
        base.cast::<usize>().write(n);
        base.add(HEADER).cast()
    }
}

unsafe extern "C" fn zfree(_opaque: *mut c_void, ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` came from `zalloc`, which put the allocation's size HEADER bytes before it.
    unsafe {
        let base = ptr.cast::<u8>().sub(HEADER);
        let n = base.cast::<usize>().read();
        std::alloc::dealloc(base, Layout::from_size_align_unchecked(n, HEADER));
    }
}

// ---------------------------------------------------------------------------------------------
// The engines behind one interface.

/// Compresses a whole message with a sync flush into `out` (large enough), returns the bytes
/// written (ending with `00 00 ff ff`).
trait Compress {
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> usize;
    /// Forget the history (no context takeover).
    fn reset(&mut self);
}

/// Decompresses a message (its tail included) into `out` (large enough), returns the bytes
/// written.
trait Decompress {
    fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> usize;
    fn reset(&mut self);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    ZlibRs,
    Zlib,
    ZlibNg,
    Miniz,
}

const ENGINES: [Engine; 4] = [Engine::ZlibRs, Engine::Zlib, Engine::ZlibNg, Engine::Miniz];

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Self::ZlibRs => "zlib-rs",
            Self::Zlib => "zlib",
            Self::ZlibNg => "zlib-ng",
            Self::Miniz => "miniz_oxide",
        }
    }

    fn parse(s: &str) -> Self {
        ENGINES.into_iter().find(|e| e.name() == s).unwrap_or_else(|| panic!("unknown engine {s}"))
    }

    fn compressor(self, level: u8, bits: u8, mem: u8) -> Box<dyn Compress> {
        match self {
            Self::ZlibRs => Box::new(rs::Compressor::new(level, bits, mem)),
            Self::Zlib => Box::new(zlib::Compressor::new(level, bits, mem)),
            Self::ZlibNg => Box::new(zlib_ng::Compressor::new(level, bits, mem)),
            Self::Miniz => Box::new(miniz::Compressor::new(level)),
        }
    }

    fn decompressor(self, bits: u8) -> Box<dyn Decompress> {
        match self {
            Self::ZlibRs => Box::new(rs::Decompressor::new(bits)),
            Self::Zlib => Box::new(zlib::Decompressor::new(bits)),
            Self::ZlibNg => Box::new(zlib_ng::Decompressor::new(bits)),
            Self::Miniz => Box::new(miniz::Decompressor::new()),
        }
    }

    fn version(self) -> String {
        match self {
            Self::ZlibRs => "the version in bench/Cargo.lock".into(),
            Self::Zlib => zlib::version(),
            Self::ZlibNg => zlib_ng::version(),
            Self::Miniz => "the version in bench/Cargo.lock".into(),
        }
    }
}

mod rs {
    use super::*;
    use zlib_rs::{Deflate, DeflateConfig, DeflateFlush, Inflate, InflateFlush, Method, Status, Strategy};

    /// Configured as ws-deflate's `Compressor::new` configures it.
    pub(super) struct Compressor(Deflate);

    impl Compressor {
        pub(super) fn new(level: u8, bits: u8, mem: u8) -> Self {
            Self(Deflate::new_with_config(DeflateConfig {
                level: i32::from(level),
                method: Method::Deflated,
                window_bits: -i32::from(bits),
                mem_level: i32::from(mem),
                strategy: Strategy::Default,
            }))
        }
    }

    impl Compress for Compressor {
        fn compress(&mut self, input: &[u8], out: &mut [u8]) -> usize {
            let (i0, o0) = (self.0.total_in(), self.0.total_out());
            let status = self.0.compress(input, out, DeflateFlush::SyncFlush).expect("zlib-rs deflate");
            assert!(matches!(status, Status::Ok));
            assert_eq!((self.0.total_in() - i0) as usize, input.len());
            let n = (self.0.total_out() - o0) as usize;
            assert!(n < out.len(), "output buffer too small");
            n
        }
        fn reset(&mut self) {
            self.0.reset();
        }
    }

    pub(super) struct Decompressor(Inflate);

    impl Decompressor {
        pub(super) fn new(bits: u8) -> Self {
            Self(Inflate::new(false, bits))
        }
    }

    impl Decompress for Decompressor {
        fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> usize {
            let (i0, o0) = (self.0.total_in(), self.0.total_out());
            self.0.decompress(input, out, InflateFlush::NoFlush).expect("zlib-rs inflate");
            assert_eq!((self.0.total_in() - i0) as usize, input.len());
            (self.0.total_out() - o0) as usize
        }
        fn reset(&mut self) {
            self.0.reset(false);
        }
    }
}

/// The C engines: `libz-sys` (stock zlib) and `libz-ng-sys` (zlib-ng's native API) declare the
/// same functions and `z_stream`, so one body serves both.
macro_rules! c_engine {
    ($module:ident, $sys:ident) => {
        mod $module {
            use super::*;
            use $sys as z;

            /// Boxed: zlib's state points back at its `z_stream`, which must not move.
            fn stream() -> Box<z::z_stream> {
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

            pub(super) fn version() -> String {
                // SAFETY: a static NUL-terminated string.
                unsafe { std::ffi::CStr::from_ptr(z::zlibVersion()) }.to_string_lossy().into_owned()
            }

            pub(super) struct Compressor(Box<z::z_stream>);

            impl Compressor {
                pub(super) fn new(level: u8, bits: u8, mem: u8) -> Self {
                    let mut s = stream();
                    // SAFETY: a fresh stream with valid allocation functions.
                    let rc = unsafe {
                        z::deflateInit2_(
                            &mut *s,
                            c_int::from(level),
                            z::Z_DEFLATED,
                            -c_int::from(bits),
                            c_int::from(mem),
                            z::Z_DEFAULT_STRATEGY,
                            z::zlibVersion(),
                            STREAM_SIZE,
                        )
                    };
                    assert_eq!(rc, z::Z_OK, "deflateInit2");
                    Self(s)
                }
            }

            impl Compress for Compressor {
                fn compress(&mut self, input: &[u8], out: &mut [u8]) -> usize {
                    let s = &mut *self.0;
                    s.next_in = input.as_ptr().cast_mut();
                    s.avail_in = input.len() as c_uint;
                    s.next_out = out.as_mut_ptr();
                    s.avail_out = out.len() as c_uint;
                    // SAFETY: the pointers cover the slices, which outlive the call.
                    let rc = unsafe { z::deflate(s, z::Z_SYNC_FLUSH) };
                    assert_eq!(rc, z::Z_OK, "deflate");
                    assert!(s.avail_in == 0 && s.avail_out > 0, "output buffer too small");
                    out.len() - s.avail_out as usize
                }
                fn reset(&mut self) {
                    // SAFETY: an initialised stream.
                    assert_eq!(unsafe { z::deflateReset(&mut *self.0) }, z::Z_OK);
                }
            }

            impl Drop for Compressor {
                fn drop(&mut self) {
                    // SAFETY: an initialised stream, ended once.
                    unsafe { z::deflateEnd(&mut *self.0) };
                }
            }

            pub(super) struct Decompressor(Box<z::z_stream>);

            impl Decompressor {
                pub(super) fn new(bits: u8) -> Self {
                    let mut s = stream();
                    // SAFETY: a fresh stream with valid allocation functions.
                    let rc = unsafe {
                        z::inflateInit2_(&mut *s, -c_int::from(bits), z::zlibVersion(), STREAM_SIZE)
                    };
                    assert_eq!(rc, z::Z_OK, "inflateInit2");
                    Self(s)
                }

                #[allow(dead_code)] // only stock zlib's is used, as the reference decoder
                /// Decodes `input` handing out `step` bytes of output at a time; returns the
                /// output, or zlib's error message.
                pub(super) fn decompress_stepwise(
                    &mut self,
                    input: &[u8],
                    step: usize,
                ) -> Result<Vec<u8>, String> {
                    let mut out = Vec::new();
                    let mut chunk = vec![0u8; step];
                    let s = &mut *self.0;
                    s.next_in = input.as_ptr().cast_mut();
                    s.avail_in = input.len() as c_uint;
                    loop {
                        s.next_out = chunk.as_mut_ptr();
                        s.avail_out = step as c_uint;
                        // SAFETY: the pointers cover `input` and `chunk`, which outlive the call.
                        let rc = unsafe { z::inflate(s, z::Z_NO_FLUSH) };
                        out.extend_from_slice(&chunk[..step - s.avail_out as usize]);
                        if rc != z::Z_OK && rc != z::Z_BUF_ERROR {
                            let msg = if s.msg.is_null() {
                                format!("inflate returned {rc}")
                            } else {
                                // SAFETY: zlib's messages are static NUL-terminated strings.
                                unsafe { std::ffi::CStr::from_ptr(s.msg) }.to_string_lossy().into_owned()
                            };
                            return Err(msg);
                        }
                        if s.avail_in == 0 && s.avail_out > 0 {
                            return Ok(out);
                        }
                    }
                }
            }

            impl Decompress for Decompressor {
                fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> usize {
                    let s = &mut *self.0;
                    s.next_in = input.as_ptr().cast_mut();
                    s.avail_in = input.len() as c_uint;
                    s.next_out = out.as_mut_ptr();
                    s.avail_out = out.len() as c_uint;
                    // SAFETY: the pointers cover the slices, which outlive the call.
                    let rc = unsafe { z::inflate(s, z::Z_NO_FLUSH) };
                    assert!(rc == z::Z_OK || rc == z::Z_BUF_ERROR, "inflate {rc}");
                    assert!(s.avail_in == 0 && s.avail_out > 0, "output buffer too small");
                    out.len() - s.avail_out as usize
                }
                fn reset(&mut self) {
                    // SAFETY: an initialised stream.
                    assert_eq!(unsafe { z::inflateReset(&mut *self.0) }, z::Z_OK);
                }
            }

            impl Drop for Decompressor {
                fn drop(&mut self) {
                    // SAFETY: an initialised stream, ended once.
                    unsafe { z::inflateEnd(&mut *self.0) };
                }
            }
        }
    };
}

c_engine!(zlib, libz_sys);
c_engine!(zlib_ng, libz_ng_sys);

mod miniz {
    use super::*;
    use miniz_oxide::deflate::core::{
        CompressorOxide, TDEFLFlush, TDEFLStatus, compress, create_comp_flags_from_zip_params,
    };
    use miniz_oxide::inflate::stream::{InflateState, inflate};
    use miniz_oxide::{DataFormat, MZFlush, MZStatus};

    /// miniz_oxide has no window size: it always matches within 32 KiB.
    pub(super) struct Compressor(Box<CompressorOxide>);

    impl Compressor {
        pub(super) fn new(level: u8) -> Self {
            // Negative window bits: raw deflate (the magnitude is not used).
            let flags = create_comp_flags_from_zip_params(i32::from(level), -15, 0);
            Self(Box::new(CompressorOxide::new(flags)))
        }
    }

    impl Compress for Compressor {
        fn compress(&mut self, input: &[u8], out: &mut [u8]) -> usize {
            let (status, consumed, produced) = compress(&mut self.0, input, out, TDEFLFlush::Sync);
            assert_eq!(status, TDEFLStatus::Okay, "miniz deflate");
            assert!(consumed == input.len() && produced < out.len(), "output buffer too small");
            produced
        }
        fn reset(&mut self) {
            self.0.reset();
        }
    }

    pub(super) struct Decompressor(Box<InflateState>);

    impl Decompressor {
        pub(super) fn new() -> Self {
            Self(InflateState::new_boxed(DataFormat::Raw))
        }
    }

    impl Decompress for Decompressor {
        fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> usize {
            let r = inflate(&mut self.0, input, out, MZFlush::None);
            assert!(matches!(r.status, Ok(MZStatus::Ok)), "miniz inflate {:?}", r.status);
            assert!(r.bytes_consumed == input.len() && r.bytes_written < out.len());
            r.bytes_written
        }
        fn reset(&mut self) {
            self.0.reset(DataFormat::Raw);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The workload.

const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Distinct JSON-like messages: 256 of 1 KiB or 16 of 64 KiB (256 KiB and 1 MiB in all).
fn messages(size: usize) -> Vec<Vec<u8>> {
    let count = if size <= 1024 { 256 } else { 16 };
    (0..count).map(|i| json::json(size, 0x5eed + i as u64 * 7919)).collect()
}

/// Room for any message's compressed form (stored blocks add 5 bytes per 64 KiB at worst).
fn out_buffer(size: usize) -> Vec<u8> {
    vec![0u8; size + size / 8 + 1024]
}

#[derive(Clone, Copy, Debug)]
struct Case {
    engine: Engine,
    bits: u8,
    mem: u8,
    level: u8,
    size: usize,
    takeover: bool,
}

impl Case {
    fn args(&self) -> Vec<String> {
        vec![
            self.engine.name().into(),
            self.bits.to_string(),
            self.mem.to_string(),
            self.level.to_string(),
            self.size.to_string(),
            u8::from(self.takeover).to_string(),
        ]
    }

    fn parse(args: &[String]) -> Self {
        let n = |i: usize| args[i].parse::<usize>().expect("number");
        Self {
            engine: Engine::parse(&args[0]),
            bits: n(1) as u8,
            mem: n(2) as u8,
            level: n(3) as u8,
            size: n(4),
            takeover: n(5) == 1,
        }
    }
}

/// The measured loop: every message compressed in order by one compressor.
#[inline(never)]
fn measured_compress(c: &mut dyn Compress, msgs: &[Vec<u8>], out: &mut [u8], takeover: bool) -> usize {
    let mut total = 0;
    for m in msgs {
        if !takeover {
            c.reset();
        }
        let n = c.compress(m, out);
        black_box(&out[..n]);
        total += n;
    }
    total
}

/// The measured loop: every compressed message decompressed in order by one decompressor.
#[inline(never)]
fn measured_decompress(d: &mut dyn Decompress, inputs: &[Vec<u8>], out: &mut [u8], takeover: bool) -> usize {
    let mut total = 0;
    for m in inputs {
        if !takeover {
            d.reset();
        }
        let n = d.decompress(m, out);
        black_box(&out[..n]);
        total += n;
    }
    total
}

/// Each message compressed by `engine`, sync-flush tail included.
fn compressed(case: &Case, engine: Engine, msgs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut c = engine.compressor(case.level, case.bits, case.mem);
    let mut out = out_buffer(case.size);
    msgs.iter()
        .map(|m| {
            if !case.takeover {
                c.reset();
            }
            let n = c.compress(m, &mut out);
            out[..n].to_vec()
        })
        .collect()
}

/// Bytes on the wire: the tail stripped, or one byte added when the flush emitted no tail
/// (RFC 7692 §7.2.1, as ws-deflate does).
fn wire_len(m: &[u8]) -> usize {
    if m.ends_with(&TAIL) { m.len() - TAIL.len() } else { m.len() + 1 }
}

/// Stock zlib decodes `stream` through a window of `bits`, 16 output bytes at a time, and gets
/// `msgs` back: a back-reference further than the window fails.
fn decodes_in_window(case: &Case, stream: &[Vec<u8>], msgs: &[Vec<u8>]) -> Result<(), String> {
    let mut d = zlib::Decompressor::new(case.bits);
    for (m, want) in stream.iter().zip(msgs) {
        if !case.takeover {
            Decompress::reset(&mut d);
        }
        let got = d.decompress_stepwise(m, 16)?;
        if &got != want {
            return Err("output differs".into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reports.

fn kib(bytes: isize) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

/// Bytes kept by a compressor and a decompressor after one 1 KiB message each way.
fn memory(engine: Engine, bits: u8, mem: u8, level: u8) -> (isize, isize, isize, isize) {
    let msg = json::json(1024, 1);
    let mut out = out_buffer(1024);
    let (c, c_live, c_peak) = measure(|| {
        let mut c = engine.compressor(level, bits, mem);
        c.compress(&msg, &mut out);
        c
    });
    let input = {
        let mut z = zlib::Compressor::new(level, bits, mem);
        let n = z.compress(&msg, &mut out);
        out[..n].to_vec()
    };
    let mut plain = out_buffer(1024);
    let (d, d_live, d_peak) = measure(|| {
        let mut d = engine.decompressor(bits);
        d.decompress(&input, &mut plain);
        d
    });
    drop((c, d));
    (c_live, c_peak, d_live, d_peak)
}

fn memory_tables() {
    println!("### Memory per stream (bytes kept after one 1 KiB message, counted by the allocator)\n");
    println!("Compressor at level 6 / decompressor, KiB; a busy connection holds one of each.\n");
    for bits in [12u8, 15] {
        println!("window bits {bits}:\n");
        print!("| engine | decompressor |");
        for mem in 1..=9 {
            print!(" memLevel {mem} |");
        }
        println!("\n|---|---|{}", "---|".repeat(9));
        for engine in ENGINES {
            let (_, _, d_live, _) = memory(engine, bits, 5, 6);
            print!("| {} | {} |", engine.name(), kib(d_live));
            for mem in 1..=9 {
                let (c_live, c_peak, _, _) = memory(engine, bits, mem, 6);
                if c_peak != c_live {
                    print!(" {} (peak {}) |", kib(c_live), kib(c_peak));
                } else {
                    print!(" {} |", kib(c_live));
                }
            }
            println!();
        }
        println!();
    }
    println!("Compressor + decompressor (one busy connection's streams), KiB:\n");
    println!("| engine | 12/5, level 6 | 12/5, level 1 | 12/1, level 6 | 15/8, level 6 |");
    println!("|---|---|---|---|---|");
    for engine in ENGINES {
        let conn = |bits, mem, level| {
            let (c, _, d, _) = memory(engine, bits, mem, level);
            kib(c + d)
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            engine.name(),
            conn(12, 5, 6),
            conn(12, 5, 1),
            conn(12, 1, 6),
            conn(15, 8, 6)
        );
    }
    println!();
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (bits, mem) in [(12u8, 5u8), (15, 8)] {
        for size in [1024usize, 64 * 1024] {
            for takeover in [true, false] {
                // Level 2 beside 1: zlib-rs and zlib-ng run their fastest algorithm
                // (deflate_quick) at level 1, stock zlib's level 1 is their level 2's algorithm.
                for level in [1u8, 2, 6] {
                    for engine in ENGINES {
                        out.push(Case { engine, bits, mem, level, size, takeover });
                    }
                }
            }
        }
    }
    // What memLevel costs in ratio and CPU where it also sets the hash table (stock zlib), and
    // where it sets only the literal buffers (zlib-rs), at the default window and level.
    for size in [1024usize, 64 * 1024] {
        for engine in [Engine::ZlibRs, Engine::Zlib] {
            for mem in [1u8, 3, 8, 9] {
                out.push(Case { engine, bits: 12, mem, level: 6, size, takeover: true });
            }
        }
    }
    out
}

/// This thread's CPU time in nanoseconds: unlike wall time, it stops while another process
/// runs on the core, though caches and the sibling hyperthread still disturb it.
fn cpu_ns() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write into.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Instructions per message of one phase, counted by callgrind in a child process.
fn callgrind(case: &Case, phase: &str) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out_file = std::env::temp_dir().join(format!("engines-callgrind-{}.out", std::process::id()));
    // glibc's memset and memcpy switch to `rep stosb` / `rep movsb` above a few KiB, which
    // callgrind counts once per byte; these thresholds keep them on vector stores, so that
    // clearing a 128 KiB table counts about as many instructions as it executes loop iterations.
    let status = std::process::Command::new("valgrind")
        .env(
            "GLIBC_TUNABLES",
            "glibc.cpu.x86_rep_stosb_threshold=1073741824:glibc.cpu.x86_rep_movsb_threshold=1073741824",
        )
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect=*measured_{phase}*"))
        .arg(&exe)
        .arg("one")
        .arg(phase)
        .args(case.args())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let text = std::fs::read_to_string(&out_file).ok()?;
    let _ = std::fs::remove_file(&out_file);
    let total: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(total / messages(case.size).len() as f64)
}

/// `one compress|decompress CASE...`: the phase alone, for callgrind.
fn one(phase: &str, case: &Case) {
    let msgs = messages(case.size);
    let mut out = out_buffer(case.size);
    let n = if phase == "compress" {
        let mut c = case.engine.compressor(case.level, case.bits, case.mem);
        measured_compress(&mut *c, &msgs, &mut out, case.takeover)
    } else {
        let inputs = compressed(case, Engine::Zlib, &msgs);
        let mut d = case.engine.decompressor(case.bits);
        measured_decompress(&mut *d, &inputs, &mut out, case.takeover)
    };
    println!("{n}");
}

fn cpu_table(rounds: usize, with_callgrind: bool) {
    let cases = cases();
    struct Row {
        ratio: f64,
        valid: Result<(), String>,
        compress: Vec<f64>,
        decompress: Vec<f64>,
    }
    let corpora: Vec<(usize, Vec<Vec<u8>>)> = [1024, 64 * 1024].map(|s| (s, messages(s))).into();
    let msgs_for = |size| &corpora.iter().find(|(s, _)| *s == size).expect("corpus").1;
    let mut rows: Vec<Row> = cases
        .iter()
        .map(|case| {
            let msgs = msgs_for(case.size);
            let own = compressed(case, case.engine, msgs);
            let wire: usize = own.iter().map(|m| wire_len(m)).sum();
            let raw: usize = msgs.iter().map(Vec::len).sum();
            Row {
                ratio: wire as f64 / raw as f64,
                valid: decodes_in_window(case, &own, msgs),
                compress: Vec::new(),
                decompress: Vec::new(),
            }
        })
        .collect();
    let inputs: Vec<Vec<Vec<u8>>> =
        cases.iter().map(|c| compressed(c, Engine::Zlib, msgs_for(c.size))).collect();
    for _ in 0..rounds {
        for (i, case) in cases.iter().enumerate() {
            let msgs = msgs_for(case.size);
            let mut out = out_buffer(case.size);
            let mut c = case.engine.compressor(case.level, case.bits, case.mem);
            let t = cpu_ns();
            measured_compress(&mut *c, msgs, &mut out, case.takeover);
            rows[i].compress.push((cpu_ns() - t) / msgs.len() as f64);
            let mut d = case.engine.decompressor(case.bits);
            let t = cpu_ns();
            measured_decompress(&mut *d, &inputs[i], &mut out, case.takeover);
            rows[i].decompress.push((cpu_ns() - t) / msgs.len() as f64);
        }
    }
    println!("### Ratio and CPU per message\n");
    println!(
        "CPU µs: this thread's CPU time per message, median of {rounds} rounds, configurations \
         interleaved (noisy on a shared machine). Instructions: callgrind, the measured loop only, \
         glibc kept off `rep stosb/movsb` (repeatable).\n"
    );
    println!(
        "| window/memLevel | size | context | level | engine | ratio | valid | compress µs | decompress µs | compress instr. | decompress instr. |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (case, row) in cases.iter().zip(&mut rows) {
        let (ci, di) = if with_callgrind {
            let f = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{:.0}", v));
            (f(callgrind(case, "compress")), f(callgrind(case, "decompress")))
        } else {
            ("–".into(), "–".into())
        };
        println!(
            "| {}/{} | {} | {} | {} | {} | {:.3} | {} | {:.2} | {:.2} | {} | {} |",
            case.bits,
            case.mem,
            if case.size < 65536 { "1 KiB" } else { "64 KiB" },
            if case.takeover { "kept" } else { "reset" },
            case.level,
            case.engine.name(),
            row.ratio,
            match &row.valid {
                Ok(()) => "yes".to_string(),
                Err(e) => format!("no ({e})"),
            },
            median(&mut row.compress) / 1000.0,
            median(&mut row.decompress) / 1000.0,
            ci,
            di,
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("one") {
        one(&args[1], &Case::parse(&args[2..]));
        return;
    }
    let mut rounds = 7;
    let mut with_callgrind = false;
    let mut only_memory = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = it.next().and_then(|r| r.parse().ok()).expect("--rounds N"),
            "--callgrind" => with_callgrind = true,
            "--memory" => only_memory = true,
            other => panic!("unknown argument {other}; usage: [--rounds N] [--callgrind] [--memory]"),
        }
    }
    for engine in ENGINES {
        println!("- {}: {}", engine.name(), engine.version());
    }
    println!();
    memory_tables();
    if !only_memory {
        cpu_table(rounds, with_callgrind);
    }
}
