//! WebSocket echo load generator for `cargo xtask bench`.
//!
//! Built to stay out of the way of the server it measures:
//! - raw tokio TCP on a current-thread runtime (one core), the opening handshake written by hand;
//! - every frame is encoded, masked (and, with `--deflate`, compressed) once, before the run;
//!   sending N frames is one `write_all` of a slice of a pre-built buffer of N copies;
//! - each connection keeps `--inflight` messages in flight (a reader task returns credits to a
//!   writer task), and echoes are matched to sends in FIFO order for the round-trip latency;
//! - echoes are parsed in a streaming way (no per-message buffering); the first echo of each
//!   connection is compared byte for byte, the others by opcode and length. With `--deflate`
//!   every echo is really inflated, with one persistent raw inflater per connection.
//!
//! Throughput mode prints one JSON line:
//! `{"msgs":..,"secs":..,"msg_per_s":..,"mb_per_s":..,"p50_us":..,"p99_us":..,"conns":..,..}`,
//! with the CPU time (user and system seconds) the load generator and, given `--server-pid`, the
//! server used during the measured window: which of the two was busy, and each one's cost per echo.
//! Idle mode (`--idle N`) opens N connections, echoes one message on each (none with
//! `--no-echo`), prints `READY` and holds them until stdin closes.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, Read as _};
use std::rc::Rc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Semaphore;

const USAGE: &str = "usage: ws-loadgen --addr HOST:PORT [--conns N] [--size BYTES] [--binary]
                  [--inflight K] [--warmup SECS] [--duration SECS] [--deflate]
                  [--server-pid PID] [--idle N [--no-echo]]";

struct Args {
    addr: String,
    conns: usize,
    size: usize,
    binary: bool,
    inflight: usize,
    warmup: f64,
    duration: f64,
    deflate: bool,
    idle: usize,
    no_echo: bool,
    server_pid: Option<u32>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:8765".into(),
        conns: 1,
        size: 20,
        binary: false,
        inflight: 0,
        warmup: 0.5,
        duration: 2.0,
        deflate: false,
        idle: 0,
        no_echo: false,
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        let num = |s: String| s.parse::<f64>().map_err(|e| format!("{s}: {e}"));
        match arg.as_str() {
            "--addr" => a.addr = val()?,
            "--conns" => a.conns = num(val()?)? as usize,
            "--size" => a.size = num(val()?)? as usize,
            "--binary" => a.binary = true,
            "--inflight" => a.inflight = num(val()?)? as usize,
            "--warmup" => a.warmup = num(val()?)?,
            "--duration" => a.duration = num(val()?)?,
            "--deflate" => a.deflate = true,
            "--idle" => a.idle = num(val()?)? as usize,
            "--no-echo" => a.no_echo = true,
            "--server-pid" => a.server_pid = Some(num(val()?)? as u32),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if a.inflight == 0 {
        // Enough to keep the pipe full, bounded so that 64 connections x 1 MiB stay sane.
        a.inflight = ((4 << 20) / a.size.max(1)).clamp(2, 16);
    }
    Ok(a)
}

/// A compressible JSON-like payload of exactly `size` ASCII bytes (valid UTF-8).
fn payload(size: usize) -> Vec<u8> {
    let mut out = String::with_capacity(size + 128);
    out.push('[');
    let mut i: u64 = 0;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let names = ["alice", "bob", "carol", "dave", "erin", "frank"];
        let events = ["update", "create", "delete", "login"];
        out.push_str(&format!(
            "{{\"id\":{i},\"user\":\"{}\",\"event\":\"{}\",\"active\":{},\"score\":{}.{:02},\"tags\":[\"t{}\",\"t{}\"]}},",
            names[(x % 6) as usize],
            events[((x >> 8) % 4) as usize],
            (x >> 16) & 1 == 1,
            (x >> 20) % 1000,
            (x >> 32) % 100,
            (x >> 40) % 10,
            (x >> 44) % 10,
        ));
        i += 1;
    }
    out.truncate(size);
    out.into_bytes()
}

/// Raw deflate of one whole message without context takeover, minus the `00 00 ff ff` tail.
fn deflate_message(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    loop {
        let before = c.total_in() as usize;
        c.compress_vec(&data[before..], &mut out, FlushCompress::Sync).expect("deflate");
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "sync flush tail");
    out.truncate(out.len() - 4);
    out
}

