//! The per-thread streams of [`Memory::Shared`](crate::Memory::Shared).
//!
//! A connection borrows a stream for one message and gives it back when the message ends, reset,
//! so every message is an isolated deflate stream. A message that fits in one frame borrows and
//! returns within a single `encode` or `decode` call. A fragmented message keeps its stream
//! between calls, because other connections on the thread may run between its frames. Meanwhile
//! the pool has nothing to lend: the next connection that needs a stream creates a temporary one.
//! When the message ends, its stream goes back to the pool, or is freed if the pool already holds
//! a stream of that kind. A thread therefore keeps one compressor per configuration (at most
//! [`MAX_COMPRESSORS`]) and one decompressor. The extra streams exist only while fragmented
//! messages overlap.
//!
//! The pool works with any executor. A task that moves to another thread between two frames
//! takes its borrowed stream along and returns it to the pool of the thread the message ends on.

use std::cell::RefCell;

use crate::codec::{Compressor, CompressorKey, Decompressor};

/// Compressor configurations kept per thread; beyond that, the oldest is freed.
const MAX_COMPRESSORS: usize = 4;

thread_local! {
    static COMPRESSORS: RefCell<Vec<Compressor>> = const { RefCell::new(Vec::new()) };
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// A compressor for `key` from this thread's pool, or a new one.
pub(crate) fn take_compressor(key: CompressorKey) -> Compressor {
    let pooled = COMPRESSORS
        .try_with(|pool| {
            let mut pool = pool.try_borrow_mut().ok()?;
            let at = pool.iter().position(|c| c.key() == key)?;
            Some(pool.swap_remove(at))
        })
        .ok()
        .flatten();
    pooled.unwrap_or_else(|| Compressor::new(key))
}

/// Resets `compressor` and gives it to this thread's pool, or frees it if the pool already holds
/// one with the same configuration.
pub(crate) fn give_compressor(mut compressor: Compressor) {
    compressor.recycle();
    // During thread teardown the pool is gone: the compressor is then simply dropped.
    let _ = COMPRESSORS.try_with(|pool| {
        let Ok(mut pool) = pool.try_borrow_mut() else { return };
        if pool.iter().any(|c| c.key() == compressor.key()) {
            return;
        }
        if pool.len() == MAX_COMPRESSORS {
            pool.remove(0);
        }
        pool.push(compressor);
    });
}

/// This thread's decompressor, or a new one. It inflates with a 15-bit window, which decodes any
/// smaller window.
pub(crate) fn take_decompressor() -> Decompressor {
    let pooled = DECOMPRESSOR.try_with(|slot| slot.try_borrow_mut().ok()?.take()).ok().flatten();
    pooled.unwrap_or_else(|| Decompressor::new(15))
}

/// Resets `decompressor` and gives it back to this thread, unless the thread already has one.
pub(crate) fn give_decompressor(mut decompressor: Decompressor) {
    decompressor.recycle();
    let _ = DECOMPRESSOR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            if slot.is_none() {
                *slot = Some(decompressor);
            }
        }
    });
}

/// Frees this thread's shared streams. They are re-created on the next compressed message.
///
/// The pool keeps them for the life of the thread otherwise: one compressor per configuration
/// in use (up to four), and one decompressor.
pub fn release_thread_streams() {
    let compressors = COMPRESSORS.try_with(|pool| pool.try_borrow_mut().map(|mut p| std::mem::take(&mut *p)));
    let decompressor = DECOMPRESSOR.try_with(|slot| slot.try_borrow_mut().map(|mut s| s.take()));
    // Dropped here, outside the borrows.
    drop((compressors, decompressor));
}
