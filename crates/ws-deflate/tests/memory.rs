//! Memory measurements with a counting allocator: the per-connection table in the README, the
//! zip-bomb allocation bound, and "no allocation per message".
//!
//! Print the table with `cargo test -p ws-deflate --test memory -- --nocapture`.

// A `GlobalAlloc` needs `unsafe impl`, and nothing else measures what zlib-rs allocates inside.
// The unsafe code is confined to this test file, which forwards every call to the system
// allocator unchanged; the library itself forbids unsafe code.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ws_deflate::{Memory, PerMessageDeflate, PerMessageDeflateConfig};
use ws_extensions::{Bytes, Extension, ExtensionError, Frame, OpCode, Rsv};

/// Counts, per thread so that tests running in parallel do not disturb each other.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn record(delta: isize, alloc: bool) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
    if alloc {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments, so the allocator
// contract is `System`'s; the bookkeeping only touches const-initialised thread-locals, which
// never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size() as isize, true);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size() as isize, true);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record(-(layout.size() as isize), false);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size as isize - layout.size() as isize, true);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A connection kept busy for a test's duration. The threads' shared streams are freed whenever
/// no connection is busy, on whatever thread that happens, and this allocator counts per
/// thread: without it, a connection that another test drops could free this test's pool in the
/// middle of a measurement, or this test's pool could go with its own connections.
fn pools_kept() -> PerMessageDeflate {
    let mut keeper = PerMessageDeflate::new(PerMessageDeflateConfig {
        local_no_context_takeover: true,
        remote_no_context_takeover: true,
        compression_threshold: Some(0),
        memory: Memory::Shared,
        ..Default::default()
    })
    .expect("config");
    let mut frame = Frame::new(OpCode::Text, "busy", true);
    keeper.encode(&mut frame).expect("encode");
    keeper
}

/// Runs `f` and returns its result with the bytes it left allocated, its peak and its
/// allocation count.
fn measure<T>(f: impl FnOnce() -> T) -> (T, isize, isize, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let allocs = ALLOCS.with(Cell::get);
    let out = f();
    let live = LIVE.with(Cell::get) - base;
    let peak = PEAK.with(Cell::get) - base;
    (out, live, peak, ALLOCS.with(Cell::get) - allocs)
}

fn json(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u32;
    while out.len() < len {
        i = i.wrapping_mul(2_654_435_761).wrapping_add(12345);
        out.extend_from_slice(
            format!(r#"{{"id":{},"v":"{:x}","ok":{}}},"#, i % 9973, i, i % 3 == 0).as_bytes(),
        );
    }
    out.truncate(len);
    out
}

fn pair(bits: u8, mem_level: u8) -> (PerMessageDeflate, PerMessageDeflate) {
    let config = PerMessageDeflateConfig {
        local_max_window_bits: bits,
        remote_max_window_bits: bits,
        mem_level,
        compression_threshold: Some(0),
        ..Default::default()
    };
    (PerMessageDeflate::new(config).expect("config"), PerMessageDeflate::new(config).expect("config"))
}

/// Bytes one connection holds after sending one 1 KiB message and receiving one: its compressor,
/// its decompressor and their reusable buffers.
fn connection_bytes(bits: u8, mem_level: u8, message: &'static [u8]) -> isize {
    let (mut ours, mut peer) = pair(bits, mem_level);
    // Past the warm-up, so that the next message gives the connection streams of its own.
    exchange(&mut ours, &mut peer, message, usize::from(ws_deflate::WARM_UP_MESSAGES));
    // The peer's message, compressed outside the measurement.
    let mut incoming = Frame::new(OpCode::Text, Bytes::from_static(message), true);
    peer.encode(&mut incoming).expect("peer encode");
    let (ours, live, _, _) = measure(move || {
        let mut outgoing = Frame::new(OpCode::Text, Bytes::from_static(message), true);
        ours.encode(&mut outgoing).expect("encode");
        drop(outgoing);
        ours.decode(&mut incoming, None).expect("decode");
        drop(incoming);
        ours
    });
    // `ours` is still alive here: `live` is what it holds.
    let size = std::mem::size_of_val(&ours) as isize;
    drop(ours);
    live + size
}

#[test]
fn memory_per_connection_table() {
    let _busy = pools_kept();
    let message: &'static [u8] = Box::leak(json(1024).into_boxed_slice());
    let mut table = vec![];
    for bits in 9..=15u8 {
        let row: Vec<isize> = (1..=9u8).map(|ml| connection_bytes(bits, ml, message)).collect();
        for pair in row.windows(2) {
            assert!(pair[0] < pair[1], "memLevel must change memory: window {bits}: {row:?}");
        }
        table.push((bits, row));
    }
    for pair in table.windows(2) {
        assert!(pair[0].1[4] < pair[1].1[4], "window bits must change memory");
    }
    // Window 8 is compressed with zlib's 9: same memory.
    assert_eq!(connection_bytes(8, 5, message), table[0].1[4]);

    println!(
        "\n| window bits | {} |",
        (1..=9).map(|ml| format!("memLevel {ml}")).collect::<Vec<_>>().join(" | ")
    );
    println!("|---|{}", "---:|".repeat(9));
    for (bits, row) in &table {
        let cells: Vec<String> = row.iter().map(|b| format!("{:.1} KiB", *b as f64 / 1024.0)).collect();
        println!("| {bits} | {} |", cells.join(" | "));
    }
    let (mut ours, mut peer) = pair(12, 5);
    exchange(&mut ours, &mut peer, message, usize::from(ws_deflate::WARM_UP_MESSAGES));
    let mut incoming = Frame::new(OpCode::Text, Bytes::from_static(message), true);
    peer.encode(&mut incoming).expect("peer encode");
    let (_, receive_only, _, _) = measure(|| ours.decode(&mut incoming, None).expect("decode"));
    drop(incoming);
    println!("\nof which the decompressor (any window, any memLevel): {receive_only} bytes");
    let (mut ours, _) = pair(12, 5);
    let (_, idle, _, _) = measure(|| {
        let mut plain = Frame::new(OpCode::Text, "idle", true);
        plain.no_compress = true;
        ours.encode(&mut plain).expect("encode");
    });
    println!("\nnegotiated but idle (no compressed message yet): {idle} bytes beyond the struct");
}

/// `messages` messages of 1 KiB each way between `ours` and `peer`.
fn exchange(
    ours: &mut PerMessageDeflate,
    peer: &mut PerMessageDeflate,
    message: &'static [u8],
    messages: usize,
) {
    for _ in 0..messages {
        let mut incoming = Frame::new(OpCode::Text, Bytes::from_static(message), true);
        peer.encode(&mut incoming).expect("peer encode");
        let mut outgoing = Frame::new(OpCode::Text, Bytes::from_static(message), true);
        ours.encode(&mut outgoing).expect("encode");
        peer.decode(&mut outgoing, None).expect("peer decode");
        ours.decode(&mut incoming, None).expect("decode");
    }
}

/// Bytes one connection holds after `messages` messages of 1 KiB each way and `release_memory`:
/// its struct and the histories context takeover needs. The thread's shared streams, which the
/// first messages borrow, are freed before and after.
fn released_bytes(config: PerMessageDeflateConfig, messages: usize, message: &'static [u8]) -> isize {
    ws_deflate::release_thread_streams();
    let mut ours = PerMessageDeflate::new(config).expect("config");
    let mut peer = PerMessageDeflate::new(PerMessageDeflateConfig {
        local_max_window_bits: config.remote_max_window_bits,
        remote_max_window_bits: config.local_max_window_bits,
        local_no_context_takeover: config.remote_no_context_takeover,
        remote_no_context_takeover: config.local_no_context_takeover,
        ..config
    })
    .expect("config");
    let (ours, live, _, _) = measure(move || {
        exchange(&mut ours, &mut peer, message, messages);
        drop(peer);
        ours.release_memory();
        ws_deflate::release_thread_streams();
        ours
    });
    let size = std::mem::size_of_val(&ours) as isize;
    drop(ours);
    live + size
}

#[test]
fn release_memory_keeps_only_the_history() {
    let _busy = pools_kept();
    let message: &'static [u8] = Box::leak(json(1024).into_boxed_slice());
    let struct_size = std::mem::size_of::<PerMessageDeflate>() as isize;
    println!("\n| window bits | after 1 message each way | after 100 | no context takeover |");
    println!("|---|---:|---:|---:|");
    for bits in 8..=15u8 {
        let takeover = PerMessageDeflateConfig {
            local_max_window_bits: bits,
            remote_max_window_bits: bits,
            compression_threshold: Some(0),
            ..Default::default()
        };
        let reset = PerMessageDeflateConfig {
            local_no_context_takeover: true,
            remote_no_context_takeover: true,
            ..takeover
        };
        let one = released_bytes(takeover, 1, message);
        let many = released_bytes(takeover, 100, message);
        let none = released_bytes(reset, 100, message);
        let window = 1isize << bits.max(9);
        // One window of history each way (1 KiB each after a single message), nothing else.
        assert_eq!(one, struct_size + 2 * window.min(1024), "window {bits}");
        assert_eq!(many, struct_size + 2 * window, "window {bits}");
        assert_eq!(none, struct_size, "window {bits}");
        let kib = |b: isize| format!("{:.1} KiB", b as f64 / 1024.0);
        println!("| {bits} | {} | {} | {none} B |", kib(one), kib(many));
    }
}

/// One connection's configuration for the mode table: both windows `bits`, and no context
/// takeover both ways in lean mode (what the factories negotiate there).
fn mode(bits: u8, mem_level: u8, memory: Memory) -> PerMessageDeflateConfig {
    let shared = memory == Memory::Shared;
    PerMessageDeflateConfig {
        local_max_window_bits: bits,
        remote_max_window_bits: bits,
        local_no_context_takeover: shared,
        remote_no_context_takeover: shared,
        mem_level,
        memory,
        compression_threshold: Some(0),
        ..Default::default()
    }
}

/// Sends one 1 KiB message through `ext` and receives one (`incoming`, already compressed).
fn one_message_each_way(ext: &mut dyn Extension, message: &'static [u8], incoming: &'static [u8]) {
    let mut outgoing = Frame::new(OpCode::Text, Bytes::from_static(message), true);
    ext.encode(&mut outgoing).expect("encode");
    assert_eq!(outgoing.rsv, Rsv::RSV1);
    drop(outgoing);
    let mut frame = Frame::new(OpCode::Text, Bytes::from_static(incoming), true);
    frame.rsv = Rsv::RSV1;
    ext.decode(&mut frame, None).expect("decode");
    assert_eq!(&frame.payload[..], message);
}

/// Bytes per connection with `n` connections alive at once, each boxed as the connection holds
/// it, after one 1 KiB message each way. The thread's shared streams (lean mode) are warmed up
/// first and not counted: [`shared_streams_bytes`] reports them.
fn bytes_per_connection(
    config: PerMessageDeflateConfig,
    n: usize,
    messages: usize,
    message: &'static [u8],
) -> isize {
    // The peer's message: compressed alone, as a peer without context takeover does.
    let mut peer = PerMessageDeflate::new(PerMessageDeflateConfig {
        local_no_context_takeover: true,
        memory: Memory::Dedicated,
        ..config
    })
    .expect("config");
    let mut frame = Frame::new(OpCode::Text, Bytes::from_static(message), true);
    peer.encode(&mut frame).expect("peer encode");
    let incoming: &'static [u8] = Box::leak(frame.payload.to_vec().into_boxed_slice());
    drop((frame, peer));
    // Warm-up: fills this thread's pool in lean mode and sizes its buffers.
    let mut warm = PerMessageDeflate::new(config).expect("config");
    one_message_each_way(&mut warm, message, incoming);
    drop(warm);

    let mut connections: Vec<Box<dyn Extension>> = Vec::with_capacity(n);
    let ((), live, _, _) = measure(|| {
        for _ in 0..n {
            let mut ext: Box<dyn Extension> = Box::new(PerMessageDeflate::new(config).expect("config"));
            for _ in 0..messages {
                one_message_each_way(ext.as_mut(), message, incoming);
            }
            connections.push(ext);
        }
    });
    assert_eq!(connections.len(), n);
    live / n as isize
}

/// What this thread's shared streams hold (lean mode), measured by releasing them.
fn shared_streams_bytes(config: PerMessageDeflateConfig, message: &'static [u8]) -> isize {
    // Only this configuration's streams: the pool keeps one compressor per configuration.
    ws_deflate::release_thread_streams();
    let _ = bytes_per_connection(config, 1, 1, message);
    let ((), live, _, _) = measure(ws_deflate::release_thread_streams);
    -live
}

#[test]
fn memory_per_connection_by_mode() {
    let _busy = pools_kept();
    let message: &'static [u8] = Box::leak(json(1024).into_boxed_slice());
    let kib = |b: isize| format!("{:.1} KiB", b as f64 / 1024.0);
    let busy = usize::from(ws_deflate::WARM_UP_MESSAGES) + 1;
    let dedicated_one = bytes_per_connection(mode(12, 5, Memory::Dedicated), 100, 1, message);
    let dedicated = bytes_per_connection(mode(12, 5, Memory::Dedicated), 8, busy, message);
    let dedicated_small = bytes_per_connection(mode(9, 1, Memory::Dedicated), 8, busy, message);
    let shared = bytes_per_connection(mode(12, 5, Memory::Shared), 100, 1, message);
    let shared_small = bytes_per_connection(mode(9, 1, Memory::Shared), 100, 1, message);
    let pool = shared_streams_bytes(mode(12, 5, Memory::Shared), message);
    let pool_small = shared_streams_bytes(mode(9, 1, Memory::Shared), message);
    println!(
        "
| mode | per connection | per thread |"
    );
    println!("|---|---:|---:|");
    println!(
        "| dedicated, 12/12, memLevel 5 (default), after 1 message | {} | (shared streams) |",
        kib(dedicated_one)
    );
    println!("| dedicated, 12/12, memLevel 5 (default), after {busy} messages | {} | 0 |", kib(dedicated));
    println!("| dedicated, 9/9, memLevel 1, after {busy} messages | {} | 0 |", kib(dedicated_small));
    println!("| shared, 12/12, memLevel 5 | {} B | {} |", shared, kib(pool));
    println!("| shared, 9/9, memLevel 1 | {} B | {} |", shared_small, kib(pool_small));
    println!(
        "
size_of::<PerMessageDeflate>() = {}",
        std::mem::size_of::<PerMessageDeflate>()
    );

    // The lean mode's promise: a connection holds no zlib stream and no buffer, only its struct.
    assert!(shared < 2048, "lean mode holds {shared} bytes per connection");
    assert!(shared_small < 2048, "lean mode holds {shared_small} bytes per connection");
    assert_eq!(shared, std::mem::size_of::<PerMessageDeflate>() as isize);
    // The streams are counted once per thread, not per connection. Stock zlib's (the `zlib`
    // feature) are a quarter of zlib-rs's at 12/5.
    let (pool_min, dedicated_min) = if cfg!(feature = "zlib") { (40, 40) } else { (100, 150) };
    assert!(pool > pool_min * 1024, "shared streams: {pool} bytes");
    assert!(dedicated > dedicated_min * 1024 && dedicated_small < dedicated);
    // During the warm-up a connection holds its struct and its histories (1 KiB each way here).
    assert!(dedicated_one < 4 * 1024, "dedicated after one message: {dedicated_one} bytes");
}

/// A deflate stream that inflates to `gib` GiB of zeros, built without compressing that much:
/// one sync-flushed block of 1 MiB of zeros, repeated.
fn bomb(mib: usize) -> Bytes {
    use flate2::{Compress, Compression, FlushCompress};
    let mut compress = Compress::new_with_window_bits(Compression::new(9), false, 15);
    let mut block = Vec::with_capacity(1 << 16);
    compress.compress_vec(&vec![0u8; 1 << 20], &mut block, FlushCompress::Sync).expect("compress");
    let mut out = block.repeat(mib);
    out.truncate(out.len() - 4);
    Bytes::from(out)
}

#[test]
fn a_1_gib_bomb_never_allocates_more_than_max_size() {
    let _busy = pools_kept();
    let small = bomb(2);
    let mut rx = pair(15, 8).0;
    let mut frame = Frame::new(OpCode::Binary, small, true);
    frame.rsv = Rsv::RSV1;
    rx.decode(&mut frame, None).expect("the 2 MiB version inflates");
    assert_eq!(frame.payload.len(), 2 << 20);
    assert!(frame.payload.iter().all(|&b| b == 0));

    let payload = bomb(1024);
    let max_size = 1 << 20;
    let mut rx = pair(15, 8).0;
    let mut frame = Frame::new(OpCode::Binary, payload, true);
    frame.rsv = Rsv::RSV1;
    let (result, _, peak, _) = measure(|| rx.decode(&mut frame, Some(max_size)));
    assert_eq!(result, Err(ExtensionError::TooBig));
    // The output buffer is at most `max_size`; the rest is the inflate state (~40 KiB).
    let state = 64 * 1024;
    assert!(peak <= (max_size + state) as isize, "peak {peak} bytes");
    println!("1 GiB bomb, max_size 1 MiB: peak {peak} bytes");
}

#[test]
fn no_allocation_per_message_in_steady_state() {
    let _busy = pools_kept();
    let message: &'static [u8] = Box::leak(json(1024).into_boxed_slice());
    for (no_context_takeover, memory) in
        [(false, Memory::Dedicated), (true, Memory::Dedicated), (true, Memory::Shared)]
    {
        let config = PerMessageDeflateConfig {
            local_no_context_takeover: no_context_takeover,
            remote_no_context_takeover: no_context_takeover,
            compression_threshold: Some(0),
            memory,
            ..Default::default()
        };
        let mut tx = PerMessageDeflate::new(config).expect("config");
        let mut rx = PerMessageDeflate::new(config).expect("config");
        let mut round_trip = || {
            let mut frame = Frame::new(OpCode::Text, Bytes::from_static(message), true);
            tx.encode(&mut frame).expect("encode");
            rx.decode(&mut frame, Some(1 << 20)).expect("decode");
            assert_eq!(&frame.payload[..], message);
        };
        // Until the histories fill their window (32 KiB here), they still grow.
        for _ in 0..40 {
            round_trip();
        }
        let ((), _, _, allocs) = measure(|| {
            for _ in 0..1000 {
                round_trip();
            }
        });
        assert_eq!(allocs, 0, "no_context_takeover={no_context_takeover}, {memory:?}");
    }
}

/// The first fragment of a compressed message, as a peer compresses it.
fn first_fragment(config: PerMessageDeflateConfig, payload: &[u8]) -> &'static [u8] {
    let mut peer = PerMessageDeflate::new(PerMessageDeflateConfig {
        local_no_context_takeover: config.remote_no_context_takeover,
        memory: Memory::Dedicated,
        ..config
    })
    .expect("config");
    let mut frame = Frame::new(OpCode::Text, Bytes::copy_from_slice(payload), false);
    peer.encode(&mut frame).expect("peer encode");
    assert_eq!(frame.rsv, Rsv::RSV1);
    Box::leak(frame.payload.to_vec().into_boxed_slice())
}

/// Bytes each of `n` connections holds (all of it, its box included) after receiving
/// `messages` whole messages, then, with `payload`, the first fragment of a compressed message
/// (`payload` compressed), and then going idle (`release_memory`).
fn unfinished_bytes(
    config: PerMessageDeflateConfig,
    n: usize,
    messages: usize,
    payload: Option<&[u8]>,
) -> isize {
    let fragment = payload.map(|p| first_fragment(config, p));
    let message: &'static [u8] = Box::leak(json(1024).into_boxed_slice());
    let _ = bytes_per_connection(config, 1, 1, message); // warms the thread's pool up
    let mut peer = PerMessageDeflate::new(PerMessageDeflateConfig {
        local_no_context_takeover: true,
        memory: Memory::Dedicated,
        ..config
    })
    .expect("config");
    let mut whole = Frame::new(OpCode::Text, Bytes::from_static(message), true);
    peer.encode(&mut whole).expect("peer encode");
    // Compressed alone: decodes after any history.
    let incoming: &'static [u8] = Box::leak(whole.payload.to_vec().into_boxed_slice());
    let mut connections: Vec<Box<dyn Extension>> = Vec::with_capacity(n);
    let ((), live, _, _) = measure(|| {
        for _ in 0..n {
            let mut ext: Box<dyn Extension> = Box::new(PerMessageDeflate::new(config).expect("config"));
            for _ in 0..messages {
                let mut frame = Frame::new(OpCode::Text, Bytes::from_static(incoming), true);
                frame.rsv = Rsv::RSV1;
                ext.decode(&mut frame, None).expect("decode");
            }
            if let Some(fragment) = fragment {
                let mut frame = Frame::new(OpCode::Text, Bytes::from_static(fragment), false);
                frame.rsv = Rsv::RSV1;
                ext.decode(&mut frame, None).expect("decode");
            }
            ext.release_memory();
            connections.push(ext);
        }
    });
    live / n as isize
}

/// What an idle connection holds in the middle of a compressed message (issue 23): before
/// parking, its whole decompressor too (46–70 KiB more than between messages); now what
/// replays the message so far. Printed with `--nocapture`.
#[test]
fn unfinished_compressed_messages_are_parked() {
    let _busy = pools_kept();
    let small = b"hello!";
    let big = json(10 * 1024);
    let busy = usize::from(ws_deflate::WARM_UP_MESSAGES) + 1;
    for (name, config, messages) in [
        ("lean, 12-bit", mode(12, 5, Memory::Shared), 1),
        ("lean, 15-bit", mode(15, 5, Memory::Shared), 1),
        ("dedicated, 12-bit, new", mode(12, 5, Memory::Dedicated), 0),
        ("dedicated, 12-bit, busy", mode(12, 5, Memory::Dedicated), busy),
        ("dedicated, 15-bit, busy", mode(15, 5, Memory::Dedicated), busy),
    ] {
        let idle = unfinished_bytes(config, 50, messages, None);
        let tiny = unfinished_bytes(config, 50, messages, Some(small));
        let ten = unfinished_bytes(config, 50, messages, Some(&big));
        println!(
            "{name}: between messages {idle} B; unfinished after a 6-byte fragment {tiny} B, \
             after a 10 KiB fragment {ten} B per connection"
        );
        // The parked state: the message's compressed input (a few bytes; about 2.6 KiB for the
        // 10 KiB fragment) and, with context takeover, a copy of the history it started from
        // (which a new connection does not have yet, but whose history grows by the fragment).
        let window = if config.remote_no_context_takeover { 0 } else { 1 << config.remote_max_window_bits };
        assert!(tiny <= idle + window + 256, "{name}: {tiny} B");
        assert!(ten <= idle + 2 * window + 4096, "{name}: {ten} B");
    }
}
