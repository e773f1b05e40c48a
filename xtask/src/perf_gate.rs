//! `cargo xtask perf-gate`: instruction counts (callgrind `Ir`) of the fixed workloads in
//! `benches/instructions.rs`, compared with the committed baseline `benches/instructions.toml`.
//!
//! Wall-clock benchmarks on a shared 2-core machine cannot resolve 5 %; instruction counts are
//! exact and repeatable for a given toolchain, dependency versions and CPU features, so they
//! can. A workload whose count grew by more than the threshold fails the gate until the
//! baseline is re-recorded with a note saying why (`--record --note`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::util::{self, Metadata, Result, fmt_dur, say};

const USAGE: &str = "\
usage: cargo xtask perf-gate [--record --note TEXT] [--only NAMES] [--threshold PCT]
                             [--baseline FILE]

Builds benches/instructions.rs (release), runs each workload under
`valgrind --tool=callgrind`, counting only its measured loop, and compares the
instruction counts (Ir) with the baseline benches/instructions.toml. Prints a markdown
table (also written to <target>/perf-gate/report.md).

Fails if a workload's count grew by more than the threshold (default 5 %). When the
baseline was recorded on another CPU model / feature set, rustc or valgrind, the
counts are not comparable: the table is printed, nothing fails.

  --record          rewrite the baseline with the current counts (every workload)
  --note TEXT       with --record, required: why the counts are what they are. Set on
                    every workload that moved by more than the threshold or is new (on
                    all of them if the machine/toolchain changed); the others keep theirs
  --only NAMES      comma-separated subset of the workloads (not with --record)
  --threshold PCT   allowed growth in percent (default 5)
  --baseline FILE   baseline file (default benches/instructions.toml)

The workloads: `<target>/release/deps/instructions-* --list`.";

/// The function of `benches/instructions.rs` that the count is restricted to.
const MEASURED_FN: &str = "*perf_gate_measured*";

/// CPU flags that the libraries under test (glibc, simdutf8, zlib-rs) pick code paths by; part
/// of the `cpu` key, so that a baseline from a machine with other features is not compared.
const CPU_FLAGS: &[&str] = &["sse4_2", "avx", "avx2", "bmi1", "bmi2", "pclmulqdq", "avx512f", "avx512bw"];

