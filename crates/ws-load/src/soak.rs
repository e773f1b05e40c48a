//! The soak load ([`run_soak`]): many connections that come and go for a long time, each with
//! its own message size, compression on or off, and fate (a polite close, a slow reader, a peer
//! that vanishes, one that goes silent and must be dropped by the server's keepalive).
//!
//! Connections echo one message at a time at a random pace rather than pipelining: the point is
//! a server under churn for a long time, and the latency of each echo, not its throughput.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::{
    CLOSE_1000, EchoReader, Error, Negotiated, Options, Payload, Plan, build_plan, encode_frame, open,
    percentile,
};

/// What a soak runs.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// `host:port` of the echo server.
    pub addr: String,
    /// Connections kept open at once (each slot reopens when its connection ends).
    pub conns: usize,
    /// How long the load runs (connections still open at the end then close).
    pub duration: Duration,
    /// The first connections open spread over this long, not all at once.
    pub ramp: Duration,
    /// Seed of the random choices (sizes, fates, lifetimes, pauses).
    pub seed: u64,
}

impl Default for SoakOptions {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8765".into(),
            conns: 10_000,
            duration: Duration::from_secs(60),
            ramp: Duration::from_secs(10),
            seed: 1,
        }
    }
}

/// Message sizes and how often each is picked (weights out of 100).
const SIZES: [(usize, u32); 5] = [(20, 40), (200, 25), (1024, 20), (16 * 1024, 13), (128 * 1024, 2)];
/// The shortest life of a connection.
const MIN_LIFE: Duration = Duration::from_secs(2);
/// Messages a slow reader sends before it stops reading for a while.
const SLOW_BURST: usize = 8;
/// An echo (or a slow reader's burst) not back within this is an error.
const ECHO_TIMEOUT: Duration = Duration::from_secs(30);
/// The closing handshake, ours then the server's close frame and its end of TCP.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a silent peer is held: past the server's `ping_interval` + `ping_timeout` (20 s
/// each at the defaults), with room for the closing handshake on a loaded machine.
const SILENT_HOLD: Duration = Duration::from_secs(55);

/// How a connection is meant to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Close with 1000 and wait for the server's close frame and end of TCP.
    Close,
    /// A burst of messages first, not read for a few seconds, then as `Close`.
    SlowReader,
    /// Drop the TCP connection without a close frame.
    Vanish,
    /// Stop reading and writing, keep the socket: the server's keepalive must drop it.
    Silent,
}

/// One second of the run, for [`run_soak`]'s callback.
#[derive(Debug, Clone, Copy)]
pub struct SoakSecond {
    /// Seconds since the start.
    pub t: u64,
    /// Echoes completed in that second (slow readers' bursts not included).
    pub echoes: u64,
    /// The 99th percentile of their round trips, in microseconds (0 without echoes).
    pub p99_us: f64,
    /// Connections open now.
    pub open: usize,
    /// Connections opened since the start.
    pub opened: u64,
    /// Unexpected errors since the start.
    pub errors: u64,
}

/// The end of a soak: what happened to the connections, by kind.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    /// Echoes completed, all connections, whole run.
    pub echoes: u64,
    /// Connections opened.
    pub opened: u64,
    /// Endings the soak provoked, and normal ones, by kind, with their counts.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Unexpected errors by kind: count and the first message.
    pub errors: BTreeMap<&'static str, (u64, String)>,
}

impl SoakReport {
    /// Unexpected errors, all kinds.
    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }
}

/// A connection's failure: its kind (a key of [`SoakReport::errors`]) and what happened.
struct Failure(&'static str, String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::Connect { .. } => Self("connect", e.to_string()),
            Error::Handshake { .. } => Self("handshake", e.to_string()),
            other => Self("other", other.to_string()),
        }
    }
}

fn io_failure(what: &str, e: std::io::Error) -> Failure {
    Failure("io", format!("{what}: {e}"))
}

/// State shared by the connection tasks (single-threaded runtime).
struct Shared {
    o: SoakOptions,
    end: Instant,
    /// One plan per (size, compression): frames pre-encoded, `SLOW_BURST` copies each.
    plans: Vec<(Rc<Plan>, u32)>,
    samples: RefCell<Vec<u32>>,
    echoes: Cell<u64>,
    open: Cell<usize>,
    opened: Cell<u64>,
    report: RefCell<SoakReport>,
}

impl Shared {
    fn outcome(&self, what: &'static str) {
        *self.report.borrow_mut().outcomes.entry(what).or_default() += 1;
    }

    fn error(&self, Failure(kind, msg): Failure) {
        let mut r = self.report.borrow_mut();
        let e = r.errors.entry(kind).or_insert_with(|| (0, msg));
        e.0 += 1;
    }
}

/// An open connection with its echo parser.
struct Conn {
    stream: TcpStream,
    echo: EchoReader,
    plan: Rc<Plan>,
    /// The pool's next message (each connection goes through the pool in order).
    next: usize,
    buf: Vec<u8>,
    /// No more pongs: after our close frame, or once we have gone silent.
    quiet: bool,
}

