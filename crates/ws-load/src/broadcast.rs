//! Fan-out load: many connections that only receive, and one control connection whose messages
//! the server passes on to all of them (the protocol of `examples/broadcast_bench.rs` and
//! `bench/python/broadcast_server.py`, driven by `cargo xtask bench --only broadcast`).
//!
//! - The receivers open with the same hand-written handshake as the echo load (offering
//!   permessage-deflate with `deflate`), then count the data messages they get and the payload
//!   bytes those took on the wire. They do not inflate (their cost must stay small next to the
//!   server's), except the first one, which inflates and checks every message: its length, its
//!   sequence number (none missing, none out of order).
//! - The control connection (`/control`, no compression) sends distinct JSON messages of `size`
//!   bytes, keeping `window` of them in flight: message `k` goes once the receivers have all of
//!   message `k - window`, so no receiver that keeps reading falls far enough behind to be
//!   skipped. The server answers each one with `DELIVERED DROPPED`, its totals so far.
//! - `stalled` more connections open (with a 4 KiB receive buffer) and then never read: the
//!   server's memory with clients that
//!   cannot keep up.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use flate2::{Decompress, FlushDecompress};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;

use crate::{CpuTime, Error, Negotiated, OFFER_NO_CONTEXT, encode_frame, handshake};

/// Messages every receiver gets before the measured window: enough for a server to have set
/// up what each connection keeps (ws-deflate borrows per-thread streams for a connection's
/// first 4 messages, then allocates its own).
const WARM_UP_MESSAGES: u64 = 12;
/// The measured window lasts until at least this many messages' worth of deliveries.
const MIN_MESSAGES: u64 = 4;
/// The longest the warm-up, or a window, may take.
const MAX_WAIT: Duration = Duration::from_secs(120);

/// The largest frame (and message, for the checking receiver) accepted: more is a server bug.
const MAX_FRAME: u64 = 1 << 20;
/// The receive buffer of a connection that never reads (the kernel doubles it).
const STALLED_RCVBUF: u32 = 4096;

/// What to run.
#[derive(Debug, Clone)]
pub struct BroadcastOptions {
    /// `host:port` to connect to.
    pub addr: String,
    /// Connections that receive and count.
    pub receivers: usize,
    /// Connections that never read.
    pub stalled: usize,
    /// Bytes per message (uncompressed).
    pub size: usize,
    /// The receivers offer permessage-deflate (`client_no_context_takeover`).
    pub deflate: bool,
    /// Messages in flight (sent, not yet received by every receiver).
    pub window: usize,
    /// Seconds of load before measuring (at least until every receiver has had 12 messages).
    pub warmup: f64,
    /// Seconds measured (at least until 4 messages' worth of deliveries).
    pub duration: f64,
    /// The server's process id, for its CPU time and memory over the measured window.
    pub server_pid: Option<u32>,
    /// The measured window lasts until the server says it skipped this many deliveries (the
    /// stalled connections are full; at most 120 s).
    pub until_dropped: u64,
}

impl Default for BroadcastOptions {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8765".into(),
            receivers: 1000,
            stalled: 0,
            size: 1024,
            deflate: false,
            window: 8,
            warmup: 0.5,
            duration: 2.0,
            server_pid: None,
            until_dropped: 0,
        }
    }
}

/// The result of [`run_broadcast`]; counts are over the measured window.
#[derive(Debug, Clone, Default)]
pub struct BroadcastReport {
    /// Messages the control connection sent.
    pub messages: u64,
    /// Messages the receivers got.
    pub deliveries: u64,
    /// The measured window, in seconds.
    pub secs: f64,
    /// Deliveries per second.
    pub deliveries_per_s: f64,
    /// Payload bytes per delivery on the wire (the compressed size, with compression).
    pub wire_bytes_per_delivery: f64,
    /// Receivers that negotiated permessage-deflate.
    pub compressed: usize,
    /// Of those, how many the server compresses for without context takeover.
    pub server_no_context_takeover: usize,
    /// The server's totals at the end, from its last answer: deliveries queued, and skipped.
    pub server_delivered: u64,
    /// See `server_delivered`.
    pub server_dropped: u64,
    /// The server's CPU time (user, system seconds) over the window.
    pub server_cpu: Option<[f64; 2]>,
    /// The load generator's.
    pub loadgen_cpu: Option<[f64; 2]>,
    /// The server's RSS in bytes once every connection was open, before the first message.
    pub rss_start: Option<u64>,
    /// The largest RSS seen (every 100 ms) from then until the end of the window.
    pub rss_max: Option<u64>,
    /// The RSS at the end of the window.
    pub rss_end: Option<u64>,
    /// Connections that failed, and the first check that failed, if any.
    pub errors: Vec<String>,
}

