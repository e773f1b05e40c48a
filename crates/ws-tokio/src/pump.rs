//! The pump: a `ws_proto::Connection` driven over an `AsyncRead + AsyncWrite`.
//!
//! The [`Driver`](crate::Driver) polls it whether or not the application reads: it reads what
//! arrives into a queue of messages (up to `max_queue`, then TCP backpressure), writes out what
//! the protocol queued (pongs, close replies, keepalive pings), hands the protocol the time when
//! a deadline passes, and closes the transport when the protocol says so. The application's
//! handles take messages from the queue and queue frames; they write inline when that saves a
//! wake-up, always registering the driver's waker with the transport. When the driver shares
//! the application's task (`serve`), `recv` runs the pump itself rather than waiting for a round.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use ws_proto::{Cause, CloseCode, Connection, Event, Frame, Message, PreparedMessage, SendError, State};

use crate::config::{Config, WriteLimit};
use crate::error::{ConnectionClosed, Error, Result, Timeout};
use crate::reading::ReadBuffer;
use crate::server::Shutdown;

/// What became of a broadcast message offered to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    /// Queued, behind other broadcast frames not yet written.
    Delivered,
    /// Queued, the first since the connection's broadcast frames were last written: the
    /// broadcaster must write them.
    DeliveredFirst,
    Dropped,
    Closed,
}

/// At most this many segments go to one vectored write.
const MAX_IOVECS: usize = 64;

/// A ping sent by the application, resolved when its pong (or a later one) arrives.
struct PendingPing {
    payload: Bytes,
    sent: Instant,
    done: oneshot::Sender<Result<Duration>>,
}

/// Frees the connection's spare memory once it has been quiet for `after`.
///
/// Armed when a read finds nothing to do, and only if there was traffic since the last
/// release: a busy connection re-arms it about once per `after`, not once per message.
struct IdleRelease {
    after: Duration,
    deadline: Option<Instant>,
    /// Bytes came in or a message went out since the deadline was set (or memory released).
    traffic: bool,
}

/// Who is waiting for what.
struct Wakers {
    /// The driver's: registered with the transport and the timer by every poll, whoever polls.
    driver: Waker,
    /// The application waiting for a message (or the end).
    recv: Option<Waker>,
    /// The application waiting for room in the write buffer, a flush, or the end.
    send: Option<Waker>,
    /// Set when the driver and the application take turns in one task (`serve`): wakes between
    /// the two are then not needed, the task's loop reads the turns instead.
    round: Option<Arc<Round>>,
}

/// The turns of a driver and an application that share one task (`serve`). Kept outside the
/// connection's lock, so that the task's loop sees that nothing is due without taking it. Only
/// that task reads or writes them (wakes from elsewhere are real wakes), hence `Relaxed`.
#[derive(Debug, Default)]
pub(crate) struct Round {
    /// Another round of the driver is wanted.
    rewake: AtomicBool,
    /// The application has something new (a message, room to write, the end).
    app_due: AtomicBool,
    /// The pump ran to the end (the application drove it from `recv`) since the last round.
    fresh: AtomicBool,
}

impl Round {
    /// Whether the task can sleep: the pump ran to the end since the last round and nothing
    /// asked for another. Starts the next round's bookkeeping either way.
    // Loads and stores, never a swap: a swap is a locked instruction, as costly as the lock
    // this saves, and only one task touches these anyway.
    pub(crate) fn settled(&self) -> bool {
        let fresh = take(&self.fresh);
        let settled = fresh && !self.rewake_asked();
        if settled {
            self.app_due.store(false, Relaxed);
        }
        settled
    }

    /// Whether the application is due for a poll (and no longer, once asked).
    pub(crate) fn take_app_due(&self) -> bool {
        take(&self.app_due)
    }

    fn ask_rewake(&self) {
        self.rewake.store(true, Relaxed);
    }

    fn rewake_asked(&self) -> bool {
        self.rewake.load(Relaxed)
    }
}

