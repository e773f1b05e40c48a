//! The read buffer and how much room each read gets.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::AsyncRead;
use ws_proto::{FrameHeader, HeaderParse, MAX_HEADER_LEN};

/// Room made in the read buffer before each read, at first and after small reads.
const READ_CHUNK: usize = 16 * 1024;
/// The most room made: reads that fill the buffer double the room up to this, so a busy
/// connection takes a burst of frames in one syscall (a quiet one still releases its buffer).
const READ_CHUNK_MAX: usize = 64 * 1024;
/// The most room made ahead for a large frame: ws-proto's own reserve-ahead bound (1 MiB).
const FRAME_ROOM_MAX: usize = (1 << 20) + MAX_HEADER_LEN;

/// One spare read buffer per thread, passed from the connection whose read just found nothing
/// to the next one that reads: a busy server then neither allocates a buffer per burst nor
/// reads into one the allocator has let go cold, and a quiet connection still holds none.
///
/// It is a cache: once no connection is reading (every one went idle, see
/// [`ReadBuffer::release`], or was dropped), every thread's spare is freed by the connection
/// that was last, on its own thread. An idle worker thread cannot be asked to free its own, so
/// each spare sits behind a mutex and a registry lists them. Otherwise only its own thread
/// locks a spare, with `try_lock`: a read never waits (it allocates, in the rare moment the
/// spares are being freed).
type Spare = Arc<Mutex<Option<BytesMut>>>;

thread_local! {
    static SPARE_READ_BUF: Spare = register_spare();
}

/// Every thread's spare; entries of threads that ended are dropped when a thread registers.
static SPARES: Mutex<Vec<Weak<Mutex<Option<BytesMut>>>>> = Mutex::new(Vec::new());

/// Connections that read since they were last idle: while there is none, no spare is kept.
static READING: AtomicUsize = AtomicUsize::new(0);

fn register_spare() -> Spare {
    let spare = Spare::default();
    let mut spares = SPARES.lock().unwrap_or_else(PoisonError::into_inner);
    spares.retain(|s| s.strong_count() > 0);
    spares.push(Arc::downgrade(&spare));
    spare
}

/// This thread's spare, if it has one (and is not being freed).
fn take_spare() -> Option<BytesMut> {
    SPARE_READ_BUF.try_with(|spare| spare.try_lock().ok()?.take()).ok().flatten()
}

/// Makes `buf` this thread's spare, freeing the previous one.
fn keep_spare(buf: BytesMut) {
    let previous = SPARE_READ_BUF.try_with(|spare| spare.try_lock().ok()?.replace(buf)).ok().flatten();
    // Freed outside the lock.
    drop(previous);
}

/// A connection that is reading (held from its first read until it goes idle): the last one to
/// let go frees every thread's spare.
#[derive(Debug)]
struct Reading(());

impl Reading {
    fn new() -> Self {
        READING.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        if READING.fetch_sub(1, Ordering::AcqRel) == 1 {
            let spares: Vec<Spare> = {
                let spares = SPARES.lock().unwrap_or_else(PoisonError::into_inner);
                spares.iter().filter_map(Weak::upgrade).collect()
            };
            for spare in spares {
                let buf = spare.lock().unwrap_or_else(PoisonError::into_inner).take();
                drop(buf);
            }
        }
    }
}

/// The bytes read and not yet taken by the protocol, with the sizing of the next read.
pub(crate) struct ReadBuffer {
    pub(crate) buf: BytesMut,
    /// Room to make before the next read: grows while reads fill it, shrinks when they do not.
    room: usize,
    /// The size of the last frame that did not fit (0: none lately): room made for the next
    /// frame when the buffer is empty, so that it is read into place rather than copied out
    /// of storage its predecessor still holds when the protocol reserves for the rest.
    frame_room: usize,
    /// The last read filled its room: the next one takes the rest of the same burst.
    was_full: bool,
    /// The room the last read had.
    last_room: usize,
    /// Held while the connection reads, dropped when it goes idle: see [`SPARE_READ_BUF`].
    reading: Option<Reading>,
}

impl ReadBuffer {
    pub(crate) fn new(leftover: BytesMut) -> Self {
        Self { buf: leftover, room: READ_CHUNK, frame_room: 0, was_full: false, last_room: 0, reading: None }
    }

