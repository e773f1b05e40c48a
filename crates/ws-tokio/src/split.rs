//! Read and write halves, usable from different tasks.
//!
//! Both halves drive one [`Core`] behind a mutex held only for the length of a poll. The
//! transport keeps one waker per direction, and either half may poll either direction (the
//! reader writes pongs, the writer waits on a full buffer), so every poll uses a waker that
//! wakes both halves: a wakeup is never lost, at the price of an occasional spurious one.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use ws_proto::{CloseCode, Frame, Message};

use crate::core::Core;
use crate::error::Result;
use crate::socket::{ConnectionInfo, PongWaiter, message_frame};

const READER: usize = 0;
const WRITER: usize = 1;

/// Wakes whichever halves are waiting.
#[derive(Default)]
struct BothWakers([Mutex<Option<Waker>>; 2]);

impl Wake for BothWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        for slot in &self.0 {
            if let Some(waker) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                waker.wake();
            }
        }
    }
}

struct Shared<S> {
    core: Mutex<Core<S>>,
    wakers: Arc<BothWakers>,
    waker: Waker,
}

impl<S> Shared<S> {
    /// Locks the core and records `cx`'s waker for half `which`.
    fn with<T>(
        &self,
        which: usize,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Core<S>, &mut Context<'_>) -> T,
    ) -> T {
        {
            let mut slot = self.wakers.0[which].lock().unwrap_or_else(|e| e.into_inner());
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
        }
        let mut core: MutexGuard<'_, Core<S>> = self.core.lock().unwrap_or_else(|e| e.into_inner());
        let mut both = Context::from_waker(&self.waker);
        f(&mut core, &mut both)
    }
}

pub(crate) fn split<S>(core: Core<S>, info: Arc<ConnectionInfo>) -> (ReadHalf<S>, WriteHalf<S>) {
    let wakers = Arc::new(BothWakers::default());
    let shared = Arc::new(Shared { core: Mutex::new(core), waker: Waker::from(wakers.clone()), wakers });
    (ReadHalf { shared: shared.clone(), info: info.clone(), done: false }, WriteHalf { shared, info })
}

/// The read half of a [`WebSocket`](crate::WebSocket): receives messages (and so drives pongs,
/// close replies and keepalive).
pub struct ReadHalf<S> {
    shared: Arc<Shared<S>>,
    info: Arc<ConnectionInfo>,
    done: bool,
}

/// The write half of a [`WebSocket`](crate::WebSocket).
pub struct WriteHalf<S> {
    shared: Arc<Shared<S>>,
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

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// The next message (see [`WebSocket::recv`](crate::WebSocket::recv)).
    pub async fn recv(&mut self) -> Result<Message> {
        poll_fn(|cx| self.shared.with(READER, cx, Core::poll_recv)).await
    }

    /// What the handshake established.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// Sends a message (see [`WebSocket::send`](crate::WebSocket::send)).
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<()> {
        self.send_frame(message_frame(message.into())).await
    }

    /// Sends a message that must not be compressed.
    pub async fn send_uncompressed(&mut self, message: impl Into<Message>) -> Result<()> {
        let mut frame = message_frame(message.into());
        frame.no_compress = true;
        self.send_frame(frame).await
    }

    async fn send_frame(&mut self, frame: Frame) -> Result<()> {
        poll_fn(|cx| self.shared.with(WRITER, cx, Core::poll_ready)).await?;
        let mut frame = Some(frame);
        poll_fn(|cx| {
            self.shared.with(WRITER, cx, |core, cx| {
                let sent = frame.take().map_or(Ok(()), |f| core.start_send(f));
                core.write_opportunistically(cx);
                Poll::Ready(sent)
            })
        })
        .await
    }

    /// Writes out everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| self.shared.with(WRITER, cx, Core::poll_flush)).await
    }

    /// Sends a ping; the returned future resolves when the read half sees its pong.
    pub async fn ping(&mut self, payload: Option<Bytes>) -> Result<PongWaiter> {
        let waiter = {
            let mut core = self.shared.core.lock().unwrap_or_else(|e| e.into_inner());
            core.ping(payload)?
        };
        self.flush().await?;
        Ok(PongWaiter(waiter))
    }

    /// Performs the closing handshake (see [`WebSocket::close`](crate::WebSocket::close)).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        poll_fn(|cx| self.shared.with(WRITER, cx, |core, cx| core.poll_close(cx, code, reason))).await
    }

    /// What the handshake established.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.shared.with(READER, cx, Core::poll_recv) {
            Poll::Ready(Ok(message)) => Poll::Ready(Some(Ok(message))),
            Poll::Ready(Err(e)) => {
                self.done = true;
                if e.is_normal_closure() { Poll::Ready(None) } else { Poll::Ready(Some(Err(e))) }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = crate::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared.with(WRITER, cx, Core::poll_ready)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<()> {
        let mut core = self.shared.core.lock().unwrap_or_else(|e| e.into_inner());
        core.start_send(message_frame(message))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared.with(WRITER, cx, Core::poll_flush)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared.with(WRITER, cx, |core, cx| core.poll_close(cx, CloseCode::NORMAL, ""))
    }
}