struct Opts {
    record: bool,
    note: Option<String>,
    only: Option<Vec<String>>,
    threshold: f64,
    baseline: PathBuf,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        record: false,
        note: None,
        only: None,
        threshold: 5.0,
        baseline: util::root().join("benches").join("instructions.toml"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value\n\n{USAGE}"));
        match a.as_str() {
            "--record" => o.record = true,
            "--note" => o.note = Some(val(a)?),
            "--only" => {
                let v = val(a)?;
                o.only = Some(v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect());
            }
            "--threshold" => {
                o.threshold = val(a)?.parse().map_err(|e| format!("--threshold: {e}"))?;
                if o.threshold.is_nan() || o.threshold < 0.0 {
                    return Err("--threshold must be a percentage >= 0".into());
                }
            }
            "--baseline" => o.baseline = PathBuf::from(val(a)?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if o.record {
        if o.only.is_some() {
            return Err("--record re-records every workload: drop --only".into());
        }
        match &o.note {
            Some(n) if !n.trim().is_empty() => {}
            _ => return Err("--record needs --note \"why\" (what changed the counts)".into()),
        }
    } else if o.note.is_some() {
        return Err("--note only goes with --record".into());
    }
    Ok(o)
}

/// `cargo xtask perf-gate [args]`.
pub fn run(args: &[String]) -> Result {
    let o = parse(args)?;
    valgrind_version().ok_or(
        "valgrind is not installed (Debian: `apt-get install valgrind`); `cargo xtask ci` installs it as root",
    )?;
    gate(&o)
}

/// The `cargo xtask ci` step: the gate with the defaults. Installs valgrind with apt-get when
/// it is missing and this is root on a Debian-like system; otherwise skips with a WARNING.
pub fn run_ci() -> Result {
    if valgrind_version().is_none()
        && let Err(why) = install_valgrind()
    {
        say(format!("WARNING: perf-gate skipped: no valgrind, and {why}"));
        return Ok(());
    }
    gate(&parse(&[])?)
}

fn gate(o: &Opts) -> Result {
    let t = Instant::now();
    let meta = Metadata::load()?;
    let bin = build()?;
    let mut workloads = list_workloads(&bin)?;
    if let Some(only) = &o.only {
        for name in only {
            if !workloads.iter().any(|w| &w.name == name) {
                return Err(format!("--only: no workload `{name}` (workloads: {})", names(&workloads)));
            }
        }
        workloads.retain(|w| only.contains(&w.name));
    }
    let out_dir = meta.target_dir.join("perf-gate");
    util::fresh_dir(&out_dir)?;
    let env = Env::detect()?;
    say(format!(
        "perf-gate: {} workload(s) under callgrind ({}; {}; {})",
        workloads.len(),
        env.cpu,
        env.rustc,
        env.valgrind
    ));
    let counts = measure(&bin, &workloads, &out_dir)?;

    let baseline = if o.baseline.exists() {
        Some(Baseline::load(&o.baseline)?)
    } else if o.record {
        None
    } else {
        return Err(format!(
            "no baseline at {}: record one with `cargo xtask perf-gate --record --note \"initial baseline\"`",
            o.baseline.display()
        ));
    };
    let comparable = baseline.as_ref().is_some_and(|b| b.recorded.env == env);
    let rows = compare(&workloads, &counts, baseline.as_ref(), o.threshold, o.only.is_none());
    let report = report(&rows, &env, baseline.as_ref(), comparable, o.threshold);
    say(format!("\n{report}"));
    util::write_file(&out_dir.join("report.md"), &report)?;

    if o.record {
        let note = o.note.as_deref().unwrap_or_default().trim();
        let new = record(&workloads, &counts, baseline.as_ref(), comparable, o.threshold, note, &env);
        util::write_file(&o.baseline, &new.render()?)?;
        say(format!("perf-gate: baseline written to {} ({})", o.baseline.display(), fmt_dur(t.elapsed())));
        return Ok(());
    }
    say(format!("perf-gate: done in {}", fmt_dur(t.elapsed())));
    let regressed: Vec<&str> = rows
        .iter()
        .filter(|r| matches!(r.status, Status::Regression | Status::Changed))
        .map(|r| r.name.as_str())
        .collect();
    if regressed.is_empty() {
        Ok(())
    } else if !comparable {
        say(format!(
            "perf-gate: not failing: {} grew by more than {}%, but the baseline was recorded on another \
             machine/toolchain (see above); re-record it here: cargo xtask perf-gate --record --note \"...\"",
            regressed.join(", "),
            o.threshold
        ));
        Ok(())
    } else {
        Err(format!(
            "perf-gate: {} grew by more than {}% over {}. If that is the price of something, \
             re-record with a note saying why: cargo xtask perf-gate --record --note \"why\"",
            regressed.join(", "),
            o.threshold,
            o.baseline.display()
        ))
    }
}

// ---- build, list, measure ----

/// `cargo build --release --bench instructions`; the executable's path.
fn build() -> Result<PathBuf> {
    let out = Command::new(util::cargo())
        .args(["build", "--release", "--package", "ws", "--bench", "instructions"])
        .args(["--message-format", "json-render-diagnostics"])
        .current_dir(util::root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    if !out.status.success() {
        return Err(format!("building benches/instructions.rs failed ({})", out.status));
    }
    let mut exe = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if v["reason"] == "compiler-artifact"
            && v["target"]["name"] == "instructions"
            && let Some(path) = v["executable"].as_str()
        {
            exe = Some(PathBuf::from(path));
        }
    }
    exe.ok_or_else(|| "cargo build reported no executable for benches/instructions.rs".into())
}

struct Workload {
    name: String,
    iterations: u64,
    about: String,
}

fn names(workloads: &[Workload]) -> String {
    workloads.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// `instructions --list`: `name<TAB>iterations<TAB>description` lines.
fn list_workloads(bin: &Path) -> Result<Vec<Workload>> {
    let out = Command::new(bin)
        .arg("--list")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!("{} --list failed ({})", bin.display(), out.status));
    }
    let list: Vec<Workload> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            Some(Workload {
                name: parts.next()?.to_owned(),
                iterations: parts.next()?.parse().ok()?,
                about: parts.next().unwrap_or_default().to_owned(),
            })
        })
        .collect();
    if list.is_empty() {
        return Err(format!("{} --list printed no workload", bin.display()));
    }
    Ok(list)
}

