//! `cargo xtask autobahn`: the Autobahn|Testsuite against our examples, both roles.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{self, Metadata, Result, Spawned, fmt_dur, say};

const USAGE: &str = "\
usage: cargo xtask autobahn [--full] [--server-only|--client-only] [--cases PATTERNS]
                            [--sequential] [--timeout SECS] [--out DIR]
                            [--server-cmd CMD] [--client-cmd CMD]

Runs the Autobahn|Testsuite (wstest 0.8.2, installed into $AUTOBAHN_HOME, default
~/.cache/ws-autobahn) against the `autobahn_server` example (wstest fuzzingclient)
and with the `autobahn_client` example (against wstest fuzzingserver). Reports go to
<target-dir>/autobahn/{server,client}/ (index.html, index.json).

  --full            all 517 cases per role (default: the quick profile)
  --server-only     only test our server          --client-only  only test our client
  --cases PATTERNS  comma-separated case patterns instead of a profile, e.g. '12.*,13.1.*'
  --sequential      run the roles one after the other (default: concurrently)
  --timeout SECS    per-role time limit (default 1800 quick, 7200 full)
  --out DIR         report root (default <target-dir>/autobahn)
  --server-cmd CMD  stand-in server instead of the example; {addr}, {port} substituted
  --client-cmd CMD  stand-in client instead of the example; {url}, {agent} substituted

Exits non-zero if any case is FAILED or UNIMPLEMENTED (behavior or behaviorClose)
or if any selected case has no result.";

/// Agent name used in both roles' reports.
const AGENT: &str = "ws";

/// Cases the quick profile leaves out of sections 1-11: the 8 MiB / 16 MiB
/// single-frame messages (9.1.5/9.1.6 alone cost ~20 s of wstest time).
const QUICK_EXCLUDE: &[&str] = &["9.1.5", "9.1.6", "9.2.5", "9.2.6"];

/// Sections 12.x (5 groups) and 13.x (7 groups, one per deflate parameter offer)
/// have 18 cases per group: 1000 messages each, of 16 B (x.1) up to 128 KiB, the
/// last eight auto-fragmented. The quick profile samples each group with x.1
/// (16 B messages, context takeover across 1000 messages) and x.11 (8 KiB
/// messages fragmented into 256 B frames: compressed continuation frames), ~5 s
/// each; plus the heaviest case x.18 (128 KiB messages) of the first and the last
/// group and of 13.3 (window bits 9) only: an x.18 case costs 40-120 s of wstest time, all twelve would be
/// ~15 minutes per role. See docs/ci.md.
const QUICK_COMPRESSION: &[&str] = &[
    "12.1.1", "12.1.11", "12.1.18", "12.2.1", "12.2.11", "12.3.1", "12.3.11", "12.4.1", "12.4.11", "12.5.1",
    "12.5.11", "13.1.1", "13.1.11", "13.2.1", "13.2.11", "13.3.1", "13.3.11", "13.3.18", "13.4.1", "13.4.11",
    "13.5.1", "13.5.11", "13.6.1", "13.6.11", "13.7.1", "13.7.11", "13.7.18",
];

