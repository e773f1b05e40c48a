//! The driver: a `ws_proto::Connection` pumped over an `AsyncRead + AsyncWrite`.
//!
//! Reading is demand-driven: the transport is read only when the application asks for the next
//! message (or closes), so a slow application leaves data in the kernel's buffers and the peer
//! feels TCP backpressure — memory never grows with what the peer sends. Outgoing frames are
//! queued in the protocol's transmit buffer and written with one vectored write per burst.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use ws_proto::{
    CloseCode, Connection, Event, Frame, FrameHeader, HeaderParse, MAX_HEADER_LEN, Message, Role, SendError,
    State,
};

use crate::error::{ConnectionClosed, Error, Result, Timeout};
use crate::options::Options;

/// Room made in the read buffer before each read, at first and after small reads.
const READ_CHUNK: usize = 16 * 1024;
/// The most room made: reads that fill the buffer double the room up to this, so a busy
/// connection takes a burst of frames in one syscall (a quiet one still releases its buffer).
const READ_CHUNK_MAX: usize = 64 * 1024;
/// The most room made ahead for a large frame: ws-proto's own reserve-ahead bound (1 MiB).
const FRAME_ROOM_MAX: usize = (1 << 20) + MAX_HEADER_LEN;
/// At most this many segments go to one vectored write.
const MAX_IOVECS: usize = 64;

thread_local! {
    /// One spare read buffer per thread, passed from the connection whose read just found
    /// nothing to the next one that reads: a busy server then neither allocates a buffer per
    /// burst nor reads into one the allocator has let go cold, and a quiet connection still
    /// holds none.
    static SPARE_READ_BUF: Cell<Option<BytesMut>> = const { Cell::new(None) };
}

/// Keepalive: a ping every `interval`, a pong expected within `timeout`.
struct Keepalive {
    interval: Duration,
    timeout: Option<Duration>,
    timer: Pin<Box<Sleep>>,
    /// The payload and send time of the ping awaiting its pong.
    waiting: Option<(Bytes, Instant)>,
    counter: u32,
}

/// Frees the connection's spare memory once it has been quiet for `after`.
///
/// The timer is armed when a read finds nothing to do, and only if there was traffic since the
/// last release: a busy connection resets it about once per `after`, not once per message.
struct IdleRelease {
    after: Duration,
    /// Created when first armed: a connection that never carries a message never needs it.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// Bytes came in or a message went out since the timer was armed (or memory released).
    traffic: bool,
}

/// A server's shutdown signal, shared by all its connections: a cancellation token, and a flag
/// set just before it is cancelled. The token's own checks take a lock shared by every
/// connection; the flag is read without one.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShutdownSignal {
    token: CancellationToken,
    fired: Arc<AtomicBool>,
}

impl ShutdownSignal {
    /// Tells every connection (and the accept loop) to stop.
    pub(crate) fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        self.token.cancel();
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    fn has_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }
}

/// A connection's wait for its server's shutdown.
struct Shutdown {
    signal: ShutdownSignal,
    wait: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The waker the wait is registered with: the wait is polled again only when the signal
    /// fired or the waker changed, not on every read.
    registered: Option<Waker>,
}

impl Shutdown {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let registered = self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if registered && !self.signal.has_fired() {
            return Poll::Pending;
        }
        self.registered = Some(cx.waker().clone());
        self.wait.as_mut().poll(cx)
    }
}

/// A ping sent by the application, resolved when its pong (or a later one) arrives.
struct PendingPing {
    payload: Bytes,
    sent: Instant,
    done: oneshot::Sender<Duration>,
}