/// Runs every workload under callgrind, as many at a time as there are cores (counts do not
/// depend on load). Returns `Ir` per workload, in the order given.
fn measure(bin: &Path, workloads: &[Workload], out_dir: &Path) -> Result<Vec<u64>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<u64>>>> = Mutex::new(workloads.iter().map(|_| None).collect());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(workloads.len());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(w) = workloads.get(i) else { break };
                    let t = Instant::now();
                    let r = callgrind(bin, &w.name, out_dir);
                    if let Ok(ir) = &r {
                        say(format!("  {:<24} {:>15} Ir  ({})", w.name, group(*ir), fmt_dur(t.elapsed())));
                    }
                    if let Ok(mut res) = results.lock() {
                        res[i] = Some(r);
                    }
                }
            });
        }
    });
    let results = results.into_inner().map_err(|_| "a measuring thread panicked".to_owned())?;
    results
        .into_iter()
        .zip(workloads)
        .map(|(r, w)| r.unwrap_or_else(|| Err(format!("{}: not measured", w.name))))
        .collect()
}

fn callgrind(bin: &Path, name: &str, out_dir: &Path) -> Result<u64> {
    let out_file = out_dir.join(format!("{name}.callgrind"));
    let log = out_dir.join(format!("{name}.log"));
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--collect-atstart=no"])
        .arg(format!("--toggle-collect={MEASURED_FN}"))
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(format!("--log-file={}", log.display()))
        .arg(bin)
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !status.success() {
        return Err(format!(
            "{name}: the workload failed under callgrind ({status}):\n{}",
            util::tail(&log, 20)
        ));
    }
    let text =
        fs::read_to_string(&out_file).map_err(|e| format!("cannot read {}: {e}", out_file.display()))?;
    let ir = text
        .lines()
        .find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:")))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .ok_or_else(|| format!("{}: no `totals:` line", out_file.display()))?;
    if ir == 0 {
        return Err(format!(
            "{name}: 0 instructions counted: is `{MEASURED_FN}` still the measured function of \
             benches/instructions.rs (and not inlined)?"
        ));
    }
    Ok(ir)
}

// ---- environment ----

/// What the counts are comparable across: the same values, the same counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Env {
    cpu: String,
    rustc: String,
    valgrind: String,
}

impl Env {
    fn detect() -> Result<Self> {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |key: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        };
        let model = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_owned());
        let flags = field("flags").unwrap_or_default();
        let have: Vec<&str> =
            CPU_FLAGS.iter().copied().filter(|f| flags.split_whitespace().any(|x| x == *f)).collect();
        let rustc = command_line("rustc", &["-V"]).ok_or("cannot run `rustc -V`")?;
        let valgrind = valgrind_version().unwrap_or_else(|| "none".into());
        Ok(Self { cpu: format!("{model} ({})", have.join(" ")), rustc, valgrind })
    }
}

/// The first line a command prints, if it runs and succeeds.
fn command_line(prog: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(prog).args(args).current_dir(util::root()).stderr(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().next().map(|l| l.trim().to_owned())
}

fn valgrind_version() -> Option<String> {
    command_line("valgrind", &["--version"])
}

/// Debian's `valgrind` package, as tests-interop/browser/setup.sh installs Chromium: root and
/// apt-get required, `apt-get update` only when apt has no candidate yet.
fn install_valgrind() -> Result {
    if command_line("apt-get", &["--version"]).is_none() {
        return Err("no apt-get to install it".into());
    }
    if command_line("id", &["-u"]).as_deref() != Some("0") {
        return Err("not root: cannot apt-get install valgrind".into());
    }
    let t = Instant::now();
    let policy = command_line_all("apt-cache", &["policy", "valgrind"]).unwrap_or_default();
    let has_candidate = policy.lines().any(|l| {
        l.trim()
            .strip_prefix("Candidate:")
            .is_some_and(|c| c.trim().starts_with(|ch: char| ch.is_ascii_digit()))
    });
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive").stdin(Stdio::null());
        util::step_status(&mut cmd, &format!("apt-get {}", args.join(" ")))
    };
    if !has_candidate {
        say("perf-gate: apt-get update");
        apt(&["update", "-qq"])?;
    }
    say("perf-gate: apt-get install valgrind");
    apt(&["install", "-y", "-qq", "--no-install-recommends", "valgrind"])?;
    let v = valgrind_version().ok_or("valgrind installed but `valgrind --version` fails")?;
    say(format!("perf-gate: {v} installed in {}", fmt_dur(t.elapsed())));
    Ok(())
}