struct Opts {
    full: bool,
    server: bool,
    client: bool,
    cases: Option<Vec<String>>,
    sequential: bool,
    timeout: Option<u64>,
    out: Option<PathBuf>,
    server_cmd: Option<String>,
    client_cmd: Option<String>,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        full: false,
        server: true,
        client: true,
        cases: None,
        sequential: false,
        timeout: None,
        out: None,
        server_cmd: None,
        client_cmd: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value\n\n{USAGE}"));
        match a.as_str() {
            "--full" => o.full = true,
            "--server-only" => o.client = false,
            "--client-only" => o.server = false,
            "--sequential" => o.sequential = true,
            "--cases" => {
                let v = val(a)?;
                o.cases = Some(v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect());
            }
            "--timeout" => o.timeout = Some(val(a)?.parse().map_err(|e| format!("--timeout: {e}"))?),
            "--out" => o.out = Some(PathBuf::from(val(a)?)),
            "--server-cmd" => o.server_cmd = Some(val(a)?),
            "--client-cmd" => o.client_cmd = Some(val(a)?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if !o.server && !o.client {
        return Err("--server-only and --client-only exclude each other".into());
    }
    Ok(o)
}

/// `(cases, exclude-cases)` patterns of the selected profile.
fn profile(o: &Opts) -> (Vec<String>, Vec<String>) {
    if let Some(c) = &o.cases {
        return (c.clone(), vec![]);
    }
    if o.full {
        return (vec!["*".into()], vec![]);
    }
    let mut cases: Vec<String> = (1..=11).map(|s| format!("{s}.*")).collect();
    cases.extend(QUICK_COMPRESSION.iter().map(|s| s.to_string()));
    (cases, QUICK_EXCLUDE.iter().map(|s| s.to_string()).collect())
}

/// Where wstest lives; installs it (idempotent) via scripts/autobahn-install.sh.
pub fn install() -> Result<PathBuf> {
    let home = match std::env::var_os("AUTOBAHN_HOME") {
        Some(h) => PathBuf::from(h),
        None => util::home()?.join(".cache").join("ws-autobahn"),
    };
    let t = Instant::now();
    let script = util::root().join("scripts").join("autobahn-install.sh");
    util::step_status(Command::new("bash").arg(&script).arg(&home), "Autobahn install")?;
    say(format!("autobahn: wstest ready in {} ({})", home.display(), fmt_dur(t.elapsed())));
    Ok(home)
}

/// Resolve case patterns to case ids with the suite's own resolver.
fn resolve_cases(home: &Path, spec: &Path) -> Result<Vec<String>> {
    const CODE: &str = "import site, sys, json
site.addsitedir(sys.argv[1])
from autobahntestsuite.case import Cases, CaseCategories, CaseSubCategories, CaseSetname, CaseBasename
from autobahntestsuite.caseset import CaseSet
cs = CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories)
known = set(cs.CasesIndices.keys())
cases = cs.parseSpecCases(json.load(open(sys.argv[2])))
bad = [c for c in cases if c not in known]
if bad: sys.exit('unknown Autobahn case ids: ' + ', '.join(bad))
print(json.dumps(cases))";
    let out = Command::new(home.join("python2.7"))
        .arg("-c")
        .arg(CODE)
        .arg(home.join("site"))
        .arg(spec)
        .output()
        .map_err(|e| format!("cannot run the Autobahn python: {e}"))?;
    if !out.status.success() {
        return Err(format!("cannot resolve case patterns: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("case list: {e}"))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Server,
    Client,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
        }
    }
}

/// Everything a role needs, prepared on the main thread.
struct Job {
    role: Role,
    dir: PathBuf,
    wstest: PathBuf,
    cases: Vec<String>,
    excludes: Vec<String>,
    expected: Vec<String>,
    /// Command template of the program under test.
    cmd: String,
    timeout: Duration,
}

/// Outcome of one role.
pub struct RoleReport {
    role: Role,
    elapsed: Duration,
    error: Option<String>,
    summary: Option<Summary>,
}

impl RoleReport {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.summary.as_ref().is_some_and(Summary::passed)
    }
}

pub fn run(args: &[String]) -> Result {
    let o = parse(args)?;
    let reports = run_opts(&o)?;
    if reports.iter().all(RoleReport::passed) {
        Ok(())
    } else {
        Err("Autobahn: some cases failed, are unimplemented or missing (see above)".into())
    }
}

/// Used by `cargo xtask ci`: the quick profile, both roles. A missing example is
/// skipped with a warning unless `WS_CI_REQUIRE_EXAMPLES=1`.
pub fn run_quick() -> Result {
    let meta = Metadata::load()?;
    let require = std::env::var_os("WS_CI_REQUIRE_EXAMPLES").is_some_and(|v| v == "1");
    let mut args = vec![];
    for (example, skip_flag) in [("autobahn_server", "--client-only"), ("autobahn_client", "--server-only")] {
        if !meta.has_example(example) {
            if require {
                return Err(format!("example `{example}` is missing (WS_CI_REQUIRE_EXAMPLES=1)"));
            }
            say(format!("WARNING: example `{example}` does not exist yet: its Autobahn role is SKIPPED"));
            args.push(skip_flag.to_owned());
        }
    }
    if args.len() == 2 {
        say("WARNING: Autobahn SKIPPED entirely (no autobahn_server / autobahn_client example yet)");
        return Ok(());
    }
    run(&args)
}

fn run_opts(o: &Opts) -> Result<Vec<RoleReport>> {
    let home = install()?;
    let wstest = home.join("wstest");
    let meta = Metadata::load()?;
    let out = o.out.clone().unwrap_or_else(|| meta.target_dir.join("autobahn"));
    fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let out = out.canonicalize().map_err(|e| e.to_string())?;

    let (cases, excludes) = profile(o);
    let probe = out.join("cases.spec.json");
    util::write_file(&probe, &json!({"cases": cases, "exclude-cases": excludes}).to_string())?;
    let expected = resolve_cases(&home, &probe)?;
    let _ = fs::remove_file(&probe);
    say(format!(
        "autobahn: profile {} -> {} cases per role",
        if o.cases.is_some() {
            "custom"
        } else if o.full {
            "full"
        } else {
            "quick"
        },
        expected.len()
    ));

    let mut build = vec![];
    if o.server && o.server_cmd.is_none() {
        build.push("autobahn_server");
    }
    if o.client && o.client_cmd.is_none() {
        build.push("autobahn_client");
    }
    let t = Instant::now();
    meta.build_examples(&build)?;
    if !build.is_empty() {
        say(format!("autobahn: built {} ({})", build.join(", "), fmt_dur(t.elapsed())));
    }

    let timeout = Duration::from_secs(o.timeout.unwrap_or(if o.full { 7200 } else { 1800 }));
    let mut jobs = vec![];
    for (enabled, role, custom, example, args) in [
        (o.server, Role::Server, &o.server_cmd, "autobahn_server", "{addr}"),
        (o.client, Role::Client, &o.client_cmd, "autobahn_client", "{url} {agent}"),
    ] {
        if !enabled {
            continue;
        }
        let cmd = custom.clone().unwrap_or_else(|| format!("{} {args}", meta.example_bin(example).display()));
        jobs.push(Job {
            role,
            dir: out.join(role.name()),
            wstest: wstest.clone(),
            cases: cases.clone(),
            excludes: excludes.clone(),
            expected: expected.clone(),
            cmd,
            timeout,
        });
    }

    let reports: Vec<RoleReport> = if o.sequential {
        jobs.into_iter().map(run_job).collect()
    } else {
        let handles: Vec<_> = jobs.into_iter().map(|j| thread::spawn(move || run_job(j))).collect();
        handles.into_iter().map(|h| h.join().expect("role thread panicked")).collect()
    };
    for r in &reports {
        print_report(r);
    }
    Ok(reports)
}

fn run_job(job: Job) -> RoleReport {
    let start = Instant::now();
    let role = job.role;
    say(format!(
        "autobahn[{}]: start, {} cases, reports in {}",
        role.name(),
        job.expected.len(),
        job.dir.display()
    ));
    let res = match role {
        Role::Server => test_server(&job),
        Role::Client => test_client(&job),
    };
    // Even after an error, a partial index.json tells which cases ran.
    let summary = Summary::load(&job.dir.join("index.json"), &job.expected).ok();
    let elapsed = start.elapsed();
    say(format!("autobahn[{}]: done in {}", role.name(), fmt_dur(elapsed)));
    RoleReport { role, elapsed, error: res.err(), summary }
}

/// Count "Running test case ID" lines of a wstest log, for progress output.
fn progress(log: &Path) -> usize {
    fs::read_to_string(log).map(|s| s.matches("Running test case ID").count()).unwrap_or(0)
}

const PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// Our server under wstest's fuzzingclient.
fn test_server(job: &Job) -> Result {
    util::fresh_dir(&job.dir)?;
    let port = util::free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = util::template_cmd(&job.cmd, &[("addr", &addr), ("port", &port.to_string())])?;
    let mut server =
        Spawned::spawn("autobahn_server", cmd.current_dir(util::root()), &job.dir.join("server.log"))?;
    util::wait_port(port, &mut server, Duration::from_secs(30))?;

    let spec = json!({
        "outdir": job.dir,
        "servers": [{"agent": AGENT, "url": format!("ws://{addr}")}],
        "cases": job.cases,
        "exclude-cases": job.excludes,
        "exclude-agent-cases": {},
    });
    let spec_path = job.dir.join("spec.json");
    util::write_file(&spec_path, &serde_json::to_string_pretty(&spec).map_err(|e| e.to_string())?)?;
    let log = job.dir.join("wstest.log");
    let mut wstest = Spawned::spawn(
        "wstest fuzzingclient",
        Command::new(&job.wstest).args(["-m", "fuzzingclient", "-s"]).arg(&spec_path).current_dir(&job.dir),
        &log,
    )?;
    let total = job.expected.len();
    let status = wstest.wait_timeout(job.timeout, PROGRESS_EVERY, || {
        say(format!("autobahn[server]: {}/{total} cases started", progress(&log)));
    })?;
    let server_died = server.try_wait()?;
    server.kill();
    match status {
        None => return Err(format!("wstest fuzzingclient timed out after {}", fmt_dur(job.timeout))),
        Some(s) if !s.success() => {
            return Err(format!("wstest fuzzingclient failed ({s}):\n{}", util::tail(&log, 15)));
        }
        _ => {}
    }
    if let Some(s) = server_died {
        return Err(format!("autobahn_server exited during the run ({s}):\n{}", util::tail(&server.log, 15)));
    }
    Ok(())
}

/// Our client against wstest's fuzzingserver.
fn test_client(job: &Job) -> Result {
    util::fresh_dir(&job.dir)?;
    let port = util::free_port()?;
    let url = format!("ws://127.0.0.1:{port}");
    let spec = json!({
        "url": url,
        "outdir": job.dir,
        "cases": job.cases,
        "exclude-cases": job.excludes,
        "exclude-agent-cases": {},
    });
    let spec_path = job.dir.join("spec.json");
    util::write_file(&spec_path, &serde_json::to_string_pretty(&spec).map_err(|e| e.to_string())?)?;
    let log = job.dir.join("wstest.log");
    let mut wstest = Spawned::spawn(
        "wstest fuzzingserver",
        // --webport 0: no embedded web server on 8080, so concurrent runs never collide.
        Command::new(&job.wstest)
            .args(["-m", "fuzzingserver", "--webport", "0", "-s"])
            .arg(&spec_path)
            .current_dir(&job.dir),
        &log,
    )?;
    util::wait_port(port, &mut wstest, Duration::from_secs(60))?;

    let mut cmd = util::template_cmd(&job.cmd, &[("url", &url), ("agent", AGENT)])?;
    let mut client =
        Spawned::spawn("autobahn_client", cmd.current_dir(util::root()), &job.dir.join("client.log"))?;
    let total = job.expected.len();
    let status = client.wait_timeout(job.timeout, PROGRESS_EVERY, || {
        say(format!("autobahn[client]: {}/{total} cases started", progress(&log)));
    })?;
    // wstest writes the reports on updateReports, before answering; give it a moment
    // in case the client hung up early.
    let index = job.dir.join("index.json");
    let t = Instant::now();
    while !index.exists() && t.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(200));
    }
    let wstest_died = wstest.try_wait()?;
    wstest.kill();
    if let Some(s) = wstest_died {
        return Err(format!("wstest fuzzingserver exited during the run ({s}):\n{}", util::tail(&log, 15)));
    }
    match status {
        None => Err(format!("autobahn_client timed out after {}", fmt_dur(job.timeout))),
        Some(s) if !s.success() => {
            Err(format!("autobahn_client failed ({s}):\n{}", util::tail(&client.log, 15)))
        }
        _ if !index.exists() => {
            Err("autobahn_client finished but wstest wrote no index.json (updateReports missing?)".into())
        }
        _ => Ok(()),
    }
}