impl BroadcastReport {
    /// The failure of a run that must be clean: a failed connection or check, or no delivery.
    pub fn check(&self) -> Result<(), Error> {
        if let Some(first) = self.errors.first() {
            return Err(Error::Connections { failed: self.errors.len(), first: first.clone() });
        }
        if self.deliveries == 0 {
            return Err(Error::NoEcho);
        }
        Ok(())
    }
}

/// Counters shared by the tasks (single-threaded runtime).
#[derive(Default)]
struct Fan {
    deliveries: Cell<u64>,
    wire_bytes: Cell<u64>,
    sent: Cell<u64>,
    /// The control task waits until `deliveries` reaches this.
    target: Cell<u64>,
    progress: Notify,
    done: Cell<bool>,
    server_totals: Cell<(u64, u64)>,
    errors: RefCell<Vec<String>>,
}

impl Fan {
    /// Messages sent, deliveries, payload bytes received.
    fn snapshot(&self) -> (u64, u64, u64) {
        (self.sent.get(), self.deliveries.get(), self.wire_bytes.get())
    }

    fn error(&self, e: String) {
        if !self.done.get() {
            self.errors.borrow_mut().push(e);
        }
    }
}

/// The message numbered `seq`: `{"seq":"0000000042","events":[...]}` padded with spaces to
/// `size` bytes (valid JSON from about 40 bytes up); each differs from the one before, as real
/// messages do, so that context takeover gets no free repeats.
pub fn json_message(seq: u64, size: usize) -> Vec<u8> {
    let mut out = format!("{{\"seq\":\"{seq:010}\",\"events\":[");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ seq.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let names = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let events = ["update", "create", "delete", "login"];
    let mut first = true;
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let item = format!(
            "{}{{\"id\":{},\"user\":\"{}\",\"event\":\"{}\",\"active\":{},\"score\":{}.{:02}}}",
            if first { "" } else { "," },
            x % 100_000,
            names[(x >> 17) as usize % 6],
            events[(x >> 23) as usize % 4],
            (x >> 29) & 1 == 1,
            (x >> 31) % 1000,
            (x >> 41) % 100,
        );
        if out.len() + item.len() + 2 > size {
            break;
        }
        out.push_str(&item);
        first = false;
    }
    out.push_str("]}");
    while out.len() < size {
        out.push(' ');
    }
    out.into_bytes()
}

/// What a frame parser found.
enum Event {
    /// A data frame's payload bytes, and whether it ended a message.
    Data { bytes: usize, end: bool },
    /// A ping, to answer.
    Ping(Vec<u8>),
}

/// Streaming parser of a server's (unmasked) frames that keeps payloads only when asked.
struct Frames {
    hdr: Vec<u8>,
    remaining: u64,
    opcode: u8,
    fin: bool,
    /// Keep data payloads (the checking receiver, the control connection).
    keep: bool,
    /// The current frame's payload (kept), or a control frame's.
    payload: Vec<u8>,
    /// The current message is compressed (RSV1 on its first frame).
    compressed: bool,
    in_message: bool,
}

impl Frames {
    fn new(keep: bool) -> Self {
        Self {
            hdr: Vec::with_capacity(14),
            remaining: 0,
            opcode: 0,
            fin: false,
            keep,
            payload: Vec::new(),
            compressed: false,
            in_message: false,
        }
    }