/// Reads and clears a flag that only one task touches.
#[inline]
fn take(flag: &AtomicBool) -> bool {
    let set = flag.load(Relaxed);
    if set {
        flag.store(false, Relaxed);
    }
    set
}

impl Wakers {
    /// Wakes the application that waited with `waker` (taken from its slot), or, when it shares
    /// the driver's task, marks it due for the poll that follows the driver's round.
    fn wake_app(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else { return };
        match &self.round {
            Some(round) if waker.will_wake(&self.driver) => round.app_due.store(true, Relaxed),
            _ => waker.wake(),
        }
    }

    /// The round of the application's task, if the driver's caller polls the application in
    /// the same task and `cx` is that task's.
    #[inline]
    fn same_task(&self, cx: &Context<'_>) -> Option<&Round> {
        self.round.as_deref().filter(|_| self.driver.will_wake(cx.waker()))
    }
}

pub(crate) struct Pump<S> {
    io: S,
    proto: Connection,
    read: ReadBuffer,
    /// Received events taken out of the protocol's queue ahead of the application: only while
    /// the driver must see pongs (application pings wait) or drop messages (closing, queue
    /// full). Otherwise messages wait in the protocol's own queue and are moved once, to the
    /// application.
    messages: VecDeque<Message>,
    /// `max_queue`: reading stops at `high` queued messages and resumes at `low`.
    queue_limit: Option<(usize, usize)>,
    /// Reading stopped at the high mark.
    paused: bool,
    /// The application took a message since the output was last written: its replies are
    /// written together once it has taken them all.
    answering: bool,
    /// `Config::write_limit`: high and low water marks.
    write_limit: WriteLimit,
    /// The one timer: the earliest of the protocol's deadlines and the idle release.
    sleep: Pin<Box<Sleep>>,
    sleep_at: Option<Instant>,
    /// `sleep` was polled with the driver's current waker since it was last reset.
    sleep_registered: bool,
    /// Something the deadlines depend on may have changed since they were last looked at (a
    /// close started, a control frame or an error arrived, a deadline was handled): until then
    /// a registered, unexpired timer is all there is to check.
    deadlines_changed: bool,
    idle: Option<IdleRelease>,
    /// When a transport shutdown that could not finish at once is given up (a TLS stream
    /// must write `close_notify`, and what it still buffers, to a peer that may never read).
    shutdown_by: Option<Instant>,
    pings: VecDeque<PendingPing>,
    ping_counter: u32,
    latency: Duration,
    keepalive_latency: Option<Duration>,
    shutdown: Option<Shutdown>,
    wakers: Wakers,
    /// Application handles alive; when the last goes, an open connection closes with 1000.
    handles: usize,
    /// Broadcast frames were queued and not yet written: a broadcaster's flush writes them,
    /// together with any that follow before it runs.
    broadcast_unwritten: bool,
    /// The transport failed: nothing more can be written.
    broken: bool,
    /// End of file was read.
    read_closed: bool,
    /// The transport is finished with: shut down, broken, or given up at a timeout.
    done: bool,
    /// Set where `S`'s bounds are known, so that `Drop` (which has none) can close politely.
    drop_hook: fn(&mut Self),
    /// The `metrics` feature's handles (nothing without it).
    metrics: crate::metrics::ConnMetrics,
}

impl<S> Drop for Pump<S> {
    fn drop(&mut self) {
        (self.drop_hook)(self);
    }
}

impl<S> Pump<S> {
    pub(crate) fn proto(&self) -> &Connection {
        &self.proto
    }

    pub(crate) fn latency(&self) -> Duration {
        self.latency
    }

    pub(crate) fn add_handle(&mut self) {
        self.handles += 1;
    }

    /// The driver's caller polls the application right after it, in the same task, and follows
    /// their turns through the returned [`Round`].
    pub(crate) fn share_task(&mut self) -> Arc<Round> {
        let round = Arc::new(Round::default());
        self.wakers.round = Some(round.clone());
        round
    }

