//! `WebSocket`: a connection the application reads and writes.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use ws_proto::{CloseCode, Connection, Extension, Frame, Message, OpCode, Role, State};

use crate::core::Core;
use crate::error::{ConnectionClosed, Error, Result};
use crate::options::Options;
use crate::split::{ReadHalf, WriteHalf, split};

/// What is known of a connection once its opening handshake is done.
///
/// The handshake request and response are kept as their HTTP heads (a few hundred bytes) and
/// parsed into `http` types the first time they are asked for, which would otherwise cost a
/// few kilobytes per connection for something most applications never look at.
#[derive(Debug)]
pub struct ConnectionInfo {
    pub(crate) id: u64,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) remote_addr: Option<SocketAddr>,
    request: Head<http::Request<()>>,
    response: Head<http::Response<()>>,
    pub(crate) subprotocol: Option<String>,
    pub(crate) extensions: Vec<String>,
}

/// An HTTP head as bytes, parsed on first use.
#[derive(Debug, Default)]
struct Head<T> {
    bytes: Bytes,
    /// Boxed: most connections never parse, and the `http` types are large.
    parsed: OnceLock<Option<Box<T>>>,
}

impl<T> Head<T> {
    fn get(&self, parse: impl FnOnce(&Bytes) -> Option<T>) -> Option<&T> {
        if self.bytes.is_empty() {
            return None;
        }
        self.parsed.get_or_init(|| parse(&self.bytes).map(Box::new)).as_deref()
    }
}

/// The head `write` produces, in an allocation of its exact size.
fn head_bytes(write: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut out = Vec::with_capacity(256);
    write(&mut out);
    Bytes::copy_from_slice(&out)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl ConnectionInfo {
    pub(crate) fn new(extensions: &[Box<dyn Extension>]) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            local_addr: None,
            remote_addr: None,
            request: Head::default(),
            response: Head::default(),
            subprotocol: None,
            extensions: extensions.iter().map(|e| e.name().to_owned()).collect(),
        }
    }

    /// Keeps the handshake request and response.
    pub(crate) fn set_handshake(&mut self, request: &http::Request<()>, response: &http::Response<()>) {
        self.request.bytes = head_bytes(|out| ws_handshake::write_request_head(request, out));
        self.response.bytes = head_bytes(|out| ws_handshake::write_response_head(response, out));
    }

    /// A process-unique connection id (for logs).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The local address, for TCP connections.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The peer's address, for TCP connections.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The opening handshake request (header names in lower case).
    pub fn request(&self) -> Option<&http::Request<()>> {
        self.request.get(ws_handshake::parse_request_head)
    }

    /// The opening handshake response (header names in lower case).
    pub fn response(&self) -> Option<&http::Response<()>> {
        self.response.get(ws_handshake::parse_response_head)
    }

    /// The negotiated subprotocol.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The names of the negotiated extensions, in order.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }
}

/// Resolves when the pong for a ping arrives, with the round-trip time. Something must be
/// reading the connection (`recv`, the `Stream`, or the read half) for the pong to be seen.
#[derive(Debug)]
pub struct PongWaiter(pub(crate) oneshot::Receiver<Duration>);

impl Future for PongWaiter {
    type Output = Result<Duration>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map_err(|_| {
            Error::Closed(ConnectionClosed { code: CloseCode::ABNORMAL, reason: String::new(), ok: false })
        })
    }
}

/// A WebSocket connection over any `AsyncRead + AsyncWrite` (TCP, Unix sockets, TLS, an
/// upgraded hyper connection).
///
/// Read with [`recv`](Self::recv) or as a [`Stream`]; write with [`send`](Self::send) or as a
/// [`Sink`]; [`split`](Self::split) it to read and write from different tasks. Reading drives
/// the connection: pongs, close replies and keepalive pings happen while something reads.
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
pub struct WebSocket<S> {
    core: Core<S>,
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
    /// handshake.
    pub fn from_upgraded(
        io: S,
        role: Role,
        extensions: Vec<Box<dyn Extension>>,
        leftover: BytesMut,
        options: Options,
    ) -> Self {
        let info = ConnectionInfo::new(&extensions);
        let proto = Connection::new(role, options.proto_config()).with_extensions(extensions);
        Self::from_parts(Core::new(io, proto, leftover, options), info)
    }

    pub(crate) fn from_parts(core: Core<S>, info: ConnectionInfo) -> Self {
        tracing::debug!(id = info.id, role = ?core.proto().role(), extensions = ?info.extensions, "connection open");
        Self { core, info: Arc::new(info), stream_done: false }
    }