    /// Reads once into the buffer: `Ok(0)` at end of file. When nothing is there to read and
    /// nothing is buffered, the buffer is given up (returns `Pending` either way).
    pub(crate) fn poll_read<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        if self.reading.is_none() {
            self.reading = Some(Reading::new());
        }
        // Room for a whole burst: a short read costs a syscall per few frames. When nothing
        // holds on to the buffer's earlier messages, `reserve` moves the partial frame back
        // to the start of the same storage instead of allocating. A large partial frame already
        // has room up to its end (ws-proto reserves it): reading past that end would only make
        // the next frame's start be copied out of a buffer its predecessor still holds.
        let spare = self.buf.capacity() - self.buf.len();
        let want = if self.buf.is_empty() { self.room.max(self.frame_room) } else { self.room };
        let needs_room = spare < READ_CHUNK / 4 || (spare < want && self.buf.len() < READ_CHUNK / 4);
        if needs_room && self.buf.is_empty() && !self.buf.try_reclaim(want) {
            return self.poll_probe(io, cx);
        }
        if needs_room {
            if self.buf.capacity() == 0 {
                if let Some(buf) = take_spare() {
                    // Its storage is reused in place unless messages read into it are still held.
                    self.buf = buf;
                }
            }
            self.buf.reserve(want);
        }
        self.last_room = self.buf.capacity() - self.buf.len();
        match tokio_util::io::poll_read_buf(Pin::new(io), cx, &mut self.buf) {
            Poll::Pending => {
                if self.buf.is_empty() {
                    self.give_up();
                }
                Poll::Pending
            }
            ready => ready,
        }
    }

    /// A read while the buffer's storage still backs messages read into it (queued, or being
    /// sent back): the driver reads on right after a message, and usually finds nothing. Rather
    /// than allocate a buffer for the next frame now, read into the thread's spare; the buffer
    /// keeps its storage, which `reserve` takes back in place (pages already faulted in) once
    /// those messages are gone.
    fn poll_probe<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        let mut probe = take_spare().unwrap_or_default();
        probe.clear();
        if probe.capacity() < self.room {
            probe.reserve(self.room);
        }
        self.last_room = probe.capacity();
        match tokio_util::io::poll_read_buf(Pin::new(io), cx, &mut probe) {
            Poll::Pending => {
                if probe.capacity() <= READ_CHUNK_MAX {
                    keep_spare(probe);
                }
                Poll::Pending
            }
            ready => {
                self.buf = probe;
                ready
            }
        }
    }

    /// Nothing to read: give the buffer up now rather than hold 16 KiB or more per quiet
    /// connection. Keeping it until `idle_release` would save a request/response peer an
    /// allocation per message, but a burst of connections that each send one message would
    /// then all hold one at once, and glibc keeps most of that in RSS after they are freed
    /// (measured: 10.6 instead of 4.6 KiB per idle connection after one echo, 2,000
    /// connections). It becomes the thread's spare (replacing the previous one, so a thread
    /// keeps at most one), unless it has more room than a burst needs.
    fn give_up(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.capacity() <= READ_CHUNK_MAX {
            keep_spare(buf);
        }
    }

    /// Frees the buffer if it holds nothing; the connection is idle (or finished). If no other
    /// connection is reading, every thread's spare buffer is freed too.
    pub(crate) fn release(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        self.reading = None;
    }

    /// After the protocol took the complete frames of a read of `n` bytes: sizes the next read.
    pub(crate) fn learn(&mut self, n: usize) {
        let full = n == self.last_room;
        if full && self.buf.len() < READ_CHUNK / 4 {
            // Small frames filled the room: more were waiting.
            self.room = (self.room * 2).min(READ_CHUNK_MAX);
        } else if n < self.room / 4 && !self.was_full {
            // Quiet again. Not after a full read: the rest of a cut burst is short, and
            // shrinking on it would cut the next burst of the same size again (measured at
            // 1 KiB x 16 pipelined: a third of the bursts cut in two, 12 instead of 16
            // messages per read).
            self.room = READ_CHUNK;
            self.frame_room = 0;
        }
        self.was_full = full;
        if let Ok(HeaderParse::Complete(header, header_len)) = FrameHeader::parse(&self.buf) {
            // A partial frame (the protocol took every complete one): expect more this size.
            let frame_len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
            let frame_len = frame_len.saturating_add(header_len).min(FRAME_ROOM_MAX);
            if frame_len > READ_CHUNK {
                self.frame_room = frame_len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport with nothing to read, ever.
    struct Quiet;

    impl AsyncRead for Quiet {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
    }

    /// A read that finds nothing: the connection's buffer becomes its thread's spare.
    fn read_nothing(read: &mut ReadBuffer) {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(read.poll_read(&mut Quiet, &mut cx).is_pending());
    }

    /// How many threads hold a spare buffer.
    fn spares_held() -> usize {
        let spares = SPARES.lock().unwrap_or_else(PoisonError::into_inner);
        spares
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|spare| spare.lock().unwrap_or_else(PoisonError::into_inner).is_some())
            .count()
    }

    // The only test here that reads: the count of reading connections is the process's.
    #[test]
    fn spares_are_freed_once_no_connection_reads() {
        let mut busy = ReadBuffer::new(BytesMut::new());
        read_nothing(&mut busy);
        assert_eq!(spares_held(), 1);
        let (ready, wait) = std::sync::mpsc::channel();
        let (done, finish) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            // Another worker thread: its connection reads, then goes idle; the thread stays.
            scope.spawn(move || {
                let mut quiet = ReadBuffer::new(BytesMut::new());
                read_nothing(&mut quiet);
                quiet.release();
                let _ = ready.send(());
                let _ = finish.recv();
            });
            wait.recv().expect("the other thread read");
            // A connection still reads: both threads keep their spares.
            assert_eq!(spares_held(), 2);
            // The last reading connection goes idle: both spares are freed.
            busy.release();
            assert_eq!(spares_held(), 0);
            // And when the last one is dropped.
            read_nothing(&mut busy);
            assert_eq!(spares_held(), 1);
            drop(busy);
            assert_eq!(spares_held(), 0);
            drop(done);
        });
    }
}