pub(crate) struct Core<S> {
    io: S,
    proto: Connection,
    read_buf: BytesMut,
    /// `Options::write_limit`: high and low water marks.
    write_limit: (usize, usize),
    close_timeout: Option<Duration>,
    /// Room to make before the next read: grows while reads fill it, shrinks when they do not.
    read_room: usize,
    /// The size of the last frame that did not fit (0: none lately): room made for the next
    /// frame when the buffer is empty, so that it is read into place rather than copied out
    /// of storage its predecessor still holds when the protocol reserves for the rest.
    frame_room: usize,
    /// The last read filled its room: the next one takes the rest of the same burst.
    read_was_full: bool,
    keepalive: Option<Keepalive>,
    idle: Option<IdleRelease>,
    pings: VecDeque<PendingPing>,
    ping_counter: u32,
    latency: Duration,
    /// Started when the closing handshake starts; when it fires, the transport is dropped.
    close_timer: Option<Pin<Box<Sleep>>>,
    /// The waker every timer was last polled with, or `None` when one is new, was reset since,
    /// or fired: see `poll_timers`.
    timers_waker: Option<Waker>,
    /// The first error to report (protocol violation, keepalive timeout), before `Closed`.
    failure: Option<Error>,
    /// The transport is finished with: shut down, reset or timed out.
    done: bool,
    eof: bool,
    /// Server shutdown: when it fires, the connection closes with 1001.
    shutdown: Option<Shutdown>,
    /// Set where `S`'s bounds are known, so that `Drop` (which has none) can close politely.
    drop_hook: fn(&mut Self),
}

impl<S> Core<S> {
    pub(crate) fn proto(&self) -> &Connection {
        &self.proto
    }

    pub(crate) fn io(&self) -> &S {
        &self.io
    }

    pub(crate) fn latency(&self) -> Duration {
        self.latency
    }
}

