//! Admission in the accept loop: `max_connections` and `max_handshakes_per_ip`. A connection
//! beyond either limit is answered `503 Service Unavailable` at once, by a small task that does
//! not read the request, and closed; the handshake and its buffers are never set up.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ws_handshake::{Rejection, ServerConfig};

use crate::forwarded::ProxySettings;
use crate::transport::Transport;

/// The limits of one server, and the handshakes in progress per client address.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    max_connections: Option<usize>,
    max_handshakes_per_ip: Option<usize>,
    /// Connections from these addresses are not counted per address: behind a proxy every
    /// client shares the proxy's address.
    proxies: ProxySettings,
    in_progress: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_connections` connections are open or opening.
    Full,
    /// The peer's address has `max_handshakes_per_ip` handshakes in progress.
    Handshakes,
}

/// A handshake in progress, counted against its address until dropped.
#[derive(Debug)]
pub(crate) struct HandshakeSlot {
    ip: IpAddr,
    in_progress: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut map = self.in_progress.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    pub(crate) fn new(
        max_connections: Option<usize>,
        max_handshakes_per_ip: Option<usize>,
        proxies: ProxySettings,
    ) -> Self {
        Self { max_connections, max_handshakes_per_ip, proxies, in_progress: Arc::default() }
    }

    /// Admits a connection from `peer` while `open` connections (handshakes included) are
    /// served, taking a handshake slot for its address when that is limited.
    pub(crate) fn admit(
        &self,
        peer: Option<SocketAddr>,
        open: usize,
    ) -> Result<Option<HandshakeSlot>, Refusal> {
        if self.max_connections.is_some_and(|max| open >= max) {
            return Err(Refusal::Full);
        }
        let (Some(max), Some(peer)) = (self.max_handshakes_per_ip, peer) else {
            return Ok(None);
        };
        let ip = peer.ip().to_canonical();
        if self.proxies.proxy_protocol || self.proxies.is_trusted(ip) {
            return Ok(None);
        }
        let mut map = self.in_progress.lock().unwrap_or_else(PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return Err(Refusal::Handshakes);
        }
        *n += 1;
        Ok(Some(HandshakeSlot { ip, in_progress: self.in_progress.clone() }))
    }
}

/// How long a refused connection is kept to take in the request, so that closing it does not
/// reset the connection (and destroy the 503) while request bytes are unread.
const LINGER: Duration = Duration::from_secs(1);

/// Answers a refused connection with 503 on a task of its own: written without reading the
/// request (a server may answer early), then the write side is shut and what the client sent
/// is read and discarded for up to [`LINGER`] or 16 KiB. Without `answer` (a TLS connection,
/// whose client expects a TLS handshake first, not worth its cost here) it is just closed.
pub(crate) fn refuse(mut stream: Transport, refusal: Refusal, handshake: &ServerConfig, answer: bool) {
    if !answer {
        tracing::debug!(peer = ?stream.peer_addr(), ?refusal, "TLS connection refused: closed");
        return;
    }
    let text = match refusal {
        Refusal::Full => "Too many connections, try again later",
        Refusal::Handshakes => "Too many handshakes in progress from this address, try again later",
    };
    let rejection = handshake.respond(
        Rejection::new(StatusCode::SERVICE_UNAVAILABLE, text).into_response(),
        Some(SystemTime::now()),
    );
    crate::metrics::handshake_rejected(rejection.status());
    let mut out = Vec::with_capacity(256);
    rejection.write_response(&mut out);
    tracing::debug!(peer = ?stream.peer_addr(), ?refusal, "connection refused with 503");
    tokio::spawn(async move {
        let linger = async {
            stream.write_all(&out).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 1024];
            let mut total = 0;
            while total < 16 * 1024 {
                match stream.read(&mut sink).await? {
                    0 => break,
                    n => total += n,
                }
            }
            std::io::Result::Ok(())
        };
        let _ = tokio::time::timeout(LINGER, linger).await;
    });
}