const BEHAVIORS: [&str; 5] = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"];

/// Parsed `index.json` of one role.
pub struct Summary {
    /// behavior -> count
    behavior: BTreeMap<String, usize>,
    /// behaviorClose -> count
    close: BTreeMap<String, usize>,
    /// section number -> behavior -> count
    sections: BTreeMap<u32, BTreeMap<String, usize>>,
    /// (case, behavior, behaviorClose) of cases that fail the run
    bad: Vec<(String, String, String)>,
    missing: Vec<String>,
    /// (duration ms, case), slowest first
    slowest: Vec<(u64, String)>,
    total_ms: u64,
    count: usize,
}

impl Summary {
    fn load(path: &Path, expected: &[String]) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let agents = v.as_object().ok_or("index.json: not an object")?;
        let cases = agents
            .get(AGENT)
            .or_else(|| agents.values().next())
            .and_then(Value::as_object)
            .ok_or("index.json: no agent")?;
        let mut s = Self {
            behavior: BTreeMap::new(),
            close: BTreeMap::new(),
            sections: BTreeMap::new(),
            bad: vec![],
            missing: vec![],
            slowest: vec![],
            total_ms: 0,
            count: 0,
        };
        let mut ids: Vec<&String> = cases.keys().collect();
        ids.sort_by_key(|id| case_key(id));
        for id in ids {
            let c = &cases[id.as_str()];
            let b = c["behavior"].as_str().unwrap_or("?").to_owned();
            let bc = c["behaviorClose"].as_str().unwrap_or("?").to_owned();
            let section = id.split('.').next().and_then(|x| x.parse().ok()).unwrap_or(0);
            *s.behavior.entry(b.clone()).or_default() += 1;
            *s.close.entry(bc.clone()).or_default() += 1;
            *s.sections.entry(section).or_default().entry(b.clone()).or_default() += 1;
            let fails = |x: &str| !matches!(x, "OK" | "NON-STRICT" | "INFORMATIONAL");
            if fails(&b) || fails(&bc) {
                s.bad.push((id.clone(), b, bc));
            }
            let ms = c["duration"].as_u64().unwrap_or(0);
            s.total_ms += ms;
            s.slowest.push((ms, id.clone()));
            s.count += 1;
        }
        s.slowest.sort_by(|a, b| b.cmp(a));
        s.slowest.truncate(8);
        let have: BTreeSet<&str> = cases.keys().map(String::as_str).collect();
        s.missing = expected.iter().filter(|e| !have.contains(e.as_str())).cloned().collect();
        Ok(s)
    }

    fn passed(&self) -> bool {
        self.bad.is_empty() && self.missing.is_empty()
    }
}

