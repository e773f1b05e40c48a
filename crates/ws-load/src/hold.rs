//! Many idle connections held open, for the scale part of `cargo xtask bench`: how fast a server
//! accepts them, what they cost it while idle, and whether it stays responsive meanwhile.
//!
//! [`run_hold`] opens [`HoldOptions::conns`] connections, each bound to one of
//! [`HoldOptions::sources`] in turn (a client address has about 28,000 ephemeral ports per
//! server address, so 100,000 connections need several, spread over 127.0.0.0/8 on loopback),
//! a few hundred handshakes at a time. Then each echoes one message (so that a compressed
//! connection has really compressed), and all are held until stdin closes. Held connections
//! answer the server's pings, so keepalive does not close them, and any connection the server
//! drops is counted rather than ignored.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::future::Future;
use std::io::{self, BufRead as _};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, Semaphore, oneshot, watch};

use crate::{CpuTime, EchoReader, Error, Negotiated, Options, Plan, build_plan, handshake, percentile};

/// How many connections to hold, and from where.
#[derive(Debug, Clone)]
pub struct HoldOptions {
    /// Connections to open.
    pub conns: usize,
    /// Local addresses the connections are bound to, in turn; empty: the system's choice.
    pub sources: Vec<IpAddr>,
    /// Handshakes (and later echoes) in progress at once.
    pub concurrency: usize,
    /// Echo one message of [`Options::size`] bytes on each connection once all are open.
    pub echo: bool,
}

impl Default for HoldOptions {
    fn default() -> Self {
        Self { conns: 1, sources: Vec::new(), concurrency: 256, echo: true }
    }
}

/// The opening phase, reported once every handshake has finished.
#[derive(Debug, Clone)]
pub struct Opened {
    /// Connections open.
    pub conns: usize,
    /// Connections that could not be opened, and the first reason.
    pub failed: usize,
    /// The first failure.
    pub first_error: Option<String>,
    /// Seconds from the first connect to the last handshake.
    pub secs: f64,
    /// Handshake latency (connect to 101 read), median and 99th percentile, in microseconds.
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// This process's CPU time (user, system seconds) over the phase.
    pub cpu: Option<[f64; 2]>,
}

/// The echo phase, reported when every held connection has echoed (or failed).
#[derive(Debug, Clone)]
pub struct Echoed {
    /// Connections that echoed their message.
    pub echoed: usize,
    /// Connections lost so far (closed by the server, reset, or a wrong echo).
    pub lost: usize,
    /// Seconds the phase took.
    pub secs: f64,
}

/// The end of the hold, when stdin has closed.
#[derive(Debug, Clone)]
pub struct Held {
    /// Connections still open at the end.
    pub held: usize,
    /// Connections lost while held.
    pub lost: usize,
    /// Pings answered.
    pub pongs: u64,
    /// Why the first lost connection was lost.
    pub first_error: Option<String>,
}

