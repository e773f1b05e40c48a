//! `cargo xtask bench`: echo throughput, latency and idle memory of the ws `echo_server`
//! example against other Rust stacks (and Python `websockets` / Node `ws` with compression),
//! measured in the same run, interleaved, and written as markdown to `docs/performance.md`.
//!
//! The load generator (`bench/loadgen`) and the peer servers (`bench/peers`) live in a separate
//! cargo workspace under `bench/`, so that `cargo test --workspace` never builds the peers.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{self, Result, fmt_dur, say};

const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--rounds N] [--duration SECS] [--only PARTS] [--out FILE]
                         [--no-build] [--baseline BIN] [--no-spin]

Builds the ws echo_server example, bench/loadgen and bench/peers (release), then runs:
  throughput  uncompressed echo: 20 B, 1 KiB, 64 KiB, 1 MiB x 1 and 64 connections x text/binary,
              against ws, tokio-tungstenite, fastwebsockets, ratchet, sockudo-ws,
              tokio-websockets (each peer's fastest documented echo loop; tokio-tungstenite and
              sockudo-ws also with a flush per message), raw TCP echo
  deflate     permessage-deflate on, a pool of distinct JSON messages compressed with context
              takeover as browsers do: ws, ratchet+deflate, Python websockets, Node ws
              (installed by tests-interop/setup.sh); speed and bytes on the wire
  memory      server RSS per idle connection: 2,000 after the handshake only, 2,000 and 10,000
              after one echo each; read 3 s after the last echo. Then the burst columns
  burst       (also part of memory) 300 compressed connections each echo 20 different 16 KiB
              JSON messages at once: server RSS at its peak, 3 s after the burst (idle), and 3 s
              after all closed, against the RSS before they opened
  broadcast   fan-out of 1 KiB JSON messages to 1,000 and 10,000 connections (quick: 1,000),
              with and without compression: ws Broadcaster, a per-connection loop on ws, Python
              websockets broadcast(); then server RSS with 100 clients that never read
              (xtask/src/bench_broadcast.rs)
  scale       (only with --only) ~19,000 idle connections on one server process, 100,000 over
              6 processes sharing the port: handshake rate and CPU, RSS per connection, probe
              latency; writes docs/scale.md (quick: <target>/bench/scale-quick.md)

  --quick         fewer cells, 1 round, short runs, 2,000 connections only; writes
                  <target>/bench/quick.md unless --out is given
  --rounds N      rounds of every cell (default 3; servers interleaved, order rotated per round)
  --duration S    measured seconds per run (default 1.5; quick 0.8), after a 0.5 s warm-up
  --only PARTS    comma-separated subset of throughput,deflate,memory,burst,broadcast,
                  scale
                  (`--only burst --quick`: the burst columns of ws alone, about 20 s per server
                  once built)
  --server-env K=V  set this environment variable for ws's servers (repeatable), e.g.
                  GLIBC_TUNABLES=glibc.malloc.arena_max=1 to measure an allocator setting
  --features F    build the ws echo_server with these cargo features (e.g. jemalloc)
  --rows ROWS     scale part: only these rows, comma-separated, each `single:SERVER` (one
                  server process) or `multi:SERVER` (100,000 over 6), SERVER being ws,
                  ws-deflate, tokio-tungstenite, fastwebsockets, ratchet, ratchet-deflate,
                  sockudo-ws or raw-tcp-echo; written to <target>/bench/scale-rows.md
                  (e.g. `--only scale --rows multi:ws-deflate`)
  --out FILE      where the markdown goes (default docs/performance.md; the part between
                  <!-- bench:begin --> and <!-- bench:end --> is replaced, the rest kept)
  --no-build      use the binaries already built
  --baseline BIN  also run this echo_server binary (another build of ours) in the throughput
                  cells, with its ratio to raw TCP and ours to it: two builds in one run (and in
                  the burst columns, with compression)
  --no-spin       do not keep the CPUs out of idle during the throughput and deflate parts
                  (by default one `ws-peers --spin` per CPU runs at SCHED_IDLE priority)";

/// Every server runs on a multi-thread tokio runtime with this many workers.
const SERVER_WORKERS: &str = "2";
/// File descriptor limit for the servers and the load generator (memory runs).
const NOFILE: u32 = 20_000;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Srv {
    Ours,
    /// `--baseline`: our echo_server from another build, to compare two builds in one run.
    Baseline,
    /// `--baseline` with compression (burst columns).
    BaselineDeflate,
    OursDeflate,
    OursLean,
    Tungstenite,
    TungsteniteFlush,
    FastWs,
    Ratchet,
    RatchetDeflate,
    Sockudo,
    SockudoFlush,
    TokioWebsockets,
    Raw,
    Python,
    PythonDeflate,
    Node,
    NodeDeflate,
}

impl Srv {
    fn label(self) -> &'static str {
        match self {
            Self::Ours => "ws",
            Self::Baseline => "ws (baseline build)",
            Self::BaselineDeflate => "ws (baseline build, deflate)",
            Self::OursDeflate => "ws (deflate)",
            Self::OursLean => "ws (lean deflate)",
            Self::Tungstenite => "tokio-tungstenite",
            Self::TungsteniteFlush => "tokio-tungstenite (flush per message)",
            Self::FastWs => "fastwebsockets",
            Self::Ratchet => "ratchet",
            Self::RatchetDeflate => "ratchet (deflate)",
            Self::Sockudo => "sockudo-ws",
            Self::SockudoFlush => "sockudo-ws (flush per message)",
            Self::TokioWebsockets => "tokio-websockets",
            Self::Raw => "raw TCP echo",
            Self::Python => "Python websockets",
            Self::PythonDeflate => "Python websockets (deflate)",
            Self::Node => "Node ws",
            Self::NodeDeflate => "Node ws (deflate)",
        }
    }

    fn is_peer(self) -> bool {
        !matches!(
            self,
            Self::Ours
                | Self::Baseline
                | Self::BaselineDeflate
                | Self::OursDeflate
                | Self::OursLean
                | Self::Raw
        )
    }

    /// One of ws's own servers (which `--server-env` applies to).
    fn is_ours(self) -> bool {
        matches!(
            self,
            Self::Ours | Self::Baseline | Self::BaselineDeflate | Self::OursDeflate | Self::OursLean
        )
    }

    /// A peer whose echo loop flushes after every message (its own examples' loop for
    /// fastwebsockets, ratchet and tokio-websockets).
    fn flushes_per_message(self) -> bool {
        matches!(
            self,
            Self::TungsteniteFlush
                | Self::SockudoFlush
                | Self::FastWs
                | Self::Ratchet
                | Self::TokioWebsockets
        )
    }
}

struct Bins {
    echo_server: PathBuf,
    baseline: Option<PathBuf>,
    loadgen: PathBuf,
    peers: PathBuf,
    python: PathBuf,
    node_path: PathBuf,
    interop: bool,
    /// `--server-env`: set for ws's servers.
    server_env: Vec<(String, String)>,
}

