//! The core of the WebSocket echo load generator behind `ws bench` (crate `ws-command`) and
//! `bench/loadgen` (`cargo xtask bench`).
//!
//! Built to stay out of the way of the server it measures:
//! - raw tokio TCP on a current-thread runtime (one core), the opening handshake written by hand;
//! - every frame is encoded, masked (and, with `deflate`, compressed) once, before the run;
//!   sending N frames is one `write_all` of a slice of a pre-built buffer;
//! - with `deflate`, the client offers `client_max_window_bits` as browsers do and compresses
//!   a pool of distinct JSON messages with context takeover (one compressor over the pool, in
//!   sending order, unless the server asks for `client_no_context_takeover`), so that neither
//!   side sees the same message twice within its window;
//! - each connection keeps `inflight` messages in flight (a reader task returns credits to a
//!   writer task), and echoes are matched to sends in FIFO order for the round-trip latency;
//! - echoes are parsed in a streaming way (no per-message buffering); the first echo of each
//!   connection (every message of the pool's first cycle) is compared byte for byte, the others
//!   by opcode and length. With `deflate` every echo is really inflated, with one persistent raw
//!   inflater per connection, and the bytes on the wire are counted both ways.
//!
//! [`run_load`] measures throughput and latency into a [`Report`]; [`run_idle`] opens many
//! connections and holds them; [`run_burst`] makes many connections busy at once, then holds
//! them quiet; [`run_broadcast`] measures a fan-out server (many receivers, one sender);
//! [`run_soak`] keeps thousands of connections coming and going for a long time
//! (`cargo xtask soak`). All run on a [`tokio::task::LocalSet`] ([`block_on`]).
//! [`hold`] holds many connections from several source addresses (the bench's scale part).

pub mod hold;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, Read as _};
use std::rc::Rc;
use std::time::{Duration, Instant};
use std::{error, fmt};

use base64::Engine as _;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Semaphore;

mod broadcast;
mod burst;
mod soak;
pub use broadcast::{BroadcastOptions, BroadcastReport, json_message, run_broadcast};
pub use burst::run_burst;
pub use soak::{SoakOptions, SoakReport, SoakSecond, run_soak};

/// What each message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Payload {
    /// JSON-like text that compresses like real application messages (text frames).
    #[default]
    Json,
    /// Pseudo-random bytes: incompressible, sent as binary frames.
    Random,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// `host:port` to connect to.
    pub addr: String,
    /// The `Host` header; `addr` when `None`.
    pub host: Option<String>,
    /// The request target, e.g. `/`.
    pub path: String,
    /// Connections opened before the run.
    pub conns: usize,
    /// Bytes per message (uncompressed).
    pub size: usize,
    /// What the messages carry.
    pub payload: Payload,
    /// Send a JSON payload as binary frames (random payloads always are).
    pub binary: bool,
    /// Messages in flight per connection; 0 picks 2..=16 from `size`.
    pub inflight: usize,
    /// Seconds of load before measuring.
    pub warmup: f64,
    /// Seconds measured.
    pub duration: f64,
    /// Offer permessage-deflate and send compressed frames, a pool of distinct messages
    /// compressed with context takeover.
    pub deflate: bool,
    /// With `deflate`, also offer `client_no_context_takeover`: every message compressed on its
    /// own, so that the server keeps no inflate window between messages (what `ws-load` did
    /// before it sent as browsers do).
    pub client_no_context_takeover: bool,
    /// The server's process id, to report its CPU time over the measured window.
    pub server_pid: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8765".into(),
            host: None,
            path: "/".into(),
            conns: 1,
            size: 20,
            payload: Payload::Json,
            binary: false,
            inflight: 0,
            warmup: 0.5,
            duration: 2.0,
            deflate: false,
            client_no_context_takeover: false,
            server_pid: None,
        }
    }
}

impl Options {
    /// The permessage-deflate offer for these options (none without `deflate`).
    fn offer(&self) -> Option<&'static str> {
        match (self.deflate, self.client_no_context_takeover) {
            (false, _) => None,
            (true, false) => Some(OFFER_BROWSER),
            (true, true) => Some(OFFER_NO_CONTEXT),
        }
    }

    /// Messages in flight per connection, `inflight` or the default for `size`.
    pub fn inflight(&self) -> usize {
        if self.inflight > 0 {
            return self.inflight;
        }
        // Enough to keep the pipe full, bounded so that 64 connections x 1 MiB stay sane.
        ((4 << 20) / self.size.max(1)).clamp(2, 16)
    }
}

