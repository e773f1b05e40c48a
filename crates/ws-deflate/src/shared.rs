//! The per-thread streams of [`Memory::Shared`](crate::Memory::Shared), also lent to
//! [`Memory::Dedicated`](crate::Memory::Dedicated) connections during their warm-up.
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
//!
//! The pools are a cache, kept while some connection may use them: an extension holds a [`User`]
//! from its first compressed message until it releases its memory (goes idle) or is dropped.
//! When the last one lets go, every thread's pool is emptied, from that thread: an idle worker
//! thread cannot be asked to free its own. So each pool sits behind a mutex and a registry lists
//! them all. Otherwise only its own thread locks a pool, with `try_lock`: a message never waits;
//! in the rare moment the pools are being emptied it creates a stream, or frees the one it
//! returns.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::codec::{Compressor, CompressorKey, Decompressor};

/// Compressor configurations kept per thread; beyond that, the oldest is freed.
const MAX_COMPRESSORS: usize = 4;

/// One thread's streams.
#[derive(Default)]
struct Pool {
    compressors: Vec<Compressor>,
    decompressor: Option<Decompressor>,
}

type SharedPool = Arc<Mutex<Pool>>;

/// Every thread's pool, for the last user to empty. Dead threads' entries are dropped when a new
/// thread registers, so the list is as long as the number of threads that ever used a pool at
/// once.
static POOLS: Mutex<Vec<Weak<Mutex<Pool>>>> = Mutex::new(Vec::new());

/// Live [`User`]s: connections busy since they last released their memory.
static USERS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static POOL: SharedPool = register();
}

fn register() -> SharedPool {
    let pool = SharedPool::default();
    let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    pools.retain(|p| p.strong_count() > 0);
    pools.push(Arc::downgrade(&pool));
    pool
}

/// Runs `f` on this thread's pool, unless the pool is gone (thread teardown) or being emptied.
fn with_pool<T>(f: impl FnOnce(&mut Pool) -> T) -> Option<T> {
    POOL.try_with(|pool| pool.try_lock().ok().map(|mut pool| f(&mut pool))).ok().flatten()
}

/// A claim on the pools, held by a busy extension: the last one dropped empties them all.
#[derive(Debug)]
pub(crate) struct User(());

impl User {
    pub(crate) fn new() -> Self {
        USERS.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for User {
    fn drop(&mut self) {
        // AcqRel: the release below must see the streams the other users returned before they
        // were dropped; their locks order the pools' contents themselves.
        if USERS.fetch_sub(1, Ordering::AcqRel) == 1 {
            release_all_streams();
        }
    }
}

/// A compressor for `key` from this thread's pool, or a new one.
pub(crate) fn take_compressor(key: CompressorKey) -> Compressor {
    let pooled = with_pool(|pool| {
        let at = pool.compressors.iter().position(|c| c.key() == key)?;
        Some(pool.compressors.swap_remove(at))
    });
    pooled.flatten().unwrap_or_else(|| Compressor::new(key))
}

/// Resets `compressor` and gives it to this thread's pool, or frees it if the pool already holds
/// one with the same configuration.
pub(crate) fn give_compressor(mut compressor: Compressor) {
    compressor.recycle();
    // Whatever is not kept is freed here, outside the lock.
    let _unkept = with_pool(|pool| {
        if pool.compressors.iter().any(|c| c.key() == compressor.key()) {
            return Some(compressor);
        }
        let oldest = (pool.compressors.len() == MAX_COMPRESSORS).then(|| pool.compressors.remove(0));
        pool.compressors.push(compressor);
        oldest
    });
}

/// This thread's decompressor, or a new one. It inflates with a 15-bit window, which decodes any
/// smaller window.
pub(crate) fn take_decompressor() -> Decompressor {
    with_pool(|pool| pool.decompressor.take()).flatten().unwrap_or_else(|| Decompressor::new(15))
}

/// Resets `decompressor` and gives it back to this thread, unless the thread already has one.
pub(crate) fn give_decompressor(mut decompressor: Decompressor) {
    decompressor.recycle();
    let _unkept = with_pool(|pool| match pool.decompressor {
        Some(_) => Some(decompressor),
        None => {
            pool.decompressor = Some(decompressor);
            None
        }
    });
}

/// Frees this thread's shared streams. They are re-created on the next compressed message.
///
/// Every thread's streams are freed anyway once no connection is busy: when the last
/// [`PerMessageDeflate`](crate::PerMessageDeflate) that sent or received a compressed message
/// since its last [`release_memory`](ws_extensions::Extension::release_memory) releases its
/// memory or is dropped. Until then a thread keeps them: one compressor per configuration in use
/// (up to four), and one decompressor.
pub fn release_thread_streams() {
    let streams = with_pool(std::mem::take);
    // Dropped here, outside the lock.
    drop(streams);
}

/// Empties every thread's pool.
fn release_all_streams() {
    let pools: Vec<SharedPool> = {
        let pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
        pools.iter().filter_map(Weak::upgrade).collect()
    };
    for pool in pools {
        let streams = std::mem::take(&mut *pool.lock().unwrap_or_else(PoisonError::into_inner));
        drop(streams);
    }
}