impl<S> Drop for Core<S> {
    fn drop(&mut self) {
        (self.drop_hook)(self);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Core<S> {
    pub(crate) fn new(io: S, proto: Connection, leftover: BytesMut, options: Options) -> Self {
        let keepalive = options.ping_interval.map(|interval| Keepalive {
            interval,
            timeout: options.ping_timeout,
            timer: Box::pin(tokio::time::sleep(interval)),
            waiting: None,
            counter: 0,
        });
        let idle = options.idle_release.map(|after| IdleRelease {
            after,
            timer: None,
            armed: false,
            // Nothing to release before the first message: the read buffer goes on its own.
            traffic: false,
        });
        let mut core = Self {
            io,
            proto,
            read_buf: leftover,
            write_limit: options.write_limit,
            close_timeout: options.close_timeout,
            read_room: READ_CHUNK,
            frame_room: 0,
            read_was_full: false,
            keepalive,
            idle,
            pings: VecDeque::new(),
            ping_counter: 0,
            latency: Duration::ZERO,
            close_timer: None,
            timers_waker: None,
            failure: None,
            done: false,
            eof: false,
            shutdown: None,
            drop_hook: Self::close_on_drop,
        };
        if !core.read_buf.is_empty() {
            // Frames the peer pipelined behind its handshake.
            core.receive_buffered();
        }
        core
    }

    /// Closes with 1001 when `signal` fires (graceful server shutdown).
    pub(crate) fn on_shutdown(&mut self, signal: ShutdownSignal) {
        let wait = Box::pin(signal.token.clone().cancelled_owned());
        self.shutdown = Some(Shutdown { signal, wait, registered: None });
    }

    /// Dropped while open: queue a 1000 close frame and write what the socket takes right now.
    /// Best effort — an application that wants the whole closing handshake calls `close()`.
    fn close_on_drop(&mut self) {
        if self.done || self.proto.close_sent().is_some() {
            return;
        }
        let _ = self.proto.close(CloseCode::NORMAL, "");
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let _ = self.poll_write_out(&mut cx);
        let _ = Pin::new(&mut self.io).poll_shutdown(&mut cx);
    }

    // ---- receiving ----

    /// The next message; at the end, the error that says how the connection ended.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message>> {
        loop {
            if let Some(message) = self.next_message() {
                return Poll::Ready(Ok(message));
            }
            if self.proto.state() == State::Closed || self.done {
                ready!(self.poll_finish(cx));
                return Poll::Ready(Err(self.terminal_error()));
            }
            // Timers before reading: keepalive and the closing timeout must run even while the
            // peer reads nothing, or a peer that never reads would be kept forever. And before
            // writing: the ping or close frame a timer queues goes out now, not at the next
            // wake-up (by then the pong would be overdue).
            if let Poll::Ready(Err(e)) = self.poll_timers(cx) {
                self.failure = Some(e);
                continue;
            }
            // Answer pings, send close replies and whatever the application queued.
            let buffered = self.poll_write_out(cx);
            if let Poll::Ready(Err(e)) = buffered {
                self.lost(e);
                continue;
            }
            if buffered.is_pending() && self.buffered() > self.write_limit.0 {
                // The peer does not read: stop reading from it too, until it does.
                return Poll::Pending;
            }
            match ready!(self.poll_read(cx)) {
                Ok(()) => {}
                Err(e) => self.lost(e),
            }
        }
    }

    /// The next message already received, if any (handling pongs and close frames on the way).
    #[inline]
    pub(crate) fn next_message(&mut self) -> Option<Message> {
        while let Some(event) = self.proto.next_event() {
            match event {
                Event::Message(message) => return Some(message),
                Event::Pong(payload) => self.on_pong(&payload),
                Event::Ping(_) => {} // answered by the protocol (auto_pong)
                Event::Close(frame) => {
                    tracing::debug!(?frame, "close frame received");
                    self.start_close_timer();
                }
                _ => {}
            }
        }
        None
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Room for a whole burst: a short read costs a syscall per few frames. When nothing
        // holds on to the buffer's earlier messages, `reserve` moves the partial frame back
        // to the start of the same storage instead of allocating. A large partial frame already
        // has room up to its end (ws-proto reserves it): reading past that end would only make
        // the next frame's start be copied out of a buffer its predecessor still holds.
        let spare = self.read_buf.capacity() - self.read_buf.len();
        let want =
            if self.read_buf.is_empty() { self.read_room.max(self.frame_room) } else { self.read_room };
        if spare < READ_CHUNK / 4 || (spare < want && self.read_buf.len() < READ_CHUNK / 4) {
            if self.read_buf.capacity() == 0 {
                if let Some(buf) = SPARE_READ_BUF.take() {
                    // Its storage is reused in place unless messages read into it are still held.
                    self.read_buf = buf;
                }
            }
            self.read_buf.reserve(want);
        }
        let room = self.read_buf.capacity() - self.read_buf.len();
        let n = match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buf) {
            Poll::Ready(result) => result?,
            Poll::Pending => {
                if self.read_buf.is_empty() {
                    // Nothing to read: give the buffer up now rather than hold 16 KiB or more
                    // per quiet connection. Keeping it until `idle_release` would save a
                    // request/response peer an allocation per message, but a burst of
                    // connections that each send one message would then all hold one at once,
                    // and glibc keeps most of that in RSS after they are freed (measured: 10.6
                    // instead of 4.6 KiB per idle connection after one echo, 2,000 connections).
                    // It becomes the thread's spare (replacing the previous one, so a thread
                    // keeps at most one), unless it has more room than a burst needs.
                    let buf = std::mem::take(&mut self.read_buf);
                    if buf.capacity() <= READ_CHUNK_MAX {
                        SPARE_READ_BUF.set(Some(buf));
                    }
                    self.arm_idle_release(cx);
                }
                return Poll::Pending;
            }
        };
        if n == 0 {
            self.eof = true;
            self.proto.receive_eof();
        } else {
            self.receive_buffered();
        }
        let held = self.read_buf.len();
        let full = n == room;
        if full && held < READ_CHUNK / 4 {
            // Small frames filled the room: more were waiting.
            self.read_room = (self.read_room * 2).min(READ_CHUNK_MAX);
        } else if n < self.read_room / 4 && !self.read_was_full {
            // Quiet again. Not after a full read: the rest of a cut burst is short, and
            // shrinking on it would cut the next burst of the same size again (measured at
            // 1 KiB x 16 pipelined: a third of the bursts cut in two, 12 instead of 16
            // messages per read).
            self.read_room = READ_CHUNK;
            self.frame_room = 0;
        }
        self.read_was_full = full;
        if let Ok(HeaderParse::Complete(header, header_len)) = FrameHeader::parse(&self.read_buf) {
            // A partial frame (the protocol took every complete one): expect more this size.
            let frame_len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
            let frame_len = frame_len.saturating_add(header_len).min(FRAME_ROOM_MAX);
            if frame_len > READ_CHUNK {
                self.frame_room = frame_len;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Starts the idle release timer, unless it runs or nothing happened since the last release.
    fn arm_idle_release(&mut self, cx: &mut Context<'_>) {
        let Some(idle) = &mut self.idle else { return };
        if !idle.armed && idle.traffic {
            idle.armed = true;
            idle.traffic = false;
            let deadline = Instant::now() + idle.after;
            let timer = idle.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            timer.as_mut().reset(deadline);
            // Registers the waker; the deadline is in the future, so this is pending.
            let _ = timer.as_mut().poll(cx);
            self.timers_waker = None;
        }
    }

    /// Notes traffic for the idle release timer.
    fn note_traffic(&mut self) {
        if let Some(idle) = &mut self.idle {
            idle.traffic = true;
        }
    }

    fn receive_buffered(&mut self) {
        self.note_traffic();
        if let Err(e) = self.proto.receive(&mut self.read_buf) {
            tracing::debug!(error = %e, code = %e.close_code(), "failing the connection");
            self.failure = Some(Error::Protocol(e));
        }
    }

    /// The transport failed (reset, broken pipe): the connection is closed abnormally (1006).
    fn lost(&mut self, e: std::io::Error) {
        tracing::debug!(error = %e, "transport lost");
        self.proto.receive_eof();
        self.done = true;
    }

    fn on_pong(&mut self, payload: &[u8]) {
        let now = Instant::now();
        if let Some(keepalive) = &mut self.keepalive {
            if let Some((ping, sent)) = &keepalive.waiting {
                if ping[..] == *payload {
                    self.latency = now - *sent;
                    keepalive.timer.as_mut().reset(*sent + keepalive.interval);
                    self.timers_waker = None;
                    keepalive.waiting = None;
                }
            }
        }
        // A pong answers its ping and every earlier one (RFC 6455 §5.5.3).
        if let Some(at) = self.pings.iter().position(|p| p.payload[..] == *payload) {
            for ping in self.pings.drain(..=at) {
                self.latency = now - ping.sent;
                let _ = ping.done.send(now - ping.sent);
            }
        }
    }

    fn poll_timers(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        // Called twice per burst of messages, and most of the time nothing is due. A timer
        // polled with this waker wakes it when it fires, and `is_elapsed` (one atomic load)
        // tells whether it did: only then is it polled again, which would take the task's
        // budget and register the waker anew.
        if self.timers_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) && !self.timer_fired() {
            return Poll::Pending;
        }
        let result = self.poll_every_timer(cx);
        if result.is_pending() {
            self.timers_waker = Some(cx.waker().clone());
        }
        result
    }

    /// Whether a timer polled earlier fired, or the server shuts down.
    fn timer_fired(&self) -> bool {
        self.close_timer.as_ref().is_some_and(|t| t.is_elapsed())
            || self.shutdown.as_ref().is_some_and(|s| s.signal.has_fired())
            || self.idle.as_ref().is_some_and(|i| i.armed && i.timer.as_ref().is_some_and(|t| t.is_elapsed()))
            || self.keepalive.as_ref().is_some_and(|k| k.timer.is_elapsed())
    }

    fn poll_every_timer(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(timer) = &mut self.close_timer {
            if timer.as_mut().poll(cx).is_ready() {
                tracing::debug!("closing handshake timed out");
                self.done = true;
                return Poll::Ready(Err(Error::Timeout(Timeout::Close)));
            }
        }
        if let Some(shutdown) = &mut self.shutdown {
            if shutdown.poll(cx).is_ready() {
                self.shutdown = None;
                if self.proto.close_sent().is_none() && self.proto.state() == State::Open {
                    tracing::debug!("server shutting down: closing with 1001");
                    let _ = self.proto.close(CloseCode::GOING_AWAY, "server shutting down");
                    self.start_close_timer();
                }
            }
        }
        if let Some(idle) = &mut self.idle {
            let fired = idle.armed && idle.timer.as_mut().is_some_and(|t| t.as_mut().poll(cx).is_ready());
            if fired {
                idle.armed = false;
                if idle.traffic {
                    // Busy since the timer was armed: wait a whole quiet period again.
                    self.arm_idle_release(cx);
                } else if self.proto.state() == State::Open {
                    tracing::trace!("idle: releasing buffers and extension state");
                    if self.read_buf.is_empty() {
                        self.read_buf = BytesMut::new();
                    }
                    self.proto.release_memory();
                }
            }
        }
        let Some(keepalive) = &mut self.keepalive else { return Poll::Pending };
        if self.proto.state() != State::Open {
            return Poll::Pending;
        }
        while keepalive.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if keepalive.waiting.is_some() && keepalive.timeout.is_some() {
                tracing::debug!("keepalive ping timeout");
                let _ = self.proto.close(CloseCode::INTERNAL_ERROR, "keepalive ping timeout");
                self.done_after_flush();
                return Poll::Ready(Err(Error::Timeout(Timeout::Keepalive)));
            }
            keepalive.counter = keepalive.counter.wrapping_add(1);
            let payload = Bytes::copy_from_slice(&keepalive.counter.to_be_bytes());
            let _ = self.proto.send_ping(payload.clone());
            keepalive.waiting = Some((payload, now));
            let wait = keepalive.timeout.unwrap_or(keepalive.interval);
            keepalive.timer.as_mut().reset(now + wait);
        }
        Poll::Pending
    }

    /// After a local failure: no closing handshake, just the close frame out and the transport down.
    fn done_after_flush(&mut self) {
        self.start_close_timer();
        self.proto.receive_eof();
    }

    fn start_close_timer(&mut self) {
        if self.close_timer.is_none() {
            if let Some(timeout) = self.close_timeout {
                self.close_timer = Some(Box::pin(tokio::time::sleep(timeout)));
                self.timers_waker = None;
            }
        }
    }

    /// Ends the transport once the protocol is closed: flush the close frame; a server (or a
    /// failed connection) shuts down at once, a client waits for the server to close first.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.start_close_timer();
        while !self.done {
            if let Some(timer) = &mut self.close_timer {
                if timer.as_mut().poll(cx).is_ready() {
                    tracing::debug!("closing handshake timed out; dropping the transport");
                    self.done = true;
                    break;
                }
            }
            if ready!(self.poll_write_out(cx)).is_err() {
                self.done = true;
                break;
            }
            let waits_for_server = self.proto.role() == Role::Client
                && self.failure.is_none()
                && self.proto.close_received().is_some()
                && !self.eof;
            if waits_for_server {
                // RFC 6455 §7.1.1: the server closes the TCP connection first.
                self.read_buf.clear();
                match ready!(self.poll_read(cx)) {
                    Ok(()) => continue,
                    Err(_) => self.eof = true,
                }
                continue;
            }
            let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
            self.done = true;
        }
        Poll::Ready(())
    }