impl Bins {
    fn command(&self, srv: Srv, port: u16) -> Command {
        let addr = format!("127.0.0.1:{port}");
        let peers = |imp: &str| {
            let mut c = Command::new(&self.peers);
            c.args(["--impl", imp, &addr]);
            c
        };
        let interop = util::root().join("tests-interop");
        let python = |compress: bool| {
            let mut c = Command::new(&self.python);
            c.arg(interop.join("python/server.py")).args(["--port", &port.to_string()]);
            if !compress {
                c.arg("--no-compression");
            }
            c
        };
        let node = |compress: bool| {
            let mut c = Command::new("node");
            c.arg(interop.join("node/server.js")).args(["--port", &port.to_string()]);
            c.env("NODE_PATH", &self.node_path);
            if !compress {
                c.arg("--no-compression");
            }
            c
        };
        let mut c = match srv {
            Srv::Ours => {
                let mut c = Command::new(&self.echo_server);
                c.args([addr.as_str(), "--no-compression"]);
                c
            }
            Srv::Baseline => {
                let mut c = Command::new(self.baseline.as_ref().unwrap_or(&self.echo_server));
                c.args([addr.as_str(), "--no-compression"]);
                c
            }
            Srv::BaselineDeflate => {
                let mut c = Command::new(self.baseline.as_ref().unwrap_or(&self.echo_server));
                c.arg(&addr);
                c
            }
            Srv::OursDeflate => {
                let mut c = Command::new(&self.echo_server);
                c.arg(&addr);
                c
            }
            Srv::OursLean => {
                let mut c = Command::new(&self.echo_server);
                c.args([addr.as_str(), "--lean-compression"]);
                c
            }
            Srv::Tungstenite => peers("tungstenite"),
            Srv::TungsteniteFlush => peers("tungstenite-flush"),
            Srv::FastWs => peers("fastwebsockets"),
            Srv::Ratchet => peers("ratchet"),
            Srv::RatchetDeflate => peers("ratchet-deflate"),
            Srv::Sockudo => peers("sockudo"),
            Srv::SockudoFlush => peers("sockudo-flush"),
            Srv::TokioWebsockets => peers("tokio-websockets"),
            Srv::Raw => peers("raw"),
            Srv::Python => python(false),
            Srv::PythonDeflate => python(true),
            Srv::Node => node(false),
            Srv::NodeDeflate => node(true),
        };
        c.env("TOKIO_WORKER_THREADS", SERVER_WORKERS).current_dir(util::root());
        if srv.is_ours() {
            c.envs(self.server_env.iter().map(|(k, v)| (k, v)));
        }
        c
    }
}

