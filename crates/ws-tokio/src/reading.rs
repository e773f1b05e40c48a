//! The read buffer and how much room each read gets.

use std::cell::Cell;
use std::pin::Pin;
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

thread_local! {
    /// One spare read buffer per thread, passed from the connection whose read just found
    /// nothing to the next one that reads: a busy server then neither allocates a buffer per
    /// burst nor reads into one the allocator has let go cold, and a quiet connection still
    /// holds none.
    static SPARE_READ_BUF: Cell<Option<BytesMut>> = const { Cell::new(None) };
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
}

impl ReadBuffer {
    pub(crate) fn new(leftover: BytesMut) -> Self {
        Self { buf: leftover, room: READ_CHUNK, frame_room: 0, was_full: false, last_room: 0 }
    }

    /// Reads once into the buffer: `Ok(0)` at end of file. When nothing is there to read and
    /// nothing is buffered, the buffer is given up (returns `Pending` either way).
    pub(crate) fn poll_read<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
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
                if let Some(buf) = SPARE_READ_BUF.take() {
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
        let mut probe = SPARE_READ_BUF.take().unwrap_or_default();
        probe.clear();
        if probe.capacity() < self.room {
            probe.reserve(self.room);
        }
        self.last_room = probe.capacity();
        match tokio_util::io::poll_read_buf(Pin::new(io), cx, &mut probe) {
            Poll::Pending => {
                if probe.capacity() <= READ_CHUNK_MAX {
                    SPARE_READ_BUF.set(Some(probe));
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
            SPARE_READ_BUF.set(Some(buf));
        }
    }

    /// Frees the buffer if it holds nothing.
    pub(crate) fn release(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
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
