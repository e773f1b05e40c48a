//! `WebSocket`: a connection the application reads and writes.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use ws_proto::{CloseCode, Closure, Extension, Frame, Message, OpCode, Role, State};

use crate::config::Config;
use crate::driver::{Driver, Handle, open};
use crate::error::{ConnectionClosed, Error, Result};
use crate::info::ConnectionInfo;
use crate::split::{ReadHalf, WriteHalf};

/// Resolves with the round-trip time when the pong for a ping arrives (the driver sees it
/// whether or not anything reads), or with the error that ended the connection first.
#[derive(Debug)]
pub struct PongWaiter(pub(crate) oneshot::Receiver<Result<Duration>>);

impl Future for PongWaiter {
    type Output = Result<Duration>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|result| {
            result.unwrap_or_else(|_| {
                // The connection went away without a word (its driver was dropped).
                Err(Error::Closed(ConnectionClosed {
                    code: CloseCode::ABNORMAL,
                    reason: String::new(),
                    ok: false,
                }))
            })
        })
    }
}

/// A WebSocket connection over any `AsyncRead + AsyncWrite` (TCP, Unix sockets, TLS, an
/// upgraded hyper connection).
///
/// Read with [`recv`](Self::recv) or as a [`Stream`]; write with [`send`](Self::send) or as a
/// [`Sink`]; [`split`](Self::split) it to read and write from different tasks. Its
/// [`Driver`] runs the connection whether or not anything reads: pings are answered, keepalive
/// runs and close frames are answered while the application only sends, or waits on something
/// else. Received messages wait in a queue of up to `max_queue`; beyond that the connection
/// stops reading from the peer (which then meets TCP backpressure, and gets no pongs either).
///
/// Dropping the last handle of an open connection closes it with 1000.
///
/// ```no_run
/// # async fn demo() -> Result<(), ws_tokio::Error> {
/// let mut ws = ws_tokio::connect("ws://127.0.0.1:8765").await?;
/// ws.send("Hello world!").await?;
/// let reply = ws.recv().await?;
/// println!("{reply:?}");
/// ws.close(ws_tokio::CloseCode::NORMAL, "").await?;
/// # Ok(()) }
/// ```
pub struct WebSocket<S = crate::Transport> {
    handle: Handle<S>,
    info: Arc<ConnectionInfo>,
    stream_done: bool,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket").field("info", &self.info).finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wraps a transport whose opening handshake is already done (e.g. by hyper or your own
    /// HTTP server), with the negotiated extensions. `leftover` holds bytes read past the
    /// handshake. The [`Driver`] must be polled (spawn it) for the connection to run.
    pub fn from_upgraded(
        io: S,
        role: Role,
        extensions: Vec<Box<dyn Extension>>,
        leftover: BytesMut,
        config: Config,
    ) -> (Self, Driver<S>) {
        let info = ConnectionInfo::new(&extensions);
        open(io, role, extensions, leftover, &config, info, None)
    }