/// A server process (killed on drop), run under `sh -c 'ulimit -n ..; exec ..'` so that its pid
/// is the server's own.
struct Server {
    srv: Srv,
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(bins: &Bins, srv: Srv, logs: &Path) -> Result<Self> {
        let port = util::free_port()?;
        let inner = bins.command(srv, port);
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("ulimit -n {NOFILE} 2>/dev/null; exec \"$0\" \"$@\""));
        cmd.arg(inner.get_program()).args(inner.get_args());
        for (k, v) in inner.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        cmd.current_dir(util::root());
        let log = logs.join(format!("{}-{port}.log", srv.label().replace([' ', '(', ')'], "")));
        let f = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let f2 = f.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", srv.label()))?;
        let mut s = Self { srv, port, child, log };
        s.wait_listening()?;
        Ok(s)
    }

    fn wait_listening(&mut self) -> Result {
        let start = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({st}) before listening:\n{}",
                    self.srv.label(),
                    util::tail(&self.log, 10)
                ));
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err(format!("{} did not listen within 20 s", self.srv.label()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// VmRSS in bytes, from /proc.
    fn rss(&self) -> Result<u64> {
        self.status("VmRSS")
    }

    /// VmRSS once it has settled: `SETTLE` from now, and then until it has moved by at most
    /// `STEADY_SLACK` over `STEADY_FOR` (at most `STEADY_MAX` more). An allocator that gives
    /// memory back on a timer (jemalloc's decay) is otherwise read in the middle of it: measured,
    /// ws with jemalloc still fell from 30-40 to 15 KiB per connection between 3 and 4 s after
    /// a burst, in steps a quarter to one second apart.
    fn settled_rss(&self) -> Result<u64> {
        std::thread::sleep(SETTLE);
        let start = Instant::now();
        let mut window = VecDeque::new();
        loop {
            let now = Instant::now();
            window.push_back((now, self.rss()?));
            while window.front().is_some_and(|&(at, _)| now - at > STEADY_FOR) {
                window.pop_front();
            }
            let (lo, hi) = window.iter().fold((u64::MAX, 0), |(lo, hi), &(_, v)| (lo.min(v), hi.max(v)));
            let full = window.front().is_some_and(|&(at, _)| now - at >= STEADY_FOR - STEADY_STEP);
            if (full && hi - lo <= STEADY_SLACK) || now - start >= STEADY_MAX {
                return Ok(window.back().map_or(hi, |&(_, v)| v));
            }
            std::thread::sleep(STEADY_STEP);
        }
    }

    /// A size from /proc/PID/status (VmRSS, VmHWM...), in bytes.
    fn status(&self, field: &str) -> Result<u64> {
        let path = format!("/proc/{}/status", self.child.id());
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| format!("no {field} in {path}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One busy loop per CPU at `SCHED_IDLE` priority (`taskset -c N chrt --idle 0 ws-peers --spin`)
/// while it lives. On a VM an idle vCPU halts, and waking it costs the hypervisor tens of µs: a
/// single connection's echoes leave both sides idle between messages, so those cells would
/// measure wake-ups more than servers. A `SCHED_IDLE` task runs only when nothing else wants the
/// CPU and is preempted as soon as something does, so the CPUs never halt, the measured
/// processes lose next to nothing, and their CPU times (from /proc) are their own.
#[derive(Default)]
struct Spinners {
    children: Vec<Child>,
    /// Why there are none, when they were asked for.
    error: Option<String>,
}

impl Spinners {
    fn start(peers: &Path) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut s = Self::default();
        for cpu in 0..cpus {
            let spawned = Command::new("taskset")
                .args(["-c", &cpu.to_string(), "chrt", "--idle", "0"])
                .arg(peers)
                .arg("--spin")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            match spawned {
                Ok(c) => s.children.push(c),
                Err(e) => {
                    s.error = Some(format!("cannot run taskset/chrt: {e}"));
                    break;
                }
            }
        }
        // taskset or chrt exits at once when refused (no such CPU, SCHED_IDLE not allowed).
        std::thread::sleep(Duration::from_millis(300));
        for c in &mut s.children {
            if let Ok(Some(st)) = c.try_wait() {
                s.error = Some(format!("a spinner exited ({st})"));
            }
        }
        if let Some(e) = &s.error {
            say(format!("bench: CPUs not kept out of idle: {e}"));
            s.stop();
        }
        s
    }

    fn stop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Clone, Copy)]
struct Cell {
    size: usize,
    conns: usize,
    binary: bool,
}

impl Cell {
    fn label(&self) -> String {
        format!("{} x{} {}", fmt_size(self.size), self.conns, if self.binary { "bin" } else { "text" })
    }
}

#[derive(Clone, Copy, Default)]
struct Sample {
    msg_per_s: f64,
    mb_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    /// Echoes in the measured window, and its length in seconds.
    msgs: f64,
    secs: f64,
    /// CPU seconds (user, system) the server and the load generator used in the window.
    server_cpu: Option<[f64; 2]>,
    loadgen_cpu: Option<[f64; 2]>,
    /// Bytes on the wire per payload byte: the client's frames, the server's echoes.
    sent_wire: Option<f64>,
    echo_wire: Option<f64>,
}

impl Sample {
    /// The server's CPU time per echo, in µs: (user + system, user).
    fn server_us_per_echo(&self) -> Option<(f64, f64)> {
        let [user, system] = self.server_cpu?;
        (self.msgs > 0.0).then(|| ((user + system) * 1e6 / self.msgs, user * 1e6 / self.msgs))
    }

    /// How many cores the server kept busy in the window.
    fn server_cores(&self) -> Option<f64> {
        self.server_cpu.map(|[u, s]| (u + s) / self.secs.max(1e-9))
    }

    /// The share of its one core the load generator used in the window.
    fn loadgen_busy(&self) -> Option<f64> {
        self.loadgen_cpu.map(|[u, s]| (u + s) / self.secs.max(1e-9))
    }
}

/// Results of one part: per cell, per server, the samples of every round (or an error).
type Results = BTreeMap<(usize, Srv), Vec<std::result::Result<Sample, String>>>;

struct Opts {
    quick: bool,
    rounds: usize,
    duration: f64,
    warmup: f64,
    parts: Vec<String>,
    /// `--rows`: the scale part's rows to run (all when empty).
    rows: Vec<String>,
    out: Option<PathBuf>,
    build: bool,
    baseline: Option<PathBuf>,
    spin: bool,
    server_env: Vec<(String, String)>,
    features: Vec<String>,
}

const PARTS: [&str; 6] = ["throughput", "deflate", "memory", "burst", "broadcast", "scale"];

pub fn run(args: &[String]) -> Result {
    let mut o = Opts {
        quick: false,
        rounds: 0,
        duration: 0.0,
        warmup: 0.5,
        parts: vec!["throughput".into(), "deflate".into(), "memory".into(), "broadcast".into()],
        rows: Vec::new(),
        out: None,
        build: true,
        baseline: None,
        spin: true,
        server_env: Vec::new(),
        features: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--quick" => o.quick = true,
            "--rounds" => o.rounds = val()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--duration" => o.duration = val()?.parse().map_err(|e| format!("--duration: {e}"))?,
            "--only" => o.parts = val()?.split(',').map(str::to_owned).collect(),
            "--out" => o.out = Some(PathBuf::from(val()?)),
            "--rows" => o.rows = val()?.split(',').map(str::to_owned).collect(),
            "--no-build" => o.build = false,
            "--baseline" => o.baseline = Some(PathBuf::from(val()?)),
            "--no-spin" => o.spin = false,
            "--features" => o.features.extend(val()?.split(',').map(str::to_owned)),
            "--server-env" => {
                let kv = val()?;
                let (k, v) = kv.split_once('=').ok_or_else(|| format!("--server-env {kv}: expected K=V"))?;
                o.server_env.push((k.to_owned(), v.to_owned()));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if let Some(p) = o.parts.iter().find(|p| !PARTS.contains(&p.as_str())) {
        return Err(format!("unknown part `{p}` ({})", PARTS.join(", ")));
    }
    if o.rounds == 0 {
        o.rounds = if o.quick { 1 } else { 3 };
    }
    if o.duration == 0.0 {
        o.duration = if o.quick { 0.8 } else { 1.5 };
    }
    if o.quick {
        o.warmup = 0.3;
    }
    let started = Instant::now();
    let meta = util::Metadata::load()?;
    let bench_target = meta.target_dir.join("bench");
    std::fs::create_dir_all(&bench_target).map_err(|e| e.to_string())?;
    let logs = bench_target.join("logs");
    util::fresh_dir(&logs)?;

    // The broadcast part, and the burst columns alone (`--only burst --quick`, ws only), need
    // only ws-loadgen from bench/, not the peer servers.
    let needs_peers = o.parts.iter().any(|p| p != "broadcast" && (p != "burst" || !o.quick));
    if o.build {
        let broadcast = o.parts.iter().any(|p| p == "broadcast");
        let examples: &[&str] =
            if broadcast { &["echo_server", "broadcast_bench"] } else { &["echo_server"] };
        meta.build_examples_with(examples, &o.features)?;
        let mut build = Command::new(util::cargo());
        build
            .args(["build", "--release", "--manifest-path"])
            .arg(util::root().join("bench/Cargo.toml"))
            .arg("--target-dir")
            .arg(&meta.target_dir);
        if !needs_peers {
            build.args(["-p", "ws-loadgen"]);
        }
        util::step_status(&mut build, "build bench/loadgen and bench/peers")?;
    }
    let home = match std::env::var_os("WS_INTEROP_HOME") {
        Some(h) => PathBuf::from(h),
        None => util::home()?.join(".cache").join("ws-interop"),
    };
    let interop = o.parts.iter().any(|p| p != "throughput" && p != "scale" && (p != "burst" || !o.quick))
        && {
            let setup = Command::new("bash")
                .arg(util::root().join("tests-interop/setup.sh"))
                .env("WS_INTEROP_HOME", &home)
                .status();
            match setup {
                Ok(s) if s.success() => true,
                other => {
                    say(format!("bench: interop peers unavailable ({other:?}); Python/Node skipped"));
                    false
                }
            }
        };
    let bins = Bins {
        echo_server: meta.example_bin("echo_server"),
        baseline: o.baseline.clone(),
        loadgen: meta.target_dir.join("release/ws-loadgen"),
        peers: meta.target_dir.join("release/ws-peers"),
        python: home.join("venv/bin/python"),
        node_path: home.join("node/node_modules"),
        interop,
        server_env: o.server_env.clone(),
    };
    for p in [&bins.echo_server, &bins.loadgen].into_iter().chain(needs_peers.then_some(&bins.peers)) {
        if !p.exists() {
            return Err(format!("{} is missing (run without --no-build)", p.display()));
        }
    }

    if o.parts.iter().any(|p| p == "scale") {
        let paths = crate::bench_scale::Paths {
            echo_server: bins.echo_server.clone(),
            loadgen: bins.loadgen.clone(),
            peers: bins.peers.clone(),
        };
        // Some rows only: their tables would replace the whole of docs/scale.md's.
        let out = if !o.rows.is_empty() {
            bench_target.join("scale-rows.md")
        } else if o.quick {
            bench_target.join("scale-quick.md")
        } else {
            util::root().join("docs/scale.md")
        };
        crate::bench_scale::run(&paths, o.quick, &o.rows, &logs, &out)?;
        if o.parts.iter().all(|p| p == "scale") {
            return Ok(());
        }
    }

    let mut md = String::new();
    // Kept until the deflate part is done; the memory and broadcast parts run without.
    let echo_parts = o.parts.iter().any(|p| p == "throughput" || p == "deflate");
    let spinners = if o.spin && echo_parts { Spinners::start(&bins.peers) } else { Spinners::default() };
    write_header(&mut md, &o, args, &spinners);
    if o.parts.iter().any(|p| p == "throughput") {
        let mut servers = vec![
            Srv::Ours,
            Srv::Tungstenite,
            Srv::TungsteniteFlush,
            Srv::FastWs,
            Srv::Ratchet,
            Srv::Sockudo,
            Srv::SockudoFlush,
            Srv::TokioWebsockets,
            Srv::Raw,
        ];
        if let Some(path) = &bins.baseline {
            if !path.exists() {
                return Err(format!("--baseline {}: no such file", path.display()));
            }
            servers.insert(1, Srv::Baseline);
        }
        let cells = throughput_cells(o.quick);
        say(format!(
            "bench: throughput, {} cells x {} servers x {} rounds",
            cells.len(),
            servers.len(),
            o.rounds
        ));
        let res = run_matrix(&bins, &o, &servers, &cells, false, &logs)?;
        write_throughput(&mut md, &servers, &cells, &res);
        write_cpu(&mut md, &servers, &cells, &res);
    }
    if o.parts.iter().any(|p| p == "deflate") {
        let mut servers = vec![Srv::OursDeflate, Srv::RatchetDeflate];
        if bins.interop {
            servers.extend([Srv::PythonDeflate, Srv::NodeDeflate]);
        }
        let cells = deflate_cells(o.quick);
        say(format!(
            "bench: deflate, {} cells x {} servers x {} rounds",
            cells.len(),
            servers.len(),
            o.rounds
        ));
        let res = run_matrix(&bins, &o, &servers, &cells, true, &logs)?;
        write_deflate(&mut md, &servers, &cells, &res);
    }
    drop(spinners);
    if o.parts.iter().any(|p| p == "memory") {
        let counts: &[Column] = if o.quick {
            &[(2_000, false), (2_000, true)]
        } else {
            &[(2_000, false), (2_000, true), (10_000, true)]
        };
        let mut servers = vec![
            (Srv::Ours, false),
            (Srv::OursDeflate, true),
            (Srv::OursLean, true),
            (Srv::Tungstenite, false),
            (Srv::FastWs, false),
            (Srv::Ratchet, false),
            (Srv::RatchetDeflate, true),
            (Srv::Sockudo, false),
            (Srv::Raw, false),
        ];
        if bins.interop {
            servers.extend([
                (Srv::Python, false),
                (Srv::PythonDeflate, true),
                (Srv::Node, false),
                (Srv::NodeDeflate, true),
            ]);
        }
        say(format!("bench: memory, {} servers x {counts:?} connections", servers.len()));
        let res = run_memory(&bins, &servers, counts, &logs);
        write_memory(&mut md, &servers, counts, &res);
    }
    if o.parts.iter().any(|p| p == "memory" || p == "burst") {
        let mut servers = vec![Srv::OursDeflate];
        if let Some(path) = &bins.baseline {
            if !path.exists() {
                return Err(format!("--baseline {}: no such file", path.display()));
            }
            servers.push(Srv::BaselineDeflate);
        }
        if !o.quick {
            servers.extend([Srv::OursLean, Srv::RatchetDeflate]);
            if bins.interop {
                servers.extend([Srv::PythonDeflate, Srv::NodeDeflate]);
            }
        }
        say(format!(
            "bench: memory after a burst, {} servers x {BURST_CONNS} connections x {BURST_ECHOES} echoes",
            servers.len()
        ));
        let res: Vec<_> = servers.iter().map(|&s| (s, burst_one(&bins, s, &logs))).collect();
        write_burst(&mut md, &res);
    }
    if o.parts.iter().any(|p| p == "broadcast") {
        let setup = crate::bench_broadcast::Setup {
            server: meta.example_bin("broadcast_bench"),
            loadgen: &bins.loadgen,
            python: bins.interop.then_some(bins.python.as_path()),
            logs: &logs,
            quick: o.quick,
            rounds: o.rounds,
        };
        crate::bench_broadcast::run(&setup, &mut md)?;
    }
    let _ = writeln!(md, "\nTotal bench time: {}.", fmt_dur(started.elapsed()));

    let out = o.out.clone().unwrap_or_else(|| {
        if o.quick { bench_target.join("quick.md") } else { util::root().join("docs/performance.md") }
    });
    write_output(&out, &md)?;
    say(format!("bench: wrote {} ({})", out.display(), fmt_dur(started.elapsed())));
    Ok(())
}

fn throughput_cells(quick: bool) -> Vec<Cell> {
    if quick {
        return vec![
            Cell { size: 20, conns: 64, binary: false },
            Cell { size: 1024, conns: 1, binary: true },
            Cell { size: 1024, conns: 64, binary: false },
            Cell { size: 64 << 10, conns: 64, binary: true },
        ];
    }
    let mut cells = Vec::new();
    for size in [20, 1024, 64 << 10, 1 << 20] {
        for conns in [1, 64] {
            for binary in [false, true] {
                cells.push(Cell { size, conns, binary });
            }
        }
    }
    cells
}

fn deflate_cells(quick: bool) -> Vec<Cell> {
    if quick {
        return vec![Cell { size: 1024, conns: 64, binary: false }];
    }
    vec![
        Cell { size: 1024, conns: 1, binary: false },
        Cell { size: 1024, conns: 64, binary: false },
        Cell { size: 64 << 10, conns: 1, binary: false },
        Cell { size: 64 << 10, conns: 64, binary: false },
    ]
}

/// Every cell against every server, `rounds` times, the servers interleaved and their order
/// rotated from one cell and round to the next.
fn run_matrix(
    bins: &Bins,
    o: &Opts,
    servers: &[Srv],
    cells: &[Cell],
    deflate: bool,
    logs: &Path,
) -> Result<Results> {
    let mut running = Vec::new();
    for &s in servers {
        running.push(Server::start(bins, s, logs)?);
    }
    let mut res = Results::new();
    let n = running.len();
    for round in 0..o.rounds {
        for (ci, cell) in cells.iter().enumerate() {
            let mut line = format!("  round {}/{} {:<16}", round + 1, o.rounds, cell.label());
            for k in 0..n {
                let server = &mut running[(k + ci + round) % n];
                let r = if server.alive() {
                    loadgen(bins, server, cell, deflate, o)
                } else {
                    Err(format!("server exited; see {}", server.log.display()))
                };
                let _ = write!(
                    line,
                    " {}={}",
                    server.srv.label(),
                    r.as_ref().map_or("ERR".into(), |s| fmt_rate(s.msg_per_s))
                );
                if let Err(e) = &r {
                    say(format!("    {} {}: {e}", server.srv.label(), cell.label()));
                }
                res.entry((ci, server.srv)).or_default().push(r);
            }
            say(line);
        }
    }
    Ok(res)
}

fn loadgen(
    bins: &Bins,
    server: &Server,
    cell: &Cell,
    deflate: bool,
    o: &Opts,
) -> std::result::Result<Sample, String> {
    let mut c = Command::new(&bins.loadgen);
    c.args(["--addr", &format!("127.0.0.1:{}", server.port)])
        .args(["--server-pid", &server.child.id().to_string()])
        .args(["--size", &cell.size.to_string(), "--conns", &cell.conns.to_string()])
        .args(["--warmup", &o.warmup.to_string(), "--duration", &o.duration.to_string()]);
    if cell.binary {
        c.arg("--binary");
    }
    if deflate {
        c.arg("--deflate");
    }
    let out = c.output().map_err(|e| format!("cannot run loadgen: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("loadgen output: {e}"))?;
    let f = |k: &str| v[k].as_f64().ok_or_else(|| format!("loadgen output lacks {k}"));
    // CPU times are absent (null) when /proc could not be read: the report then shows "–".
    let cpu = |k: &str| Some([v[k][0].as_f64()?, v[k][1].as_f64()?]);
    Ok(Sample {
        msg_per_s: f("msg_per_s")?,
        mb_per_s: f("mb_per_s")?,
        p50_us: f("p50_us")?,
        p99_us: f("p99_us")?,
        msgs: f("msgs")?,
        secs: f("secs")?,
        server_cpu: cpu("server_cpu"),
        loadgen_cpu: cpu("loadgen_cpu"),
        sent_wire: v["sent_wire_ratio"].as_f64(),
        echo_wire: v["echo_wire_ratio"].as_f64(),
    })
}

/// A memory column: connections, and whether each echoes one message (else handshake only).
type Column = (usize, bool);

/// Per server and column: (RSS after - RSS before) / N, or an error.
type MemResults = BTreeMap<(Srv, Column), std::result::Result<f64, String>>;

/// How long connections stay quiet before the RSS is read: longer than ws's `idle_release`
/// (1 s), so that every server is measured in its idle state.
const SETTLE: Duration = Duration::from_secs(3);
/// After `SETTLE`, the burst's readings wait until the RSS holds still (`Server::settled_rss`):
/// within this many bytes over `STEADY_FOR`, sampled every `STEADY_STEP`, for at most
/// `STEADY_MAX`.
const STEADY_SLACK: u64 = 64 << 10;
const STEADY_FOR: Duration = Duration::from_secs(2);
const STEADY_STEP: Duration = Duration::from_millis(250);
const STEADY_MAX: Duration = Duration::from_secs(10);

fn run_memory(bins: &Bins, servers: &[(Srv, bool)], counts: &[Column], logs: &Path) -> MemResults {
    let mut res = MemResults::new();
    for &(n, echo) in counts {
        for &(srv, deflate) in servers {
            let r = memory_one(bins, srv, deflate, (n, echo), logs);
            say(format!(
                "  {:<28} {n:>6} conns{}: {}",
                srv.label(),
                if echo { "" } else { " (handshake only)" },
                match &r {
                    Ok(b) => format!("{:.1} KiB/conn", b / 1024.0),
                    Err(e) => format!("ERR {e}"),
                }
            ));
            res.insert((srv, (n, echo)), r);
        }
    }
    res
}

fn memory_one(
    bins: &Bins,
    srv: Srv,
    deflate: bool,
    (n, echo): Column,
    logs: &Path,
) -> std::result::Result<f64, String> {
    let server = Server::start(bins, srv, logs)?;
    std::thread::sleep(Duration::from_millis(300));
    let before = server.rss()?;
    let mut args = vec!["--idle".to_owned(), n.to_string(), "--size".into(), "1024".into()];
    if deflate {
        // The memory figures keep the offer they were measured with before issue 22 (no inflate
        // window kept by the server between messages); browsers do keep one.
        args.extend(["--deflate".into(), "--client-no-context-takeover".into()]);
    }
    if !echo {
        args.push("--no-echo".into());
    }
    let result = match IdleLoad::start(bins, server.port, &args) {
        Ok(_load) => {
            std::thread::sleep(SETTLE);
            server.rss().map(|after| (after as f64 - before as f64) / n as f64)
        }
        Err(e) => Err(format!("loadgen did not get {n} connections up: {e}")),
    };
    drop(server);
    result
}

/// `ws-loadgen --idle`, started and past its `READY` line: its connections are open (and have
/// echoed, unless asked not to). Dropping it kills it.
struct IdleLoad(Child);

impl IdleLoad {
    /// Starts it with the fd limit raised and waits for `READY`; otherwise the error is its
    /// stderr.
    fn start(bins: &Bins, port: u16, args: &[String]) -> std::result::Result<Self, String> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("ulimit -n {NOFILE} 2>/dev/null; exec \"$0\" \"$@\""));
        cmd.arg(&bins.loadgen).args(["--addr", &format!("127.0.0.1:{port}")]).args(args);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run loadgen: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        if BufReader::new(stdout).read_line(&mut line).is_ok() && line.starts_with("READY") {
            return Ok(Self(child));
        }
        let _ = child.kill();
        let _ = child.wait();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        Err(err.trim().to_owned())
    }

    /// Closes its stdin: it closes every connection (1000) and exits.
    fn close(mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

impl Drop for IdleLoad {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The burst: this many connections, each echoing this many different messages of this size
/// (compressed, the client keeping its context) at the same time.
const BURST_CONNS: usize = 300;
const BURST_ECHOES: usize = 20;
const BURST_SIZE: usize = 16 << 10;

/// Server RSS around a burst, in bytes.
struct Burst {
    /// Before the connections opened.
    before: u64,
    /// The peak (VmHWM) during the burst.
    peak: u64,
    /// Settled (`Server::settled_rss`) after the last echo, every connection still open and quiet.
    idle: u64,
    /// Settled after every connection closed.
    closed: u64,
}

fn burst_one(bins: &Bins, srv: Srv, logs: &Path) -> std::result::Result<Burst, String> {
    let server = Server::start(bins, srv, logs)?;
    std::thread::sleep(Duration::from_millis(300));
    let before = server.rss()?;
    let args = [
        "--idle".to_owned(),
        BURST_CONNS.to_string(),
        "--burst".into(),
        BURST_ECHOES.to_string(),
        "--size".into(),
        BURST_SIZE.to_string(),
        "--deflate".into(),
    ];
    let measured = match IdleLoad::start(bins, server.port, &args) {
        Ok(load) => {
            let peak = server.status("VmHWM")?;
            let idle = server.settled_rss()?;
            load.close();
            Ok(Burst { before, peak, idle, closed: server.settled_rss()? })
        }
        Err(e) => Err(format!("loadgen did not finish the burst: {e}")),
    };
    say(format!(
        "  {:<28} {}",
        srv.label(),
        match &measured {
            Ok(b) => format!(
                "before {:.1} MiB, peak {:.1} KiB/conn, idle {:.1} KiB/conn, closed {:.1} MiB ({:.2}x)",
                b.before as f64 / 1048576.0,
                b.per_conn(b.peak),
                b.per_conn(b.idle),
                b.closed as f64 / 1048576.0,
                b.closed as f64 / b.before as f64
            ),
            Err(e) => format!("ERR {e}"),
        }
    ));
    measured
}

impl Burst {
    /// (RSS − RSS before) per connection, in KiB.
    fn per_conn(&self, rss: u64) -> f64 {
        (rss as f64 - self.before as f64) / BURST_CONNS as f64 / 1024.0
    }
}

// ---- reporting ----

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

/// One metric of every successful round that has it; `None` if no round has.
fn rounds(res: &Results, key: (usize, Srv), f: impl Fn(&Sample) -> Option<f64>) -> Option<Vec<f64>> {
    let v: Vec<f64> = res.get(&key)?.iter().filter_map(|r| r.as_ref().ok()).filter_map(f).collect();
    (!v.is_empty()).then_some(v)
}

/// Median of one metric over the successful rounds, with the spread (max - min) / median.
fn stat(res: &Results, key: (usize, Srv), f: impl Fn(&Sample) -> f64) -> Option<(f64, f64)> {
    let mut v = rounds(res, key, |x| Some(f(x)))?;
    let med = median(&mut v);
    let (lo, hi) = (v[0], v[v.len() - 1]);
    Some((med, if med > 0.0 { (hi - lo) / med } else { 0.0 }))
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn fmt_size(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

fn fmt_us(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.0} ms", x / 1000.0)
    } else if x >= 1000.0 {
        format!("{:.1} ms", x / 1000.0)
    } else {
        format!("{x:.0} µs")
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    let sh = |c: &str, a: &[&str]| {
        Command::new(c)
            .args(a)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "nproc {}, CPU {cpu}, kernel {}, {}",
        sh("nproc", &[]),
        sh("uname", &["-r"]),
        sh("rustc", &["--version"])
    )
}

fn write_header(md: &mut String, o: &Opts, args: &[String], spinners: &Spinners) {
    let cmd = if args.is_empty() {
        "cargo xtask bench".to_owned()
    } else {
        format!("cargo xtask bench {}", args.join(" "))
    };
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(md, "- Command: `{cmd}`");
    let _ = writeln!(md, "- Machine: {}", machine());
    let _ = writeln!(
        md,
        "- {} round(s) per cell, servers interleaved (order rotated per cell and round); each run {} s warm-up + {} s measured. \
         Cells show the median of the rounds and, after ±, the spread (max − min) / median.",
        o.rounds, o.warmup, o.duration
    );
    let _ = writeln!(
        md,
        "- Servers: multi-thread tokio runtime, {SERVER_WORKERS} workers (`TOKIO_WORKER_THREADS`), TCP_NODELAY; Python and Node are single-threaded. \
         Load generator: `bench/loadgen`, one current-thread runtime (one core), pre-encoded masked frames, \
         16 messages in flight per connection (4 at 1 MiB), round trips matched in FIFO order (latency includes the pipeline queue). \
         With permessage-deflate it offers `client_max_window_bits` as browsers do and sends a pool of distinct JSON messages \
         (256 KiB or more per cycle, longer than any window), compressed once before the run at zlib's default level with \
         context takeover in the window the server allows; every echo is inflated, the pool's first cycle compared byte for byte."
    );
    let echo_parts = o.parts.iter().any(|p| p == "throughput" || p == "deflate");
    let _ = if !echo_parts {
        Ok(())
    } else if !spinners.children.is_empty() {
        writeln!(
            md,
            "- CPUs kept out of idle during the throughput and deflate parts: one busy loop per CPU at `SCHED_IDLE` priority \
             (`ws-peers --spin`), which the measured processes preempt at once; without it the single-connection (x1) cells \
             measure the wake-up latency of halted vCPUs more than the servers."
        )
    } else {
        let why = spinners.error.as_deref().unwrap_or("`--no-spin`");
        writeln!(
            md,
            "- **CPUs allowed to idle** ({why}): on a VM the single-connection (x1) cells include the halt / wake-up latency of \
             idle vCPUs at every round trip and understate every server, the raw TCP echo included; compare them with care."
        )
    };
    let _ = writeln!(md, "- MB/s = echoed payload bytes per second (10⁶ B), one direction.\n");
}

fn cell_value(
    res: &Results,
    ci: usize,
    s: Srv,
    f: impl Fn(&Sample) -> f64,
    fmt: impl Fn(f64) -> String,
) -> String {
    match stat(res, (ci, s), f) {
        Some((m, spread)) => format!("{} ±{:.0}%", fmt(m), spread * 100.0),
        None => "error".into(),
    }
}

/// `a`'s messages/s over `b`'s, round by round (the two ran within seconds of each other, so
/// a change in the machine's load between rounds cancels out): the median of the per-round
/// ratios, with the lowest and the highest.
fn paired_ratio(res: &Results, ci: usize, a: Srv, b: Srv) -> Option<Ratio> {
    paired(res, ci, a, b, |x| Some(x.msg_per_s))
}

/// `f` of `a` over `f` of `b`, paired round by round as in [`paired_ratio`].
fn paired(res: &Results, ci: usize, a: Srv, b: Srv, f: impl Fn(&Sample) -> Option<f64>) -> Option<Ratio> {
    let (ra, rb) = (res.get(&(ci, a))?, res.get(&(ci, b))?);
    let mut v: Vec<f64> = ra
        .iter()
        .zip(rb)
        .filter_map(|(x, y)| match (x, y) {
            (Ok(x), Ok(y)) => Some((f(x)?, f(y)?)),
            _ => None,
        })
        .filter(|&(_, y)| y > 0.0)
        .map(|(x, y)| x / y)
        .collect();
    if v.is_empty() {
        return None;
    }
    let median = median(&mut v);
    Some(Ratio { median, low: v[0], high: v[v.len() - 1] })
}

#[derive(Clone, Copy)]
struct Ratio {
    median: f64,
    low: f64,
    high: f64,
}

/// `0.93× (0.88–0.97)`, in bold when the median misses `target`.
fn fmt_ratio(r: Option<Ratio>, target: f64) -> String {
    match r {
        Some(r) => {
            let m = if r.median >= target {
                format!("{:.2}×", r.median)
            } else {
                format!("**{:.2}×**", r.median)
            };
            format!("{m} ({:.2}–{:.2})", r.low, r.high)
        }
        None => "–".into(),
    }
}

/// The peer with the highest median messages/s in cell `ci`.
fn best_peer(res: &Results, ci: usize, peers: &[Srv]) -> Option<Srv> {
    peers
        .iter()
        .filter_map(|&p| stat(res, (ci, p), |x| x.msg_per_s).map(|v| (v, p)))
        .max_by(|a, b| a.0.0.total_cmp(&b.0.0))
        .map(|(_, p)| p)
}

/// Median of an optional per-round metric over the rounds that have it.
fn median_of(res: &Results, key: (usize, Srv), f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    rounds(res, key, f).map(|mut v| median(&mut v))
}

/// Where the CPU went in each cell: the server's CPU time per echo and the cores it kept busy,
/// and how busy the load generator's one core was, for ws, the best peer and the raw echo.
fn write_cpu(md: &mut String, servers: &[Srv], cells: &[Cell], res: &Results) {
    let peers: Vec<Srv> = servers.iter().copied().filter(|s| s.is_peer()).collect();
    let _ = writeln!(
        md,
        "\n### Uncompressed echo: server CPU per echo, and how busy each side was (medians)\n\n\
         Each server's user + system CPU time per echo (user time in parentheses) and the cores it kept busy, \
         then the most frugal peer's (the least CPU per echo) CPU time per echo over ws's (paired round by round; above 1 \
         means ws does an echo with less CPU; target ≥ 1.1 at 64 KiB and 1 MiB, misses in **bold**), then the load generator's busy share of its one core in the same runs; all from \
         `/proc/<pid>/stat` over the measured window. Where the load generator is near 100 %, no server can echo \
         faster than it sends and reads, so the ratios of messages/s between servers are capped near 1.\n"
    );
    let _ = writeln!(
        md,
        "| cell | ws | most frugal peer | raw TCP echo | CPU per echo, that peer / ws | load generator busy (ws / that peer / raw runs) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    let cpu = |ci: usize, s: Srv| {
        let per_echo = median_of(res, (ci, s), |x| x.server_us_per_echo().map(|p| p.0));
        let user = median_of(res, (ci, s), |x| x.server_us_per_echo().map(|p| p.1));
        let cores = median_of(res, (ci, s), Sample::server_cores);
        match (per_echo, user, cores) {
            (Some(t), Some(u), Some(c)) => {
                format!("{} ({} user), {c:.2} cores", fmt_cpu_us(t), fmt_cpu_us(u))
            }
            _ => "–".into(),
        }
    };
    let busy = |ci: usize, s: Option<Srv>| {
        s.and_then(|s| median_of(res, (ci, s), Sample::loadgen_busy))
            .map_or("–".into(), |b| format!("{:.0} %", b * 100.0))
    };
    let per_echo = |x: &Sample| x.server_us_per_echo().map(|p| p.0);
    for (ci, cell) in cells.iter().enumerate() {
        let best = peers
            .iter()
            .filter_map(|&p| median_of(res, (ci, p), per_echo).map(|v| (v, p)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, p)| p);
        let best_s = best.map_or("–".into(), |p| format!("{}: {}", p.label(), cpu(ci, p)));
        let efficiency = best.and_then(|p| paired(res, ci, p, Srv::Ours, per_echo));
        let target = if cell.size >= 64 << 10 { 1.1 } else { 0.0 };
        let _ = writeln!(
            md,
            "| {} | {} | {best_s} | {} | {} | {} / {} / {} |",
            cell.label(),
            cpu(ci, Srv::Ours),
            cpu(ci, Srv::Raw),
            fmt_ratio(efficiency, target),
            busy(ci, Some(Srv::Ours)),
            busy(ci, best),
            busy(ci, Some(Srv::Raw)),
        );
    }
}

/// CPU time per echo: 3 significant digits, from ns-scale to ms.
fn fmt_cpu_us(x: f64) -> String {
    if x >= 1000.0 {
        format!("{:.2} ms", x / 1000.0)
    } else if x >= 10.0 {
        format!("{x:.0} µs")
    } else {
        format!("{x:.2} µs")
    }
}

fn write_throughput(md: &mut String, servers: &[Srv], cells: &[Cell], res: &Results) {
    let peers: Vec<Srv> = servers.iter().copied().filter(|s| s.is_peer()).collect();
    let _ = writeln!(md, "### Uncompressed echo: messages/s\n");
    let _ = write!(md, "| cell |");
    for s in servers {
        let _ = write!(md, " {} |", s.label());
    }
    let baseline = servers.contains(&Srv::Baseline);
    let flushing: Vec<Srv> = peers.iter().copied().filter(|s| s.flushes_per_message()).collect();
    let _ = write!(md, " ws / best peer | ws / best flush-per-message loop | ws / raw TCP |");
    if baseline {
        let _ = write!(md, " baseline / raw TCP | ws / baseline |");
    }
    let _ = writeln!(md, "\n|{}", "---|".repeat(servers.len() + if baseline { 6 } else { 4 }));
    for (ci, cell) in cells.iter().enumerate() {
        let _ = write!(md, "| {} |", cell.label());
        for &s in servers {
            let _ = write!(md, " {} |", cell_value(res, ci, s, |x| x.msg_per_s, fmt_rate));
        }
        // Messages/s are judged at 20 B and 1 KiB; above, the load generator is the bound and
        // the CPU table below judges.
        let small = cell.size <= 1024;
        let versus = |among: &[Srv], target: f64| match best_peer(res, ci, among) {
            Some(p) => format!("{}: {}", p.label(), fmt_ratio(paired_ratio(res, ci, Srv::Ours, p), target)),
            None => "–".into(),
        };
        let best_s = versus(&peers, if small { 1.05 } else { 0.0 });
        let flush_s = versus(&flushing, 0.0);
        let raw = paired_ratio(res, ci, Srv::Ours, Srv::Raw);
        let _ = write!(md, " {best_s} | {flush_s} | {} |", fmt_ratio(raw, if small { 0.95 } else { 0.0 }));
        if baseline {
            let base_raw = paired_ratio(res, ci, Srv::Baseline, Srv::Raw);
            let ours_base = paired_ratio(res, ci, Srv::Ours, Srv::Baseline);
            let _ = write!(md, " {} | {} |", fmt_ratio(base_raw, 0.0), fmt_ratio(ours_base, 0.0));
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(
        md,
        "\nEach peer runs the echo loop of its own examples (tokio-tungstenite: the split socket `forward`ed, flushing only \
         when no message is ready; sockudo-ws: replies `feed`, as its README's echo loop); the rows marked *flush per \
         message* are the receive / `send` loop many handlers are written as, where ws's own coalescing of writes shows. \
         The ratios pair the two servers round by round: the median of the per-round ratios, then the lowest and \
         highest in brackets. The best peer is the one with the highest median messages/s, flush-per-message rows \
         included. Targets at 20 B and 1 KiB: ws ≥ 1.05× the best peer, ≥ 0.95× raw TCP; misses in **bold**.\n"
    );
    let _ = writeln!(md, "### Uncompressed echo: MB/s and round-trip latency p50 / p99 (medians)\n");
    cell_by_server_header(md, servers);
    for (ci, cell) in cells.iter().enumerate() {
        let _ = write!(md, "| {} |", cell.label());
        for &s in servers {
            let mb = stat(res, (ci, s), |x| x.mb_per_s);
            let p50 = stat(res, (ci, s), |x| x.p50_us);
            let p99 = stat(res, (ci, s), |x| x.p99_us);
            match (mb, p50, p99) {
                (Some(mb), Some(p50), Some(p99)) => {
                    let _ = write!(md, " {:.1} MB/s, {} |", mb.0, fmt_latency(s, p50.0, p99.0));
                }
                _ => {
                    let _ = write!(md, " error |");
                }
            }
        }
        let _ = writeln!(md);
    }
    write_errors(md, cells, res);
}

/// `p50 / p99`, ws's in bold when p99 > 5 × p50 (the latency target).
fn fmt_latency(s: Srv, p50: f64, p99: f64) -> String {
    let text = format!("{} / {}", fmt_us(p50), fmt_us(p99));
    let ours = matches!(s, Srv::Ours | Srv::OursDeflate);
    if ours && p99 > 5.0 * p50 { format!("**{text}**") } else { text }
}

fn write_deflate(md: &mut String, servers: &[Srv], cells: &[Cell], res: &Results) {
    let _ = writeln!(
        md,
        "\n### permessage-deflate echo: messages/s and the echoes' size on the wire\n\n\
         JSON text from a pool of distinct messages, the client compressing with context takeover as browsers do (see \
         above); each server compresses with its defaults. After each rate, the server's echoes in bytes on the wire per \
         payload byte (frame headers included): a rate bought with weaker compression is no win. Ratios paired round by \
         round as above; targets in the column headers (ratchet's at 1 KiB and 64 KiB, the others at 1 KiB), misses \
         in **bold**, and *larger* marks a cell where ws's echoes are bigger on the wire than that server's.\n"
    );
    // (server, target at 1 KiB, target at 64 KiB)
    let targets =
        [(Srv::RatchetDeflate, 2.0, 1.5), (Srv::PythonDeflate, 5.0, 0.0), (Srv::NodeDeflate, 10.0, 0.0)];
    let present: Vec<(Srv, f64, f64)> = targets.iter().copied().filter(|t| servers.contains(&t.0)).collect();
    let _ = write!(md, "| cell |");
    for s in servers {
        let _ = write!(md, " {} |", s.label());
    }
    for (s, t1, t64) in &present {
        let t = if *t64 > 0.0 { format!("≥ {t1}× / {t64}×") } else { format!("≥ {t1}×") };
        let _ = write!(md, " ws / {} ({t}) |", s.label());
    }
    let _ = writeln!(md, " ws p50 / p99 |");
    let _ = writeln!(md, "|{}", "---|".repeat(servers.len() + present.len() + 2));
    let wire = |ci: usize, s: Srv| median_of(res, (ci, s), |x| x.echo_wire);
    for (ci, cell) in cells.iter().enumerate() {
        let _ = write!(md, "| {} |", cell.label());
        for &s in servers {
            let rate = cell_value(res, ci, s, |x| x.msg_per_s, fmt_rate);
            match wire(ci, s) {
                Some(w) => {
                    let _ = write!(md, " {rate}, wire {w:.3} |");
                }
                None => {
                    let _ = write!(md, " {rate} |");
                }
            }
        }
        for &(s, t1, t64) in &present {
            let t = match cell.size {
                1024 => t1,
                n if n == 64 << 10 => t64,
                _ => 0.0,
            };
            let larger = match (wire(ci, Srv::OursDeflate), wire(ci, s)) {
                (Some(ours), Some(theirs)) if ours > theirs * 1.005 => ", *larger*",
                _ => "",
            };
            let _ = write!(md, " {}{larger} |", fmt_ratio(paired_ratio(res, ci, Srv::OursDeflate, s), t));
        }
        let lat = match (
            stat(res, (ci, Srv::OursDeflate), |x| x.p50_us),
            stat(res, (ci, Srv::OursDeflate), |x| x.p99_us),
        ) {
            (Some(p50), Some(p99)) => fmt_latency(Srv::OursDeflate, p50.0, p99.0),
            _ => "–".into(),
        };
        let _ = writeln!(md, " {lat} |");
    }
    let _ = writeln!(
        md,
        "\nThe client's frames, in bytes on the wire per payload byte (the same messages for every server; the \
         window is the one each server lets the client use):\n"
    );
    cell_by_server_header(md, servers);
    for (ci, cell) in cells.iter().enumerate() {
        let _ = write!(md, "| {} |", cell.label());
        for &s in servers {
            let v = median_of(res, (ci, s), |x| x.sent_wire).map_or("–".into(), |w| format!("{w:.3}"));
            let _ = write!(md, " {v} |");
        }
        let _ = writeln!(md);
    }
    write_errors(md, cells, res);
}

fn write_errors(md: &mut String, cells: &[Cell], res: &Results) {
    let mut first = true;
    for ((ci, s), v) in res {
        for e in v.iter().filter_map(|r| r.as_ref().err()) {
            if first {
                let _ = writeln!(md, "\nErrors:\n");
                first = false;
            }
            let _ =
                writeln!(md, "- {} {}: {}", s.label(), cells[*ci].label(), e.lines().next().unwrap_or(""));
        }
    }
}

fn write_memory(md: &mut String, servers: &[(Srv, bool)], counts: &[Column], res: &MemResults) {
    let _ = writeln!(
        md,
        "\n### Idle memory per connection\n\n(server VmRSS after − before) / N, with N connections open, after the \
         handshake only or after one 1 KiB echo each (compressed where the server has deflate), read {} s after the \
         last echo. Targets at 2,000: ≤ 4 KiB uncompressed after the handshake, ≤ 40 KiB with default compression \
         after one message, lean compression ≤ the uncompressed figure + 2 KiB.\n",
        SETTLE.as_secs()
    );
    let _ = write!(md, "| server | deflate |");
    for (n, echo) in counts {
        let _ = write!(md, " {n} conns{} |", if *echo { ", one echo" } else { ", handshake only" });
    }
    let _ = writeln!(md, "\n|---|---|{}", "---|".repeat(counts.len()));
    let kib = |s: Srv, col: Column| match res.get(&(s, col)) {
        Some(Ok(b)) => Some(b / 1024.0),
        _ => None,
    };
    for &(s, deflate) in servers {
        let _ = write!(md, "| {} | {} |", s.label(), if deflate { "on" } else { "off" });
        for &col in counts {
            let cell = match res.get(&(s, col)) {
                Some(Ok(b)) => {
                    let v = b / 1024.0;
                    let target = match (s, col) {
                        (Srv::Ours, (2_000, false)) => Some(4.0),
                        (Srv::OursDeflate, (2_000, true)) => Some(40.0),
                        (Srv::OursLean, (2_000, true)) => kib(Srv::Ours, col).map(|plain| plain + 2.0),
                        _ => None,
                    };
                    match target {
                        Some(t) if v > t => format!("**{v:.1} KiB**"),
                        _ => format!("{v:.1} KiB"),
                    }
                }
                Some(Err(e)) => format!("error: {}", e.lines().next().unwrap_or("")),
                None => "–".into(),
            };
            let _ = write!(md, " {cell} |");
        }
        let _ = writeln!(md);
    }
}

/// The header of a table with one row per cell and one column per server.
fn cell_by_server_header(md: &mut String, servers: &[Srv]) {
    let _ = write!(md, "| cell |");
    for s in servers {
        let _ = write!(md, " {} |", s.label());
    }
    let _ = writeln!(md, "\n|{}", "---|".repeat(servers.len() + 1));
}

fn write_burst(md: &mut String, res: &[(Srv, std::result::Result<Burst, String>)]) {
    let _ = writeln!(
        md,
        "\n### Memory after a busy burst\n\n{BURST_CONNS} connections, compressed (the client keeps its context, as \
         browsers do), each echo {BURST_ECHOES} different {} JSON-like messages, 8 in flight, all at once. Server \
         VmRSS before they open; its peak (VmHWM) during the burst; after the last echo, every connection \
         open and quiet; after all closed (with 1000). Both read {s} s after, and then once the RSS has held \
         within 64 KiB for 2 s (at most 10 s more). Targets for ws at the defaults: peak ≤ 64 KiB per \
         connection, idle ≤ 16 KiB per connection, after close ≤ 1.10× the RSS before.\n",
        fmt_size(BURST_SIZE),
        s = SETTLE.as_secs()
    );
    let _ = writeln!(
        md,
        "| server | RSS before | peak, per connection | idle after the burst, per connection | RSS after all closed |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    for (s, r) in res {
        let ours = matches!(s, Srv::OursDeflate | Srv::BaselineDeflate);
        let mark = |text: String, missed: bool| if ours && missed { format!("**{text}**") } else { text };
        match r {
            Ok(b) => {
                let (peak, idle) = (b.per_conn(b.peak), b.per_conn(b.idle));
                let ratio = b.closed as f64 / b.before as f64;
                let _ = writeln!(
                    md,
                    "| {} | {:.1} MiB | {} | {} | {} |",
                    s.label(),
                    b.before as f64 / 1048576.0,
                    mark(format!("{peak:.1} KiB"), peak > 64.0),
                    mark(format!("{idle:.1} KiB"), idle > 16.0),
                    mark(format!("{:.1} MiB ({ratio:.2}×)", b.closed as f64 / 1048576.0), ratio > 1.10),
                );
            }
            Err(e) => {
                let _ = writeln!(md, "| {} | error: {} | | | |", s.label(), e.lines().next().unwrap_or(""));
            }
        }
    }
}

const BEGIN: &str = "<!-- bench:begin (generated by `cargo xtask bench`; edits here are overwritten) -->";
const END: &str = "<!-- bench:end -->";

/// Writes `md` between the markers of `out`, keeping what is around them.
fn write_output(out: &Path, md: &str) -> Result {
    let old = std::fs::read_to_string(out).unwrap_or_default();
    let block = format!("{BEGIN}\n{md}{END}");
    let text = match (old.find("<!-- bench:begin"), old.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &old[..b], &old[e + END.len()..]),
        _ if old.is_empty() => format!("# Performance\n\n{block}\n"),
        _ => format!("{old}\n{block}\n"),
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    util::write_file(out, &text)
}