    /// The next message. After the connection closes, an [`Error::Closed`] says how
    /// (`ok` for a normal closure), or the error that ended it.
    pub fn recv(&mut self) -> Recv<'_, S> {
        Recv { core: &mut self.core }
    }

    /// Sends a message (text for `&str`/`String`, binary for `Vec<u8>`/`Bytes`). Waits while
    /// the write buffer is over its high water mark.
    pub fn send(&mut self, message: impl Into<Message>) -> SendMessage<'_, S> {
        self.send_frame(message_frame(message.into()))
    }

    /// Sends a message that must not be compressed (e.g. it carries a secret that must not
    /// share a compression context with attacker-influenced data).
    pub async fn send_uncompressed(&mut self, message: impl Into<Message>) -> Result<()> {
        let mut frame = message_frame(message.into());
        frame.no_compress = true;
        self.send_frame(frame).await
    }

    /// Sends one message in fragments, one frame per chunk (`text`: the chunks are UTF-8
    /// pieces of a text message; a code point may straddle two chunks).
    pub async fn send_fragmented<I, B>(&mut self, text: bool, chunks: I) -> Result<()>
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let mut opcode = if text { OpCode::Text } else { OpCode::Binary };
        let mut chunks = chunks.into_iter().peekable();
        if chunks.peek().is_none() {
            return self.send_frame(Frame::new(opcode, Bytes::new(), true)).await;
        }
        while let Some(chunk) = chunks.next() {
            let fin = chunks.peek().is_none();
            self.send_frame(Frame::new(opcode, chunk.into(), fin)).await?;
            opcode = OpCode::Continuation;
        }
        Ok(())
    }

    fn send_frame(&mut self, frame: Frame) -> SendMessage<'_, S> {
        SendMessage { core: &mut self.core, frame: Some(frame) }
    }

    /// Writes out everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| self.core.poll_flush(cx)).await
    }

    /// Sends a ping (`None`: a payload of our choosing) and returns a future that resolves
    /// with the round-trip time when its pong arrives.
    pub async fn ping(&mut self, payload: Option<Bytes>) -> Result<PongWaiter> {
        let waiter = self.core.ping(payload)?;
        self.flush().await?;
        Ok(PongWaiter(waiter))
    }

    /// Sends an unsolicited pong (a one-way heartbeat).
    pub async fn pong(&mut self, payload: Bytes) -> Result<()> {
        self.core.send_pong(payload)?;
        self.flush().await
    }

    /// Performs the closing handshake: sends a close frame, waits for the peer's (dropping
    /// messages that arrive meanwhile) and for the transport to close, up to `close_timeout`.
    /// Closing a closed connection does nothing.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        poll_fn(|cx| self.core.poll_close(cx, code, reason)).await
    }

    /// Splits into a read half and a write half, for use from different tasks.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        split(self.core, self.info)
    }
}

impl<S> WebSocket<S> {
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
        self.core.proto().state()
    }

    /// The close code, once closed: the peer's, 1005 if it gave none, 1006 if it sent no close frame.
    pub fn close_code(&self) -> Option<CloseCode> {
        self.core.proto().close_code()
    }

    /// The peer's close reason.
    pub fn close_reason(&self) -> Option<&str> {
        self.core.proto().close_reason()
    }

    /// The latest round-trip time measured by a ping (keepalive or application).
    pub fn latency(&self) -> Duration {
        self.core.latency()
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        self.core.io()
    }
}

/// The future of [`WebSocket::recv`]: resolves with the next message.
///
/// Cancel-safe: dropping it before it completes loses no message.
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a, S> {
    core: &'a mut Core<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Recv<'_, S> {
    type Output = Result<Message>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Messages of a burst already read are handed out without a trip through the poll loop.
        if let Some(message) = self.core.next_message() {
            return Poll::Ready(Ok(message));
        }
        self.core.poll_recv(cx)
    }
}

/// The future of [`WebSocket::send`]: resolves once the message is queued (and, when no received
/// message waits for an answer, written).
///
/// Dropped while it waits for room in the write buffer, it drops the message unsent.
#[must_use = "futures do nothing unless polled"]
pub struct SendMessage<'a, S> {
    core: &'a mut Core<S>,
    frame: Option<Frame>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for SendMessage<'_, S> {
    type Output = Result<()>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // The checks are inline: in an echo loop most sends neither wait nor write.
        if this.frame.is_some() && !this.core.has_write_room() {
            std::task::ready!(this.core.poll_ready(cx))?;
        }
        let Some(frame) = this.frame.take() else { return Poll::Ready(Ok(())) };
        this.core.start_send(frame)?;
        this.core.write_opportunistically(cx);
        Poll::Ready(Ok(()))
    }
}

pub(crate) fn message_frame(message: Message) -> Frame {
    match message {
        Message::Text(text) => Frame::new(OpCode::Text, text.into_bytes(), true),
        Message::Binary(data) => Frame::new(OpCode::Binary, data, true),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message>;

    /// Messages until the connection closes; a normal closure ends the stream, any other end
    /// yields its error once.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.stream_done {
            return Poll::Ready(None);
        }
        match self.core.poll_recv(cx) {
            Poll::Ready(Ok(message)) => Poll::Ready(Some(Ok(message))),
            Poll::Ready(Err(e)) => {
                self.stream_done = true;
                if e.is_normal_closure() { Poll::Ready(None) } else { Poll::Ready(Some(Err(e))) }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.core.poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<()> {
        self.core.start_send(message_frame(message))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.core.poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.core.poll_close(cx, CloseCode::NORMAL, "")
    }
}
