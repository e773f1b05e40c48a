//! `cargo xtask bench --only broadcast`: fan-out of 1 KiB JSON messages to many connections,
//! with and without compression, from ws's `Broadcaster`, from a per-connection send loop on ws,
//! and from Python `websockets`' `broadcast()`; then the server's memory with clients that never
//! read. The servers are `examples/broadcast_bench.rs` and `bench/python/broadcast_server.py`;
//! the load side is `ws-loadgen --broadcast` (crates/ws-load/src/broadcast.rs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::{self, Result, Spawned, say};

/// File descriptor limit for the servers and the load generator (10,000 receivers each).
const NOFILE: u32 = 20_000;
/// Every Rust server runs on a multi-thread tokio runtime with this many workers (as in bench.rs).
const SERVER_WORKERS: &str = "2";
/// Bytes per message.
const SIZE: usize = 1024;
/// Messages in flight: a receiver that keeps reading is never more than this many behind, far
/// from the 32 KiB after which a `Broadcaster` skips it.
const WINDOW: usize = 8;
/// Connections that never read in the memory run, next to the receivers.
const STALLED: usize = 100;
/// The memory run's message size: large, so that the kernel's socket buffers of the stalled
/// connections (up to `tcp_wmem`'s 4 MiB each) fill in seconds.
const MEM_SIZE: usize = 16 << 10;
/// Deliveries each stalled connection must have been skipped before the memory run ends.
const MEM_SKIPS: usize = 20;

/// What the benchmark needs from `cargo xtask bench`.
pub struct Setup<'a> {
    /// The `broadcast_bench` example.
    pub server: PathBuf,
    /// `ws-loadgen`.
    pub loadgen: &'a Path,
    /// The interop venv's Python (`None`: Python is skipped).
    pub python: Option<&'a Path>,
    pub logs: &'a Path,
    pub quick: bool,
    pub rounds: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Srv {
    /// `Broadcaster`, compress-once preset (`Deflate(Memory::Shared)`).
    Hub,
    /// A task per connection, `send().await`, default compression (context takeover).
    PerConnection,
    /// Python `websockets` `broadcast()`, default compression (context takeover).
    Python,
}

impl Srv {
    fn label(self) -> &'static str {
        match self {
            Self::Hub => "ws Broadcaster",
            Self::PerConnection => "ws per-connection loop",
            Self::Python => "Python websockets broadcast()",
        }
    }

    fn command(self, setup: &Setup, port: u16, compress: bool) -> Result<Command> {
        let mut c = match self {
            Self::Hub | Self::PerConnection => {
                let mut c = Command::new(&setup.server);
                c.arg(format!("127.0.0.1:{port}"));
                if self == Self::PerConnection {
                    c.arg("--per-connection");
                }
                c
            }
            Self::Python => {
                let python = setup.python.ok_or("Python websockets is not installed")?;
                let mut c = Command::new(python);
                c.arg(util::root().join("bench/python/broadcast_server.py"));
                c.args(["--port", &port.to_string()]);
                c
            }
        };
        if !compress {
            c.arg("--no-compression");
        }
        Ok(c)
    }
}

/// `sh -c 'ulimit -n ..; exec ..'`: the child's pid is the program's own.
fn with_nofile(inner: &Command) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("ulimit -n {NOFILE} 2>/dev/null; exec \"$0\" \"$@\""));
    cmd.arg(inner.get_program()).args(inner.get_args());
    cmd.env("TOKIO_WORKER_THREADS", SERVER_WORKERS).current_dir(util::root());
    cmd
}

/// One run's figures, from `ws-loadgen --broadcast`.
#[derive(Clone, Copy, Default)]
struct Sample {
    deliveries: f64,
    deliveries_per_s: f64,
    secs: f64,
    wire_bytes: f64,
    compressed: f64,
    no_context_takeover: f64,
    server_dropped: f64,
    /// Server CPU seconds (user + system, user) over the window.
    server_cpu: Option<(f64, f64)>,
    loadgen_cpu: Option<f64>,
    rss: [Option<f64>; 3],
}

impl Sample {
    /// Server CPU (user + system) per delivery, in µs.
    fn cpu_us(&self) -> Option<f64> {
        self.server_cpu.filter(|_| self.deliveries > 0.0).map(|c| c.0 * 1e6 / self.deliveries)
    }