fn case_key(id: &str) -> Vec<u32> {
    id.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

fn print_report(r: &RoleReport) {
    let role = r.role.name();
    say(format!("\n=== Autobahn {role} role ({}) ===", fmt_dur(r.elapsed)));
    if let Some(e) = &r.error {
        say(format!("ERROR: {e}"));
    }
    let Some(s) = &r.summary else {
        say("no index.json report was produced");
        return;
    };
    let mut header = format!("{:<8}", "section");
    for b in BEHAVIORS {
        header.push_str(&format!("{b:>15}"));
    }
    say(header);
    for (sec, counts) in &s.sections {
        let mut line = format!("{sec:<8}");
        for b in BEHAVIORS {
            line.push_str(&format!("{:>15}", counts.get(b).copied().unwrap_or(0)));
        }
        say(line);
    }
    let fmt_counts = |m: &BTreeMap<String, usize>| {
        let mut parts: Vec<String> =
            BEHAVIORS.iter().map(|b| format!("{b} {}", m.get(*b).copied().unwrap_or(0))).collect();
        parts.extend(
            m.iter().filter(|(k, _)| !BEHAVIORS.contains(&k.as_str())).map(|(k, v)| format!("{k} {v}")),
        );
        parts.join(", ")
    };
    say(format!("behavior:      {}", fmt_counts(&s.behavior)));
    say(format!("behaviorClose: {}", fmt_counts(&s.close)));
    say(format!(
        "cases: {} run, {} missing; sum of case durations {}",
        s.count,
        s.missing.len(),
        fmt_dur(Duration::from_millis(s.total_ms))
    ));
    let slow: Vec<String> = s.slowest.iter().map(|(ms, id)| format!("{id} {ms}ms")).collect();
    say(format!("slowest: {}", slow.join(", ")));
    for (id, b, bc) in s.bad.iter().take(60) {
        say(format!("  {role} {id}: behavior {b}, behaviorClose {bc}"));
    }
    if s.bad.len() > 60 {
        say(format!("  ... and {} more", s.bad.len() - 60));
    }
    if !s.missing.is_empty() {
        let shown: Vec<&str> = s.missing.iter().take(30).map(String::as_str).collect();
        say(format!("  missing: {}{}", shown.join(" "), if s.missing.len() > 30 { " ..." } else { "" }));
    }
    say(format!("RESULT {role}: {}", if r.passed() { "PASS" } else { "FAIL" }));
}
