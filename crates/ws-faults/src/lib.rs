//! A fault-injecting TCP relay, for testing a WebSocket client and server over a bad network
//! on loopback (`cargo xtask faults`, `crates/ws-faults/tests/faults.rs`). Not published.
//!
//! [`Relay::start`] listens on a free loopback port and forwards every connection it accepts to
//! `upstream`, applying a [`Fault`] to each direction: delay and jitter, writes cut into 1-byte
//! segments, a stall of the whole link, a reset (RST) or a half-close (FIN one way) after a
//! number of bytes, or a peer that vanishes (nothing forwarded any more, nothing closed).
//!
//! Byte counts (`after`) start behind the HTTP head (the first blank line) of each direction,
//! so that a fault lands on WebSocket frames, e.g. in the middle of the first one; with TLS,
//! from the first byte ([`Faults::count_from_start`]). The relay knows nothing else of
//! WebSocket.
//!
//! Loss and reordering of packets cannot be injected here: the relay sits above TCP, which
//! retransmits and reorders before any byte reaches it.
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

/// What the relay reads at once, and how many reads may wait in a direction: the relay holds at
/// most this much per direction, beyond it the sender meets TCP backpressure.
const CHUNK: usize = 16 * 1024;
const CHUNKS_IN_FLIGHT: usize = 8;

/// What the relay does to one direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fault {
    /// Forward bytes as they come.
    #[default]
    None,
    /// Hold each read for `base` plus a uniformly random extra of up to `jitter`, never letting
    /// one overtake the one before (TCP delivers in order).
    Delay {
        /// The least delay.
        base: Duration,
        /// The most added at random.
        jitter: Duration,
    },
    /// Write one byte at a time (TCP_NODELAY is on, so each is its own segment), yielding to
    /// the runtime between bytes so that the reader gets a chance to see each.
    ByteSegments,
    /// After `after` bytes, the whole link (both directions) stops forwarding for `duration`,
    /// sockets open, then resumes with nothing lost.
    Stall {
        /// Bytes forwarded first (counted after the HTTP head).
        after: u64,
        /// How long the link stalls.
        duration: Duration,
    },
    /// After `after` bytes, both sockets are closed with `SO_LINGER` 0: each peer gets a reset.
    Reset {
        /// Bytes forwarded first (counted after the HTTP head).
        after: u64,
    },
    /// After `after` bytes, this direction is shut down (FIN to its receiver) and whatever its
    /// sender writes later is discarded; the other direction goes on.
    HalfClose {
        /// Bytes forwarded first (counted after the HTTP head).
        after: u64,
    },
    /// After `after` bytes, nothing is forwarded any more in either direction and neither
    /// socket is closed (until [`Relay::shutdown`]): the peer vanished without a FIN.
    Vanish {
        /// Bytes forwarded first (counted after the HTTP head).
        after: u64,
    },
}

impl Fault {
    /// The byte count that triggers the fault, for the faults that have one.
    fn after(self) -> Option<u64> {
        match self {
            Self::Stall { after, .. }
            | Self::Reset { after }
            | Self::HalfClose { after }
            | Self::Vanish { after } => Some(after),
            Self::None | Self::Delay { .. } | Self::ByteSegments => None,
        }
    }
}

/// The faults of both directions of every relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// Applied to what the client sends.
    pub client_to_server: Fault,
    /// Applied to what the server sends.
    pub server_to_client: Fault,
    /// Count the bytes that trigger a fault from the first one, not from behind the HTTP head:
    /// for TLS, whose heads the relay cannot see.
    pub count_from_start: bool,
}

/// The state of one relayed connection, shared by its two directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Flowing,
    StalledUntil(tokio::time::Instant),
    Vanished,
    Reset,
}

/// A running relay; [`Relay::shutdown`] stops it and closes every socket it holds.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    conns: Arc<Mutex<JoinSet<()>>>,
    fired: watch::Receiver<Option<Instant>>,
}