    /// One application handle went away; after the last, an open connection closes with 1000.
    pub(crate) fn drop_handle(&mut self) {
        self.handles = self.handles.saturating_sub(1);
        if self.handles == 0 && self.proto.state() == State::Open {
            let _ = self.start_close(CloseCode::NORMAL, "");
            let cx = Context::from_waker(Waker::noop());
            self.wake_driver(&cx);
        }
    }

    /// The handler of a served connection returned (or failed): an open connection closes.
    pub(crate) fn close_after_handler(&mut self, code: CloseCode) {
        if self.proto.state() == State::Open {
            let _ = self.start_close(code, "");
        }
        if let Some(round) = &self.wakers.round {
            round.ask_rewake();
        }
    }

    /// Starts the closing handshake; its timer starts at the driver's next look at the deadlines.
    fn start_close(&mut self, code: CloseCode, reason: &str) -> std::result::Result<(), SendError> {
        self.proto.close(code, reason)?;
        self.deadlines_changed = true;
        Ok(())
    }

    /// Asks the driver to run: the application changed something it acts on.
    fn wake_driver(&mut self, cx: &Context<'_>) {
        if let Some(round) = self.wakers.same_task(cx) {
            round.ask_rewake();
        } else {
            self.wakers.driver.wake_by_ref();
        }
    }