    /// The next message. After the connection closes, an [`Error::Closed`] says how
    /// (`ok` for a normal closure), or the error that ended it; the same every time.
    pub fn recv(&mut self) -> Recv<'_, S> {
        Recv { handle: &self.handle }
    }

    /// Sends a message (text for `&str`/`String`, binary for `Vec<u8>`/`Bytes`). Waits while
    /// the write buffer is over its high water mark.
    pub fn send(&mut self, message: impl Into<Message>) -> SendMessage<'_, S> {
        SendMessage { handle: &self.handle, frame: Some(message_frame(message.into())) }
    }

    /// Sends a message that must not be compressed (e.g. it carries a secret that must not
    /// share a compression context with attacker-influenced data).
    pub async fn send_uncompressed(&mut self, message: impl Into<Message>) -> Result<()> {
        send_uncompressed(&self.handle, message.into()).await
    }

    /// Sends one message in fragments, one frame per fragment: text if the fragments are
    /// text, binary if they are binary (as Python `websockets`' `send` of an iterable). Nothing
    /// is sent for no fragments. Fragments that mix text and binary are
    /// [`Error::MixedFragments`]; if part of the message went out already, the connection is
    /// closed with 1011, as it cannot be finished.
    ///
    /// ```no_run
    /// # async fn demo(mut ws: ws_tokio::WebSocket) -> ws_tokio::Result<()> {
    /// ws.send_fragmented(["Hello, ", "world", "!"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_fragmented<I, M>(&mut self, fragments: I) -> Result<()>
    where
        I: IntoIterator<Item = M>,
        M: Into<Message>,
    {
        send_fragmented(&self.handle, fragments).await
    }

    /// Writes out everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| self.handle.lock().poll_flush(cx)).await
    }

    /// Sends a ping (`None`: a payload of our choosing) and returns a future that resolves
    /// with the round-trip time when its pong arrives, whether or not anything reads.
    pub async fn ping(&mut self, payload: Option<Bytes>) -> Result<PongWaiter> {
        ping(&self.handle, payload).await
    }

    /// Sends an unsolicited pong (a one-way heartbeat).
    pub async fn pong(&mut self, payload: Bytes) -> Result<()> {
        pong(&self.handle, payload).await
    }

    /// Performs the closing handshake: sends a close frame and waits for the driver to finish
    /// the transport, up to `close_timeout`. Messages that arrived meanwhile stay readable.
    /// Closing a closed connection does nothing; an invalid code or a reason over 123 bytes is
    /// an error.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        close(&self.handle, code, reason).await
    }

    /// Splits into a read half and a write half, for use from different tasks.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        let read = Handle::new(self.handle.shared.clone());
        (ReadHalf::new(read, self.info.clone()), WriteHalf::new(self.handle, self.info))
    }
}

impl<S> WebSocket<S> {
    pub(crate) fn new(handle: Handle<S>, info: ConnectionInfo) -> Self {
        Self { handle, info: Arc::new(info), stream_done: false }
    }

    pub(crate) fn handle(&self) -> &Handle<S> {
        &self.handle
    }

    /// What the handshake established: id, addresses, request, response, subprotocol, extensions.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// A process-unique id.
    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// The negotiated subprotocol.
    pub fn subprotocol(&self) -> Option<&str> {
        self.info.subprotocol()
    }

    /// The protocol state.
    pub fn state(&self) -> State {
        self.handle.lock().proto().state()
    }

    /// How the connection ended, once closed: both close frames, and what ended it otherwise.
    pub fn closure(&self) -> Option<Closure> {
        self.handle.lock().proto().closure().cloned()
    }

    /// The close code, once closed: the peer's, 1005 if it gave none, 1006 if it sent no close frame.
    pub fn close_code(&self) -> Option<CloseCode> {
        self.handle.lock().proto().close_code()
    }

    /// The peer's close reason.
    pub fn close_reason(&self) -> Option<String> {
        self.handle.lock().proto().close_reason().map(str::to_owned)
    }

    /// The latest round-trip time measured by a ping (keepalive or application).
    pub fn latency(&self) -> Duration {
        self.handle.lock().latency()
    }
}

pub(crate) async fn send_uncompressed<S: AsyncRead + AsyncWrite + Unpin>(
    handle: &Handle<S>,
    message: Message,
) -> Result<()> {
    let mut frame = message_frame(message);
    frame.no_compress = true;
    SendMessage { handle, frame: Some(frame) }.await
}

pub(crate) async fn send_fragmented<S, I, M>(handle: &Handle<S>, fragments: I) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    I: IntoIterator<Item = M>,
    M: Into<Message>,
{
    let mut fragments = fragments.into_iter().peekable();
    let mut kind = None;
    while let Some(fragment) = fragments.next() {
        let frame = message_frame(fragment.into());
        let fin = fragments.peek().is_none();
        let opcode = match kind {
            None => {
                kind = Some(frame.opcode);
                frame.opcode
            }
            Some(first) if first == frame.opcode => OpCode::Continuation,
            Some(_) => {
                // Half a message is out and cannot be finished.
                let _ = close(handle, CloseCode::INTERNAL_ERROR, "").await;
                return Err(Error::MixedFragments);
            }
        };
        SendMessage { handle, frame: Some(Frame::new(opcode, frame.payload, fin)) }.await?;
    }
    Ok(())
}