fn json_str(s: &Option<String>) -> String {
    match s {
        None => "null".into(),
        Some(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if c.is_control() => {
                        let _ = write!(out, "\\u{:04x}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
    }
}

impl Opened {
    /// One JSON object, for the line the bench driver reads.
    pub fn json(&self) -> String {
        let cpu = self.cpu.map_or("null".into(), |[u, s]| format!("[{u:.3},{s:.3}]"));
        format!(
            "{{\"conns\":{},\"failed\":{},\"first_error\":{},\"secs\":{:.3},\"p50_us\":{:.1},\"p99_us\":{:.1},\"cpu\":{cpu}}}",
            self.conns,
            self.failed,
            json_str(&self.first_error),
            self.secs,
            self.p50_us,
            self.p99_us
        )
    }
}

impl Echoed {
    /// One JSON object, for the line the bench driver reads.
    pub fn json(&self) -> String {
        format!("{{\"echoed\":{},\"lost\":{},\"secs\":{:.3}}}", self.echoed, self.lost, self.secs)
    }
}

impl Held {
    /// One JSON object, for the line the bench driver reads.
    pub fn json(&self) -> String {
        format!(
            "{{\"held\":{},\"lost\":{},\"pongs\":{},\"first_error\":{}}}",
            self.held,
            self.lost,
            self.pongs,
            json_str(&self.first_error)
        )
    }
}

/// What the held connections share (single-threaded runtime).
struct Shared {
    plan: Rc<Plan>,
    /// Limits the echoes in progress: each needs an inflater for a moment.
    echo_slots: Semaphore,
    /// Connections done with their echo (echoed or lost).
    echo_done: Cell<usize>,
    echoed: Cell<usize>,
    lost: Cell<usize>,
    pongs: Cell<u64>,
    first_error: RefCell<Option<String>>,
    progress: Notify,
    /// The opening phase: handshakes done, their latencies (100 ns units), and failures.
    opened: Cell<usize>,
    latencies: RefCell<Vec<u32>>,
    open_failed: Cell<usize>,
    open_error: RefCell<Option<String>>,
}

impl Shared {
    fn lose(&self, why: String) {
        self.lost.set(self.lost.get() + 1);
        self.first_error.borrow_mut().get_or_insert(why);
        self.progress.notify_one();
    }
}

/// Opens the connections, calls `opened` after the handshakes, starts the echoes when
/// `echo_when` completes, calls `echoed` after them, then holds the connections until `until`
/// completes (`bench/loadgen` takes both from [`stdin_signals`], so that several load generators
/// echo only once all have opened). Must run inside a [`tokio::task::LocalSet`]
/// ([`crate::block_on`]).
pub async fn run_hold(
    o: &Options,
    h: &HoldOptions,
    opened: impl FnOnce(&Opened),
    echoed: impl FnOnce(&Echoed),
    echo_when: impl Future<Output = ()>,
    until: impl Future<Output = ()>,
) -> Result<Held, Error> {
    let target: SocketAddr = tokio::net::lookup_host(&o.addr)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Error::Connect { addr: o.addr.clone(), source: io::Error::other("no address") })?;
    // The offer made before issue 22 (each message compressed alone): the frames are built
    // before any connection is open.
    let o = Rc::new(Options { inflight: 1, client_no_context_takeover: true, ..o.clone() });
    let shared = Rc::new(Shared {
        plan: Rc::new(build_plan(&o, &Negotiated::assumed(&o))),
        echo_slots: Semaphore::new(h.concurrency.max(1)),
        echo_done: Cell::new(0),
        echoed: Cell::new(0),
        lost: Cell::new(0),
        pongs: Cell::new(0),
        first_error: RefCell::new(None),
        progress: Notify::new(),
        opened: Cell::new(0),
        latencies: RefCell::new(Vec::with_capacity(h.conns)),
        open_failed: Cell::new(0),
        open_error: RefCell::new(None),
    });
    let (go, go_rx) = watch::channel(false);
    let handshakes = Rc::new(Semaphore::new(h.concurrency.max(1)));
    let cpu0 = CpuTime::of("self");
    let start = Instant::now();
    // Each task opens its connection and then holds it, reading from the moment its handshake
    // is done: the server's keepalive clock starts then, whatever the other handshakes do.
    let mut tasks = Vec::with_capacity(h.conns);
    for i in 0..h.conns {
        let source = (!h.sources.is_empty()).then(|| h.sources[i % h.sources.len()]);
        let (o, handshakes, shared, go_rx) = (o.clone(), handshakes.clone(), shared.clone(), go_rx.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let opened = {
                let Ok(_permit) = handshakes.acquire().await else { return };
                let t = Instant::now();
                open_from(&o, target, source).await.map(|c| (c, t.elapsed()))
            };
            match opened {
                Ok(((stream, neg, leftover), took)) => {
                    shared.latencies.borrow_mut().push((took.as_nanos() / 100).min(u32::MAX as u128) as u32);
                    shared.opened.set(shared.opened.get() + 1);
                    shared.progress.notify_one();
                    keep(stream, neg, leftover, shared, go_rx).await;
                }
                Err(e) => {
                    shared.open_failed.set(shared.open_failed.get() + 1);
                    shared.open_error.borrow_mut().get_or_insert(e);
                    shared.progress.notify_one();
                }
            }
        }));
    }
    while shared.opened.get() + shared.open_failed.get() < h.conns {
        shared.progress.notified().await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu1 = CpuTime::of("self");
    let conns = shared.opened.get();
    let mut latencies = std::mem::take(&mut *shared.latencies.borrow_mut());
    latencies.sort_unstable();
    opened(&Opened {
        conns,
        failed: shared.open_failed.get(),
        first_error: shared.open_error.borrow().clone(),
        secs,
        p50_us: percentile(&latencies, 0.5),
        p99_us: percentile(&latencies, 0.99),
        cpu: cpu0.zip(cpu1).map(|(a, b)| [b.user - a.user, b.system - a.system]),
    });
    drop(latencies);

    echo_when.await;
    let start = Instant::now();
    if h.echo {
        let _ = go.send(true);
        while shared.echo_done.get() < conns {
            shared.progress.notified().await;
        }
    }
    echoed(&Echoed {
        echoed: shared.echoed.get(),
        lost: shared.lost.get(),
        secs: start.elapsed().as_secs_f64(),
    });

    // The driver reads the server's RSS and runs a probe meanwhile.
    until.await;
    let lost = shared.lost.get();
    for t in &tasks {
        t.abort();
    }
    Ok(Held {
        held: conns - lost,
        lost,
        pongs: shared.pongs.get(),
        first_error: shared.first_error.borrow().clone(),
    })
}

/// Two futures on stdin, read by a thread: the first completes at the first line (or the end),
/// the second at the end (the bench driver writes a line to start the echoes, and closes stdin
/// to end the hold).
pub fn stdin_signals() -> (impl Future<Output = ()>, impl Future<Output = ()>) {
    let (line_tx, line_rx) = oneshot::channel::<()>();
    let (end_tx, end_rx) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut line_tx = Some(line_tx);
        for line in io::stdin().lock().lines() {
            if line.is_err() {
                break;
            }
            if let Some(tx) = line_tx.take() {
                let _ = tx.send(());
            }
        }
        // Dropping `line_tx` (no line came) completes the first future too.
        drop(line_tx);
        let _ = end_tx.send(());
    });
    (
        async move {
            let _ = line_rx.await;
        },
        async move {
            let _ = end_rx.await;
        },
    )
}

