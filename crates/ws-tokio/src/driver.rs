//! The driver, the future that runs a connection, and the handles the application holds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use ws_proto::{Connection, Extension, Role};

use crate::config::Config;
use crate::info::ConnectionInfo;
use crate::pump::Pump;
use crate::server::Shutdown;
use crate::socket::WebSocket;

/// The connection's state, shared by its driver and the application's handles. The lock is
/// held for one poll at a time; in `serve`, the handler and the driver take turns in one task,
/// so it is never contended there.
pub(crate) type Shared<S> = Arc<Mutex<Pump<S>>>;

/// Runs a connection: answers pings, sends keepalive pings, reads incoming messages into the
/// queue (up to `max_queue`), writes out what the application sends, runs the closing
/// handshake and its timeout, and closes the transport. Resolves when the transport is closed.
///
/// `connect()` and `serve()` run it for you (on a spawned task, or in the connection's own
/// task); the `*_with_driver` constructors hand it to callers who poll it themselves, e.g. on a
/// runtime without `tokio::spawn` or for a transport that is not `Send`. A connection whose
/// driver is not polled does nothing: no message arrives and nothing is written.
#[must_use = "a connection does nothing unless its driver is polled"]
pub struct Driver<S = crate::Transport> {
    shared: Shared<S>,
}

impl<S> std::fmt::Debug for Driver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Driver<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        lock(&self.shared).poll_drive(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    /// Runs `handler` on `ws` and drives the connection in the same task, as [`serve`](crate::serve)
    /// does for each connection: when the handler returns, a connection still open is closed
    /// with 1000; with 1011 when it returns an error or panics (the panic then goes on). Resolves
    /// once the transport is closed. For connections opened elsewhere, e.g. by
    /// [`Upgrade::open`](crate::Upgrade::open) after a hyper upgrade.
    pub async fn serve<H, F>(self, ws: WebSocket<S>, handler: H)
    where
        H: FnOnce(WebSocket<S>) -> F,
        F: Future,
        F::Output: crate::HandlerResult,
    {
        crate::server::serve_connection(ws, self, handler).await;
    }
}

impl<S> Driver<S> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Pump<S>> {
        lock(&self.shared)
    }

    /// A handle that keeps the connection from closing when the application's last one goes.
    pub(crate) fn handle(&self) -> Handle<S> {
        Handle::new(self.shared.clone())
    }
}

pub(crate) fn lock<S>(shared: &Shared<S>) -> MutexGuard<'_, Pump<S>> {
    // Without poisoning: a panic while the lock was held (in a handler's poll) leaves the state
    // as consistent as any other interrupted poll, and the connection still closes.
    shared.lock()
}

/// One application handle (a `WebSocket` or one of its halves). When the last one is dropped,
/// an open connection starts its closing handshake (1000) and the driver finishes it.
pub(crate) struct Handle<S> {
    pub(crate) shared: Shared<S>,
}

impl<S> Handle<S> {
    pub(crate) fn new(shared: Shared<S>) -> Self {
        lock(&shared).add_handle();
        Self { shared }
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, Pump<S>> {
        lock(&self.shared)
    }
}

impl<S> Drop for Handle<S> {
    fn drop(&mut self) {
        lock(&self.shared).drop_handle();
    }
}

/// After an opening handshake, client or server: the connection, its driver, and what the
/// handshake established.
pub(crate) fn open<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    role: Role,
    extensions: Vec<Box<dyn Extension>>,
    leftover: BytesMut,
    config: &Config,
    info: ConnectionInfo,
    shutdown: Option<Shutdown>,
) -> (WebSocket<S>, Driver<S>) {
    let proto = Connection::new(role, config.proto_config()).with_extensions(extensions);
    let mut pump = Pump::new(io, proto, leftover, config);
    if let Some(shutdown) = shutdown {
        pump.on_shutdown(shutdown);
    }
    tracing::debug!(id = info.id(), ?role, extensions = ?info.extensions(), "connection open");
    let shared = Arc::new(Mutex::new(pump));
    (WebSocket::new(Handle::new(shared.clone()), info), Driver { shared })
}

/// Runs the driver on its own task, as Python's connection runs on its event loop.
pub(crate) fn spawn<S>(driver: Driver<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(driver);
}
