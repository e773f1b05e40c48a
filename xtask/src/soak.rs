//! `cargo xtask soak`: thousands of connections coming and going for minutes against the
//! `echo_server` example, its RSS, file descriptors, live tasks and echo latency sampled once a
//! second into a CSV and a PNG plot; fails on unexpected errors or on growth after warm-up.
//!
//! The load runs in its own process (`ws-loadgen --soak`, bench/loadgen), as the server does:
//! each has its own file descriptor limit, and the load never shares a runtime with the server.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use plotters::prelude::*;

use crate::util::{self, Result, fmt_dur, say};

const USAGE: &str = "\
usage: cargo xtask soak [--minutes N] [--connections N] [--out DIR] [--seed N] [--no-build]

Builds the echo_server example and bench/loadgen (release), starts
`echo_server --report-tasks` and `ws-loadgen --soak`, and for N minutes (default 1) keeps
--connections (default 10000) connections open at once, each one living 2-40 s: messages of
20 B to 128 KiB (mostly small) echoed one at a time, half of them compressed; 10 % slow readers
(a burst of 8 messages left unread for 2-6 s), 8 % that vanish (TCP closed without a close
frame), 4 % that go silent and must be dropped by the server's keepalive; the others close
with 1000. Once a second: the server's RSS, open fds, live tasks, and the p99 of the echoes'
round trips in that second.

Writes samples.csv, soak.png and summary.md to DIR (default <target>/soak/<start time>).
Fails on any unexpected error (anything but the endings above), when RSS, fds or live tasks
at the end of the run (median of its last tenth) exceed those just after warm-up by more than
10 % (+ 16 MiB / 64 fds / 64 tasks), or when fds or tasks are not back to their idle values
within 30 s after the load stops. Warm-up: the ramp (the first connections open over
min(10 s, a sixth of the run)) + 60 s, at most half the run, at least a tenth of it.";

/// File descriptor limit of the server and of the load generator (the hard limit here).
const NOFILE: u32 = 20_000;
/// Growth allowed from just after warm-up to the end of the run: a ratio, then absolute slack.
const GROWTH: f64 = 0.10;
const RSS_SLACK_KIB: f64 = 16.0 * 1024.0;
const FD_SLACK: f64 = 64.0;
const TASK_SLACK: f64 = 64.0;
/// How long the server gets after the load to close everything.
const DRAIN: Duration = Duration::from_secs(30);