impl Conn {
    /// One read: returns the echoes it completed; answers the pings it brought; `Ok(None)` at
    /// the end of the stream.
    async fn read_some(&mut self) -> Result<Option<usize>, Failure> {
        let n = self.stream.read(&mut self.buf).await.map_err(|e| io_failure("read", e))?;
        if n == 0 {
            return Ok(None);
        }
        let done = self.echo.feed(&self.buf[..n]).map_err(|e| Failure("bad frame", e))?;
        let pings = std::mem::take(&mut self.echo.pings);
        for ping in pings.into_iter().filter(|_| !self.quiet) {
            let pong = encode_frame(0xA, false, &ping, [0x5a, 0x1c, 0x00, 0xe3]);
            self.stream.write_all(&pong).await.map_err(|e| io_failure("write pong", e))?;
        }
        Ok(Some(done))
    }

    /// Reads until `n` echoes are back; the server closing first is an error.
    async fn echoes(&mut self, mut n: usize) -> Result<(), Failure> {
        let wait = async {
            while n > 0 {
                match self.read_some().await? {
                    None => return Err(Failure("server closed", "end of stream during an echo".into())),
                    Some(done) => n = n.saturating_sub(done),
                }
                if let Some(code) = self.echo.close {
                    return Err(Failure("server closed", format!("close frame {code} during an echo")));
                }
            }
            Ok(())
        };
        tokio::time::timeout(ECHO_TIMEOUT, wait)
            .await
            .map_err(|_| Failure("timeout", format!("no echo within {ECHO_TIMEOUT:?}")))?
    }

    async fn send(&mut self, n: usize) -> Result<(), Failure> {
        let (k, n) = (self.next, n.min(self.plan.inflight));
        self.next = (k + n) % self.plan.pool();
        self.stream.write_all(self.plan.frames_from(k, n)).await.map_err(|e| io_failure("write", e))
    }

    /// The closing handshake: our 1000, then the server's close frame and end of stream.
    async fn close(mut self) -> Result<(), Failure> {
        self.stream.write_all(&CLOSE_1000).await.map_err(|e| io_failure("write close", e))?;
        self.quiet = true;
        let wait = async {
            loop {
                let eof = self.read_some().await?.is_none();
                match (self.echo.close, eof) {
                    (Some(1000), true) => return Ok(()),
                    (Some(1000), false) => {}
                    (Some(code), _) => return Err(Failure("close", format!("server closed with {code}"))),
                    (None, true) => {
                        return Err(Failure("close", "end of stream before the server's close frame".into()));
                    }
                    (None, false) => {}
                }
            }
        };
        tokio::time::timeout(CLOSE_TIMEOUT, wait)
            .await
            .map_err(|_| Failure("timeout", format!("closing handshake not done within {CLOSE_TIMEOUT:?}")))?
    }

    /// After [`SILENT_HOLD`] without reading: the server must have given up on us (its close
    /// frame, if it sent one, and the end of the stream are waiting in our socket buffer).
    async fn dropped_by_server(mut self) -> Result<&'static str, Failure> {
        self.quiet = true;
        let wait = async {
            loop {
                if self.read_some().await?.is_none() {
                    return Ok(match self.echo.close {
                        Some(1011) => "silent, dropped by the server's keepalive (1011)",
                        Some(_) => "silent, dropped by the server (other close code)",
                        None => "silent, dropped by the server (no close frame)",
                    });
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(5), wait).await {
            Ok(Err(Failure("io", e))) if e.contains("reset") => Ok("silent, reset by the server"),
            Ok(r) => r,
            Err(_) => {
                Err(Failure("keepalive", format!("a silent peer still connected after {SILENT_HOLD:?}")))
            }
        }
    }
}

/// Picks an index by weight.
fn weighted(rng: &mut fastrand::Rng, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let mut x = rng.u32(0..weights.clone().sum::<u32>());
    for (i, w) in weights.enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    0
}

/// One connection from open to end.
async fn lifetime(sh: &Shared, rng: &mut fastrand::Rng) -> Result<&'static str, Failure> {
    let plan = sh.plans[weighted(rng, sh.plans.iter().map(|p| p.1))].0.clone();
    let left = sh.end.saturating_duration_since(Instant::now());
    let life = Duration::from_millis(rng.u64(MIN_LIFE.as_millis() as u64..40_000)).min(left);
    // A silent peer is held SILENT_HOLD after its life: only when the run still has that long.
    let fate = match rng.u32(0..100) {
        0..8 => Fate::Vanish,
        8..12 if left > life + SILENT_HOLD + Duration::from_secs(5) => Fate::Silent,
        12..22 => Fate::SlowReader,
        _ => Fate::Close,
    };
    let opts = Options {
        addr: sh.o.addr.clone(),
        deflate: plan.deflate,
        client_no_context_takeover: true,
        ..Options::default()
    };
    let (stream, neg, leftover) = open(&opts).await?;
    sh.open.set(sh.open.get() + 1);
    sh.opened.set(sh.opened.get() + 1);
    let _open = scopeguard(|| sh.open.set(sh.open.get() - 1));
    let mut c = Conn {
        stream,
        echo: EchoReader::with_control(plan.clone(), neg),
        plan,
        next: 0,
        buf: vec![0; 16 * 1024],
        quiet: false,
    };
    c.echo.feed(&leftover).map_err(|e| Failure("bad frame", e))?;
    let until = Instant::now() + life;
    if fate == Fate::SlowReader {
        c.send(SLOW_BURST).await?;
        tokio::time::sleep(Duration::from_millis(rng.u64(2_000..6_000))).await;
        c.echoes(SLOW_BURST).await?;
    }
    loop {
        let pause = Duration::from_millis(rng.u64(500..5_000));
        if Instant::now() + pause >= until {
            break;
        }
        tokio::time::sleep(pause).await;
        let t = Instant::now();
        c.send(1).await?;
        c.echoes(1).await?;
        let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
        sh.samples.borrow_mut().push(us);
        sh.echoes.set(sh.echoes.get() + 1);
    }
    match fate {
        Fate::Close => c.close().await.map(|()| "closed (1000 both ways)"),
        Fate::SlowReader => c.close().await.map(|()| "slow reader, then closed (1000)"),
        Fate::Vanish => Ok("vanished (TCP closed without a close frame)"),
        Fate::Silent => {
            tokio::time::sleep(SILENT_HOLD).await;
            c.dropped_by_server().await
        }
    }
}