/// Everything a command prints on stdout, if it runs.
fn command_line_all(prog: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(prog).args(args).current_dir(util::root()).stderr(Stdio::null()).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

// ---- the baseline file ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    ir: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iterations: Option<u64>,
    #[serde(default)]
    note: String,
}

/// `benches/instructions.toml`: a `[recorded]` table (commit, cpu, rustc, valgrind) and one
/// `[workloads.NAME]` table per workload (ir, iterations, note).
#[derive(Serialize, Deserialize)]
struct Baseline {
    recorded: Recorded,
    #[serde(default)]
    workloads: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
struct Recorded {
    commit: String,
    #[serde(flatten)]
    env: Env,
}

const HEADER: &str = "\
# Instruction counts (callgrind Ir of the measured loop only) of the workloads in
# benches/instructions.rs: the baseline of `cargo xtask perf-gate`, which fails when a
# workload's count grows by more than 5 %. Counts compare only on the same CPU model and
# features, rustc and valgrind ([recorded]); elsewhere the gate reports without failing.
#
# Rewrite it with `cargo xtask perf-gate --record --note \"why\"`: the note goes on every
# workload whose count moved by more than 5 % (or on all of them after a toolchain or
# machine change) and says why the count is what it is. See docs/benchmarks-proto.md.
";

impl Baseline {
    fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn render(&self) -> Result<String> {
        let body = toml::to_string(self).map_err(|e| format!("cannot write the baseline: {e}"))?;
        Ok(format!("{HEADER}\n{body}"))
    }
}

// ---- comparison and report ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Regression,
    Improved,
    /// The workload's iteration count differs from the baseline's: re-record.
    Changed,
    New,
    Removed,
}

struct Row {
    name: String,
    about: String,
    baseline: Option<u64>,
    current: Option<u64>,
    status: Status,
    note: String,
}

fn change(base: u64, now: u64) -> f64 {
    (now as f64 - base as f64) / base.max(1) as f64 * 100.0
}

/// One row per workload measured, plus (on a full run) one per baseline entry that has no
/// workload any more.
fn compare(
    workloads: &[Workload],
    counts: &[u64],
    baseline: Option<&Baseline>,
    threshold: f64,
    full: bool,
) -> Vec<Row> {
    let mut rows: Vec<Row> = workloads
        .iter()
        .zip(counts)
        .map(|(w, &ir)| {
            let entry = baseline.and_then(|b| b.workloads.get(&w.name));
            let status = match entry {
                None => Status::New,
                Some(e) if e.iterations.is_some_and(|i| i != w.iterations) => Status::Changed,
                Some(e) if change(e.ir, ir) > threshold => Status::Regression,
                Some(e) if change(e.ir, ir) < -threshold => Status::Improved,
                Some(_) => Status::Ok,
            };
            Row {
                name: w.name.clone(),
                about: w.about.clone(),
                baseline: entry.map(|e| e.ir),
                current: Some(ir),
                status,
                note: entry.map(|e| e.note.clone()).unwrap_or_default(),
            }
        })
        .collect();
    if let (Some(b), true) = (baseline, full) {
        for (name, e) in &b.workloads {
            if !rows.iter().any(|r| &r.name == name) {
                rows.push(Row {
                    name: name.clone(),
                    about: String::new(),
                    baseline: Some(e.ir),
                    current: None,
                    status: Status::Removed,
                    note: e.note.clone(),
                });
            }
        }
    }
    rows
}