impl Relay {
    /// Listens on a free port of 127.0.0.1 and relays each connection to `upstream` with
    /// `faults`.
    pub async fn start(upstream: SocketAddr, faults: Faults) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let conns = Arc::new(Mutex::new(JoinSet::new()));
        let (fired_tx, fired) = watch::channel(None);
        let accept = tokio::spawn(accept_loop(listener, upstream, faults, conns.clone(), fired_tx));
        Ok(Self { addr, accept, conns, fired })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// When a triggered fault ([`Fault::Stall`], `Reset`, `HalfClose`, `Vanish`) first fired.
    pub fn fired_at(&self) -> Option<Instant> {
        *self.fired.borrow()
    }

    /// Waits until a triggered fault fires and returns when it did.
    pub async fn fired(&self) -> Instant {
        let mut fired = self.fired.clone();
        match fired.wait_for(Option::is_some).await {
            Ok(at) => at.unwrap_or_else(Instant::now),
            // The relay stopped before: it never will.
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops accepting, aborts every relayed connection and waits until their tasks are gone
    /// and their sockets closed.
    pub async fn shutdown(self) {
        self.accept.abort();
        let _ = self.accept.await;
        let mut conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(PoisonError::into_inner));
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    faults: Faults,
    conns: Arc<Mutex<JoinSet<()>>>,
    fired: watch::Sender<Option<Instant>>,
) {
    let fired = Arc::new(fired);
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors, most likely: try again in a moment rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let fired = fired.clone();
        let mut conns = conns.lock().unwrap_or_else(PoisonError::into_inner);
        while conns.try_join_next().is_some() {}
        conns.spawn(async move {
            match TcpStream::connect(upstream).await {
                Ok(server) => relay(client, server, faults, &fired).await,
                Err(_) => {
                    // Upstream is down: the client gets a reset, as if it had connected there.
                    let _ = client.set_zero_linger();
                }
            }
        });
    }
}

/// Relays one connection until both directions have ended, or the link is reset.
async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    faults: Faults,
    fired: &watch::Sender<Option<Instant>>,
) {
    // The relay must not add Nagle's delay of its own, and 1-byte writes must be segments.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (link, mut state) = watch::channel(Link::Flowing);
    let reset = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let head = !faults.count_from_start;
        let up = pipe(client_read, server_write, faults.client_to_server, head, &link, fired);
        let down = pipe(server_read, client_write, faults.server_to_client, head, &link, fired);
        tokio::select! {
            _ = async { tokio::join!(up, down) } => false,
            _ = state.wait_for(|s| *s == Link::Reset) => true,
        }
    };
    if reset {
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
}

/// Bytes read, and when they may be written (`None` data: end of file).
struct Chunk {
    due: Option<tokio::time::Instant>,
    data: Option<Vec<u8>>,
}

/// One direction: a reader and a writer joined by a short queue, so that a delay holds bytes
/// in flight (latency) instead of slowing the reads (bandwidth).
async fn pipe(
    src: ReadHalf<'_>,
    dst: WriteHalf<'_>,
    fault: Fault,
    head: bool,
    link: &watch::Sender<Link>,
    fired: &watch::Sender<Option<Instant>>,
) {
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::join!(read_side(src, tx, fault, link), write_side(rx, dst, fault, head, link, fired));
}

async fn read_side(mut src: ReadHalf<'_>, tx: mpsc::Sender<Chunk>, fault: Fault, link: &watch::Sender<Link>) {
    let mut last_due = None;
    loop {
        let mut buf = vec![0; CHUNK];
        let data = match src.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(buf)
            }
            Err(_) => {
                // A peer reset: pass it on to the other, as a link would.
                set(link, Link::Reset);
                return;
            }
        };
        let due = match fault {
            Fault::Delay { base, jitter } => {
                let extra = jitter.mul_f64(fastrand::f64());
                let due = (tokio::time::Instant::now() + base + extra)
                    .max(last_due.unwrap_or_else(tokio::time::Instant::now));
                last_due = Some(due);
                Some(due)
            }
            _ => None,
        };
        let eof = data.is_none();
        if tx.send(Chunk { due, data }).await.is_err() || eof {
            return;
        }
    }
}