    /// Server user CPU per delivery, in µs (the rest is the kernel's: mostly the writes).
    fn user_us(&self) -> Option<f64> {
        self.server_cpu.filter(|_| self.deliveries > 0.0).map(|c| c.1 * 1e6 / self.deliveries)
    }
}

struct Run {
    receivers: usize,
    stalled: usize,
    size: usize,
    window: usize,
    compress: bool,
    warmup: f64,
    duration: f64,
    until_dropped: usize,
}

fn run_one(setup: &Setup, srv: Srv, run: &Run) -> std::result::Result<Sample, String> {
    let port = util::free_port()?;
    let name = format!("{}-{}-{port}", srv.label().replace([' ', '(', ')'], ""), run.receivers);
    let log = setup.logs.join(format!("{name}.log"));
    let mut server =
        Spawned::spawn(srv.label(), &mut with_nofile(&srv.command(setup, port, run.compress)?), &log)?;
    util::wait_port(port, &mut server, Duration::from_secs(20))?;
    let mut lg = Command::new(setup.loadgen);
    lg.args(["--broadcast", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--server-pid", &server.id().to_string()])
        .args(["--receivers", &run.receivers.to_string(), "--stalled", &run.stalled.to_string()])
        .args(["--size", &run.size.to_string(), "--window", &run.window.to_string()])
        .args(["--warmup", &run.warmup.to_string(), "--duration", &run.duration.to_string()])
        .args(["--until-dropped", &run.until_dropped.to_string()]);
    if run.compress {
        lg.arg("--deflate");
    }
    let out = with_nofile(&lg).output().map_err(|e| format!("cannot run loadgen: {e}"))?;
    let alive = server.try_wait()?.is_none();
    drop(server);
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        let exited = if alive { String::new() } else { format!(" (server exited; see {})", log.display()) };
        return Err(format!("{why}{exited}"));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("loadgen output: {e}"))?;
    let f = |k: &str| v[k].as_f64().ok_or_else(|| format!("loadgen output lacks {k}"));
    let cpu = |k: &str| Some(v[k][0].as_f64()? + v[k][1].as_f64()?);
    Ok(Sample {
        deliveries: f("deliveries")?,
        deliveries_per_s: f("deliveries_per_s")?,
        secs: f("secs")?,
        wire_bytes: f("wire_bytes_per_delivery")?,
        compressed: f("compressed")?,
        no_context_takeover: f("server_no_context_takeover")?,
        server_dropped: f("server_dropped")?,
        server_cpu: cpu("server_cpu").zip(v["server_cpu"][0].as_f64()),
        loadgen_cpu: cpu("loadgen_cpu"),
        rss: ["rss_start", "rss_max", "rss_end"].map(|k| v[k].as_f64()),
    })
}

/// Per (receivers, compression) and server, every round's sample or error.
type Results = BTreeMap<((usize, bool), Srv), Vec<std::result::Result<Sample, String>>>;

/// Runs the fan-out cells and the memory run; appends their markdown to `md`.
pub fn run(setup: &Setup, md: &mut String) -> Result {
    let mut servers = vec![Srv::Hub, Srv::PerConnection];
    if setup.python.is_some() {
        servers.push(Srv::Python);
    } else {
        say("bench: broadcast: Python websockets unavailable, skipped");
    }
    let counts: &[usize] = if setup.quick { &[1_000] } else { &[1_000, 10_000] };
    let (warmup, duration) = if setup.quick { (0.5, 1.5) } else { (1.0, 3.0) };
    let cells: Vec<(usize, bool)> = counts.iter().flat_map(|&n| [(n, false), (n, true)]).collect();
    say(format!(
        "bench: broadcast, {} cells x {} servers x {} rounds",
        cells.len(),
        servers.len(),
        setup.rounds
    ));
    let mut res = Results::new();
    for round in 0..setup.rounds {
        for (ci, &(n, compress)) in cells.iter().enumerate() {
            let mut line = format!(
                "  round {}/{} {n} conns {:<10}",
                round + 1,
                setup.rounds,
                if compress { "deflate" } else { "plain" }
            );
            for k in 0..servers.len() {
                let srv = servers[(k + ci + round) % servers.len()];
                let run = Run {
                    receivers: n,
                    stalled: 0,
                    size: SIZE,
                    window: WINDOW,
                    compress,
                    warmup,
                    duration,
                    until_dropped: 0,
                };
                let r = run_one(setup, srv, &run);
                match &r {
                    Ok(s) => {
                        let cpu = s.cpu_us().map_or("–".into(), |c| format!("{c:.2} µs"));
                        let _ = write!(line, " {}={:.0}/s {cpu}", srv.label(), s.deliveries_per_s);
                    }
                    Err(e) => {
                        let _ = write!(line, " {}=ERR", srv.label());
                        say(format!("    {} {n} conns: {e}", srv.label()));
                    }
                }
                res.entry(((n, compress), srv)).or_default().push(r);
            }
            say(line);
        }
    }
    write_fanout(md, &servers, &cells, &res);

    // Python's broadcast() never skips, so a run until the stalled are full would not end.
    let receivers = 200;
    let run = Run {
        receivers,
        stalled: STALLED,
        size: MEM_SIZE,
        // 2 x 16 KiB: a receiver that reads stays within the 32 KiB before a skip.
        window: 2,
        compress: false,
        warmup: 0.5,
        duration: 2.0,
        until_dropped: STALLED * MEM_SKIPS,
    };
    let mem = run_one(setup, Srv::Hub, &run);
    say(format!(
        "  memory {}: {}",
        Srv::Hub.label(),
        match &mem {
            Ok(s) => format!("RSS max {}", fmt_mib(s.rss[1])),
            Err(e) => format!("ERR {e}"),
        }
    ));
    write_memory(md, receivers, &mem);
    Ok(())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

fn med(res: &Results, key: ((usize, bool), Srv), f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    median(res.get(&key)?.iter().filter_map(|r| r.as_ref().ok()).filter_map(f).collect())
}

/// `b`'s CPU per delivery over `a`'s, paired round by round: the median ratio, lowest, highest.
fn cpu_ratio(res: &Results, cell: (usize, bool), a: Srv, b: Srv) -> Option<(f64, f64, f64)> {
    let (ra, rb) = (res.get(&(cell, a))?, res.get(&(cell, b))?);
    let v: Vec<f64> = ra
        .iter()
        .zip(rb)
        .filter_map(|(x, y)| Some(y.as_ref().ok()?.cpu_us()? / x.as_ref().ok()?.cpu_us()?))
        .collect();
    let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
    Some((median(v)?, lo, hi))
}

/// `12.3×  (11.0–13.1)`, in bold when under `target`.
fn fmt_ratio(r: Option<(f64, f64, f64)>, target: f64) -> String {
    match r {
        Some((m, lo, hi)) if m < target => format!("**{m:.1}×** ({lo:.1}–{hi:.1})"),
        Some((m, lo, hi)) => format!("{m:.1}× ({lo:.1}–{hi:.1})"),
        None => "–".into(),
    }
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 { format!("{:.2}M", x / 1e6) } else { format!("{:.0}k", x / 1e3) }
}

fn fmt_mib(b: Option<f64>) -> String {
    b.map_or("–".into(), |b| format!("{:.1} MiB", b / (1024.0 * 1024.0)))
}

fn write_fanout(md: &mut String, servers: &[Srv], cells: &[(usize, bool)], res: &Results) {
    let _ = writeln!(
        md,
        "\n### Broadcast: {SIZE} B JSON messages to many connections\n\n\
         Each message (all distinct) is sent by a control connection and passed by the server to every \
         receiver; {WINDOW} messages in flight, so no receiver is skipped. Deliveries/s = messages the receivers \
         got per second; CPU = the server's user + system time per delivery (`/proc/<pid>/stat` over the \
         measured window; user time in brackets, the rest is the kernel's, mostly the writes); bytes = \
         payload bytes per message on the wire (the compressed size, with compression); load gen. = how busy the load generator's one core was. With compression, the \
         Broadcaster negotiates `server_no_context_takeover` (`Deflate(Memory::Shared)`) and compresses once; \
         the per-connection loop and Python keep context takeover (their defaults) and compress per \
         connection. Medians of the rounds.\n"
    );
    let _ = write!(md, "| connections | compression |");
    for s in servers {
        let _ = write!(md, " {}: deliveries/s, CPU, bytes, load gen. |", s.label());
    }
    let _ = writeln!(
        md,
        " Python / Broadcaster CPU (≥ 10×) | per-connection / Broadcaster CPU (≥ 3× compressed) |"
    );
    let _ = writeln!(md, "|---|---|{}---|---|", "---|".repeat(servers.len()));
    for &cell in cells {
        let (n, compress) = cell;
        let _ = write!(md, "| {n} | {} |", if compress { "deflate" } else { "off" });
        for &s in servers {
            let rate = med(res, (cell, s), |x| Some(x.deliveries_per_s));
            let cpu = med(res, (cell, s), Sample::cpu_us);
            let user = med(res, (cell, s), Sample::user_us);
            let bytes = med(res, (cell, s), |x| Some(x.wire_bytes));
            let busy = med(res, (cell, s), |x| Some(x.loadgen_cpu? / x.secs));
            let _ = match (rate, cpu, user, bytes, busy) {
                (Some(r), Some(c), Some(us), Some(b), Some(u)) => {
                    write!(md, " {}, {c:.2} µs ({us:.2} user), {b:.0} B, {:.0} % |", fmt_rate(r), u * 100.0)
                }
                _ => write!(md, " error |"),
            };
        }
        let per_conn_target = if compress { 3.0 } else { 0.0 };
        let _ = writeln!(
            md,
            " {} | {} |",
            fmt_ratio(cpu_ratio(res, cell, Srv::Hub, Srv::Python), 10.0),
            fmt_ratio(cpu_ratio(res, cell, Srv::Hub, Srv::PerConnection), per_conn_target)
        );
    }
    let _ = writeln!(
        md,
        "\nRatios paired round by round (median, lowest–highest); misses in **bold**. Compression as negotiated: \
         the receivers offer `permessage-deflate; client_no_context_takeover`."
    );
    let mut first = true;
    for ((cell, s), v) in res {
        for r in v {
            let line = match r {
                Err(e) => format!("{} {} conns: {}", s.label(), cell.0, e.lines().next().unwrap_or("")),
                Ok(x) if cell.1 && x.compressed == 0.0 => {
                    format!("{} {} conns: compression not negotiated", s.label(), cell.0)
                }
                Ok(x) if x.server_dropped > 0.0 => {
                    format!(
                        "{} {} conns: the server skipped {} deliveries",
                        s.label(),
                        cell.0,
                        x.server_dropped
                    )
                }
                Ok(x) if *s == Srv::Hub && cell.1 && x.no_context_takeover != x.compressed => {
                    format!(
                        "{} {} conns: not every receiver got server_no_context_takeover",
                        s.label(),
                        cell.0
                    )
                }
                Ok(_) => continue,
            };
            if first {
                let _ = writeln!(md, "\nProblems:\n");
                first = false;
            }
            let _ = writeln!(md, "- {line}");
        }
    }
}

fn write_memory(md: &mut String, receivers: usize, mem: &std::result::Result<Sample, String>) {
    let _ = writeln!(
        md,
        "\n### Broadcast: memory with {STALLED} clients that never read\n\n\
         {receivers} receivers take a flood of {} KiB messages (uncompressed, 2 in flight) while {STALLED} more \
         connections (4 KiB receive buffers) never read, until the server has skipped {MEM_SKIPS} messages per \
         stalled connection: their socket buffers in the kernel are full (up to `tcp_wmem`'s 4 MiB each, not \
         in RSS), and so is what the server keeps for them. Server RSS once all are connected, the largest seen \
         (every 100 ms) and at the end. The Broadcaster runs with its default `max_buffered` (`None`: the \
         connection's write limit, 32 KiB): a stalled connection holds at most that plus one message in the \
         server, then misses messages (skipped); and what it holds refers to the one encoded copy of each \
         message rather than copying it. Python's `broadcast()` has no such bound (its documentation \
         says so) and is not run here: it would never skip.\n",
        MEM_SIZE >> 10
    );
    let _ = writeln!(
        md,
        "| server | RSS start | RSS max | RSS end | max − start | deliveries to readers (measured window) | skipped (whole run) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    let srv = Srv::Hub;
    match mem {
        Ok(s) => {
            let grow = match (s.rss[0], s.rss[1]) {
                (Some(a), Some(b)) => fmt_mib(Some(b - a)),
                _ => "–".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {grow} | {:.0} | {:.0} |",
                srv.label(),
                fmt_mib(s.rss[0]),
                fmt_mib(s.rss[1]),
                fmt_mib(s.rss[2]),
                s.deliveries,
                s.server_dropped
            );
        }
        Err(e) => {
            let _ = writeln!(md, "| {} | error: {} |||||", srv.label(), e.lines().next().unwrap_or(""));
        }
    }
}