    fn terminal_error(&mut self) -> Error {
        if let Some(e) = self.failure.take() {
            return e;
        }
        let code = self.proto.close_code().unwrap_or(CloseCode::ABNORMAL);
        let normal = |code: CloseCode| matches!(code.0, 1000 | 1001 | 1005);
        let sent_normal = match self.proto.close_sent() {
            Some(Some(frame)) => normal(frame.code),
            Some(None) => true,
            None => false,
        };
        Error::Closed(ConnectionClosed {
            code,
            reason: self.proto.close_reason().unwrap_or_default().to_owned(),
            ok: normal(code) && sent_normal && self.proto.close_received().is_some(),
        })
    }

    // ---- sending ----

    fn buffered(&self) -> usize {
        self.proto.pending_output()
    }

    /// Whether a frame can be queued without waiting (the write buffer is under its high mark).
    #[inline]
    pub(crate) fn has_write_room(&self) -> bool {
        self.buffered() <= self.write_limit.0
    }

    /// Ready when the write buffer is under its high water mark (or drained to the low one).
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.has_write_room() {
            return Poll::Ready(Ok(()));
        }
        while self.buffered() > self.write_limit.1 {
            if self.proto.state() == State::Closed || self.done {
                // Keepalive or the closing timeout failed the connection while we waited.
                ready!(self.poll_finish(cx));
                return Poll::Ready(Err(self.terminal_error()));
            }
            match self.poll_write_some(cx) {
                Poll::Ready(result) => result.map_err(Error::Io)?,
                Poll::Pending => {
                    // The peer does not read. It does not answer pings either: keepalive (and
                    // then `close_timeout`, as the close frame cannot be written) drops it, so
                    // a sender blocked here is not blocked forever.
                    if let Poll::Ready(Err(e)) = self.poll_timers(cx) {
                        self.failure = Some(e);
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Queues one data frame. Written at the next flush, or at once when no received message
    /// waits (so an echo loop writes each burst of replies with one vectored write).
    #[inline]
    pub(crate) fn start_send(&mut self, frame: Frame) -> Result<()> {
        self.note_traffic();
        match self.proto.send_frame(frame) {
            Ok(()) => Ok(()),
            Err(SendError::Closed) => Err(self.closed_error()),
            Err(e) => Err(Error::Send(e)),
        }
    }

    /// Writes what was queued, unless more received messages are already waiting.
    pub(crate) fn write_opportunistically(&mut self, cx: &mut Context<'_>) {
        // No received message waits: the application has answered everything it was given.
        if self.proto.pending_events() == 0 {
            if let Poll::Ready(Err(e)) = self.poll_write_out(cx) {
                self.lost(e);
            }
        }
    }

    fn closed_error(&mut self) -> Error {
        if self.proto.state() == State::Closed {
            self.terminal_error()
        } else {
            Error::Closed(ConnectionClosed { code: CloseCode::ABNORMAL, reason: String::new(), ok: false })
        }
    }

    pub(crate) fn ping(&mut self, payload: Option<Bytes>) -> Result<oneshot::Receiver<Duration>> {
        let payload = payload.unwrap_or_else(|| {
            self.ping_counter = self.ping_counter.wrapping_add(1);
            Bytes::copy_from_slice(&[b"app-".as_slice(), &self.ping_counter.to_be_bytes()].concat())
        });
        if self.pings.iter().any(|p| p.payload == payload) {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a ping with this payload is already waiting for its pong",
            )));
        }
        match self.proto.send_ping(payload.clone()) {
            Ok(()) => {}
            Err(SendError::Closed) => return Err(self.closed_error()),
            Err(e) => return Err(Error::Send(e)),
        }
        let (done, wait) = oneshot::channel();
        self.pings.push_back(PendingPing { payload, sent: Instant::now(), done });
        Ok(wait)
    }

    pub(crate) fn send_pong(&mut self, payload: Bytes) -> Result<()> {
        match self.proto.send_pong(payload) {
            Ok(()) => Ok(()),
            Err(SendError::Closed) => Err(self.closed_error()),
            Err(e) => Err(Error::Send(e)),
        }
    }

    /// Writes everything queued and flushes the transport.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match ready!(self.poll_write_out(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) => {
                self.lost(e);
                Poll::Ready(Err(self.closed_error()))
            }
        }
    }

    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut wrote = false;
        while self.proto.wants_write() {
            ready!(self.poll_write_some(cx))?;
            wrote = true;
        }
        if wrote {
            ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let out = self.proto.transmit();
        if !out.has_remaining() {
            return Poll::Ready(Ok(()));
        }
        let n = if self.io.is_write_vectored() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let count = out.chunks_vectored(&mut slices);
            if count == 1 {
                // One segment (a burst of small frames): a plain write (`send` on a socket)
                // skips the kernel's iovec import.
                ready!(Pin::new(&mut self.io).poll_write(cx, &slices[0]))?
            } else {
                ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]))?
            }
        } else {
            ready!(Pin::new(&mut self.io).poll_write(cx, out.chunk()))?
        };
        if n == 0 {
            return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
        }
        out.advance(n);
        Poll::Ready(Ok(()))
    }

    // ---- closing ----

    /// Starts the closing handshake (once) and drives it to the end, up to `close_timeout`.
    /// Messages that arrive meanwhile are dropped.
    pub(crate) fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        code: CloseCode,
        reason: &str,
    ) -> Poll<Result<()>> {
        if self.proto.close_sent().is_none() && self.proto.state() != State::Closed {
            self.proto.close(code, reason).map_err(Error::Send)?;
            self.start_close_timer();
        }
        loop {
            match ready!(self.poll_recv(cx)) {
                Ok(_) => continue,
                Err(Error::Closed(_)) => return Poll::Ready(Ok(())),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}