/// Why a run failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connection could not be opened.
    Connect {
        /// `host:port`.
        addr: String,
        /// Why (refused, unreachable...).
        source: io::Error,
    },
    /// The opening handshake failed (a non-101 answer, a bad accept key, no deflate...).
    Handshake {
        /// `host:port`.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// Some connections failed during the run (the first failure is kept).
    Connections {
        /// How many failed.
        failed: usize,
        /// The first failure.
        first: String,
    },
    /// No echo came back during the measured window.
    NoEcho,
    /// Anything else (a task panicked, stdin failed).
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect { addr, source } => write!(f, "connect {addr}: {source}"),
            Self::Handshake { addr, source } => write!(f, "connect {addr}: {source}"),
            Self::Connections { failed, first } => write!(f, "{failed} connection(s) failed, first: {first}"),
            Self::NoEcho => f.write_str("no echo received during the measurement"),
            Self::Other(e) => f.write_str(e),
        }
    }
}

impl error::Error for Error {
    fn source(&self) -> Option<&(dyn error::Error + 'static)> {
        match self {
            Self::Connect { source, .. } | Self::Handshake { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Where a run is, for a live progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Since the connections were up (warm-up included).
    pub elapsed: Duration,
    /// Echoes received so far, warm-up included.
    pub echoes: u64,
    /// Whether the measured window has begun.
    pub measuring: bool,
}

/// The result of [`run_load`]. Latencies are round trips, send to echo, in microseconds.
#[derive(Debug, Clone)]
pub struct Report {
    /// Echoes received in the measured window.
    pub msgs: u64,
    /// The measured window, in seconds.
    pub secs: f64,
    /// Echoes per second.
    pub msg_per_s: f64,
    /// Payload megabytes (10^6) per second, one direction.
    pub mb_per_s: f64,
    /// Median latency.
    pub p50_us: f64,
    /// 90th percentile latency.
    pub p90_us: f64,
    /// 99th percentile latency.
    pub p99_us: f64,
    /// Largest latency.
    pub max_us: f64,
    /// Connections.
    pub conns: usize,
    /// Messages in flight per connection.
    pub inflight: usize,
    /// Bytes of one frame on the wire (the pool's average with `deflate`).
    pub frame_len: usize,
    /// Distinct messages sent in turn (1 without `deflate`).
    pub pool: usize,
    /// Bytes the client puts on the wire per payload byte (frame headers included; below 1 when
    /// compressed).
    pub sent_wire_ratio: f64,
    /// Bytes of the server's echoes on the wire per payload byte, in the measured window.
    pub echo_wire_ratio: f64,
    /// The load generator's CPU time (user, system seconds) over the window.
    pub loadgen_cpu: Option<[f64; 2]>,
    /// The server's, given `server_pid`.
    pub server_cpu: Option<[f64; 2]>,
    /// Connections that failed, with the first failure.
    pub errors: Vec<String>,
}

/// Runs `f` on a current-thread runtime (one core, as the load generator is meant to run) inside
/// a [`tokio::task::LocalSet`], as [`run_load`] and [`run_idle`] need.
pub fn block_on<F: Future>(f: F) -> io::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(tokio::task::LocalSet::new().block_on(&rt, f))
}

/// A compressible JSON-like payload of exactly `size` ASCII bytes (valid UTF-8); each `seed`
/// gives different records.
fn json_payload(size: usize, seed: u64) -> Vec<u8> {
    let mut out = String::with_capacity(size + 128);
    out.push('[');
    let mut i: u64 = seed * 100_000;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
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

/// `size` pseudo-random bytes (xorshift, from `seed`): incompressible, not UTF-8, so sent as
/// binary.
fn random_payload(size: usize, seed: u64) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    out
}

/// Raw deflate of one whole message with `c`, minus the `00 00 ff ff` tail; `c` keeps the
/// history for the next message (context takeover).
fn deflate_message(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let start = c.total_in() as usize;
    let mut out = Vec::with_capacity(data.len() + 64);
    loop {
        let before = c.total_in() as usize - start;
        c.compress_vec(&data[before..], &mut out, FlushCompress::Sync).expect("deflate");
        if c.total_in() as usize - start == data.len() && out.len() < out.capacity() {
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
    /// The pool's pre-encoded frames in sending order, the pool repeated so that `inflight`
    /// consecutive frames from any place in the pool are contiguous.
    frames: Vec<u8>,
    /// Where frame `j` of `frames` starts (and `j - 1` ends).
    offsets: Vec<usize>,
    /// The distinct uncompressed payloads, to check echoes against.
    messages: Vec<Vec<u8>>,
    /// Each payload as masked on the wire (what a raw TCP echo returns); empty with deflate.
    masked: Vec<Vec<u8>>,
    opcode: u8,
    /// Compressed frames (RSV1).
    deflate: bool,
    inflight: usize,
}

impl Plan {
    fn pool(&self) -> usize {
        self.messages.len()
    }

    /// `n` frames from the pool's `k`-th on, as one slice (`k < pool`, `n <= inflight`).
    fn frames_from(&self, k: usize, n: usize) -> &[u8] {
        &self.frames[self.offsets[k]..self.offsets[k + n]]
    }

    /// Bytes on the wire of one cycle through the pool.
    fn pool_wire(&self) -> usize {
        self.offsets[self.pool()] - self.offsets[0]
    }

    fn size(&self) -> usize {
        self.messages[0].len()
    }
}

/// Counters shared by the connection tasks (single-threaded runtime).
#[derive(Default)]
struct Stats {
    measuring: Cell<bool>,
    msgs: Cell<u64>,
    /// Echoes received since the start, warm-up included (for progress reports).
    total: Cell<u64>,
    samples: RefCell<Vec<u32>>,
    /// Bytes on the wire of the echoes counted in `msgs`.
    wire: Cell<u64>,
    errors: RefCell<Vec<String>>,
}

/// The permessage-deflate parameters the server accepted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Negotiated {
    deflate: bool,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// The window the client may compress with (15 unless the server limits it).
    client_max_window_bits: u8,
}

impl Negotiated {
    const NONE: Self = Self {
        deflate: false,
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        client_max_window_bits: 15,
    };

    /// What a server that accepts `o`'s offer as made negotiates, to encode frames before any
    /// connection is open: with `client_no_context_takeover` (the offer without a window),
    /// messages compressed alone in a 15-bit window are valid whatever the server answers.
    fn assumed(o: &Options) -> Self {
        Self { deflate: o.deflate, client_no_context_takeover: o.client_no_context_takeover, ..Self::NONE }
    }
}

/// What browsers offer: context takeover both ways, and a window the server may reduce.
const OFFER_BROWSER: &str = "permessage-deflate; client_max_window_bits";
/// The offer made before issue 22: the client compresses every message alone, in a 15-bit
/// window (the memory part's idle connections, broadcast receivers, the scale part, the soak).
const OFFER_NO_CONTEXT: &str = "permessage-deflate; client_no_context_takeover";

/// Opening handshake, offering the permessage-deflate parameters in `offer` (none: no offer).
async fn handshake(
    stream: &mut TcpStream,
    host: &str,
    path: &str,
    offer: Option<&str>,
) -> io::Result<(Negotiated, Vec<u8>)> {
    let mut key_bytes = [0u8; 16];
    let t = Instant::now().elapsed().as_nanos() as u64 ^ (std::process::id() as u64) << 32;
    for (i, b) in key_bytes.iter_mut().enumerate() {
        *b = (t >> ((i % 8) * 8)) as u8 ^ i as u8;
    }
    let key = base64::engine::general_purpose::STANDARD.encode(key_bytes);
    let deflate = offer.is_some();
    let ext = offer.map(|o| format!("Sec-WebSocket-Extensions: {o}\r\n")).unwrap_or_default();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
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
    let mut neg = Negotiated::NONE;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "sec-websocket-accept" {
            accept_ok = value == expected;
        } else if name == "sec-websocket-extensions" {
            for param in value.split(';').map(str::trim) {
                let (key, arg) = match param.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                    None => (param, None),
                };
                match key {
                    "permessage-deflate" => neg.deflate = true,
                    "server_no_context_takeover" => neg.server_no_context_takeover = true,
                    "client_no_context_takeover" => neg.client_no_context_takeover = true,
                    "client_max_window_bits" => {
                        let bits = arg.and_then(|v| v.parse::<u8>().ok()).filter(|b| (8..=15).contains(b));
                        let bits = bits.ok_or_else(|| {
                            io::Error::other(format!("bad client_max_window_bits in `{value}`"))
                        })?;
                        // zlib's raw deflate has no 8-bit window; 9 bits is what it uses instead.
                        neg.client_max_window_bits = bits.max(9);
                    }
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
    /// Compare the current message's bytes to the payload (the pool's first cycle only).
    verify: bool,
    /// Messages received so far: the next one echoes `plan.messages[received % pool]`.
    received: u64,
    /// Bytes on the wire (headers and payload) of the current message so far.
    wire: u64,
    /// Bytes on the wire of the messages completed since the last [`EchoReader::take_wire`].
    wire_done: u64,
    /// The current frame is masked (raw TCP echo): compare with the masked bytes we sent.
    masked: bool,
    /// Accept pings and a close frame (the soak's long-lived connections) instead of failing.
    control: bool,
    /// The control frame being read: its opcode and payload so far.
    control_frame: Option<(u8, Vec<u8>)>,
    /// Payloads of the pings received, to be answered.
    pings: Vec<Vec<u8>>,
    /// The server's close frame, when one came: its code (1005 when it has none).
    close: Option<u16>,
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
            received: 0,
            wire: 0,
            wire_done: 0,
            masked: false,
            control: false,
            control_frame: None,
            pings: Vec::new(),
            close: None,
        }
    }

    /// A reader that takes pings and close frames in its stride (see [`EchoReader::control`]).
    /// Its inflate buffer is smaller: thousands of these live at once.
    fn with_control(plan: Rc<Plan>, neg: Negotiated) -> Self {
        Self { control: true, inflate_out: vec![0; 16 * 1024], ..Self::new(plan, neg) }
    }

    /// Consumes `data`; returns the number of echoes completed.
    fn feed(&mut self, mut data: &[u8]) -> Result<usize, String> {
        let mut done = 0;
        while !data.is_empty() {
            if self.remaining == 0 && self.hdr_needed() > 0 {
                let need = self.hdr_needed();
                let take = need.min(data.len());
                self.hdr.extend_from_slice(&data[..take]);
                self.wire += take as u64;
                data = &data[take..];
                if self.hdr_needed() > 0 {
                    continue; // extended length / mask key bytes follow
                }
                self.start_frame()?;
                if self.remaining == 0 && self.finish_frame()? {
                    done += 1;
                }
                continue;
            }
            let take = (self.remaining.min(data.len() as u64)) as usize;
            match &mut self.control_frame {
                Some((_, body)) => body.extend_from_slice(&data[..take]),
                None => self.payload_bytes(&data[..take], false)?,
            }
            self.wire += take as u64;
            data = &data[take..];
            self.remaining -= take as u64;
            if self.remaining == 0 && self.finish_frame()? {
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
                self.verify = self.received < self.plan.pool() as u64;
            }
            8 | 9 if self.control => {
                if len > 125 || !self.fin {
                    return Err(format!("bad control frame (opcode {opcode}, {len} bytes)"));
                }
                self.control_frame = Some((opcode, Vec::with_capacity(len as usize)));
            }
            8 => return Err("server sent close".into()),
            9 | 10 => return Err("unexpected ping/pong".into()),
            _ => return Err(format!("unexpected opcode {opcode}")),
        }
        Ok(())
    }

    /// Handles the end of a data or control frame; true when it completed a message.
    fn finish_frame(&mut self) -> Result<bool, String> {
        let Some((opcode, body)) = self.control_frame.take() else {
            return self.end_frame();
        };
        if opcode == 9 {
            self.pings.push(body);
        } else {
            self.close = Some(body.get(..2).map_or(1005, |c| u16::from_be_bytes([c[0], c[1]])));
        }
        Ok(false)
    }

    /// Handles the end of a data frame; true when it completed a message.
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
        if self.msg_len != self.plan.size() {
            return Err(format!("echo of {} bytes, sent {}", self.msg_len, self.plan.size()));
        }
        self.received += 1;
        self.wire_done += std::mem::take(&mut self.wire);
        Ok(true)
    }

    /// Bytes on the wire of the messages completed since the last call.
    fn take_wire(&mut self) -> u64 {
        std::mem::take(&mut self.wire_done)
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
            let k = (self.received % self.plan.pool() as u64) as usize;
            let expected = if self.masked { &self.plan.masked[k] } else { &self.plan.messages[k] };
            let want = expected.get(at..at + bytes.len());
            if want != Some(bytes) {
                return Err(format!("echo differs from the message sent (at byte {at})"));
            }
        }
        Ok(())
    }
}

async fn open(o: &Options) -> Result<(TcpStream, Negotiated, Vec<u8>), Error> {
    let connect = |source| Error::Connect { addr: o.addr.clone(), source };
    let mut stream = TcpStream::connect(&o.addr).await.map_err(connect)?;
    stream.set_nodelay(true).map_err(connect)?;
    let host = o.host.as_deref().unwrap_or(&o.addr);
    let (neg, leftover) = handshake(&mut stream, host, &o.path, o.offer())
        .await
        .map_err(|source| Error::Handshake { addr: o.addr.clone(), source })?;
    Ok((stream, neg, leftover))
}

/// A masked close frame with code 1000 (a zero mask is a valid mask).
const CLOSE_1000: [u8; 8] = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];