struct Opts {
    minutes: f64,
    conns: usize,
    out: Option<PathBuf>,
    seed: u64,
    build: bool,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts { minutes: 1.0, conns: 10_000, out: None, seed: 1, build: true };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value\n\n{USAGE}"));
        let num = |s: &String| s.parse::<f64>().map_err(|e| format!("{a} {s}: {e}"));
        match a.as_str() {
            "--minutes" => o.minutes = num(val()?)?,
            "--connections" => o.conns = num(val()?)? as usize,
            "--out" => o.out = Some(PathBuf::from(val()?)),
            "--seed" => o.seed = num(val()?)? as u64,
            "--no-build" => o.build = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if o.minutes <= 0.0 || o.conns == 0 {
        return Err("--minutes and --connections must be positive".into());
    }
    Ok(o)
}

/// One line of samples.csv.
#[derive(Clone, Copy, Default)]
struct Row {
    /// Seconds since the load started (negative: before it).
    t: f64,
    /// Whether the load was running (else: before it, or draining after it).
    load: bool,
    rss_kib: f64,
    fds: f64,
    /// The server's live tasks (its last report; NaN before the first).
    tasks: f64,
    /// Echoes in that second and their p99 round trip, from the load generator.
    echoes: u64,
    p99_us: f64,
    open: u64,
    opened: u64,
    errors: u64,
}

/// The server process, its pid its own (`sh -c 'ulimit -n ..; exec ..'`), killed on drop.
struct Server {
    child: Child,
    tasks: Arc<AtomicU64>,
}

impl Server {
    fn start(bin: &Path, port: u16, log: &Path) -> Result<Self> {
        let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {NOFILE} 2>/dev/null; exec \"$0\" \"$@\""))
            .arg(bin)
            .args([format!("127.0.0.1:{port}"), "--report-tasks".into()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("echo_server: no stdout")?;
        let tasks = Arc::new(AtomicU64::new(u64::MAX));
        let seen = tasks.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("tasks ").and_then(|n| n.trim().parse().ok()) {
                    seen.store(n, Ordering::Relaxed);
                }
            }
        });
        let mut s = Self { child, tasks };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = s.child.try_wait() {
                return Err(format!("echo_server exited ({st}):\n{}", util::tail(log, 10)));
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err("echo_server did not listen within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(s)
    }

    /// RSS (KiB) and open fds from /proc, live tasks from the server's last report.
    fn sample(&self, row: &mut Row) -> Result {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("echo_server is gone (/proc/{pid}/status: {e})"))?;
        row.rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or("no VmRSS in /proc/PID/status")?;
        row.fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_err(|e| e.to_string())?.count() as f64;
        let tasks = self.tasks.load(Ordering::Relaxed);
        row.tasks = if tasks == u64::MAX { f64::NAN } else { tasks as f64 };
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the load generator said at the end.
#[derive(Default)]
struct LoadSummary {
    echoes: u64,
    opened: u64,
    outcomes: Vec<(u64, String)>,
    /// Kind, count, first message.
    errors: Vec<(String, u64, String)>,
}

pub fn run(args: &[String]) -> Result {
    let o = parse(args)?;
    let meta = util::Metadata::load()?;
    if o.build {
        meta.build_examples(&["echo_server"])?;
        util::step_status(
            Command::new(util::cargo())
                .args(["build", "--release", "--package", "ws-loadgen", "--manifest-path"])
                .arg(util::root().join("bench/Cargo.toml"))
                .arg("--target-dir")
                .arg(&meta.target_dir),
            "build bench/loadgen",
        )?;
    }
    let server_bin = meta.example_bin("echo_server");
    let loadgen_bin = meta.target_dir.join("release/ws-loadgen");
    for p in [&server_bin, &loadgen_bin] {
        if !p.exists() {
            return Err(format!("{} is missing (run without --no-build)", p.display()));
        }
    }
    let out = match &o.out {
        Some(d) => d.clone(),
        None => {
            let secs =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            meta.target_dir.join("soak").join(format!("run-{secs}"))
        }
    };
    util::fresh_dir(&out)?;

    let duration = Duration::from_secs_f64(o.minutes * 60.0);
    let ramp = Duration::from_secs(10).min(duration / 6);
    let warmup = (ramp + Duration::from_secs(60)).min(duration / 2).max(duration / 10).as_secs_f64();
    let window = (duration.as_secs_f64() / 10.0).max(10.0);
    say(format!(
        "soak: {} connections for {}, warm-up {warmup:.0} s, output in {}",
        o.conns,
        fmt_dur(duration),
        out.display()
    ));

    let port = util::free_port()?;
    let server = Server::start(&server_bin, port, &out.join("echo_server.log"))?;
    // Idle figures, once the server has reported its tasks.
    std::thread::sleep(Duration::from_millis(2_500));
    let mut idle = Row { t: 0.0, ..Row::default() };
    server.sample(&mut idle)?;
    let mut rows = vec![idle];

    let loadgen_log = out.join("loadgen.log");
    let mut loadgen = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {NOFILE} 2>/dev/null; exec \"$0\" \"$@\""))
        .arg(&loadgen_bin)
        .args(["--addr", &format!("127.0.0.1:{port}"), "--conns", &o.conns.to_string()])
        .args(["--soak", &duration.as_secs_f64().to_string()])
        .args(["--ramp", &ramp.as_secs_f64().to_string(), "--seed", &o.seed.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&loadgen_log).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", loadgen_bin.display()))?;
    let stdout = loadgen.stdout.take().ok_or("ws-loadgen: no stdout")?;
    let started = Instant::now();
    let mut summary = LoadSummary::default();
    let mut sampling_error = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("ws-loadgen output: {e}"))?;
        let f: Vec<&str> = line.split('\t').collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
        match f[0] {
            "second" => {
                let mut row = Row {
                    t: n(1),
                    load: true,
                    echoes: n(2) as u64,
                    p99_us: n(3),
                    open: n(4) as u64,
                    opened: n(5) as u64,
                    errors: n(6) as u64,
                    ..Row::default()
                };
                if let Err(e) = server.sample(&mut row) {
                    sampling_error.get_or_insert(e);
                    let _ = loadgen.kill();
                    break;
                }
                if (row.t as u64).is_multiple_of(60) {
                    say(format!(
                        "  {:>5.0} s  RSS {:>7.1} MiB  fds {:>6}  tasks {:>6}  open {:>6}  echoes/s {:>6}  p99 {:>8.1} ms  errors {}",
                        row.t,
                        row.rss_kib / 1024.0,
                        row.fds,
                        row.tasks,
                        row.open,
                        row.echoes,
                        row.p99_us / 1000.0,
                        row.errors
                    ));
                }
                rows.push(row);
            }
            "echoes" => summary.echoes = n(1) as u64,
            "opened" => summary.opened = n(1) as u64,
            "outcome" => summary.outcomes.push((n(1) as u64, f.get(2).unwrap_or(&"").to_string())),
            "error" => summary.errors.push((
                f.get(1).unwrap_or(&"").to_string(),
                n(2) as u64,
                f.get(3).unwrap_or(&"").to_string(),
            )),
            _ => {}
        }
    }
    let status = loadgen.wait().map_err(|e| format!("ws-loadgen: {e}"))?;
    let load_secs = started.elapsed().as_secs_f64();
    if let Some(e) = sampling_error {
        return Err(e);
    }
    if !status.success() {
        return Err(format!("ws-loadgen failed ({status}):\n{}", util::tail(&loadgen_log, 10)));
    }

    // After the load: fds and tasks must come back to their idle values.
    let drain_start = Instant::now();
    let mut drained = None;
    while drain_start.elapsed() < DRAIN {
        std::thread::sleep(Duration::from_secs(1));
        let mut row = Row { t: load_secs + drain_start.elapsed().as_secs_f64(), ..Row::default() };
        server.sample(&mut row)?;
        rows.push(row);
        let back = row.fds <= idle.fds && row.tasks <= idle.tasks;
        if back && drained.is_none() {
            drained = Some(drain_start.elapsed());
        }
        // A few seconds more once back, to see that RSS settles too.
        if drained.is_some_and(|d| drain_start.elapsed() > d + Duration::from_secs(5)) {
            break;
        }
    }
    let last = *rows.last().ok_or("no samples")?;
    drop(server);

    write_csv(&out.join("samples.csv"), &rows)?;
    let png = out.join("soak.png");
    if let Err(e) = plot(&png, &rows, warmup) {
        say(format!("soak: WARNING: no plot: {e}"));
    }

    // Verdict.
    let load_rows: Vec<&Row> = rows.iter().filter(|r| r.load).collect();
    // The last seconds of load, not the wind-down after it (silent peers still held).
    let end_t = duration.as_secs_f64();
    let median = |from: f64, to: f64, f: &dyn Fn(&Row) -> f64| {
        let mut v: Vec<f64> = load_rows
            .iter()
            .filter(|r| r.t >= from && r.t < to)
            .map(|r| f(r))
            .filter(|x| !x.is_nan())
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let mut failures = vec![];
    let mut md = String::new();
    let _ = writeln!(md, "# Soak: {} connections, {}\n", o.conns, fmt_dur(duration));
    let _ = writeln!(
        md,
        "Warm-up {warmup:.0} s; \"after warm-up\" is the median of [{warmup:.0} s, {:.0} s), \
         \"end\" the median of the last {window:.0} s of load; allowed growth {:.0} % + slack.\n",
        warmup + window,
        GROWTH * 100.0
    );
    let _ = writeln!(
        md,
        "| | idle | after warm-up | end | max under load | {:.0} s after the load |",
        last.t - load_secs
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    type Getter = fn(&Row) -> f64;
    let metrics: [(&str, Getter, f64); 3] = [
        ("RSS (MiB)", |r| r.rss_kib / 1024.0, RSS_SLACK_KIB / 1024.0),
        ("open fds", |r| r.fds, FD_SLACK),
        ("live tasks", |r| r.tasks, TASK_SLACK),
    ];
    for (name, get, slack) in metrics {
        let base = median(warmup, warmup + window, &get);
        let end = median(end_t - window, end_t, &get);
        let max = load_rows.iter().map(|r| get(r)).filter(|x| !x.is_nan()).fold(f64::NAN, f64::max);
        let _ = writeln!(
            md,
            "| {name} | {:.1} | {base:.1} | {end:.1} | {max:.1} | {:.1} |",
            get(&idle),
            get(&last)
        );
        if end > base * (1.0 + GROWTH) + slack || base.is_nan() || end.is_nan() {
            failures.push(format!("{name} grew from {base:.1} after warm-up to {end:.1} at the end"));
        }
    }
    match drained {
        Some(d) => {
            let _ = writeln!(
                md,
                "\nfds and tasks back to their idle values {:.0} s after the load.",
                d.as_secs_f64()
            );
        }
        None => failures.push(format!(
            "fds/tasks not back to idle ({} fds, {} tasks) {} after the load: {} fds, {} tasks",
            idle.fds,
            idle.tasks,
            fmt_dur(DRAIN),
            last.fds,
            last.tasks
        )),
    }
    let p99s: Vec<f64> =
        load_rows.iter().filter(|r| r.t >= warmup && r.echoes > 0).map(|r| r.p99_us).collect();
    let mut sorted = p99s.clone();
    sorted.sort_by(f64::total_cmp);
    if let (Some(mid), Some(max)) = (sorted.get(sorted.len() / 2), sorted.last()) {
        let _ = writeln!(
            md,
            "\nEcho round trips, p99 of each second after warm-up: median {:.2} ms, worst second {:.2} ms.",
            mid / 1000.0,
            max / 1000.0
        );
    }
    let _ = writeln!(
        md,
        "\n{} connections opened, {} echoes.\n\n| endings | count |\n|---|---|",
        summary.opened, summary.echoes
    );
    for (n, what) in &summary.outcomes {
        let _ = writeln!(md, "| {what} | {n} |");
    }
    let _ = writeln!(md, "\n| unexpected errors | count | first |\n|---|---|---|");
    if summary.errors.is_empty() {
        let _ = writeln!(md, "| none | 0 | |");
    }
    for (kind, n, first) in &summary.errors {
        let _ = writeln!(md, "| {kind} | {n} | {first} |");
        failures.push(format!("{n} unexpected `{kind}` error(s), first: {first}"));
    }
    util::write_file(&out.join("summary.md"), &md)?;
    say(format!("\n{md}"));
    say(format!("soak: samples.csv, soak.png and summary.md in {}", out.display()));
    if failures.is_empty() { Ok(()) } else { Err(format!("soak failed:\n  {}", failures.join("\n  "))) }
}

fn write_csv(path: &Path, rows: &[Row]) -> Result {
    let mut s =
        String::from("t_s,phase,rss_kib,fds,tasks,echoes,p99_us,open_conns,opened_total,errors_total\n");
    for r in rows {
        let phase = if r.load {
            "load"
        } else if r.t == 0.0 {
            "idle"
        } else {
            "after"
        };
        let tasks = if r.tasks.is_nan() { String::new() } else { format!("{:.0}", r.tasks) };
        let _ = writeln!(
            s,
            "{:.1},{phase},{:.0},{:.0},{tasks},{},{:.0},{},{},{}",
            r.t, r.rss_kib, r.fds, r.echoes, r.p99_us, r.open, r.opened, r.errors
        );
    }
    util::write_file(path, &s)
}

/// Where a font for the plot's text may be (no fontconfig: the file is read and registered).
const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Four panels, one above the other, against time: RSS, fds, tasks, p99. Without a font file the
/// panels have no text (samples.csv has the numbers).
fn plot(path: &Path, rows: &[Row], warmup: f64) -> std::result::Result<(), String> {
    let font = FONTS.iter().find_map(|p| std::fs::read(p).ok());
    let text = match font {
        Some(bytes) => {
            plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into()))
                .map_err(|_| "bad font file".to_owned())
                .is_ok()
        }
        None => false,
    };
    let root = BitMapBackend::new(path, (900, 960)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let tmax = rows.iter().map(|r| r.t).fold(1.0, f64::max);
    type Getter = fn(&Row) -> f64;
    let panels: [(&str, Getter, RGBColor); 4] = [
        ("server RSS (MiB)", |r| r.rss_kib / 1024.0, RGBColor(31, 119, 180)),
        ("server open fds", |r| r.fds, RGBColor(44, 160, 44)),
        ("server live tasks", |r| r.tasks, RGBColor(148, 103, 189)),
        ("echo round trip, p99 of each second (ms)", |r| r.p99_us / 1000.0, RGBColor(214, 39, 40)),
    ];
    for (area, (title, get, color)) in root.split_evenly((4, 1)).iter().zip(panels) {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            // The p99 only while there are echoes.
            .filter(|r| r.load || !title.contains("p99"))
            .map(|r| (r.t, get(r)))
            .filter(|p| p.1.is_finite())
            .collect();
        let ymax = pts.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.1;
        let mut b = ChartBuilder::on(area);
        b.margin(8);
        if text {
            b.caption(title, ("sans-serif", 16)).x_label_area_size(22).y_label_area_size(56);
        }
        let mut chart = b.build_cartesian_2d(0.0..tmax, 0.0..ymax).map_err(|e| e.to_string())?;
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(WHITE.mix(0.0));
        if text {
            mesh.x_desc("s").label_style(("sans-serif", 12));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| e.to_string())?;
        // Where warm-up ends.
        chart
            .draw_series(LineSeries::new([(warmup, 0.0), (warmup, ymax)], BLACK.mix(0.3)))
            .map_err(|e| e.to_string())?;
        chart.draw_series(LineSeries::new(pts, color.stroke_width(1))).map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