pub(crate) async fn ping<S: AsyncRead + AsyncWrite + Unpin>(
    handle: &Handle<S>,
    payload: Option<Bytes>,
) -> Result<PongWaiter> {
    let mut payload = Some(payload);
    poll_fn(|cx| Poll::Ready(handle.lock().ping(payload.take().flatten(), cx))).await.map(PongWaiter)
}

pub(crate) async fn pong<S: AsyncRead + AsyncWrite + Unpin>(
    handle: &Handle<S>,
    payload: Bytes,
) -> Result<()> {
    poll_fn(|cx| Poll::Ready(handle.lock().pong(payload.clone(), cx))).await
}

pub(crate) async fn close<S: AsyncRead + AsyncWrite + Unpin>(
    handle: &Handle<S>,
    code: CloseCode,
    reason: &str,
) -> Result<()> {
    poll_fn(|cx| handle.lock().poll_close(cx, code, reason)).await
}

/// The future of [`WebSocket::recv`]: resolves with the next message.
///
/// Cancel-safe: dropping it before it completes loses no message.
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a, S> {
    pub(crate) handle: &'a Handle<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Recv<'_, S> {
    type Output = Result<Message>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.handle.lock().poll_recv(cx)
    }
}

/// The future of [`WebSocket::send`]: resolves once the message is queued (and, unless the
/// application is still answering a burst of received messages, written).
///
/// Dropped while it waits for room in the write buffer, it drops the message unsent.
#[must_use = "futures do nothing unless polled"]
pub struct SendMessage<'a, S> {
    pub(crate) handle: &'a Handle<S>,
    pub(crate) frame: Option<Frame>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for SendMessage<'_, S> {
    type Output = Result<()>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut pump = this.handle.lock();
        // The checks are inline: in an echo loop most sends neither wait nor write.
        if this.frame.is_some() && !pump.has_write_room() {
            std::task::ready!(pump.poll_ready(cx))?;
        }
        let Some(frame) = this.frame.take() else { return Poll::Ready(Ok(())) };
        Poll::Ready(pump.send(frame, cx))
    }
}

pub(crate) fn message_frame(message: Message) -> Frame {
    match message {
        Message::Text(text) => Frame::new(OpCode::Text, text.into_bytes(), true),
        Message::Binary(data) => Frame::new(OpCode::Binary, data, true),
    }
}

/// Messages until the connection closes; a normal closure ends the stream, any other end
/// yields its error once. (The `Stream` of [`WebSocket`] and of [`ReadHalf`].)
pub(crate) fn poll_next<S: AsyncRead + AsyncWrite + Unpin>(
    handle: &Handle<S>,
    done: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Message>>> {
    if *done {
        return Poll::Ready(None);
    }
    match std::task::ready!(handle.lock().poll_recv(cx)) {
        Ok(message) => Poll::Ready(Some(Ok(message))),
        Err(e) => {
            *done = true;
            Poll::Ready(if e.is_normal_closure() { None } else { Some(Err(e)) })
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        poll_next(&this.handle, &mut this.stream_done, cx)
    }
}

/// The `Sink` of [`WebSocket`] and of [`WriteHalf`].
pub(crate) mod sink {
    use super::*;

    pub(crate) fn poll_ready<S: AsyncRead + AsyncWrite + Unpin>(
        h: &Handle<S>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<()>> {
        h.lock().poll_ready(cx)
    }

    pub(crate) fn start_send<S: AsyncRead + AsyncWrite + Unpin>(
        h: &Handle<S>,
        message: Message,
    ) -> Result<()> {
        // Written at the next flush, as the `Sink` contract has it.
        h.lock().queue(message_frame(message))
    }

    pub(crate) fn poll_flush<S: AsyncRead + AsyncWrite + Unpin>(
        h: &Handle<S>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<()>> {
        h.lock().poll_flush(cx)
    }

    pub(crate) fn poll_close<S: AsyncRead + AsyncWrite + Unpin>(
        h: &Handle<S>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<()>> {
        h.lock().poll_close(cx, CloseCode::NORMAL, "")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        sink::poll_ready(&self.handle, cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<()> {
        sink::start_send(&self.handle, message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        sink::poll_flush(&self.handle, cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        sink::poll_close(&self.handle, cx)
    }
}