async fn write_side(
    mut rx: mpsc::Receiver<Chunk>,
    mut dst: WriteHalf<'_>,
    fault: Fault,
    head: bool,
    link: &watch::Sender<Link>,
    fired: &watch::Sender<Option<Instant>>,
) {
    let mut head = HeadScan { done: !head, ..HeadScan::default() };
    let mut forwarded: u64 = 0;
    let mut trigger = fault.after();
    while let Some(chunk) = rx.recv().await {
        if let Some(due) = chunk.due {
            tokio::time::sleep_until(due).await;
        }
        if !gate(link).await {
            return;
        }
        let Some(mut data) = chunk.data else {
            // End of file: pass the FIN on.
            let _ = dst.shutdown().await;
            return;
        };
        let head_len = head.scan(&data);
        let body = (data.len() - head_len) as u64;
        let mut rest = None;
        if let Some(after) = trigger {
            if forwarded + body > after {
                let cut = head_len + usize::try_from(after - forwarded).unwrap_or(usize::MAX);
                rest = Some(data.split_off(cut));
                trigger = None;
            }
        }
        if write(&mut dst, &data, fault).await.is_err() {
            set(link, Link::Reset);
            return;
        }
        forwarded += (data.len() - head_len) as u64;
        let Some(rest) = rest else { continue };
        fired.send_if_modified(|at| {
            let first = at.is_none();
            if first {
                *at = Some(Instant::now());
            }
            first
        });
        match fault {
            Fault::Stall { duration, .. } => {
                set(link, Link::StalledUntil(tokio::time::Instant::now() + duration));
                if !gate(link).await || write(&mut dst, &rest, fault).await.is_err() {
                    set(link, Link::Reset);
                    return;
                }
                forwarded += rest.len() as u64;
            }
            Fault::Reset { .. } => {
                set(link, Link::Reset);
                return;
            }
            Fault::HalfClose { .. } => {
                let _ = dst.shutdown().await;
                // Drain what the sender still writes, so that its end of file still ends this
                // direction.
                while let Some(Chunk { data: Some(_), .. }) = rx.recv().await {}
                return;
            }
            Fault::Vanish { .. } => {
                set(link, Link::Vanished);
                std::future::pending::<()>().await;
            }
            Fault::None | Fault::Delay { .. } | Fault::ByteSegments => {}
        }
    }
}

/// Changes the link's state, except that a vanished link stays so: its peers must see nothing,
/// not even a reset.
fn set(link: &watch::Sender<Link>, to: Link) {
    link.send_if_modified(|state| {
        if *state == Link::Vanished || *state == to {
            return false;
        }
        *state = to;
        true
    });
}

/// Waits while the link is stalled, forever once it vanished; false once it was reset.
async fn gate(link: &watch::Sender<Link>) -> bool {
    let mut state = link.subscribe();
    loop {
        let now = *state.borrow_and_update();
        match now {
            Link::Flowing => return true,
            Link::Reset => return false,
            Link::Vanished => std::future::pending::<()>().await,
            Link::StalledUntil(until) => {
                tokio::time::sleep_until(until).await;
                link.send_if_modified(|state| {
                    let over = *state == now;
                    if over {
                        *state = Link::Flowing;
                    }
                    over
                });
            }
        }
    }
}

async fn write(dst: &mut WriteHalf<'_>, data: &[u8], fault: Fault) -> io::Result<()> {
    if fault != Fault::ByteSegments {
        return dst.write_all(data).await;
    }
    for byte in data {
        dst.write_all(std::slice::from_ref(byte)).await?;
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// Finds the end of an HTTP head (the first CRLF CRLF) across reads.
#[derive(Default)]
struct HeadScan {
    last: [u8; 4],
    done: bool,
}

impl HeadScan {
    /// How many bytes at the start of `data` still belong to the head.
    fn scan(&mut self, data: &[u8]) -> usize {
        if self.done {
            return 0;
        }
        for (i, &byte) in data.iter().enumerate() {
            self.last = [self.last[1], self.last[2], self.last[3], byte];
            if &self.last == b"\r\n\r\n" {
                self.done = true;
                return i + 1;
            }
        }
        data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::HeadScan;

    #[test]
    fn head_scan_across_reads() {
        let mut scan = HeadScan::default();
        assert_eq!(scan.scan(b"GET / HTTP/1.1\r\nHost: x\r"), 24);
        assert_eq!(scan.scan(b"\n\r"), 2);
        assert_eq!(scan.scan(b"\nabc"), 1);
        assert_eq!(scan.scan(b"def"), 0);
    }
}
