//! The threads' shared streams are a cache: they are freed, on every thread, once no connection
//! is busy (every extension released its memory or was dropped), and kept while one is.
//!
//! One test in its own binary: the pools and the count of busy connections are process-wide, so
//! another test's connections would keep them alive.

// A `GlobalAlloc` needs `unsafe impl`, and nothing else sees what zlib-rs allocates inside. The
// unsafe code is confined to this test file, which forwards every call to the system allocator
// unchanged; the library itself forbids unsafe code.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Barrier;
use std::sync::atomic::{AtomicIsize, Ordering};

use ws_deflate::{Memory, PerMessageDeflate, PerMessageDeflateConfig};
use ws_extensions::{Bytes, Extension, Frame, OpCode, Rsv};

#[path = "support/json.rs"]
mod json;
use json::json;

/// Bytes allocated and not freed, by every thread.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments, so the allocator
// contract is `System`'s; the bookkeeping is one atomic add.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// A lean-mode pair as the factories negotiate it: every message borrows the thread's streams.
fn lean_pair() -> (PerMessageDeflate, PerMessageDeflate) {
    let config = PerMessageDeflateConfig {
        local_no_context_takeover: true,
        remote_no_context_takeover: true,
        local_max_window_bits: 12,
        remote_max_window_bits: 12,
        compression_threshold: Some(0),
        memory: Memory::Shared,
        ..Default::default()
    };
    let ext = || PerMessageDeflate::new(config).expect("config");
    (ext(), ext())
}

/// One message from `tx` to `rx`, checked; nothing of it is kept.
fn send(tx: &mut PerMessageDeflate, rx: &mut PerMessageDeflate, message: &[u8]) {
    let mut frame = Frame::new(OpCode::Text, Bytes::copy_from_slice(message), true);
    tx.encode(&mut frame).expect("encode");
    assert_eq!(frame.rsv, Rsv::RSV1);
    rx.decode(&mut frame, None).expect("decode");
    assert_eq!(&frame.payload[..], message);
}

/// Less than one thread's pool holds after a message each way, at window 12 and memLevel 5: a
/// compressor and a decompressor with their buffers, about 240 KiB with zlib-rs (its hash table
/// alone is 128 KiB) and 88 KiB with stock zlib (the `zlib` feature).
const POOL_AT_LEAST: isize = 64 * 1024;
/// Slack for what the test harness may allocate meanwhile.
const SLACK: isize = 2 * 1024;

#[test]
fn shared_streams_are_freed_when_no_connection_is_busy() {
    let message = json(4096, 7);
    let step = Barrier::new(2);
    // Failures are reported after both threads are done: a panic between two barriers would
    // leave the other thread waiting forever.
    let mut failures = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failures.push(what);
        }
    };
    std::thread::scope(|scope| {
        // Another thread, like a tokio worker whose connections went idle.
        scope.spawn(|| {
            let (mut tx, mut rx) = lean_pair();
            for _ in 0..2 {
                step.wait(); // the main thread's connections are busy
                send(&mut tx, &mut rx, &message);
                tx.release_memory();
                rx.release_memory();
                step.wait(); // its pool is full, its connections idle
                step.wait(); // the main thread measured
            }
        });
        // The second round runs with both threads already in the pool list.
        for round in 0..2 {
            ws_deflate::release_thread_streams();
            let empty = live();
            let (mut tx, mut rx) = lean_pair();
            send(&mut tx, &mut rx, &message);
            step.wait();
            step.wait();
            // Both threads' pools are full: the main thread's connections are still busy.
            let full = live();
            check(full - empty >= 2 * POOL_AT_LEAST, format!("round {round}: {} bytes pooled", full - empty));
            // The last busy connections go idle: every pool is emptied, the other thread's too.
            tx.release_memory();
            rx.release_memory();
            let idle = live();
            check(
                idle - empty <= SLACK,
                format!("round {round}, after release_memory: {} bytes left", idle - empty),
            );
            // The next message fills this thread's pool again; dropping the connections empties it.
            send(&mut tx, &mut rx, &message);
            check(live() - idle >= POOL_AT_LEAST, format!("round {round}: the pool was not refilled"));
            drop((tx, rx));
            let dropped = live();
            check(
                dropped - empty <= SLACK,
                format!("round {round}, after drop: {} bytes left", dropped - empty),
            );
            step.wait();
        }
    });
    assert!(failures.is_empty(), "{failures:#?}");
}