async fn writer(
    mut w: OwnedWriteHalf,
    plan: Rc<Plan>,
    credits: Rc<Semaphore>,
    sent: Rc<RefCell<VecDeque<Instant>>>,
) {
    // The pool's next message.
    let mut next = 0;
    loop {
        let Ok(permit) = credits.acquire().await else {
            // The run is over (credits closed): close politely, 1000, so the server sees a
            // normal closure rather than a dropped connection.
            let _ = w.write_all(&CLOSE_1000).await;
            return;
        };
        permit.forget();
        let extra = credits.available_permits().min(plan.inflight - 1);
        let k = next;
        if extra > 0 {
            if let Ok(p) = credits.try_acquire_many(extra as u32) {
                p.forget();
            }
        }
        let n = 1 + extra;
        next = (k + n) % plan.pool();
        let now = Instant::now();
        sent.borrow_mut().extend(std::iter::repeat_n(now, n));
        if w.write_all(plan.frames_from(k, n)).await.is_err() {
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
        let wire = echo.take_wire();
        if done > 0 {
            let now = Instant::now();
            let mut q = sent.borrow_mut();
            stats.total.set(stats.total.get() + done as u64);
            if stats.measuring.get() {
                let mut samples = stats.samples.borrow_mut();
                for t in q.drain(..done) {
                    samples.push(((now - t).as_nanos() / 100).min(u32::MAX as u128) as u32);
                }
                stats.msgs.set(stats.msgs.get() + done as u64);
                stats.wire.set(stats.wire.get() + wire);
            } else {
                q.drain(..done);
            }
            drop(q);
            credits.add_permits(done);
        }
    }
}

/// The deflate pool's length in bytes, at least: far beyond the largest window (32 KiB), so that
/// no message is found whole in either side's history when the pool starts over.
const POOL_BYTES: usize = 256 << 10;

/// Distinct messages sent in turn: one uncompressed (the content does not change the work),
/// with deflate enough for [`POOL_BYTES`], 8 to 4096.
fn pool_len(o: &Options) -> usize {
    if o.deflate { POOL_BYTES.div_ceil(o.size.max(1)).clamp(8, 4096) } else { 1 }
}

/// Encodes the run's messages once, for the parameters `neg` the server accepted.
fn build_plan(a: &Options, neg: &Negotiated) -> Plan {
    build_plan_with_pool(a, neg, pool_len(a))
}

/// [`build_plan`] with `pool` distinct messages (at least 1).
fn build_plan_with_pool(a: &Options, neg: &Negotiated, pool: usize) -> Plan {
    let messages: Vec<Vec<u8>> = (0..pool.max(1) as u64)
        .map(|seed| match a.payload {
            Payload::Json => json_payload(a.size, seed),
            Payload::Random => random_payload(a.size, seed),
        })
        .collect();
    let opcode = if a.binary || a.payload == Payload::Random { 2 } else { 1 };
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    // One compressor over the pool in sending order: message k refers back to messages before
    // it, as in a browser's stream. Looping over the pool stays valid for the server's inflater:
    // every back-reference points at the same bytes in the repeated sequence.
    let mut compressor = a
        .deflate
        .then(|| Compress::new_with_window_bits(Compression::default(), false, neg.client_max_window_bits));
    let encoded: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| match &mut compressor {
            Some(c) => {
                if neg.client_no_context_takeover {
                    c.reset();
                }
                encode_frame(opcode, true, &deflate_message(c, m), mask)
            }
            None => encode_frame(opcode, false, m, mask),
        })
        .collect();
    let masked =
        encoded.iter().map(|f| if a.deflate { Vec::new() } else { f[f.len() - a.size..].to_vec() }).collect();
    let inflight = a.inflight();
    let copies = 1 + inflight.div_ceil(encoded.len());
    let mut frames = Vec::with_capacity(copies * encoded.iter().map(Vec::len).sum::<usize>());
    let mut offsets = vec![0];
    for f in std::iter::repeat_n(&encoded, copies).flatten() {
        frames.extend_from_slice(f);
        offsets.push(frames.len());
    }
    Plan { frames, offsets, messages, masked, opcode, deflate: a.deflate, inflight }
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

/// Sleeps `secs`, reporting progress every 200 ms.
async fn wait(secs: f64, start: Instant, progress: &mut impl FnMut(Progress), stats: &Stats) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        let now = Instant::now();
        if now >= end {
            return;
        }
        tokio::time::sleep((end - now).min(Duration::from_millis(200))).await;
        progress(Progress {
            elapsed: start.elapsed(),
            echoes: stats.total.get(),
            measuring: stats.measuring.get(),
        });
    }
}