/// One masked client frame (FIN set).
fn encode_frame(opcode: u8, rsv1: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x80 | if rsv1 { 0x40 } else { 0 } | opcode);
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len <= 0xffff {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    f
}

/// What a connection needs to know about the run, shared by all connections.
struct Plan {
    /// `inflight` copies of the pre-encoded frame, back to back.
    frames: Vec<u8>,
    frame_len: usize,
    /// The uncompressed payload, to check echoes against.
    payload: Vec<u8>,
    /// The payload as masked on the wire (what a raw TCP echo returns).
    masked: Vec<u8>,
    opcode: u8,
    deflate: bool,
    inflight: usize,
}

/// Counters shared by the connection tasks (single-threaded runtime).
#[derive(Default)]
struct Stats {
    measuring: Cell<bool>,
    msgs: Cell<u64>,
    samples: RefCell<Vec<u32>>,
    errors: RefCell<Vec<String>>,
}

struct Negotiated {
    deflate: bool,
    server_no_context_takeover: bool,
}

async fn handshake(stream: &mut TcpStream, host: &str, deflate: bool) -> io::Result<(Negotiated, Vec<u8>)> {
    let mut key_bytes = [0u8; 16];
    let t = Instant::now().elapsed().as_nanos() as u64 ^ (std::process::id() as u64) << 32;
    for (i, b) in key_bytes.iter_mut().enumerate() {
        *b = (t >> ((i % 8) * 8)) as u8 ^ i as u8;
    }
    let key = base64::engine::general_purpose::STANDARD.encode(key_bytes);
    let ext = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
    } else {
        ""
    };
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof during handshake"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err(io::Error::other("handshake response too large"));
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let leftover = buf[end..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(io::Error::other(format!("handshake refused: {status}")));
    }
    let expected = {
        let mut h = Sha1::new();
        h.update(key.as_bytes());
        h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    };
    let mut accept_ok = false;
    let mut neg = Negotiated { deflate: false, server_no_context_takeover: false };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "sec-websocket-accept" {
            accept_ok = value == expected;
        } else if name == "sec-websocket-extensions" {
            for param in value.split(';').map(str::trim) {
                match param {
                    "permessage-deflate" => neg.deflate = true,
                    "server_no_context_takeover" => neg.server_no_context_takeover = true,
                    _ => {}
                }
            }
        }
    }
    if !accept_ok {
        return Err(io::Error::other("bad Sec-WebSocket-Accept"));
    }
    if deflate && !neg.deflate {
        return Err(io::Error::other("server did not accept permessage-deflate"));
    }
    Ok((neg, leftover))
}

/// Streaming parser of the server's (unmasked) frames.
struct EchoReader {
    plan: Rc<Plan>,
    neg: Negotiated,
    inflater: Decompress,
    inflate_out: Vec<u8>,
    /// Header bytes of a frame not yet complete.
    hdr: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    /// Current frame is the final fragment of its message.
    fin: bool,
    /// The current message is compressed (RSV1 on its first frame).
    compressed: bool,
    in_message: bool,
    /// Uncompressed bytes of the current message seen so far.
    msg_len: usize,
    /// Compare the current message's bytes to the payload (first echo only).
    verify: bool,
    verified_once: bool,
    /// The current frame is masked (raw TCP echo): compare with the masked bytes we sent.
    masked: bool,
}

impl EchoReader {
    fn new(plan: Rc<Plan>, neg: Negotiated) -> Self {
        Self {
            plan,
            neg,
            inflater: Decompress::new(false),
            inflate_out: vec![0; 64 * 1024],
            hdr: Vec::with_capacity(14),
            remaining: 0,
            fin: false,
            compressed: false,
            in_message: false,
            msg_len: 0,
            verify: false,
            verified_once: false,
            masked: false,
        }
    }

    /// Consumes `data`; returns the number of echoes completed.
    fn feed(&mut self, mut data: &[u8]) -> Result<usize, String> {
        let mut done = 0;
        while !data.is_empty() {
            if self.remaining == 0 && self.hdr_needed() > 0 {
                let need = self.hdr_needed();
                let take = need.min(data.len());
                self.hdr.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.hdr_needed() > 0 {
                    continue; // extended length / mask key bytes follow
                }
                self.start_frame()?;
                if self.remaining == 0 && self.end_frame()? {
                    done += 1;
                }
                continue;
            }
            let take = (self.remaining.min(data.len() as u64)) as usize;
            self.payload_bytes(&data[..take], false)?;
            data = &data[take..];
            self.remaining -= take as u64;
            if self.remaining == 0 && self.end_frame()? {
                done += 1;
            }
        }
        Ok(done)
    }