    /// The error every call gets once the connection is closing or closed: the same each time.
    pub(crate) fn closed_error(&self) -> Error {
        let Some(closure) = self.proto.closure() else {
            // This end sent its close frame; the peer's has not come.
            return Error::Closed(ConnectionClosed {
                code: CloseCode::ABNORMAL,
                reason: String::new(),
                ok: false,
            });
        };
        match &closure.cause {
            Some(Cause::Protocol(e)) => Error::Protocol(e.clone()),
            Some(Cause::KeepaliveTimeout) => Error::Timeout(Timeout::Keepalive),
            Some(Cause::CloseTimeout) => Error::Timeout(Timeout::Close),
            _ => Error::Closed(ConnectionClosed {
                code: closure.code(),
                reason: closure.reason().to_owned(),
                ok: closure.is_ok(),
            }),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pump<S> {
    pub(crate) fn new(io: S, proto: Connection, leftover: BytesMut, config: &Config) -> Self {
        let proto_role = proto.role();
        let mut pump = Self {
            io,
            proto,
            read: ReadBuffer::new(leftover),
            messages: VecDeque::new(),
            queue_limit: config.max_queue.map(|high| (high.max(1), high / 4)),
            paused: false,
            answering: false,
            write_limit: config.write_limit,
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            sleep_at: None,
            sleep_registered: false,
            deadlines_changed: true,
            idle: config.idle_release.map(|after| IdleRelease { after, deadline: None, traffic: false }),
            shutdown_by: None,
            pings: VecDeque::new(),
            ping_counter: 0,
            latency: Duration::ZERO,
            keepalive_latency: None,
            shutdown: None,
            wakers: Wakers { driver: Waker::noop().clone(), recv: None, send: None, round: None },
            handles: 0,
            broadcast_unwritten: false,
            broken: false,
            read_closed: false,
            done: false,
            drop_hook: Self::close_on_drop,
            metrics: crate::metrics::ConnMetrics::new(proto_role),
        };
        pump.proto.handle_timeout(Instant::now().into_std());
        if !pump.read.buf.is_empty() {
            // Frames the peer pipelined behind its handshake.
            pump.metrics.bytes_in(pump.read.buf.len());
            pump.receive_buffered();
        }
        pump
    }

    /// Closes with 1001 when the server shuts down.
    pub(crate) fn on_shutdown(&mut self, shutdown: Shutdown) {
        self.shutdown = Some(shutdown);
    }

    /// Dropped before the transport was finished: queue a 1000 close frame and write what the
    /// socket takes right now. Best effort: the driver normally finishes the closing handshake.
    fn close_on_drop(&mut self) {
        if self.done {
            return;
        }
        let _ = self.proto.close(CloseCode::NORMAL, "");
        let mut cx = Context::from_waker(Waker::noop());
        let _ = self.poll_write_out(&mut cx);
        let _ = Pin::new(&mut self.io).poll_shutdown(&mut cx);
    }

    // ---- the pump ----

    /// Drives the connection: timers, output, input, until the transport is finished (`Ready`).
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(round) = &self.wakers.round {
            round.rewake.store(false, Relaxed);
            round.fresh.store(true, Relaxed);
        }
        if self.done {
            return Poll::Ready(());
        }
        if !self.wakers.driver.will_wake(cx.waker()) {
            self.wakers.driver = cx.waker().clone();
            self.sleep_registered = false;
            if let Some(shutdown) = &mut self.shutdown {
                shutdown.forget_waker();
            }
        }
        let queued = self.queued();
        loop {
            self.poll_timers(cx);
            if let Poll::Ready(Err(e)) = self.poll_write_out(cx) {
                self.lost(e);
            }
            if self.proto.should_close_transport() || self.broken {
                if self.proto.wants_write() && !self.broken && !self.proto.closing_timed_out() {
                    // The last frames go out first (the close timer bounds the wait).
                    break;
                }
                let shut = Pin::new(&mut self.io).poll_shutdown(cx);
                // A broken transport gets one try, no wait: a TLS stream whose peer hung up
                // without `close_notify` can still tell it so, as a plain socket's FIN does.
                if !self.broken && shut.is_pending() && !self.shutdown_overdue(cx) {
                    return Poll::Pending;
                }
                self.finish();
                return Poll::Ready(());
            }
            if !self.should_read() {
                break;
            }
            match self.read.poll_read(&mut self.io, cx) {
                Poll::Pending => {
                    if self.arm_idle_release() {
                        self.poll_timers(cx);
                    }
                    break;
                }
                Poll::Ready(Ok(0)) => {
                    self.read_closed = true;
                    self.proto.receive_eof();
                    // Output still unwritten gets close_timeout (a peer may stop reading).
                    self.deadlines_changed = true;
                }
                Poll::Ready(Ok(n)) => {
                    self.metrics.bytes_in(n);
                    let before = self.queued();
                    self.receive_buffered();
                    self.read.learn(n);
                    if self.queued() > before {
                        // Let the application take these before reading on: the messages it
                        // answered and let go of free the read buffer for reuse in place, and
                        // its replies go out in one write. Another round follows at once.
                        self.again(cx);
                        break;
                    }
                }
                Poll::Ready(Err(e)) => self.lost(e),
            }
        }
        self.wake_app_if_ready(queued);
        Poll::Pending
    }

    /// Asks for another round of the driver right after this one (and after the application,
    /// when both share the task).
    fn again(&mut self, cx: &Context<'_>) {
        if let Some(round) = &self.wakers.round {
            round.ask_rewake();
        } else {
            cx.waker().wake_by_ref();
        }
    }

    /// Whether to read now: not after end of file, not while the peer leaves our output unread,
    /// and not while `max_queue` messages wait
    /// (unless this end is closing: then the peer's close frame must get through, and messages
    /// beyond the limit are dropped).
    fn should_read(&mut self) -> bool {
        if self.read_closed {
            return false;
        }
        if self.buffered() > self.write_limit.high {
            // The peer does not read what we send: stop reading from it too (pongs and close
            // replies would only pile up), until it does.
            return false;
        }
        let Some((high, low)) = self.queue_limit else { return true };
        if self.proto.state() != State::Open {
            return true;
        }
        let queued = self.queued();
        if self.paused && queued <= low {
            self.paused = false;
        } else if !self.paused && queued >= high {
            self.paused = true;
        }
        !self.paused
    }

    fn receive_buffered(&mut self) {
        if let Some(idle) = &mut self.idle {
            idle.traffic = true;
        }
        let control = self.proto.control_frames_received();
        if let Err(e) = self.proto.receive(&mut self.read.buf) {
            tracing::debug!(error = %e, code = %e.close_code(), "failing the connection");
            self.deadlines_changed = true;
        }
        if self.proto.control_frames_received() != control {
            // A pong (a round trip to measure) or a close frame (the closing timer).
            self.deadlines_changed = true;
        }
        // Messages wait in the protocol's queue for the application; pings, pongs and close
        // frames are taken now (they would otherwise fill the queue of a handler that never
        // reads), and so are messages while pongs are awaited or the connection is closing.
        if self.proto.control_frames_received() != control
            || !self.pings.is_empty()
            || self.proto.state() == State::Closing
        {
            self.take_events();
        }
    }

    /// Received messages and control frames not yet taken by the application.
    fn queued(&self) -> usize {
        self.messages.len() + self.proto.pending_events()
    }

    /// Takes the protocol's events ahead of the application: pongs resolve pings, messages
    /// wait in `messages` (beyond `max_queue` while closing, they are dropped).
    fn take_events(&mut self) {
        while let Some(event) = self.proto.next_event() {
            match event {
                Event::Message(message) => {
                    let over = self.queue_limit.is_some_and(|(high, _)| self.messages.len() >= high);
                    if over && self.proto.state() == State::Closing {
                        tracing::debug!("closing: message beyond max_queue dropped");
                    } else {
                        self.messages.push_back(message);
                    }
                }
                event => self.on_control(event),
            }
        }
    }

    fn on_control(&mut self, event: Event) {
        match event {
            Event::Pong(payload) => self.on_pong(&payload),
            Event::Close(frame) => tracing::debug!(?frame, "close frame received"),
            _ => {} // pings: answered by the protocol
        }
    }

    fn on_pong(&mut self, payload: &[u8]) {
        // A pong answers its ping and every earlier one (RFC 6455 §5.5.3).
        let Some(at) = self.pings.iter().position(|p| p.payload[..] == *payload) else { return };
        let now = Instant::now();
        for ping in self.pings.drain(..=at) {
            self.latency = now - ping.sent;
            let _ = ping.done.send(Ok(self.latency));
        }
    }

    /// The transport failed (reset, broken pipe): the connection is closed abnormally (1006).
    fn lost(&mut self, e: std::io::Error) {
        tracing::debug!(error = %e, "transport lost");
        self.broken = true;
        self.proto.receive_eof();
    }

    /// The transport is finished with: tell everyone waiting.
    fn finish(&mut self) {
        self.done = true;
        self.messages.shrink_to_fit();
        // Pending pings never get their pong: their waiters see the end.
        for ping in std::mem::take(&mut self.pings) {
            let _ = ping.done.send(Err(self.closed_error()));
        }
        self.read.release();
        self.metrics.finished(self.proto.close_code());
        self.wake_all();
        // The cause says why a connection this end failed (a keepalive timeout, say), which the
        // code alone does not once the peer has gone without answering the close frame.
        let cause = self.proto.closure().and_then(|c| c.cause.as_ref());
        tracing::debug!(code = ?self.proto.close_code(), ?cause, "connection closed");
    }

    fn wake_all(&mut self) {
        let (recv, send) = (self.wakers.recv.take(), self.wakers.send.take());
        self.wakers.wake_app(recv);
        self.wakers.wake_app(send);
    }

    /// After a round of the driver: wakes a reader that has messages now, a writer that has room.
    fn wake_app_if_ready(&mut self, queued_before: usize) {
        if self.queued() > queued_before || self.proto.state() != State::Open {
            let recv = self.wakers.recv.take();
            self.wakers.wake_app(recv);
        }
        if self.buffered() <= self.write_limit.low || self.proto.state() == State::Closed {
            let send = self.wakers.send.take();
            self.wakers.wake_app(send);
        }
    }

    // ---- time ----

    /// Runs the one timer: the protocol's deadlines (keepalive, closing timeout), the idle
    /// release and the server's shutdown.
    fn poll_timers(&mut self, cx: &mut Context<'_>) {
        if let Some(shutdown) = &mut self.shutdown {
            if shutdown.poll(cx).is_ready() {
                self.shutdown = None;
                if self.proto.state() == State::Open {
                    tracing::debug!("server shutting down: closing with 1001");
                    let _ = self.start_close(CloseCode::GOING_AWAY, "server shutting down");
                }
            }
        }
        let quiet = self.sleep_at.is_none() || (self.sleep_registered && !self.sleep.is_elapsed());
        if quiet && !self.deadlines_changed {
            return;
        }
        // Each deadline handled moves the next one on; the bound only guards against a bug
        // turning into a busy loop.
        for _ in 0..16 {
            self.deadlines_changed = false;
            let next = self.next_deadline();
            if next != self.sleep_at {
                self.sleep_at = next;
                self.sleep_registered = false;
                if let Some(at) = next {
                    self.sleep.as_mut().reset(at);
                }
            }
            if next.is_none() || (self.sleep_registered && !self.sleep.is_elapsed()) {
                return;
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                self.sleep_registered = true;
                return;
            }
            self.on_deadline(Instant::now());
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let proto = self.proto.poll_timeout().map(Instant::from_std);
        let idle = self.idle.as_ref().and_then(|i| i.deadline);
        [proto, idle, self.shutdown_by].into_iter().flatten().min()
    }

    /// The transport's shutdown is pending: whether to give up on it now, because the closing
    /// handshake timed out already or the shutdown took `close_timeout` by itself. Otherwise
    /// the timer wakes the driver when it should.
    fn shutdown_overdue(&mut self, cx: &mut Context<'_>) -> bool {
        if self.proto.closing_timed_out() {
            return true;
        }
        // `close_timeout` bounds the transport's shutdown too.
        let Some(limit) = self.proto.config().close_timeout else { return false };
        let now = Instant::now();
        let by = *self.shutdown_by.get_or_insert_with(|| {
            self.deadlines_changed = true;
            now + limit
        });
        if by <= now {
            tracing::debug!("the transport's shutdown timed out: closing it as it is");
            return true;
        }
        self.poll_timers(cx);
        false
    }

    fn on_deadline(&mut self, now: Instant) {
        self.deadlines_changed = true;
        self.proto.handle_timeout(now.into_std());
        if let Some(latency) = self.proto.latency() {
            if self.keepalive_latency != Some(latency) {
                self.keepalive_latency = Some(latency);
                self.latency = latency;
            }
        }
        let Some(idle) = &mut self.idle else { return };
        if idle.deadline.is_some_and(|at| at <= now) {
            idle.deadline = None;
            if idle.traffic {
                // Busy since the deadline was set: wait a whole quiet period again.
                idle.traffic = false;
                idle.deadline = Some(now + idle.after);
            } else if self.proto.state() == State::Open {
                tracing::trace!("idle: releasing buffers and extension state");
                self.read.release();
                if self.messages.is_empty() {
                    self.messages = VecDeque::new();
                }
                self.proto.release_memory();
            }
        }
    }

    /// Starts the idle release deadline, unless it runs or nothing happened since the last
    /// release; returns whether it started.
    fn arm_idle_release(&mut self) -> bool {
        let Some(idle) = &mut self.idle else { return false };
        if idle.deadline.is_some() || !idle.traffic {
            return false;
        }
        idle.traffic = false;
        idle.deadline = Some(Instant::now() + idle.after);
        self.deadlines_changed = true;
        true
    }

    // ---- writing ----

    fn buffered(&self) -> usize {
        self.proto.pending_output()
    }

    /// Writes out everything queued, registering the driver's waker with the transport.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.broken {
            return Poll::Ready(Ok(()));
        }
        let mut wrote = false;
        while self.proto.wants_write() {
            ready!(self.poll_write_some(cx))?;
            wrote = true;
        }
        if wrote {
            self.answering = false;
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
        self.metrics.bytes_out(n);
        Poll::Ready(Ok(()))
    }

    /// Writes from the application's side, with the driver's waker: whoever polls, the driver
    /// hears when the transport has room again.
    fn write_inline(&mut self) {
        if !self.proto.wants_write() {
            return;
        }
        // Borrowed out for the write (a clone would touch the waker's reference count).
        let waker = std::mem::replace(&mut self.wakers.driver, Waker::noop().clone());
        let result = self.poll_write_out(&mut Context::from_waker(&waker));
        self.wakers.driver = waker;
        if let Poll::Ready(Err(e)) = result {
            self.lost(e);
            self.wakers.driver.wake_by_ref();
        }
    }

    // ---- the application's side ----

    /// The next message; after the end, the error that says how the connection ended.
    #[inline]
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message>> {
        if let Some(message) = self.next_message() {
            return Poll::Ready(Ok(self.taken(message, cx)));
        }
        if self.wakers.same_task(cx).is_some() {
            // The driver shares this task: run it here (as a read on demand) rather than in
            // another round of the task's loop.
            let _ = self.poll_drive(cx);
            if let Some(message) = self.next_message() {
                return Poll::Ready(Ok(self.taken(message, cx)));
            }
        }
        if self.done {
            return Poll::Ready(Err(self.closed_error()));
        }
        if !self.wakers.recv.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.wakers.recv = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// A message goes to the application: it is answering a burst now, and reading resumes
    /// once the queue is down to its low mark.
    #[inline]
    fn taken(&mut self, message: Message, cx: &Context<'_>) -> Message {
        self.answering = true;
        self.metrics.message_in();
        if self.paused && self.queue_limit.is_some_and(|(_, low)| self.queued() <= low) {
            self.wake_driver(cx);
        }
        message
    }

    /// The next received message, from those taken ahead of the application, then from the
    /// protocol's queue.
    #[inline]
    fn next_message(&mut self) -> Option<Message> {
        if let Some(message) = self.messages.pop_front() {
            return Some(message);
        }
        while let Some(event) = self.proto.next_event() {
            match event {
                Event::Message(message) => return Some(message),
                event => self.on_control(event),
            }
        }
        None
    }

    /// Whether a frame can be queued without waiting (the write buffer is under its high mark).
    #[inline]
    pub(crate) fn has_write_room(&self) -> bool {
        self.buffered() <= self.write_limit.high
    }

    /// Ready when the write buffer is under its high water mark (or drained to the low one).
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.has_write_room() {
            return Poll::Ready(Ok(()));
        }
        if self.done || self.proto.state() == State::Closed {
            return Poll::Ready(Err(self.closed_error()));
        }
        self.write_inline();
        if self.buffered() <= self.write_limit.low {
            return Poll::Ready(Ok(()));
        }
        // The peer does not read. It does not answer pings either: keepalive (then
        // `close_timeout`, as the close frame cannot be written) ends the connection, and the
        // driver wakes this sender with the error.
        self.wakers.send = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Queues one data frame and writes it, unless the application is still answering a burst
    /// of received messages: their replies then go out together, in one write.
    #[inline]
    pub(crate) fn send(&mut self, frame: Frame, cx: &Context<'_>) -> Result<()> {
        self.queue(frame)?;
        if self.queued() == 0 || !self.answering {
            self.write_inline();
        } else if !self.wakers.round.as_ref().is_some_and(|r| r.rewake_asked()) {
            // Written when the burst is answered, or by the driver if the application turns
            // to something else first.
            self.wake_driver(cx);
        }
        Ok(())
    }

    /// Queues one data frame, to be written at the next flush.
    #[inline]
    pub(crate) fn queue(&mut self, frame: Frame) -> Result<()> {
        if let Some(idle) = &mut self.idle {
            idle.traffic = true;
        }
        let fin = frame.fin;
        match self.proto.send_frame(frame) {
            Ok(()) => {
                if fin {
                    self.metrics.message_out();
                }
                Ok(())
            }
            Err(SendError::Closed) => Err(self.closed_error()),
            Err(e) => Err(Error::Send(e)),
        }
    }

    /// Queues a broadcast message unless more than `limit` bytes (default: the write limit's high
    /// mark) wait to be written already: the broadcaster never waits for a connection. A full
    /// connection is skipped, or closed with `close`. The frame is not written here: the
    /// broadcaster's [`write_broadcasts`](Self::write_broadcasts) writes it once the broadcasting
    /// task yields, with whatever other broadcasts came meanwhile, in one write.
    pub(crate) fn offer(
        &mut self,
        message: &PreparedMessage,
        limit: Option<usize>,
        close: Option<CloseCode>,
    ) -> Offered {
        if self.done || self.proto.state() != State::Open {
            return Offered::Closed;
        }
        let limit = limit.unwrap_or(self.write_limit.high);
        if self.buffered() > limit && self.broadcast_unwritten {
            // Full of frames never tried yet: the socket may well take them now.
            self.write_broadcasts();
        }
        if self.buffered() > limit {
            let Some(code) = close else { return Offered::Dropped };
            tracing::debug!(%code, "broadcast: closing a connection that does not keep up");
            let _ = self.start_close(code, "");
            self.write_inline();
            self.wakers.driver.wake_by_ref();
            return Offered::Closed;
        }
        if self.proto.send_prepared(message).is_err() {
            return Offered::Closed;
        }
        self.metrics.message_out();
        if let Some(idle) = &mut self.idle {
            idle.traffic = true;
        }
        if std::mem::replace(&mut self.broadcast_unwritten, true) {
            Offered::Delivered
        } else {
            Offered::DeliveredFirst
        }
    }

    /// Writes the broadcast frames queued since the last call (and anything else queued), as
    /// far as the socket takes them; the driver, registered with the socket, writes the rest.
    pub(crate) fn write_broadcasts(&mut self) {
        self.broadcast_unwritten = false;
        self.write_inline();
    }

    /// Writes everything queued; ready once it is written.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.write_inline();
        if !self.proto.wants_write() {
            return Poll::Ready(Ok(()));
        }
        if self.done || self.broken {
            return Poll::Ready(Err(self.closed_error()));
        }
        self.wakers.send = Some(cx.waker().clone());
        Poll::Pending
    }

    pub(crate) fn ping(
        &mut self,
        payload: Option<Bytes>,
        cx: &Context<'_>,
    ) -> Result<oneshot::Receiver<Result<Duration>>> {
        let payload = payload.unwrap_or_else(|| {
            self.ping_counter = self.ping_counter.wrapping_add(1);
            Bytes::copy_from_slice(&[b"app-".as_slice(), &self.ping_counter.to_be_bytes()].concat())
        });
        if self.pings.iter().any(|p| p.payload == payload) {
            return Err(Error::DuplicatePing);
        }
        self.send_control(|proto| proto.send_ping(payload.clone()), cx)?;
        let (done, wait) = oneshot::channel();
        self.pings.push_back(PendingPing { payload, sent: Instant::now(), done });
        Ok(wait)
    }

    pub(crate) fn pong(&mut self, payload: Bytes, cx: &Context<'_>) -> Result<()> {
        self.send_control(|proto| proto.send_pong(payload), cx)
    }

    fn send_control(
        &mut self,
        send: impl FnOnce(&mut Connection) -> std::result::Result<(), SendError>,
        cx: &Context<'_>,
    ) -> Result<()> {
        match send(&mut self.proto) {
            Ok(()) => {}
            Err(SendError::Closed) => return Err(self.closed_error()),
            Err(e) => return Err(Error::Send(e)),
        }
        self.write_inline();
        if self.proto.wants_write() {
            self.wake_driver(cx);
        }
        Ok(())
    }

    /// Starts the closing handshake (once) and waits until the driver has finished the
    /// transport, up to `close_timeout`. Messages that arrived stay queued for a reader.
    pub(crate) fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        code: CloseCode,
        reason: &str,
    ) -> Poll<Result<()>> {
        match self.start_close(code, reason) {
            Ok(()) => {
                self.write_inline();
                // The driver starts the closing timer.
                self.wake_driver(cx);
            }
            Err(SendError::Closed) => {} // closing or closed already
            Err(e) => return Poll::Ready(Err(Error::Send(e))),
        }
        if self.done {
            return Poll::Ready(match self.closed_error() {
                Error::Closed(_) => Ok(()),
                e => Err(e),
            });
        }
        self.wakers.send = Some(cx.waker().clone());
        Poll::Pending
    }
}