/// Runs `f` on drop.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

async fn slot(sh: Rc<Shared>, id: usize) {
    let mut rng = fastrand::Rng::with_seed(sh.o.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ id as u64);
    let delay = sh.o.ramp.mul_f64(id as f64 / sh.o.conns.max(1) as f64);
    tokio::time::sleep(delay).await;
    // No new connection in the last moments: lives cut that short would turn the end of the run
    // into a storm of handshakes.
    while sh.end.saturating_duration_since(Instant::now()) > MIN_LIFE {
        match lifetime(&sh, &mut rng).await {
            Ok(outcome) => sh.outcome(outcome),
            Err(f) => {
                sh.error(f);
                // Do not spin on a server that refuses everything.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Runs the soak: `o.conns` connection slots for `o.duration`, then waits for the last
/// connections to end (silent peers may take `SILENT_HOLD` more). `each_second` gets the
/// run's figures once a second. Must run inside a [`tokio::task::LocalSet`] ([`crate::block_on`]).
pub async fn run_soak(o: &SoakOptions, mut each_second: impl FnMut(&SoakSecond)) -> SoakReport {
    let mut plans = Vec::new();
    for (i, &(size, weight)) in SIZES.iter().enumerate() {
        for deflate in [false, true] {
            // Compressed messages are JSON-like text; plain ones alternate text and random binary.
            let payload = if deflate || i % 2 == 0 { Payload::Json } else { Payload::Random };
            // Each message compressed on its own in a 15-bit window: valid whatever the server
            // answers to the offer (client_no_context_takeover, no client_max_window_bits).
            let opts = Options {
                size,
                payload,
                deflate,
                client_no_context_takeover: true,
                inflight: SLOW_BURST,
                ..Options::default()
            };
            plans.push((Rc::new(build_plan(&opts, &Negotiated::assumed(&opts))), weight));
        }
    }
    let start = Instant::now();
    let sh = Rc::new(Shared {
        o: o.clone(),
        end: start + o.duration,
        plans,
        samples: RefCell::default(),
        echoes: Cell::new(0),
        open: Cell::new(0),
        opened: Cell::new(0),
        report: RefCell::default(),
    });
    let slots: Vec<_> = (0..o.conns).map(|id| tokio::task::spawn_local(slot(sh.clone(), id))).collect();
    let done = Rc::new(Cell::new(false));
    let ticker = {
        let (sh, done) = (sh.clone(), done.clone());
        async move {
            let mut every = tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(1),
                Duration::from_secs(1),
            );
            let mut t = 0;
            while !done.get() {
                every.tick().await;
                t += 1;
                let mut samples = std::mem::take(&mut *sh.samples.borrow_mut());
                samples.sort_unstable();
                let r = sh.report.borrow();
                each_second(&SoakSecond {
                    t,
                    echoes: samples.len() as u64,
                    // `percentile` reads tenths of a microsecond.
                    p99_us: percentile(&samples, 0.99) * 10.0,
                    open: sh.open.get(),
                    opened: sh.opened.get(),
                    errors: r.error_count(),
                });
            }
        }
    };
    let all = async {
        for s in slots {
            if let Err(e) = s.await {
                sh.error(Failure("other", format!("connection task: {e}")));
            }
        }
        done.set(true);
    };
    tokio::join!(ticker, all);
    let mut report = sh.report.take();
    report.echoes = sh.echoes.get();
    report.opened = sh.opened.get();
    report
}