/// Opens `o.conns` connections, keeps each one's messages in flight for `o.warmup` then
/// `o.duration` seconds, and measures the second window. `progress` is called about five
/// times a second. Must run inside a [`tokio::task::LocalSet`] ([`block_on`]).
///
/// A connection failing to open fails the run; one failing later is counted in
/// [`Report::errors`].
pub async fn run_load(o: &Options, mut progress: impl FnMut(Progress)) -> Result<Report, Error> {
    let stats = Rc::new(Stats::default());
    let mut conns = Vec::with_capacity(o.conns);
    for _ in 0..o.conns {
        conns.push(open(o).await?);
    }
    // The frames are compressed for what the server accepted, the same on every connection.
    let neg = conns.first().map_or(Negotiated::NONE, |c| c.1);
    if let Some(other) = conns.iter().map(|c| c.1).find(|n| *n != neg) {
        return Err(Error::Other(format!(
            "the connections negotiated different parameters: {neg:?}, {other:?}"
        )));
    }
    let plan = Rc::new(build_plan(o, &neg));
    let (mut writers, mut readers) = (Vec::with_capacity(o.conns), Vec::with_capacity(o.conns));
    let mut all_credits = Vec::with_capacity(o.conns);
    for (stream, neg, leftover) in conns {
        let (r, w) = stream.into_split();
        let credits = Rc::new(Semaphore::new(plan.inflight));
        let sent = Rc::new(RefCell::new(VecDeque::with_capacity(plan.inflight * 2)));
        all_credits.push(credits.clone());
        writers.push(tokio::task::spawn_local(writer(w, plan.clone(), credits.clone(), sent.clone())));
        let echo = EchoReader::new(plan.clone(), neg);
        let stats2 = stats.clone();
        let size = o.size;
        readers.push(tokio::task::spawn_local(async move {
            if let Err(e) = reader(r, echo, leftover, credits, sent, stats2.clone(), size).await {
                stats2.errors.borrow_mut().push(e);
            }
        }));
    }
    let start = Instant::now();
    wait(o.warmup, start, &mut progress, &stats).await;
    stats.measuring.set(true);
    let cpu0 = (CpuTime::of("self"), o.server_pid.map(|pid| CpuTime::of(&pid.to_string())));
    let t0 = Instant::now();
    wait(o.duration, start, &mut progress, &stats).await;
    stats.measuring.set(false);
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = (CpuTime::of("self"), o.server_pid.map(|pid| CpuTime::of(&pid.to_string())));
    let errors = std::mem::take(&mut *stats.errors.borrow_mut());
    // The connections close with the run: each writer sends a close frame once its credits
    // are closed, then the readers stop (the server's close would count as an error).
    for credits in &all_credits {
        credits.close();
    }
    for w in writers {
        let _ = tokio::time::timeout(Duration::from_secs(1), w).await;
    }
    for r in readers {
        r.abort();
    }
    let used = |t0: Option<CpuTime>, t1: Option<CpuTime>| match (t0, t1) {
        (Some(t0), Some(t1)) => Some([t1.user - t0.user, t1.system - t0.system]),
        _ => None,
    };
    let msgs = stats.msgs.get();
    let payload_bytes = (msgs as f64 * o.size as f64).max(1.0);
    let mut samples = std::mem::take(&mut *stats.samples.borrow_mut());
    samples.sort_unstable();
    Ok(Report {
        msgs,
        secs,
        msg_per_s: msgs as f64 / secs,
        mb_per_s: msgs as f64 * o.size as f64 / secs / 1e6,
        p50_us: percentile(&samples, 0.50),
        p90_us: percentile(&samples, 0.90),
        p99_us: percentile(&samples, 0.99),
        max_us: percentile(&samples, 1.0),
        conns: o.conns,
        inflight: plan.inflight,
        frame_len: plan.pool_wire() / plan.pool(),
        pool: plan.pool(),
        sent_wire_ratio: plan.pool_wire() as f64 / (plan.pool() * o.size.max(1)) as f64,
        echo_wire_ratio: stats.wire.get() as f64 / payload_bytes,
        loadgen_cpu: used(cpu0.0, cpu1.0),
        server_cpu: used(cpu0.1.flatten(), cpu1.1.flatten()),
        errors,
    })
}