    /// Header bytes still missing (0 when complete).
    fn hdr_needed(&self) -> usize {
        if self.hdr.len() < 2 {
            return 2 - self.hdr.len();
        }
        let total =
            2 + match self.hdr[1] & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            } + if self.hdr[1] & 0x80 != 0 { 4 } else { 0 };
        total - self.hdr.len()
    }

    fn start_frame(&mut self) -> Result<(), String> {
        let (b0, b1) = (self.hdr[0], self.hdr[1]);
        // A masked echo comes only from the raw TCP ceiling, which returns our own bytes.
        self.masked = b1 & 0x80 != 0;
        let len = match b1 & 0x7f {
            126 => u16::from_be_bytes([self.hdr[2], self.hdr[3]]) as u64,
            127 => u64::from_be_bytes(self.hdr[2..10].try_into().expect("8 bytes")),
            n => n as u64,
        };
        let opcode = b0 & 0x0f;
        self.hdr.clear();
        self.fin = b0 & 0x80 != 0;
        self.remaining = len;
        match opcode {
            0 if self.in_message => {}
            1 | 2 if !self.in_message => {
                if opcode != self.plan.opcode {
                    return Err(format!("echo has opcode {opcode}"));
                }
                self.in_message = true;
                self.compressed = b0 & 0x40 != 0;
                if self.compressed && !self.neg.deflate {
                    return Err("RSV1 without permessage-deflate".into());
                }
                self.msg_len = 0;
                self.verify = !self.verified_once;
            }
            8 => return Err("server sent close".into()),
            9 | 10 => return Err("unexpected ping/pong".into()),
            _ => return Err(format!("unexpected opcode {opcode}")),
        }
        Ok(())
    }

    /// Handles the end of a frame; true when it completed a message.
    fn end_frame(&mut self) -> Result<bool, String> {
        if !self.fin {
            return Ok(false);
        }
        if self.compressed {
            self.payload_bytes(&[0, 0, 0xff, 0xff], true)?;
            if self.neg.server_no_context_takeover {
                self.inflater.reset(false);
            }
        }
        self.in_message = false;
        if self.msg_len != self.plan.payload.len() {
            return Err(format!("echo of {} bytes, sent {}", self.msg_len, self.plan.payload.len()));
        }
        if self.verify {
            self.verified_once = true;
        }
        Ok(true)
    }

    fn payload_bytes(&mut self, data: &[u8], tail: bool) -> Result<(), String> {
        if !self.compressed {
            self.check(data, None)?;
            return Ok(());
        }
        let mut input = data;
        loop {
            let (in0, out0) = (self.inflater.total_in(), self.inflater.total_out());
            let flush = if tail { FlushDecompress::Sync } else { FlushDecompress::None };
            let status = self
                .inflater
                .decompress(input, &mut self.inflate_out, flush)
                .map_err(|e| format!("inflate: {e}"))?;
            let used = (self.inflater.total_in() - in0) as usize;
            let produced = (self.inflater.total_out() - out0) as usize;
            input = &input[used..];
            if used == 0 && produced == 0 {
                return Ok(());
            }
            if produced > 0 {
                let out = std::mem::take(&mut self.inflate_out);
                let r = self.check(&out[..produced], Some(()));
                self.inflate_out = out;
                r?;
            }
            if status == Status::StreamEnd {
                self.inflater.reset(false);
            }
            if input.is_empty() && produced < self.inflate_out.len() {
                return Ok(());
            }
        }
    }

    fn check(&mut self, bytes: &[u8], _inflated: Option<()>) -> Result<(), String> {
        let at = self.msg_len;
        self.msg_len += bytes.len();
        if self.verify {
            let expected = if self.masked { &self.plan.masked } else { &self.plan.payload };
            let want = expected.get(at..at + bytes.len());
            if want != Some(bytes) {
                return Err(format!("echo differs from the message sent (at byte {at})"));
            }
        }
        Ok(())
    }
}

