//! `cargo xtask bench --only scale`: many idle connections on one machine.
//!
//! A process here may hold at most 20,000 file descriptors, so the per-connection figures come
//! from about 19,000 connections on one server process, and the 100,000 from several server
//! processes sharing the port (`echo_server --reuse-port`, `SO_REUSEPORT`) loaded by several
//! load-generator processes (`ws-loadgen --hold`), each from its own source addresses in
//! 127.0.0.0/8 so that ephemeral ports do not run out. Reported: handshakes/s and server CPU
//! per handshake while they open, server RSS per idle connection, and the round trip of a
//! probe (one more connection echoing 20 B messages, one at a time) while all are held.
//! The generated tables go between markers in `docs/scale.md`.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::{self, Result, fmt_dur, say};

/// The binaries the scale part runs.
pub struct Paths {
    pub echo_server: PathBuf,
    pub loadgen: PathBuf,
    pub peers: PathBuf,
}

/// The file descriptor limit asked for every process (the hard limit here).
const NOFILE: u64 = 20_000;
/// Descriptors a process keeps besides its connections (stdio, epoll, listener, probe, ...).
const SPARE_FDS: u64 = 1_000;
/// Workers of every server's tokio runtime, as in the other bench parts.
const SERVER_WORKERS: &str = "2";
/// Quiet time after the echoes before the idle CPU is measured: longer than ws's
/// `idle_release` (1 s), so that every server is in its idle state.
const SETTLE: Duration = Duration::from_millis(1500);
/// The window over which the idle servers' CPU (keepalive pings) is measured; RSS is read at
/// its end.
const IDLE_WINDOW: Duration = Duration::from_secs(4);
/// ws's default `ping_interval`. The rows over several processes (100,000 connections) wait
/// until every connection has been pinged once, then measure the idle CPU over one interval:
/// keepalive's whole cost, and the load generators shown answering pings while they hold.
const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Handshakes in progress at once per load-generator process.
const CONCURRENCY: usize = 256;
/// The probe's measured seconds.
const PROBE_SECS: f64 = 3.0;
/// Target: total server RSS at 100,000 connections with compression negotiated.
const RSS_TARGET: f64 = 1024.0 * 1024.0 * 1024.0;
/// Target: probe p99, in µs.
const PROBE_P99_TARGET_US: f64 = 5_000.0;

/// A server under test: a label, whether it negotiates permessage-deflate, and its command.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Ws,
    WsDeflate,
    /// A `bench/peers` implementation (`--impl NAME`), with or without deflate.
    Peer(&'static str, &'static str, bool),
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Self::Ws => "ws",
            Self::WsDeflate => "ws (deflate)",
            Self::Peer(label, ..) => label,
        }
    }

    /// The label as `--rows` names it: `ws-deflate`, `raw-tcp-echo`.
    fn slug(self) -> String {
        let s: String = self
            .label()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect();
        s.split('-').filter(|w| !w.is_empty()).collect::<Vec<_>>().join("-")
    }

    fn deflate(self) -> bool {
        match self {
            Self::Ws => false,
            Self::WsDeflate => true,
            Self::Peer(.., d) => d,
        }
    }

    fn command(self, p: &Paths, addr: &str, reuse_port: bool) -> Command {
        let mut c = match self {
            Self::Ws | Self::WsDeflate => {
                let mut c = Command::new(&p.echo_server);
                c.arg(addr);
                if self == Self::Ws {
                    c.arg("--no-compression");
                }
                if reuse_port {
                    c.arg("--reuse-port");
                }
                c
            }
            Self::Peer(_, imp, _) => {
                let mut c = Command::new(&p.peers);
                c.args(["--impl", imp, addr]);
                c
            }
        };
        c.env("TOKIO_WORKER_THREADS", SERVER_WORKERS);
        c
    }
}

const PEERS: [Kind; 5] = [
    Kind::Peer("tokio-tungstenite", "tungstenite", false),
    Kind::Peer("fastwebsockets", "fastwebsockets", false),
    Kind::Peer("ratchet", "ratchet", false),
    Kind::Peer("ratchet (deflate)", "ratchet-deflate", true),
    Kind::Peer("sockudo-ws", "sockudo", false),
];
const RAW: Kind = Kind::Peer("raw TCP echo", "raw", false);