async fn open_from(
    o: &Options,
    target: SocketAddr,
    source: Option<IpAddr>,
) -> Result<(TcpStream, Negotiated, Vec<u8>), String> {
    let connect = async {
        let socket = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = socket.connect(target).await?;
        stream.set_nodelay(true)?;
        Ok::<_, io::Error>(stream)
    };
    let from = source.map_or(String::new(), |s| format!(" from {s}"));
    let mut stream = connect.await.map_err(|e| format!("connect {target}{from}: {e}"))?;
    let host = o.host.as_deref().unwrap_or(&o.addr);
    let (neg, leftover) =
        handshake(&mut stream, host, &o.path, o.offer()).await.map_err(|e| format!("handshake: {e}"))?;
    Ok((stream, neg, leftover))
}

/// The length of the frame at the start of `buf` (header and payload), once its header is there.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let b1 = *buf.get(1)?;
    let (len, at) = match b1 & 0x7f {
        126 => (u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as u64, 4),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (n as u64, 2),
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    Some(usize::try_from(len).unwrap_or(usize::MAX).saturating_add(at + mask))
}

/// The code and reason of an unmasked close frame.
fn close_reason(frame: &[u8]) -> String {
    let len = frame.get(1).map_or(0, |b| usize::from(b & 0x7f));
    let payload = frame.get(frame.len().saturating_sub(len)..).unwrap_or_default();
    let code = payload.get(..2).map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
    format!("{code} {}", String::from_utf8_lossy(payload.get(2..).unwrap_or_default()))
}

/// `" after a close frame: CODE REASON"` when a complete close frame is among the frames in
/// `pending`, else nothing.
fn close_after(pending: &mut Vec<u8>) -> String {
    while let Some(len) = frame_len(pending).filter(|&len| len <= pending.len()) {
        let frame: Vec<u8> = pending.drain(..len).collect();
        if frame[0] & 0x0f == 8 {
            return format!(" after a close frame: {}", close_reason(&frame));
        }
    }
    String::new()
}

/// A frame this large cannot be the echo of a message the bench sends: the connection is lost.
const MAX_FRAME: usize = 1 << 20;

