//! Read and write halves, usable from different tasks.
//!
//! Both are handles on the one connection its driver runs: the read half takes messages from
//! the queue, the write half queues frames. Neither has to be polled for the other to work.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use ws_proto::{CloseCode, Message};

use crate::driver::Handle;
use crate::error::Result;
use crate::info::ConnectionInfo;
use crate::socket::{self, PongWaiter, Recv, SendMessage, message_frame, sink};

/// The read half of a [`WebSocket`](crate::WebSocket): receives messages.
pub struct ReadHalf<S = crate::Transport> {
    handle: Handle<S>,
    info: Arc<ConnectionInfo>,
    done: bool,
}

/// The write half of a [`WebSocket`](crate::WebSocket).
pub struct WriteHalf<S = crate::Transport> {
    handle: Handle<S>,
    info: Arc<ConnectionInfo>,
}

impl<S> std::fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHalf").field("id", &self.info.id()).finish_non_exhaustive()
    }
}

impl<S> std::fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHalf").field("id", &self.info.id()).finish_non_exhaustive()
    }
}

impl<S> ReadHalf<S> {
    pub(crate) fn new(handle: Handle<S>, info: Arc<ConnectionInfo>) -> Self {
        Self { handle, info, done: false }
    }

    pub(crate) fn handle(&self) -> &Handle<S> {
        &self.handle
    }

    /// What the handshake established.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// The next message (see [`WebSocket::recv`](crate::WebSocket::recv)).
    pub fn recv(&mut self) -> Recv<'_, S> {
        Recv { handle: &self.handle }
    }
}

impl<S> WriteHalf<S> {
    pub(crate) fn new(handle: Handle<S>, info: Arc<ConnectionInfo>) -> Self {
        Self { handle, info }
    }

    pub(crate) fn handle(&self) -> &Handle<S> {
        &self.handle
    }

    /// What the handshake established.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// Sends a message (see [`WebSocket::send`](crate::WebSocket::send)).
    pub fn send(&mut self, message: impl Into<Message>) -> SendMessage<'_, S> {
        SendMessage { handle: &self.handle, frame: Some(message_frame(message.into())) }
    }

    /// Sends a message that must not be compressed.
    pub async fn send_uncompressed(&mut self, message: impl Into<Message>) -> Result<()> {
        socket::send_uncompressed(&self.handle, message.into()).await
    }

    /// Sends one message in fragments (see
    /// [`WebSocket::send_fragmented`](crate::WebSocket::send_fragmented)).
    pub async fn send_fragmented<I, M>(&mut self, fragments: I) -> Result<()>
    where
        I: IntoIterator<Item = M>,
        M: Into<Message>,
    {
        socket::send_fragmented(&self.handle, fragments).await
    }

    /// Writes out everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| self.handle.lock().poll_flush(cx)).await
    }

    /// Sends a ping; the returned future resolves when its pong arrives.
    pub async fn ping(&mut self, payload: Option<Bytes>) -> Result<PongWaiter> {
        socket::ping(&self.handle, payload).await
    }

    /// Sends an unsolicited pong (a one-way heartbeat).
    pub async fn pong(&mut self, payload: Bytes) -> Result<()> {
        socket::pong(&self.handle, payload).await
    }

    /// Performs the closing handshake (see [`WebSocket::close`](crate::WebSocket::close)).
    /// Messages the read half has not taken yet stay readable.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        socket::close(&self.handle, code, reason).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        socket::poll_next(&this.handle, &mut this.done, cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = crate::Error;

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