/// `12,345,678`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn report(rows: &[Row], env: &Env, baseline: Option<&Baseline>, comparable: bool, threshold: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### Instruction counts (callgrind Ir), threshold +{threshold}%\n");
    let _ = writeln!(s, "| workload | baseline Ir | Ir | change | status | note |");
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | --- | --- |");
    for r in rows {
        let ch = match (r.baseline, r.current) {
            (Some(b), Some(c)) => format!("{:+.2}%", change(b, c)),
            _ => "—".into(),
        };
        let status = match r.status {
            Status::Ok => "ok",
            Status::Regression if comparable => "**REGRESSION**",
            Status::Regression => "regression (not gated)",
            Status::Improved => "improved",
            Status::Changed if comparable => "**CHANGED** (iterations differ: re-record)",
            Status::Changed => "changed (iterations differ)",
            Status::New => "new (not in baseline)",
            Status::Removed => "removed (only in baseline)",
        };
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} |",
            r.name,
            r.baseline.map(group).unwrap_or_else(|| "—".into()),
            r.current.map(group).unwrap_or_else(|| "—".into()),
            ch,
            status,
            cell(&r.note)
        );
    }
    let _ = writeln!(s);
    for r in rows.iter().filter(|r| !r.about.is_empty()) {
        let _ = writeln!(s, "- `{}`: {}", r.name, r.about);
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "This run: {}; {}; {}.", env.cpu, env.rustc, env.valgrind);
    match baseline {
        None => {
            let _ = writeln!(s, "No baseline yet.");
        }
        Some(b) if comparable => {
            let _ = writeln!(
                s,
                "Baseline: recorded at {} on the same CPU and toolchain: gated.",
                b.recorded.commit
            );
        }
        Some(b) => {
            let differ: Vec<&str> = [
                ("CPU", b.recorded.env.cpu != env.cpu),
                ("rustc", b.recorded.env.rustc != env.rustc),
                ("valgrind", b.recorded.env.valgrind != env.valgrind),
            ]
            .iter()
            .filter(|(_, d)| *d)
            .map(|(what, _)| *what)
            .collect();
            let _ = writeln!(
                s,
                "Baseline: recorded at {} on {}; {}; {}. **Not comparable** (another {}): reported, \
                 not gated. Re-record on this machine to gate.",
                b.recorded.commit,
                b.recorded.env.cpu,
                b.recorded.env.rustc,
                b.recorded.env.valgrind,
                differ.join(", ")
            );
        }
    }
    if comparable && rows.iter().any(|r| r.status == Status::Improved) {
        let _ = writeln!(
            s,
            "Improvements beyond the threshold: re-record (`--record --note \"...\"`) so that later \
             regressions are measured from the better count."
        );
    }
    s
}

/// The new baseline: every current count; `note` on the entries that moved by more than the
/// threshold or are new (all of them if the old baseline is not comparable), the old notes kept
/// on the rest.
fn record(
    workloads: &[Workload],
    counts: &[u64],
    old: Option<&Baseline>,
    comparable: bool,
    threshold: f64,
    note: &str,
    env: &Env,
) -> Baseline {
    let mut entries = BTreeMap::new();
    for (w, &ir) in workloads.iter().zip(counts) {
        let prev = old.and_then(|b| b.workloads.get(&w.name));
        let keep_note = match prev {
            Some(e) if comparable && change(e.ir, ir).abs() <= threshold && !e.note.is_empty() => {
                Some(e.note.clone())
            }
            _ => None,
        };
        entries.insert(
            w.name.clone(),
            Entry { ir, iterations: Some(w.iterations), note: keep_note.unwrap_or_else(|| note.to_owned()) },
        );
    }
    let commit =
        command_line("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = command_line_all("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| s.lines().any(|l| !l.ends_with("instructions.toml")));
    Baseline {
        recorded: Recorded {
            commit: if dirty { format!("{commit}+changes") } else { commit },
            env: env.clone(),
        },
        workloads: entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_baseline_round_trips() {
        let path = util::root().join("benches").join("instructions.toml");
        let baseline = Baseline::load(&path).unwrap();
        assert!(!baseline.workloads.is_empty());
        let text = baseline.render().unwrap();
        assert!(text.starts_with(HEADER));
        let again: Baseline = toml::from_str(&text).unwrap();
        assert_eq!(again.workloads, baseline.workloads);
        assert_eq!(again.recorded.env, baseline.recorded.env);
    }
}