async fn open(addr: &str, plan: &Plan) -> io::Result<(TcpStream, Negotiated, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (neg, leftover) = handshake(&mut stream, addr, plan.deflate).await?;
    Ok((stream, neg, leftover))
}

async fn writer(
    mut w: OwnedWriteHalf,
    plan: Rc<Plan>,
    credits: Rc<Semaphore>,
    sent: Rc<RefCell<VecDeque<Instant>>>,
) {
    loop {
        let Ok(permit) = credits.acquire().await else { return };
        permit.forget();
        let extra = credits.available_permits().min(plan.inflight - 1);
        if extra > 0 {
            if let Ok(p) = credits.try_acquire_many(extra as u32) {
                p.forget();
            }
        }
        let n = 1 + extra;
        let now = Instant::now();
        sent.borrow_mut().extend(std::iter::repeat_n(now, n));
        if w.write_all(&plan.frames[..n * plan.frame_len]).await.is_err() {
            return;
        }
    }
}

async fn reader(
    mut r: OwnedReadHalf,
    mut echo: EchoReader,
    leftover: Vec<u8>,
    credits: Rc<Semaphore>,
    sent: Rc<RefCell<VecDeque<Instant>>>,
    stats: Rc<Stats>,
    size: usize,
) -> Result<(), String> {
    let mut buf = vec![0u8; (64 * 1024).max(size.min(256 * 1024) + 64)];
    let mut first = Some(leftover);
    loop {
        let n = match first.take() {
            Some(l) if !l.is_empty() => {
                buf[..l.len()].copy_from_slice(&l);
                l.len()
            }
            _ => r.read(&mut buf).await.map_err(|e| e.to_string())?,
        };
        if n == 0 {
            return Err("server closed the connection".into());
        }
        let done = echo.feed(&buf[..n])?;
        if done > 0 {
            let now = Instant::now();
            let mut q = sent.borrow_mut();
            if stats.measuring.get() {
                let mut samples = stats.samples.borrow_mut();
                for t in q.drain(..done) {
                    samples.push(((now - t).as_nanos() / 100).min(u32::MAX as u128) as u32);
                }
                stats.msgs.set(stats.msgs.get() + done as u64);
            } else {
                q.drain(..done);
            }
            drop(q);
            credits.add_permits(done);
        }
    }
}

fn build_plan(a: &Args) -> Plan {
    let payload = payload(a.size);
    let opcode = if a.binary { 2 } else { 1 };
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let frame = if a.deflate {
        encode_frame(opcode, true, &deflate_message(&payload), mask)
    } else {
        encode_frame(opcode, false, &payload, mask)
    };
    let frames = frame.repeat(a.inflight);
    let wire_len = if a.deflate { 0 } else { payload.len() };
    let masked = frame[frame.len() - wire_len..].to_vec();
    Plan { frame_len: frame.len(), frames, payload, masked, opcode, deflate: a.deflate, inflight: a.inflight }
}

/// A process's CPU time so far, in seconds, all threads, from `/proc/<pid>/stat`.
#[derive(Clone, Copy)]
struct CpuTime {
    user: f64,
    system: f64,
}

impl CpuTime {
    /// `pid` is a process id or `self`; `None` if the process is gone or the file is not there.
    fn of(pid: &str) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name, in parentheses, may hold spaces: count fields after its end.
        // utime and stime are fields 14 and 15, in USER_HZ ticks (100 per second on Linux).
        let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ').skip(11);
        let mut ticks = || fields.next()?.parse::<u64>().ok();
        let (user, system) = (ticks()?, ticks()?);
        Some(Self { user: user as f64 / 100.0, system: system as f64 / 100.0 })
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 10.0
}