    fn hdr_needed(&self) -> usize {
        if self.hdr.len() < 2 {
            return 2 - self.hdr.len();
        }
        let ext = match self.hdr[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext - self.hdr.len()
    }

    /// Consumes `data`, calling `on` for every data frame payload (and end) and ping.
    fn feed(
        &mut self,
        mut data: &[u8],
        mut on: impl FnMut(&mut Self, Event) -> Result<(), String>,
    ) -> Result<(), String> {
        while !data.is_empty() {
            if self.remaining == 0 && self.hdr_needed() > 0 {
                let take = self.hdr_needed().min(data.len());
                self.hdr.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.hdr_needed() > 0 {
                    continue;
                }
                self.start()?;
                if self.remaining == 0 {
                    self.end(&mut on)?;
                }
                continue;
            }
            let take = self.remaining.min(data.len() as u64) as usize;
            if self.keep || self.opcode >= 8 {
                self.payload.extend_from_slice(&data[..take]);
            }
            data = &data[take..];
            self.remaining -= take as u64;
            if self.opcode < 8 && !self.keep {
                on(self, Event::Data { bytes: take, end: false })?;
            }
            if self.remaining == 0 {
                self.end(&mut on)?;
            }
        }
        Ok(())
    }

    fn start(&mut self) -> Result<(), String> {
        let (b0, b1) = (self.hdr[0], self.hdr[1]);
        if b1 & 0x80 != 0 {
            return Err("masked frame from the server".into());
        }
        self.remaining = match b1 & 0x7f {
            126 => u16::from_be_bytes([self.hdr[2], self.hdr[3]]).into(),
            127 => u64::from_be_bytes(self.hdr[2..10].try_into().map_err(|_| "short header")?),
            n => n.into(),
        };
        self.hdr.clear();
        self.opcode = b0 & 0x0f;
        self.fin = b0 & 0x80 != 0;
        self.payload.clear();
        match self.opcode {
            0 if self.in_message => {}
            1 | 2 if !self.in_message => {
                self.in_message = true;
                self.compressed = b0 & 0x40 != 0;
            }
            8 => {}
            9 | 10 if self.remaining <= 125 => {}
            op => return Err(format!("unexpected frame (opcode {op})")),
        }
        if self.opcode < 8 && self.remaining > MAX_FRAME {
            return Err(format!("frame of {} bytes", self.remaining));
        }
        Ok(())
    }

    fn end(&mut self, on: &mut impl FnMut(&mut Self, Event) -> Result<(), String>) -> Result<(), String> {
        match self.opcode {
            8 => {
                let code = self.payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                Err(format!("the server closed the connection ({code:?})"))
            }
            9 => {
                let payload = std::mem::take(&mut self.payload);
                on(self, Event::Ping(payload))
            }
            10 => Ok(()),
            _ => {
                let end = self.fin;
                if end {
                    self.in_message = false;
                }
                let bytes = if self.keep { self.payload.len() } else { 0 };
                on(self, Event::Data { bytes, end })
            }
        }
    }
}

/// A masked pong with `payload` (at most 125 bytes: pings are).
fn pong(payload: &[u8]) -> Vec<u8> {
    encode_frame(10, false, payload, [0x5a, 0x11, 0x3c, 0x77])
}

/// Checks the messages of one receiver: inflated (with its negotiated context takeover),
/// of the right size, numbered one after the other.
struct Checker {
    inflater: Decompress,
    reset: bool,
    message: Vec<u8>,
    out: Vec<u8>,
    next: Option<u64>,
    size: usize,
}

impl Checker {
    fn check(&mut self, compressed: bool) -> Result<(), String> {
        let text: &[u8] = if compressed {
            self.message.extend_from_slice(&[0, 0, 0xff, 0xff]);
            self.out.clear();
            self.out.reserve(self.size + 64);
            let start = self.inflater.total_in();
            loop {
                let used = (self.inflater.total_in() - start) as usize;
                if used == self.message.len() {
                    break;
                }
                if self.out.len() == self.out.capacity() {
                    self.out.reserve(4096);
                }
                let before = self.out.len();
                self.inflater
                    .decompress_vec(&self.message[used..], &mut self.out, FlushDecompress::Sync)
                    .map_err(|e| format!("inflate: {e}"))?;
                let stuck = self.inflater.total_in() - start == used as u64 && self.out.len() == before;
                if stuck || self.out.len() > self.size + (1 << 16) {
                    return Err("message does not inflate to the size sent".into());
                }
            }
            if self.reset {
                self.inflater.reset(false);
            }
            &self.out
        } else {
            &self.message
        };
        if text.len() != self.size {
            return Err(format!("message of {} bytes, sent {}", text.len(), self.size));
        }
        let seq = text
            .get(8..18)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or("message without its sequence number")?;
        if let Some(next) = self.next {
            if seq != next {
                return Err(format!("message {seq} received after {} (missing or out of order)", next - 1));
            }
        }
        self.next = Some(seq + 1);
        self.message.clear();
        Ok(())
    }
}

async fn receiver(
    mut stream: TcpStream,
    neg: Negotiated,
    leftover: Vec<u8>,
    fan: Rc<Fan>,
    check: Option<usize>,
) -> Result<(), String> {
    let mut frames = Frames::new(check.is_some());
    let mut checker = check.map(|size| Checker {
        inflater: Decompress::new(false),
        reset: neg.server_no_context_takeover,
        message: Vec::new(),
        out: Vec::new(),
        next: None,
        size,
    });
    let mut buf = vec![0u8; 8 * 1024];
    let mut pongs = Vec::new();
    let mut data = leftover;
    loop {
        frames.feed(&data, |f, event| {
            match event {
                Event::Data { bytes, end } => {
                    fan.wire_bytes.set(fan.wire_bytes.get() + bytes as u64);
                    if let Some(c) = checker.as_mut() {
                        c.message.extend_from_slice(&f.payload);
                        if c.message.len() as u64 > MAX_FRAME {
                            return Err(format!("message of more than {MAX_FRAME} bytes"));
                        }
                    }
                    if end {
                        if f.compressed && !neg.deflate {
                            return Err("RSV1 without permessage-deflate".into());
                        }
                        if let Some(c) = checker.as_mut() {
                            c.check(f.compressed)?;
                        }
                        let n = fan.deliveries.get() + 1;
                        fan.deliveries.set(n);
                        if n >= fan.target.get() {
                            fan.progress.notify_one();
                        }
                    }
                }
                Event::Ping(payload) => pongs.extend_from_slice(&pong(&payload)),
            }
            Ok(())
        })?;
        if !pongs.is_empty() {
            stream.write_all(&pongs).await.map_err(|e| format!("pong: {e}"))?;
            pongs.clear();
        }
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        data.clear();
        data.extend_from_slice(&buf[..n]);
    }
}

/// Opens one connection to `path`; a `stalled` one with a small receive buffer, so that what
/// the server sends it waits in the server rather than in the kernel.
async fn open(
    o: &BroadcastOptions,
    path: &str,
    deflate: bool,
    stalled: bool,
) -> Result<(TcpStream, Negotiated, Vec<u8>), Error> {
    let connect = |source| Error::Connect { addr: o.addr.clone(), source };
    let mut stream = if stalled {
        let addr = tokio::net::lookup_host(&o.addr)
            .await
            .map_err(connect)?
            .next()
            .ok_or_else(|| connect(std::io::Error::other("no address")))?;
        let socket =
            if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(connect)?;
        socket.set_recv_buffer_size(STALLED_RCVBUF).map_err(connect)?;
        socket.connect(addr).await.map_err(connect)?
    } else {
        TcpStream::connect(&o.addr).await.map_err(connect)?
    };
    stream.set_nodelay(true).map_err(connect)?;
    // Receivers send nothing compressed: the offer keeps the server from holding an inflate
    // window for them, as it did before the echo part offered context takeover.
    let (neg, leftover) = handshake(&mut stream, &o.addr, path, deflate.then_some(OFFER_NO_CONTEXT))
        .await
        .map_err(|source| Error::Handshake { addr: o.addr.clone(), source })?;
    Ok((stream, neg, leftover))
}

/// Opens `n` connections, a few hundred handshakes at a time.
async fn open_many(
    o: &Rc<BroadcastOptions>,
    n: usize,
    stalled: bool,
) -> Result<Vec<(TcpStream, Negotiated, Vec<u8>)>, Error> {
    let mut all = Vec::with_capacity(n);
    let mut pending = VecDeque::new();
    for i in 0..n {
        let o = o.clone();
        pending.push_back(tokio::task::spawn_local(async move { open(&o, "/", o.deflate, stalled).await }));
        if pending.len() >= 256 || i + 1 == n {
            while let Some(h) = pending.pop_front() {
                all.push(h.await.map_err(|e| Error::Other(e.to_string()))??);
            }
        }
    }
    Ok(all)
}

/// Sends the messages, `window` in flight, until `fan.done`.
async fn control_writer(
    mut w: tokio::net::tcp::OwnedWriteHalf,
    fan: Rc<Fan>,
    receivers: u64,
    window: u64,
    size: usize,
) -> Result<(), String> {
    let mask = [0x21, 0x7e, 0x03, 0xc4];
    for seq in 0u64.. {
        if seq >= window {
            let need = (seq - window + 1) * receivers;
            fan.target.set(need);
            while fan.deliveries.get() < need {
                if fan.done.get() {
                    return Ok(());
                }
                let wait = tokio::time::timeout(Duration::from_secs(30), fan.progress.notified());
                if wait.await.is_err() && !fan.done.get() {
                    return Err(format!(
                        "deliveries stalled at {} of the {need} due (message {seq}; server totals: {:?} delivered, dropped)",
                        fan.deliveries.get(),
                        fan.server_totals.get()
                    ));
                }
            }
        }
        if fan.done.get() {
            return Ok(());
        }
        let frame = encode_frame(1, false, &json_message(seq, size), mask);
        w.write_all(&frame).await.map_err(|e| format!("control: {e}"))?;
        fan.sent.set(seq + 1);
    }
    Ok(())
}

/// Reads the server's answers (`DELIVERED DROPPED`) into `fan.server_totals`.
async fn control_reader(
    mut r: tokio::net::tcp::OwnedReadHalf,
    leftover: Vec<u8>,
    fan: Rc<Fan>,
) -> Result<(), String> {
    let mut frames = Frames::new(true);
    let mut buf = vec![0u8; 4096];
    let mut data = leftover;
    loop {
        frames.feed(&data, |f, event| {
            if let Event::Data { end: true, .. } = event {
                let text = String::from_utf8_lossy(&f.payload);
                let mut it = text.split(' ').map(|n| n.parse::<u64>().ok());
                if let (Some(Some(d)), Some(Some(x))) = (it.next(), it.next()) {
                    fan.server_totals.set((d, x));
                }
            }
            Ok(())
        })?;
        let n = r.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the control connection".into());
        }
        data.clear();
        data.extend_from_slice(&buf[..n]);
    }
}