/// `sh -c 'ulimit -n N; exec ...'`, so that the process is the command's own.
fn with_nofile(inner: &Command) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("ulimit -n {NOFILE} 2>/dev/null; exec \"$0\" \"$@\""));
    cmd.arg(inner.get_program()).args(inner.get_args());
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.current_dir(util::root());
    cmd
}

/// A server process, killed on drop.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(p: &Paths, kind: Kind, port: u16, reuse_port: bool, log: PathBuf) -> Result<Self> {
        let f = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let f2 = f.try_clone().map_err(|e| e.to_string())?;
        let child = with_nofile(&kind.command(p, &format!("127.0.0.1:{port}"), reuse_port))
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", kind.label()))?;
        Ok(Self { child, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// VmRSS in bytes.
    fn rss(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        text.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| format!("no VmRSS in {path}"))
    }

    /// User + system CPU seconds so far (`/proc/PID/stat`, 100 ticks a second).
    fn cpu(&self) -> Result<f64> {
        let path = format!("/proc/{}/stat", self.pid());
        let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        // The command name may hold spaces: utime and stime are the 12th and 13th fields after it.
        let after = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
        let mut f = after.split(' ').skip(11).map(|v| v.parse::<f64>().unwrap_or(0.0));
        Ok((f.next().unwrap_or(0.0) + f.next().unwrap_or(0.0)) / 100.0)
    }

    /// Open descriptors: the connections it holds, give or take a few.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, Iterator::count)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something accepts on 127.0.0.1:`port`, or a server exits.
fn wait_listening(servers: &mut [Server], port: u16) -> Result {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        for s in servers.iter_mut() {
            if !s.alive() {
                return Err(format!("server exited before listening:\n{}", util::tail(&s.log, 5)));
            }
        }
        if start.elapsed() > Duration::from_secs(20) {
            return Err("server did not listen within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A `ws-loadgen --hold` process: its stdout lines come through a channel; killed on drop.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
}

impl Holder {
    fn start(
        p: &Paths,
        port: u16,
        conns: usize,
        sources: &[String],
        deflate: bool,
        log: PathBuf,
    ) -> Result<Self> {
        let mut inner = Command::new(&p.loadgen);
        inner.args(["--addr", &format!("127.0.0.1:{port}"), "--hold", &conns.to_string()]);
        inner.args(["--sources", &sources.join(","), "--concurrency", &CONCURRENCY.to_string()]);
        // One 1 KiB JSON message per connection, compressed when negotiated.
        inner.args(["--size", "1024"]);
        if deflate {
            inner.arg("--deflate");
        }
        let err = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = with_nofile(&inner)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run loadgen: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(Self { child, stdin, lines, stderr: log })
    }

    /// The JSON after `TAG ` on the next line, within `timeout`.
    fn expect(&mut self, tag: &str, timeout: Duration) -> Result<serde_json::Value> {
        let line = self.lines.recv_timeout(timeout).map_err(|_| {
            format!("loadgen gave no {tag} line within {timeout:?}: {}", util::tail(&self.stderr, 3))
        })?;
        let json = line.strip_prefix(tag).map(str::trim).ok_or_else(|| format!("loadgen said `{line}`"))?;
        serde_json::from_str(json).map_err(|e| format!("loadgen {tag} line: {e}"))
    }

    /// Tells the loadgen to echo (one line on its stdin).
    fn echo(&mut self) -> Result {
        let stdin = self.stdin.as_mut().ok_or("loadgen stdin closed")?;
        stdin.write_all(b"echo\n").and_then(|()| stdin.flush()).map_err(|e| format!("loadgen stdin: {e}"))
    }

    /// Closes stdin (the loadgen lets its connections go) and reads its last report.
    fn finish(&mut self) -> Result<serde_json::Value> {
        drop(self.stdin.take());
        self.expect("DONE", Duration::from_secs(30))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One row: a run of `conns` connections over `servers` server processes.
#[derive(Default)]
struct Row {
    label: String,
    deflate: bool,
    /// Connections open after the handshakes, over all load generators.
    held: usize,
    /// Seconds from the first connect to the last handshake (the slowest load generator).
    open_secs: f64,
    /// Server CPU seconds over that phase, all server processes.
    server_cpu: f64,
    /// Load generators' CPU seconds over that phase, all of them.
    loadgen_cpu: f64,
    /// Worst handshake p50 / p99 among the load generators, µs.
    hs_p50_us: f64,
    hs_p99_us: f64,
    /// Server RSS, all processes: before the connections and when all are idle.
    rss_before: u64,
    rss_idle: u64,
    /// Server CPU (cores) while all are idle: keepalive pings and timers.
    idle_cores: f64,
    /// Growth of the machine's kernel slab (`Slab:` in /proc/meminfo), bytes: both ends' sockets.
    slab: i64,
    /// Connections the servers held when RSS was read (their descriptors then, less before).
    held_idle: usize,
    /// Fewest and most connections (descriptors) one server process held.
    fds: (usize, usize),
    probe_p50_us: f64,
    probe_p99_us: f64,
    /// Connections lost at any point, and the first reason.
    lost: usize,
    first_error: Option<String>,
}

impl Row {
    fn rss_per_conn(&self) -> f64 {
        (self.rss_idle as f64 - self.rss_before as f64) / self.held_idle.max(1) as f64
    }
}

/// `Slab:` of /proc/meminfo in bytes (machine-wide: other processes move it too).
fn slab() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Slab:"))
                .map(|v| v.trim().trim_end_matches("kB").trim().to_owned())
        })
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The kernel limits that bound the run, as one line for the report.
fn limits() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p).map_or("?".into(), |s| s.split_whitespace().collect::<Vec<_>>().join("–"))
    };
    let hard = Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .map_or("?".into(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    format!(
        "`ulimit -Hn` {hard}, `net.ipv4.ip_local_port_range` {}, `fs.file-max` {}, `fs.nr_open` {}, \
         `net.core.somaxconn` {}, `net.ipv4.tcp_max_syn_backlog` {}",
        read("/proc/sys/net/ipv4/ip_local_port_range"),
        read("/proc/sys/fs/file-max"),
        read("/proc/sys/fs/nr_open"),
        read("/proc/sys/net/core/somaxconn"),
        read("/proc/sys/net/ipv4/tcp_max_syn_backlog"),
    )
}

/// Source addresses of load generator `k` in the `row`th row: four in 127.(k+1).(row+1).0/24
/// (4 × ~28,000 ports). Each row has its own: the sockets of the rows before it linger in
/// TIME_WAIT for 60 s (the load generator closes first), and binding to port 0 of an address
/// whose ports they hold makes the kernel search for a free one, slowing the opening phase.
fn sources(row: usize, k: usize) -> Vec<String> {
    (1..=4).map(|i| format!("127.{}.{}.{i}", k + 1, row % 255 + 1)).collect()
}

/// Runs `conns` connections against `n_servers` processes of `kind` sharing one port, from
/// `n_loadgens` load generators, and measures them. `row` numbers the run (its source addresses).
fn run_one(
    p: &Paths,
    row_no: usize,
    kind: Kind,
    conns: usize,
    n_servers: usize,
    n_loadgens: usize,
    logs: &Path,
) -> Result<Row> {
    let port = util::free_port()?;
    let name = kind.label().replace([' ', '(', ')'], "");
    let mut servers = Vec::new();
    for i in 0..n_servers {
        let log = logs.join(format!("scale-{name}-{conns}-{i}.log"));
        servers.push(Server::start(p, kind, port, n_servers > 1, log)?);
    }
    wait_listening(&mut servers, port)?;
    std::thread::sleep(Duration::from_millis(300));
    let sum = |f: &dyn Fn(&Server) -> Result<f64>| -> Result<f64> { servers.iter().map(f).sum() };
    let rss_before = sum(&|s| s.rss().map(|r| r as f64))? as u64;
    let cpu0 = sum(&|s| s.cpu())?;
    let slab0 = slab();
    let fds0: usize = servers.iter().map(Server::fds).sum();

    let mut holders = Vec::new();
    let opening = Instant::now();
    for k in 0..n_loadgens {
        let share = conns / n_loadgens + usize::from(k < conns % n_loadgens);
        let log = logs.join(format!("scale-{name}-{conns}-loadgen{k}.log"));
        holders.push(Holder::start(p, port, share, &sources(row_no, k), kind.deflate(), log)?);
    }
    let mut row =
        Row { label: kind.label().to_owned(), deflate: kind.deflate(), rss_before, ..Row::default() };
    let mut failed = 0;
    for h in &mut holders {
        let v = h.expect("OPEN", Duration::from_secs(600))?;
        row.held += v["conns"].as_u64().unwrap_or(0) as usize;
        failed += v["failed"].as_u64().unwrap_or(0) as usize;
        if let Some(e) = v["first_error"].as_str() {
            row.first_error.get_or_insert_with(|| e.to_owned());
        }
        row.loadgen_cpu += v["cpu"][0].as_f64().unwrap_or(0.0) + v["cpu"][1].as_f64().unwrap_or(0.0);
        row.hs_p50_us = row.hs_p50_us.max(v["p50_us"].as_f64().unwrap_or(0.0));
        row.hs_p99_us = row.hs_p99_us.max(v["p99_us"].as_f64().unwrap_or(0.0));
        row.open_secs = row.open_secs.max(v["secs"].as_f64().unwrap_or(0.0));
    }
    row.server_cpu = sum(&|s| s.cpu())? - cpu0;
    say(format!(
        "    {}: {} open in {:.1} s ({failed} failed), server CPU {:.2} s",
        kind.label(),
        row.held,
        row.open_secs,
        row.server_cpu
    ));
    // Echoes only once every load generator has opened: the CPU above is handshakes only.
    for h in &mut holders {
        h.echo()?;
    }
    for h in &mut holders {
        let v = h.expect("READY", Duration::from_secs(600))?;
        row.lost += v["lost"].as_u64().unwrap_or(0) as usize;
    }
    std::thread::sleep(SETTLE);
    let window = if n_servers > 1 {
        // The last connection opened `open_secs` after the start; a second's margin.
        let all_pinged =
            opening + Duration::from_secs_f64(row.open_secs) + PING_INTERVAL + Duration::from_secs(1);
        std::thread::sleep(all_pinged.saturating_duration_since(Instant::now()));
        PING_INTERVAL
    } else {
        IDLE_WINDOW
    };
    let idle0 = sum(&|s| s.cpu())?;
    std::thread::sleep(window);
    row.idle_cores = (sum(&|s| s.cpu())? - idle0) / window.as_secs_f64();
    row.rss_idle = sum(&|s| s.rss().map(|r| r as f64))? as u64;
    row.slab = slab() - slab0;
    let fds: Vec<usize> = servers.iter().map(Server::fds).collect();
    row.fds = (fds.iter().copied().min().unwrap_or(0), fds.iter().copied().max().unwrap_or(0));
    row.held_idle = fds.iter().sum::<usize>().saturating_sub(fds0);

    let probe = Command::new(&p.loadgen)
        .args(["--addr", &format!("127.0.0.1:{port}"), "--conns", "1", "--size", "20"])
        .args(["--inflight", "1", "--warmup", "0.5", "--duration", &PROBE_SECS.to_string()])
        .output()
        .map_err(|e| format!("cannot run the probe: {e}"))?;
    if !probe.status.success() {
        return Err(format!("probe: {}", String::from_utf8_lossy(&probe.stderr).trim()));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&probe.stdout).map_err(|e| format!("probe output: {e}"))?;
    row.probe_p50_us = v["p50_us"].as_f64().unwrap_or(0.0);
    row.probe_p99_us = v["p99_us"].as_f64().unwrap_or(0.0);

    for s in &mut servers {
        if !s.alive() {
            return Err(format!("a server exited while holding: {}", util::tail(&s.log, 3)));
        }
    }
    row.lost = 0;
    for h in &mut holders {
        let v = h.finish()?;
        row.lost += v["lost"].as_u64().unwrap_or(0) as usize;
        if let Some(e) = v["first_error"].as_str() {
            row.first_error.get_or_insert_with(|| e.to_owned());
        }
    }
    row.lost += failed;
    drop(holders);
    drop(servers);
    say(format!(
        "    {}: {:.1} KiB/conn, {:.0} MiB total, probe p99 {:.0} µs, lost {}",
        kind.label(),
        row.rss_per_conn() / 1024.0,
        row.rss_idle as f64 / 1048576.0,
        row.probe_p99_us,
        row.lost
    ));
    Ok(row)
}

/// `cargo xtask bench --only scale`: runs every row, writes the tables into `out`.
/// `rows` (`--rows`), when not empty, names the rows to run: `single:SLUG` or `multi:SLUG`.
pub fn run(p: &Paths, quick: bool, rows_wanted: &[String], logs: &Path, out: &Path) -> Result {
    let started = Instant::now();
    let hard: u64 = Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(NOFILE);
    let per_process = (hard.min(NOFILE).saturating_sub(SPARE_FDS)) as usize;
    let (single, multi, n_multi) = if quick { (2_000, 6_000, 2) } else { (per_process, 100_000, 6) };
    if multi / n_multi > per_process {
        return Err(format!(
            "{multi} connections over {n_multi} processes need more than {per_process} descriptors each"
        ));
    }
    say(format!("bench: scale, {single} connections on one server, {multi} over {n_multi}; {}", limits()));

    let mut kinds = vec![Kind::Ws, Kind::WsDeflate];
    kinds.extend(if quick { &PEERS[..1] } else { &PEERS[..] });
    kinds.push(RAW);
    let mut multi_kinds = vec![Kind::WsDeflate, Kind::Ws];
    if !rows_wanted.is_empty() {
        let all: Vec<Kind> = [Kind::Ws, Kind::WsDeflate].into_iter().chain(PEERS).chain([RAW]).collect();
        for r in rows_wanted {
            // Only ws's echo_server serves one port from several processes (--reuse-port).
            let known = r.split_once(':').is_some_and(|(size, slug)| match size {
                "single" => all.iter().any(|k| k.slug() == slug),
                "multi" => slug == "ws" || slug == "ws-deflate",
                _ => false,
            });
            if !known {
                let slugs: Vec<String> = all.iter().map(|k| k.slug()).collect();
                return Err(format!(
                    "--rows {r}: expected single:SERVER ({}) or multi:ws / multi:ws-deflate",
                    slugs.join(", ")
                ));
            }
        }
        let wanted = |size: &str, k: &Kind| rows_wanted.iter().any(|r| *r == format!("{size}:{}", k.slug()));
        kinds = all.iter().copied().filter(|k| wanted("single", k)).collect();
        multi_kinds = all.iter().copied().filter(|k| wanted("multi", k)).collect();
    }
    let mut rows: Vec<(Kind, std::result::Result<Row, String>)> = Vec::new();
    for &kind in &kinds {
        say(format!("  {} x {single}", kind.label()));
        let r = run_one(p, rows.len(), kind, single, 1, 1, logs);
        if let Err(e) = &r {
            say(format!("    {}: ERR {e}", kind.label()));
        }
        rows.push((kind, r));
    }
    let mut multi_rows = Vec::new();
    for kind in multi_kinds {
        say(format!("  {} x {multi} over {n_multi} processes", kind.label()));
        let r = run_one(p, rows.len() + multi_rows.len(), kind, multi, n_multi, n_multi, logs);
        if let Err(e) = &r {
            say(format!("    {}: ERR {e}", kind.label()));
        }
        multi_rows.push((kind, r));
    }

    let mut md = String::new();
    let _ = writeln!(md, "## Results\n");
    let mut cmd = String::from("cargo xtask bench --only scale");
    if quick {
        cmd.push_str(" --quick");
    }
    if !rows_wanted.is_empty() {
        let _ = write!(cmd, " --rows {}", rows_wanted.join(","));
    }
    let _ = writeln!(md, "- Command: `{cmd}`; total {}.", fmt_dur(started.elapsed()));
    let _ = writeln!(md, "- Kernel limits: {}.", limits());
    let _ = writeln!(
        md,
        "- Servers: {SERVER_WORKERS} tokio workers each, `ulimit -n {NOFILE}`. Load: `ws-loadgen --hold` (one core each), \
         {CONCURRENCY} handshakes in flight per process, source addresses 127.k.r.1–4 (r: the row), then one 1 KiB JSON echo per \
         connection (compressed when negotiated), then {:.1} s idle, then the idle CPU over {} s (100,000 rows: over {} s, once \
         every connection has been pinged), then RSS. Probe: one \
         more connection, 20 B echoes one at a time for {PROBE_SECS} s, while all are held. Servers ping every 20 s \
         (ws's default; the peers do not), the load generators answer.",
        SETTLE.as_secs_f64(),
        IDLE_WINDOW.as_secs(),
        PING_INTERVAL.as_secs()
    );
    let _ = writeln!(
        md,
        "- Measured, not extrapolated. RSS and CPU per handshake are steady; handshakes/s and the probe's latencies \
         depend on what else the machine runs (2 cores shared with the load generators)."
    );
    if !rows.is_empty() {
        write_table(&mut md, &format!("### {single} connections on one server process"), &rows, false);
    }
    if !multi_rows.is_empty() {
        write_table(
            &mut md,
            &format!("### {multi} connections over {n_multi} server processes (SO_REUSEPORT)"),
            &multi_rows,
            true,
        );
    }
    write_output(out, &md)?;
    say(format!("bench: wrote {} ({})", out.display(), fmt_dur(started.elapsed())));
    Ok(())
}

fn write_table(
    md: &mut String,
    title: &str,
    rows: &[(Kind, std::result::Result<Row, String>)],
    judged: bool,
) {
    let _ = writeln!(md, "\n{title}\n");
    let _ = writeln!(
        md,
        "| server | deflate | held | RSS per idle conn | server RSS total | server CPU per handshake | load generator CPU per handshake | handshakes/s (noisy) | \
         handshake p50 / p99 (noisy) | idle server CPU | probe p50 / p99 (noisy) | kernel slab per conn (noisy) | \
         conns per process | lost |"
    );
    let _ = writeln!(md, "|{}", "---|".repeat(14));
    for (kind, r) in rows {
        let row = match r {
            Ok(row) => row,
            Err(e) => {
                let _ = writeln!(
                    md,
                    "| {} | {} | error: {} ||||||||||||",
                    kind.label(),
                    if kind.deflate() { "on" } else { "off" },
                    e.lines().next().unwrap_or("").replace('|', "/")
                );
                continue;
            }
        };
        let total = row.rss_idle as f64;
        let total_s = format!("{:.0} MiB", total / 1048576.0);
        let total_s = if judged && row.deflate && row.held >= 100_000 && total > RSS_TARGET {
            format!("**{total_s}**")
        } else {
            total_s
        };
        let p99 = fmt_us(row.probe_p99_us);
        let p99 = if row.probe_p99_us > PROBE_P99_TARGET_US { format!("**{p99}**") } else { p99 };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} KiB | {total_s} | {:.0} µs | {:.0} µs | {:.0} | {} / {} | {:.3} cores | {} / {p99} | {:.1} KiB | {}–{} | {}{} |",
            row.label,
            if row.deflate { "on" } else { "off" },
            row.held,
            row.rss_per_conn() / 1024.0,
            row.server_cpu * 1e6 / row.held.max(1) as f64,
            row.loadgen_cpu * 1e6 / row.held.max(1) as f64,
            row.held as f64 / row.open_secs.max(1e-9),
            fmt_us(row.hs_p50_us),
            fmt_us(row.hs_p99_us),
            row.idle_cores,
            fmt_us(row.probe_p50_us),
            row.slab as f64 / row.held_idle.max(1) as f64 / 1024.0,
            row.fds.0,
            row.fds.1,
            if row.lost > 0 { format!("**{}**", row.lost) } else { "0".into() },
            row.first_error.as_deref().map_or(String::new(), |e| format!(" ({})", e.replace('|', "/"))),
        );
    }
    let _ = writeln!(
        md,
        "\nRSS per idle connection = (server RSS with all held − before) / connections the servers held then (their \
         descriptors, less those before). Server CPU per handshake = server \
         user + system CPU over the opening phase / held; the load generators' likewise (with theirs near the wall \
         time, they, not the server, set the handshake rate). Handshakes/s = held / the opening phase of the slowest load generator (they start together). \
         Idle server CPU = cores used over {} while all are idle (ws pings each connection every 20 s). Kernel slab = \
         growth of `Slab:` in /proc/meminfo / held: the client's and the server's socket together, machine-wide, so \
         other processes move it. \
         Conns per process = open descriptors of the least and most loaded server process. Targets: probe p99 < 5 ms; \
         100,000 with deflate within 1 GiB total; misses in **bold**.",
        if judged {
            format!(
                "{} s, starting once every connection had been pinged once (keepalive's whole cost)",
                PING_INTERVAL.as_secs()
            )
        } else {
            format!(
                "{} s (these rows end before the first pings, 20 s after each connection opened)",
                IDLE_WINDOW.as_secs()
            )
        }
    );
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

const BEGIN: &str =
    "<!-- scale:begin (generated by `cargo xtask bench --only scale`; edits here are overwritten) -->";
const END: &str = "<!-- scale:end -->";

/// Writes `md` between the markers of `out`, keeping what is around them.
fn write_output(out: &Path, md: &str) -> Result {
    let old = std::fs::read_to_string(out).unwrap_or_default();
    let block = format!("{BEGIN}\n{md}{END}");
    let text = match (old.find("<!-- scale:begin"), old.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &old[..b], &old[e + END.len()..]),
        _ if old.is_empty() => format!("# Scale\n\n{block}\n"),
        _ => format!("{old}\n{block}\n"),
    };
    util::write_file(out, &text)
}