impl Report {
    /// The failure of a run that must be clean: a failed connection or no echo at all.
    pub fn check(&self) -> Result<(), Error> {
        if let Some(first) = self.errors.first() {
            return Err(Error::Connections { failed: self.errors.len(), first: first.clone() });
        }
        if self.msgs == 0 {
            return Err(Error::NoEcho);
        }
        Ok(())
    }
}

/// Opens `idle` connections, one echo each (none with `no_echo`), calls `ready` with how many
/// are up, then holds them until stdin closes. Must run inside a [`tokio::task::LocalSet`].
pub async fn run_idle(
    o: &Options,
    idle: usize,
    no_echo: bool,
    ready: impl FnOnce(usize),
) -> Result<(), Error> {
    let o = Rc::new(Options { inflight: 1, ..o.clone() });
    // The first connection tells what the frames are compressed for; every connection sends the
    // pool's first message, which refers to no earlier one.
    let mut first = if idle > 0 { Some(open(&o).await?) } else { None };
    let plan = Rc::new(build_plan(&o, &first.as_ref().map_or(Negotiated::NONE, |c| c.1)));
    let mut held = Vec::with_capacity(idle);
    // A few hundred handshakes at a time.
    let mut pending = VecDeque::new();
    for i in 0..idle {
        let (plan, o, conn) = (plan.clone(), o.clone(), first.take());
        pending.push_back(tokio::task::spawn_local(async move {
            let (mut stream, neg, leftover) = match conn {
                Some(c) => c,
                None => open(&o).await?,
            };
            if no_echo {
                return Ok::<_, Error>(stream);
            }
            let other = |e: io::Error| Error::Other(e.to_string());
            stream.write_all(plan.frames_from(0, 1)).await.map_err(other)?;
            let mut echo = EchoReader::new(plan.clone(), neg);
            let mut done = echo.feed(&leftover).map_err(Error::Other)?;
            let mut buf = vec![0u8; 16 * 1024];
            while done == 0 {
                let n = stream.read(&mut buf).await.map_err(other)?;
                if n == 0 {
                    return Err(Error::Other("server closed".into()));
                }
                done += echo.feed(&buf[..n]).map_err(Error::Other)?;
            }
            Ok(stream)
        }));
        if pending.len() >= 256 || i + 1 == idle {
            while let Some(h) = pending.pop_front() {
                held.push(h.await.map_err(|e| Error::Other(e.to_string()))??);
            }
        }
    }
    ready(held.len());
    // Hold until stdin closes (the driver reads the server's RSS meanwhile).
    tokio::task::spawn_blocking(|| {
        let mut sink = [0u8; 64];
        while matches!(io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    })
    .await
    .map_err(|e| Error::Other(e.to_string()))?;
    drop(held);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFLATE: Negotiated = Negotiated {
        deflate: true,
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        client_max_window_bits: 12,
    };

    fn plan(payload: Payload, deflate: bool) -> Rc<Plan> {
        let o = Options { size: 300, payload, deflate, inflight: 2, ..Options::default() };
        Rc::new(build_plan(&o, if deflate { &DEFLATE } else { &Negotiated::NONE }))
    }

    /// `cycles` times through the pool as a server echoes it: unmasked, same opcode and RSV1,
    /// compressed with context takeover by one server compressor.
    fn server_frames(plan: &Plan, cycles: usize) -> Vec<u8> {
        let mut c = Compress::new(Compression::default(), false);
        let mut out = Vec::new();
        for m in plan.messages.iter().cycle().take(cycles * plan.pool()) {
            let body = if plan.deflate { deflate_message(&mut c, m) } else { m.clone() };
            let mut f = encode_frame(plan.opcode, plan.deflate, &body, [0; 4]);
            // Unmasked: clear the mask bit and drop the (zero) mask key after the length.
            f[1] &= 0x7f;
            let at = match f[1] {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            f.drain(at..at + 4);
            out.extend_from_slice(&f);
        }
        out
    }

    #[test]
    fn payloads_have_the_size_asked_and_the_right_opcode() {
        let json = json_payload(1000, 3);
        assert_eq!(json.len(), 1000);
        assert!(std::str::from_utf8(&json).is_ok());
        assert_ne!(json, json_payload(1000, 4), "seeds give distinct messages");
        assert_eq!(random_payload(1001, 0).len(), 1001);
        assert_eq!(plan(Payload::Json, false).opcode, 1);
        assert_eq!(plan(Payload::Random, false).opcode, 2);
    }

    #[test]
    fn the_deflate_pool_is_distinct_messages_longer_than_any_window() {
        let p = plan(Payload::Json, true);
        assert!(p.pool() * p.size() >= POOL_BYTES);
        let mut distinct = p.messages.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), p.pool());
        assert_eq!(plan(Payload::Json, false).pool(), 1);
    }

    /// The server's inflater sees the pool again and again: every frame, the repeated ones
    /// included, must inflate to its message with one persistent inflater (context takeover).
    #[test]
    fn looping_over_the_compressed_pool_inflates_to_the_messages() {
        let p = plan(Payload::Json, true);
        let mut inflater = Decompress::new_with_window_bits(false, DEFLATE.client_max_window_bits);
        let mut wire = 0;
        for j in 0..(p.offsets.len() - 1) {
            let frame = &p.frames[p.offsets[j]..p.offsets[j + 1]];
            assert_eq!(frame[0], 0xc1, "FIN, RSV1, text");
            let (len, at) = match frame[1] & 0x7f {
                126 => (u16::from_be_bytes([frame[2], frame[3]]) as usize, 4),
                n => (n as usize, 2),
            };
            let mask = &frame[at..at + 4];
            let mut body: Vec<u8> =
                frame[at + 4..].iter().enumerate().map(|(i, b)| b ^ mask[i & 3]).collect();
            assert_eq!(body.len(), len);
            body.extend_from_slice(&[0, 0, 0xff, 0xff]);
            let mut out = Vec::with_capacity(p.size() + 64);
            inflater.decompress_vec(&body, &mut out, FlushDecompress::Sync).expect("inflate");
            assert_eq!(out, p.messages[j % p.pool()], "frame {j}");
            if j < p.pool() {
                wire += frame.len();
            }
        }
        assert!(p.offsets.len() - 1 > p.pool(), "the pool repeats in the buffer");
        assert_eq!(wire, p.pool_wire());
        assert!(p.pool_wire() < p.pool() * p.size() / 2, "JSON compresses");
    }

    #[test]
    fn echoes_are_counted_byte_by_byte_and_inflated() {
        for (payload, deflate) in [(Payload::Json, false), (Payload::Random, false), (Payload::Json, true)] {
            let plan = plan(payload, deflate);
            let neg = if deflate { DEFLATE } else { Negotiated::NONE };
            let mut echo = EchoReader::new(plan.clone(), neg);
            let two = server_frames(&plan, 2);
            // Fed one byte at a time: headers and payloads split anywhere.
            let done: usize = two.chunks(1).map(|c| echo.feed(c).expect("valid echo")).sum();
            assert_eq!(done, 2 * plan.pool(), "{payload:?} deflate={deflate}");
            assert_eq!(echo.take_wire(), two.len() as u64);
        }
    }

    #[test]
    fn pings_and_close_are_taken_when_control_is_on() {
        let plan = plan(Payload::Json, false);
        let neg = || Negotiated::NONE;
        let ping = [0x89, 0x04, 1, 2, 3, 4];
        let close = [0x88, 0x02, 0x03, 0xf3];
        // An echo in two fragments with a ping between them, then a close frame (1011).
        let whole = server_frames(&plan, 1);
        let (head, body) = whole.split_at(4); // 300 bytes: 2-byte header + 2-byte length
        let cut = 100;
        let mut wire = vec![0x01, 126];
        wire.extend_from_slice(&(cut as u16).to_be_bytes());
        wire.extend_from_slice(&body[..cut]);
        wire.extend_from_slice(&ping);
        wire.extend_from_slice(&[0x80, 126]);
        wire.extend_from_slice(&((body.len() - cut) as u16).to_be_bytes());
        wire.extend_from_slice(&body[cut..]);
        wire.extend_from_slice(&close);
        assert_eq!(head[1], 126);
        let mut echo = EchoReader::with_control(plan.clone(), neg());
        let done: usize = wire.chunks(3).map(|c| echo.feed(c).expect("valid frames")).sum();
        assert_eq!(done, 1);
        assert_eq!(echo.pings, vec![vec![1, 2, 3, 4]]);
        assert_eq!(echo.close, Some(1011));
        // Without control, the same ping is an error (the throughput runs expect none).
        assert!(EchoReader::new(plan, neg()).feed(&ping).is_err());
    }

    #[test]
    fn a_different_echo_is_an_error() {
        let plan = plan(Payload::Json, false);
        let mut echo = EchoReader::new(plan.clone(), Negotiated::NONE);
        let mut frame = server_frames(&plan, 1);
        let last = frame.len() - 1;
        frame[last] ^= 1;
        assert!(echo.feed(&frame).is_err());
    }

    /// Within the pool's first cycle every message is compared, not only the first.
    #[test]
    fn a_later_message_of_the_pool_echoed_wrong_is_an_error() {
        let plan = plan(Payload::Json, true);
        let mut echo = EchoReader::new(plan.clone(), DEFLATE);
        let mut c = Compress::new(Compression::default(), false);
        let mut frames = Vec::new();
        for m in [&plan.messages[0], &plan.messages[0]] {
            let mut f = encode_frame(plan.opcode, true, &deflate_message(&mut c, m), [0; 4]);
            f[1] &= 0x7f;
            let at = if f[1] == 126 { 4 } else { 2 };
            f.drain(at..at + 4);
            frames.extend_from_slice(&f);
        }
        assert!(echo.feed(&frames).is_err(), "message 1 echoed as message 0");
    }
}