/// VmRSS of `pid` in bytes, from /proc.
fn rss(pid: Option<u32>) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let kb = text.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim();
    kb.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// Opens the connections, sends messages for `warmup` then `duration` seconds, and measures
/// the second window. Must run inside a [`tokio::task::LocalSet`] ([`crate::block_on`]).
pub async fn run_broadcast(o: &BroadcastOptions) -> Result<BroadcastReport, Error> {
    let o = Rc::new(o.clone());
    let fan = Rc::new(Fan::default());
    let receivers = open_many(&o, o.receivers, false).await?;
    let stalled = open_many(&o, o.stalled, true).await?;
    let mut report = BroadcastReport {
        compressed: receivers.iter().filter(|r| r.1.deflate).count(),
        server_no_context_takeover: receivers
            .iter()
            .filter(|r| r.1.deflate && r.1.server_no_context_takeover)
            .count(),
        ..BroadcastReport::default()
    };
    let mut tasks = Vec::new();
    for (i, (stream, neg, leftover)) in receivers.into_iter().enumerate() {
        let fan = fan.clone();
        let check = (i == 0).then_some(o.size);
        tasks.push(tokio::task::spawn_local(async move {
            if let Err(e) = receiver(stream, neg, leftover, fan.clone(), check).await {
                fan.error(e);
            }
        }));
    }
    let (control, _, leftover) = open(&o, "/control", false, false).await?;
    // The server counts the receivers before the first message: give it a moment to register
    // the last ones (their handlers run after their handshakes).
    tokio::time::sleep(Duration::from_millis(200)).await;
    report.rss_start = rss(o.server_pid);
    let (r, w) = control.into_split();
    let f = fan.clone();
    tasks.push(tokio::task::spawn_local(async move {
        if let Err(e) = control_reader(r, leftover, f.clone()).await {
            f.error(e);
        }
    }));
    let f = fan.clone();
    let (receivers, window, size) = (o.receivers as u64, o.window.max(1) as u64, o.size);
    let writer = tokio::task::spawn_local(async move {
        if let Err(e) = control_writer(w, f.clone(), receivers, window, size).await {
            f.error(e);
        }
    });
    let mut rss_max = report.rss_start;
    let sleep = |secs: f64| {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let pid = o.server_pid;
        async move {
            let mut max = None;
            while Instant::now() < end {
                tokio::time::sleep((end - Instant::now()).min(Duration::from_millis(100))).await;
                max = max.max(rss(pid));
            }
            max
        }
    };
    // Warm-up: `warmup` seconds, and at least WARM_UP_MESSAGES messages received by everyone
    // (a server's per-connection state, such as zlib streams, is set up by then).
    let start = Instant::now();
    rss_max = rss_max.max(sleep(o.warmup).await);
    while fan.deliveries.get() < WARM_UP_MESSAGES * receivers && fan.errors.borrow().is_empty() {
        if start.elapsed() > MAX_WAIT {
            return Err(Error::Other(format!(
                "warm-up: {} deliveries in {MAX_WAIT:?}",
                fan.deliveries.get()
            )));
        }
        rss_max = rss_max.max(sleep(0.1).await);
    }
    let (s0, d0, b0) = fan.snapshot();
    let cpu0 = (CpuTime::of("self"), o.server_pid.and_then(|pid| CpuTime::of(&pid.to_string())));
    let t0 = Instant::now();
    // The window: `duration` seconds, and at least MIN_MESSAGES messages' worth of deliveries.
    rss_max = rss_max.max(sleep(o.duration).await);
    while (fan.deliveries.get() - d0 < MIN_MESSAGES * receivers
        || fan.server_totals.get().1 < o.until_dropped)
        && fan.errors.borrow().is_empty()
        && t0.elapsed() < MAX_WAIT
    {
        rss_max = rss_max.max(sleep(0.1).await);
    }
    let (s1, d1, b1) = fan.snapshot();
    let cpu1 = (CpuTime::of("self"), o.server_pid.and_then(|pid| CpuTime::of(&pid.to_string())));
    report.secs = t0.elapsed().as_secs_f64();
    report.rss_end = rss(o.server_pid);
    report.rss_max = rss_max.max(report.rss_end);
    fan.done.set(true);
    fan.progress.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    for t in tasks {
        t.abort();
    }
    drop(stalled);
    let used = |a: Option<CpuTime>, b: Option<CpuTime>| match (a, b) {
        (Some(a), Some(b)) => Some([b.user - a.user, b.system - a.system]),
        _ => None,
    };
    report.messages = s1 - s0;
    report.deliveries = d1 - d0;
    report.deliveries_per_s = report.deliveries as f64 / report.secs;
    report.wire_bytes_per_delivery = (b1 - b0) as f64 / report.deliveries.max(1) as f64;
    (report.server_delivered, report.server_dropped) = fan.server_totals.get();
    report.server_cpu = used(cpu0.1, cpu1.1);
    report.loadgen_cpu = used(cpu0.0, cpu1.0);
    report.errors = std::mem::take(&mut *fan.errors.borrow_mut());
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_json_of_the_size_asked_and_differ() {
        let a = json_message(7, 1024);
        let b = json_message(8, 1024);
        assert_eq!(a.len(), 1024);
        assert_ne!(a[18..], b[18..]);
        assert_eq!(&a[8..18], b"0000000007");
        let text = std::str::from_utf8(&a).expect("ASCII");
        assert!(text.starts_with("{\"seq\":\"0000000007\",\"events\":[{") && text.trim_end().ends_with("]}"));
    }

    #[test]
    fn frames_split_anywhere_are_counted_once_and_pings_seen() {
        // A 300-byte text message in two fragments, a ping between them, then a short one.
        let mut wire = vec![0x01, 126, 0x00, 200];
        wire.extend(std::iter::repeat_n(b'a', 200));
        wire.extend([0x89, 2, b'h', b'i']);
        wire.extend([0x80, 100]);
        wire.extend(std::iter::repeat_n(b'b', 100));
        wire.extend([0x81, 3, b'x', b'y', b'z']);
        for keep in [false, true] {
            let mut frames = Frames::new(keep);
            let (mut ends, mut bytes, mut pings) = (0, 0, 0);
            for chunk in wire.chunks(7) {
                frames
                    .feed(chunk, |f, e| {
                        match e {
                            Event::Data { bytes: n, end } => {
                                bytes += if keep { f.payload.len() } else { n };
                                ends += usize::from(end);
                            }
                            Event::Ping(p) => {
                                assert_eq!(p, b"hi");
                                pings += 1;
                            }
                        }
                        Ok(())
                    })
                    .expect("valid frames");
            }
            assert_eq!((ends, bytes, pings), (2, 303, 1), "keep={keep}");
        }
    }
}