async fn run_load(a: Args) -> Result<(), String> {
    let plan = Rc::new(build_plan(&a));
    let stats = Rc::new(Stats::default());
    let mut conns = Vec::with_capacity(a.conns);
    for _ in 0..a.conns {
        conns.push(open(&a.addr, &plan).await.map_err(|e| format!("connect {}: {e}", a.addr))?);
    }
    for (stream, neg, leftover) in conns {
        let (r, w) = stream.into_split();
        let credits = Rc::new(Semaphore::new(plan.inflight));
        let sent = Rc::new(RefCell::new(VecDeque::with_capacity(plan.inflight * 2)));
        tokio::task::spawn_local(writer(w, plan.clone(), credits.clone(), sent.clone()));
        let echo = EchoReader::new(plan.clone(), neg);
        let stats2 = stats.clone();
        let size = a.size;
        tokio::task::spawn_local(async move {
            if let Err(e) = reader(r, echo, leftover, credits, sent, stats2.clone(), size).await {
                stats2.errors.borrow_mut().push(e);
            }
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(a.warmup)).await;
    stats.measuring.set(true);
    let cpu0 = (CpuTime::of("self"), a.server_pid.map(|pid| CpuTime::of(&pid.to_string())));
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(a.duration)).await;
    stats.measuring.set(false);
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = (CpuTime::of("self"), a.server_pid.map(|pid| CpuTime::of(&pid.to_string())));
    let used = |t0: Option<CpuTime>, t1: Option<CpuTime>| match (t0, t1) {
        (Some(t0), Some(t1)) => format!("[{:.3},{:.3}]", t1.user - t0.user, t1.system - t0.system),
        _ => "null".into(),
    };
    let (loadgen_cpu, server_cpu) = (used(cpu0.0, cpu1.0), used(cpu0.1.flatten(), cpu1.1.flatten()));
    let msgs = stats.msgs.get();
    let mut samples = std::mem::take(&mut *stats.samples.borrow_mut());
    samples.sort_unstable();
    let errors = stats.errors.borrow();
    if let Some(e) = errors.first() {
        return Err(format!("{} connection(s) failed, first: {e}", errors.len()));
    }
    if msgs == 0 {
        return Err("no echo received during the measurement".into());
    }
    println!(
        "{{\"msgs\":{msgs},\"secs\":{secs:.3},\"msg_per_s\":{:.1},\"mb_per_s\":{:.3},\"p50_us\":{:.1},\"p99_us\":{:.1},\"conns\":{},\"inflight\":{},\"frame_len\":{},\"loadgen_cpu\":{loadgen_cpu},\"server_cpu\":{server_cpu}}}",
        msgs as f64 / secs,
        msgs as f64 * a.size as f64 / secs / 1e6,
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        a.conns,
        plan.inflight,
        plan.frame_len,
    );
    Ok(())
}

/// Opens `a.idle` connections, one echo each, then holds them until stdin closes.
async fn run_idle(a: Args) -> Result<(), String> {
    let addr: Rc<str> = a.addr.as_str().into();
    let (idle, no_echo) = (a.idle, a.no_echo);
    let plan = Rc::new(build_plan(&Args { inflight: 1, ..a }));
    let mut held = Vec::with_capacity(idle);
    // A few hundred handshakes at a time.
    let mut pending = VecDeque::new();
    for i in 0..idle {
        let (plan, addr) = (plan.clone(), addr.clone());
        pending.push_back(tokio::task::spawn_local(async move {
            let (mut stream, neg, leftover) =
                open(&addr, &plan).await.map_err(|e| format!("connect: {e}"))?;
            if no_echo {
                return Ok::<_, String>(stream);
            }
            stream.write_all(&plan.frames[..plan.frame_len]).await.map_err(|e| e.to_string())?;
            let mut echo = EchoReader::new(plan.clone(), neg);
            let mut done = echo.feed(&leftover)?;
            let mut buf = vec![0u8; 16 * 1024];
            while done == 0 {
                let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("server closed".to_string());
                }
                done += echo.feed(&buf[..n])?;
            }
            Ok::<_, String>(stream)
        }));
        if pending.len() >= 256 || i + 1 == idle {
            while let Some(h) = pending.pop_front() {
                held.push(h.await.map_err(|e| e.to_string())??);
            }
        }
    }
    println!("READY {}", held.len());
    // Hold until stdin closes (the driver reads the server's RSS meanwhile).
    tokio::task::spawn_blocking(|| {
        let mut sink = [0u8; 64];
        while matches!(io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    })
    .await
    .map_err(|e| e.to_string())?;
    drop(held);
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let local = tokio::task::LocalSet::new();
    let res = local.block_on(&rt, async move {
        if args.idle > 0 { run_idle(args).await } else { run_load(args).await }
    });
    match res {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("ws-loadgen: {e}");
            std::process::exit(1);
        }
    }
}