/// One held connection: echoes its message when `go` turns true, then answers pings until
/// aborted. Whatever ends it early counts as lost.
async fn keep(
    mut stream: TcpStream,
    neg: Negotiated,
    leftover: Vec<u8>,
    shared: Rc<Shared>,
    mut go: watch::Receiver<bool>,
) {
    let mut neg = Some(neg);
    // Frame bytes not yet complete (rarely more than a ping's).
    let mut pending = leftover;
    let mut echo: Option<(EchoReader, tokio::sync::SemaphorePermit<'_>)> = None;
    let mut waiting_go = true;
    // The echo slot is waited for as one more branch of the select, never on its own: with
    // thousands of connections queued for a few hundred slots, a connection that stopped
    // reading meanwhile would leave the server's keepalive ping unanswered past its timeout
    // (issue 22: the lost connections of the 100,000-connection row).
    let slot = shared.echo_slots.acquire();
    tokio::pin!(slot);
    let mut waiting_slot = false;
    let mut buf = [0u8; 512];
    let why = loop {
        let n = tokio::select! {
            changed = go.changed(), if waiting_go => {
                if changed.is_err() || !*go.borrow() {
                    waiting_go = changed.is_ok();
                    continue;
                }
                waiting_go = false;
                waiting_slot = true;
                continue;
            }
            permit = &mut slot, if waiting_slot => {
                waiting_slot = false;
                let Ok(permit) = permit else { break "closed".into() };
                let Some(neg) = neg.take() else { break "echo twice".into() };
                echo = Some((EchoReader::new(shared.plan.clone(), neg), permit));
                if let Err(e) = stream.write_all(shared.plan.frames_from(0, 1)).await {
                    break format!("send: {e}");
                }
                // Bytes that came before `go` are processed below with the rest.
                0
            }
            read = stream.read(&mut buf) => match read {
                Ok(0) => break "the server closed the connection".into(),
                Ok(n) => n,
                Err(e) => break format!("read: {e}"),
            },
        };
        pending.extend_from_slice(&buf[..n]);
        let mut failed = None;
        while let Some(len) = frame_len(&pending) {
            if len > MAX_FRAME {
                failed = Some(format!("a frame of {len} bytes"));
                break;
            }
            if pending.len() < len {
                break;
            }
            let frame: Vec<u8> = pending.drain(..len).collect();
            match frame[0] & 0x0f {
                // A ping: a pong with the same payload, masked with a zero key (valid).
                9 => {
                    let payload = &frame[frame.len() - (frame[1] & 0x7f) as usize..];
                    let mut pong = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                    pong.extend_from_slice(payload);
                    if let Err(e) = stream.write_all(&pong).await {
                        // The server may have closed the connection after this ping (a
                        // keepalive timeout): its close frame, if read, says why.
                        failed = Some(format!("pong: {e}{}", close_after(&mut pending)));
                        break;
                    }
                    shared.pongs.set(shared.pongs.get() + 1);
                }
                8 => {
                    failed = Some(format!("the server closed with {}", close_reason(&frame)));
                    break;
                }
                10 => {}
                _ => match echo.as_mut().map(|(reader, _)| reader.feed(&frame)) {
                    Some(Ok(0)) => {}
                    Some(Ok(_)) => {
                        echo = None;
                        shared.echoed.set(shared.echoed.get() + 1);
                        shared.echo_done.set(shared.echo_done.get() + 1);
                        shared.progress.notify_one();
                    }
                    Some(Err(e)) => {
                        failed = Some(e);
                        break;
                    }
                    None => {
                        failed = Some("a data frame nobody asked for".into());
                        break;
                    }
                },
            }
        }
        if let Some(why) = failed {
            break why;
        }
        if pending.is_empty() && pending.capacity() > 1024 {
            pending = Vec::new();
        }
    };
    // A connection that fails before its echo is done with it too: the echo phase must end.
    if neg.is_some() || echo.is_some() {
        shared.echo_done.set(shared.echo_done.get() + 1);
    }
    shared.lose(why);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_reads_every_length_form() {
        assert_eq!(frame_len(&[0x89]), None);
        assert_eq!(frame_len(&[0x89, 4]), Some(6));
        assert_eq!(frame_len(&[0x81, 0x80 | 4]), Some(10));
        assert_eq!(frame_len(&[0x82, 126, 1]), None);
        assert_eq!(frame_len(&[0x82, 126, 1, 0]), Some(4 + 256));
        assert_eq!(frame_len(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]), Some(10 + 65536));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str(&Some("a \"b\"\n".into())), "\"a \\\"b\\\"\\u000a\"");
        assert_eq!(json_str(&None), "null");
    }
}
