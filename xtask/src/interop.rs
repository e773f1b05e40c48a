//! `cargo xtask interop`: our examples against Python `websockets` 17 and Node `ws` 8,
//! over a permessage-deflate parameter matrix, headless Chromium's own WebSocket client
//! against our `echo_server`, and connection-lifecycle scenarios (keepalive, closing)
//! against our `push_server` and `echo_server`, and `wss://` both ways between Python
//! `websockets` (OpenSSL) and us (rustls: our `tls_server` and `interop_client`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{self, Metadata, Result, Spawned, fmt_dur, say};

const USAGE: &str = "\
usage: cargo xtask interop [--peers-only] [--require-rust] [--no-browser] [--only SUBSTR]
                           [--out DIR]

Installs the peers (tests-interop/setup.sh: Python websockets 17 into
$WS_INTEROP_HOME/venv, Node ws 8 into $WS_INTEROP_HOME/node; default
~/.cache/ws-interop), then for every deflate configuration of the matrix starts
each echo server (Python, Node, our `echo_server` example) and runs each client
of another implementation against it (Python, Node, our `interop_client` example).
Then headless Chromium (tests-interop/browser: Debian's `chromium`, installed by
setup.sh with apt-get when missing) runs a test page against our `echo_server`,
with and without permessage-deflate (`chromium-client -> rust-server [plain|deflate]`).
If Chromium cannot be installed (not root / no apt-get), those runs are skipped with a
WARNING, or fail with WS_CI_REQUIRE_BROWSER=1.
Last, the lifecycle runs (`lifecycle: …`, tests-interop/{python,node}/lifecycle.*): pings,
keepalive and the closing handshake against our `push_server` (a handler that never
receives), and 200 send-then-close connections against our `echo_server`.
Then TLS (`tls: …`): a CA and a localhost certificate are made for the run; Python's
client (ssl.create_default_context(cafile=…)) runs against our `tls_server` (PEM files),
and our `interop_client` (SSL_CERT_FILE=the CA) against Python's server over wss://.

  --peers-only    only Python <-> Node (proves the harness without Rust examples)
  --require-rust  fail if a Rust example is missing (default: skip it, with a warning)
  --no-browser    skip the Chromium runs (also WS_INTEROP_NO_BROWSER=1)
  --only SUBSTR   only runs whose name contains SUBSTR, e.g. `rust-server` or `w9`
  --out DIR       logs (default <target-dir>/interop)";

/// One row of the matrix: flags for the client and for the peer servers.
struct Config {
    name: &'static str,
    client: &'static [&'static str],
    server: &'static [&'static str],
    /// Whether our echo_server can take part (it has no server-side deflate flags;
    /// it must honour what the client offers).
    rust_server: bool,
}

const MATRIX: &[Config] = &[
    Config { name: "plain", client: &["--no-compression"], server: &["--no-compression"], rust_server: true },
    Config { name: "deflate", client: &[], server: &[], rust_server: true },
    Config {
        name: "w9",
        client: &["--server-max-window-bits", "9", "--client-max-window-bits", "9"],
        server: &[],
        rust_server: true,
    },
    Config {
        name: "w12",
        client: &["--server-max-window-bits", "12", "--client-max-window-bits", "12"],
        server: &[],
        rust_server: true,
    },
    Config {
        name: "w15",
        client: &["--server-max-window-bits", "15", "--client-max-window-bits", "15"],
        server: &[],
        rust_server: true,
    },
    Config {
        name: "nct",
        client: &["--server-no-context-takeover", "--client-no-context-takeover"],
        server: &[],
        rust_server: true,
    },
    Config {
        name: "w9-nct",
        client: &[
            "--server-max-window-bits",
            "9",
            "--client-max-window-bits",
            "9",
            "--server-no-context-takeover",
            "--client-no-context-takeover",
        ],
        server: &[],
        rust_server: true,
    },
    // The server imposes parameters the client did not ask for (a client must accept
    // server_max_window_bits / no_context_takeover in the response, and
    // client_max_window_bits when it offered the parameter).
    Config {
        name: "server-imposes-w9-nct",
        client: &[],
        server: &[
            "--server-max-window-bits",
            "9",
            "--client-max-window-bits",
            "9",
            "--server-no-context-takeover",
            "--client-no-context-takeover",
        ],
        rust_server: false,
    },
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Impl {
    Python,
    Node,
    Rust,
    /// Headless Chromium's WebSocket (a client only; tests-interop/browser/run.js).
    Chromium,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::Node => "node",
            Self::Rust => "rust",
            Self::Chromium => "chromium",
        }
    }
}

/// The browser takes part only against our server, and only where it needs no
/// deflate parameters of its own (it always offers `permessage-deflate;
/// client_max_window_bits`, or nothing if the server declines).
fn chromium_runs(cfg: &Config, server: Impl) -> bool {
    server == Impl::Rust && matches!(cfg.name, "plain" | "deflate")
}

/// A connection-lifecycle scenario: a peer's `lifecycle` script against one of our servers,
/// which is started for it alone (a fresh process: no state from other runs).
struct Lifecycle {
    client: Impl,
    /// First argument of tests-interop/python/lifecycle.py or node/lifecycle.js.
    scenario: &'static str,
    /// Our example that serves it.
    server: &'static str,
}

/// While they pass: ~5.5 s per keepalive run (a fixed 5 s window), well under 1 s for the rounds.
const LIFECYCLE: &[Lifecycle] = &[
    Lifecycle { client: Impl::Python, scenario: "keepalive-push", server: "push_server" },
    Lifecycle { client: Impl::Node, scenario: "keepalive-ping", server: "push_server" },
    Lifecycle { client: Impl::Python, scenario: "send-close-rounds", server: "echo_server" },
];

impl Lifecycle {
    fn name(&self) -> String {
        format!("lifecycle: {} {} -> rust {}", self.client.name(), self.scenario, self.server)
    }
}

/// The TLS runs: Python `websockets` over OpenSSL and us over rustls, `wss://` both ways.
#[derive(Clone, Copy)]
enum TlsRun {
    /// tests-interop/python/client.py with `--cafile` against our `tls_server` example.
    PythonClient,
    /// Our `interop_client` with `SSL_CERT_FILE` against tests-interop/python/server.py.
    RustClient,
}

impl TlsRun {
    fn name(self) -> &'static str {
        match self {
            Self::PythonClient => "tls: python-client -> rust-tls_server [wss]",
            Self::RustClient => "tls: rust-client -> python-server [wss]",
        }
    }
}

struct Env {
    venv_python: PathBuf,
    node_path: PathBuf,
    dir: PathBuf,
    echo_server: Option<PathBuf>,
    interop_client: Option<PathBuf>,
    push_server: Option<PathBuf>,
    tls_server: Option<PathBuf>,
    /// The Chromium binary, once tests-interop/browser/setup.sh found or installed it.
    chromium: Option<PathBuf>,
}

impl Env {
    fn peer_dir() -> PathBuf {
        util::root().join("tests-interop")
    }

    fn server_cmd(&self, imp: Impl, port: u16, cfg: &Config) -> Command {
        let mut c = match imp {
            Impl::Python => {
                let mut c = Command::new(&self.venv_python);
                c.arg(Self::peer_dir().join("python/server.py"));
                c.args(["--port", &port.to_string()]).args(cfg.server);
                c
            }
            Impl::Node => {
                let mut c = Command::new("node");
                c.arg(Self::peer_dir().join("node/server.js")).env("NODE_PATH", &self.node_path);
                c.args(["--port", &port.to_string()]).args(cfg.server);
                c
            }
            Impl::Chromium => unreachable!("a browser is only a client"),
            Impl::Rust => {
                let mut c = Command::new(self.echo_server.as_ref().expect("checked"));
                c.arg(format!("127.0.0.1:{port}"));
                if cfg.name == "plain" {
                    c.arg("--no-compression");
                }
                c
            }
        };
        c.current_dir(util::root());
        c
    }

    /// One of our server examples, if it was built.
    fn rust_server(&self, example: &str) -> Option<&Path> {
        match example {
            "echo_server" => self.echo_server.as_deref(),
            "push_server" => self.push_server.as_deref(),
            _ => None,
        }
    }

    fn client_cmd(&self, imp: Impl, uri: &str, cfg: &Config) -> Command {
        let mut c = match imp {
            Impl::Python => {
                let mut c = Command::new(&self.venv_python);
                c.arg(Self::peer_dir().join("python/client.py"));
                c
            }
            Impl::Node => {
                let mut c = Command::new("node");
                c.arg(Self::peer_dir().join("node/client.js")).env("NODE_PATH", &self.node_path);
                c
            }
            Impl::Rust => Command::new(self.interop_client.as_ref().expect("checked")),
            Impl::Chromium => {
                let mut c = Command::new("node");
                c.arg(Self::peer_dir().join("browser/run.js"))
                    .env("WS_CHROMIUM", self.chromium.as_ref().expect("checked"));
                c
            }
        };
        c.arg(uri).args(cfg.client).current_dir(util::root());
        c
    }
}

struct Outcome {
    name: String,
    ok: bool,
    detail: String,
    elapsed: Duration,
}

pub fn run(args: &[String]) -> Result {
    let mut peers_only = false;
    let mut no_browser = std::env::var_os("WS_INTEROP_NO_BROWSER").is_some_and(|v| v == "1");
    let require_browser = std::env::var_os("WS_CI_REQUIRE_BROWSER").is_some_and(|v| v == "1");
    let mut require_rust = std::env::var_os("WS_CI_REQUIRE_EXAMPLES").is_some_and(|v| v == "1");
    let mut only: Option<String> = None;
    let mut out: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--peers-only" => peers_only = true,
            "--require-rust" => require_rust = true,
            "--no-browser" => no_browser = true,
            "--only" => only = Some(it.next().ok_or("--only needs a value")?.clone()),
            "--out" => out = Some(PathBuf::from(it.next().ok_or("--out needs a value")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }

    let home = setup_peers()?;

    let meta = Metadata::load()?;
    let mut env = Env {
        venv_python: home.join("venv/bin/python"),
        node_path: home.join("node/node_modules"),
        dir: out.unwrap_or_else(|| meta.target_dir.join("interop")),
        echo_server: None,
        interop_client: None,
        push_server: None,
        tls_server: None,
        chromium: None,
    };
    util::fresh_dir(&env.dir)?;

    let mut skipped = vec![];
    if !peers_only {
        let mut build = vec![];
        for ex in ["echo_server", "interop_client", "push_server", "tls_server"] {
            if meta.has_example(ex) {
                build.push(ex);
            } else if require_rust {
                return Err(format!("example `{ex}` is missing (--require-rust / WS_CI_REQUIRE_EXAMPLES=1)"));
            } else {
                skipped.push(ex);
            }
        }
        let t = Instant::now();
        meta.build_examples(&build)?;
        if build.contains(&"echo_server") {
            env.echo_server = Some(meta.example_bin("echo_server"));
        }
        if build.contains(&"interop_client") {
            env.interop_client = Some(meta.example_bin("interop_client"));
        }
        if build.contains(&"push_server") {
            env.push_server = Some(meta.example_bin("push_server"));
        }
        if build.contains(&"tls_server") {
            env.tls_server = Some(meta.example_bin("tls_server"));
        }
        if !build.is_empty() {
            say(format!("interop: built {} ({})", build.join(", "), fmt_dur(t.elapsed())));
        }
    }

    let mut servers = vec![Impl::Python, Impl::Node];
    let mut clients = vec![Impl::Python, Impl::Node];
    if env.echo_server.is_some() {
        servers.push(Impl::Rust);
    }
    if env.interop_client.is_some() {
        clients.push(Impl::Rust);
    }
    // Chromium: only if some selected run needs it (the install is the slow part).
    let mut browser_note = None;
    let browser_selected = env.echo_server.is_some()
        && MATRIX.iter().any(|cfg| {
            chromium_runs(cfg, Impl::Rust)
                && only.as_deref().is_none_or(|o| run_name(cfg, Impl::Rust, Impl::Chromium).contains(o))
        });
    let browser_setup = Instant::now();
    if browser_selected && no_browser {
        browser_note = Some("browser runs skipped (--no-browser / WS_INTEROP_NO_BROWSER=1)".to_owned());
    } else if browser_selected {
        match setup_browser() {
            Ok(bin) => {
                say(format!(
                    "interop: browser ready: {} ({})",
                    bin.display(),
                    fmt_dur(browser_setup.elapsed())
                ));
                env.chromium = Some(bin);
                clients.push(Impl::Chromium);
            }
            Err(BrowserSetup::Unavailable(e)) if !require_browser => {
                browser_note = Some(format!(
                    "WARNING: Chromium cannot be installed here ({e}): the chromium-client runs were \
                     SKIPPED (WS_CI_REQUIRE_BROWSER=1 makes this an error)"
                ));
                say(browser_note.as_deref().unwrap_or_default());
            }
            Err(BrowserSetup::Unavailable(e) | BrowserSetup::Failed(e)) => {
                return Err(format!("browser setup: {e}"));
            }
        }
    }
    let browser_setup = browser_setup.elapsed();

    let start = Instant::now();
    let mut outcomes = vec![];
    for cfg in MATRIX {
        for &server in &servers {
            if server == Impl::Rust && !cfg.rust_server {
                continue;
            }
            let run_clients: Vec<Impl> = clients
                .iter()
                .copied()
                .filter(|&c| c != server)
                .filter(|&c| c != Impl::Chromium || chromium_runs(cfg, server))
                .filter(|&c| {
                    let name = run_name(cfg, server, c);
                    only.as_deref().is_none_or(|o| name.contains(o))
                })
                .collect();
            if run_clients.is_empty() {
                continue;
            }
            outcomes.extend(run_server(&env, cfg, server, &run_clients));
        }
    }

    // After the matrix: these are slower (seconds of waiting each), and a failure here is
    // about the connection's lifecycle, not the codec.
    let lifecycle_start = Instant::now();
    let mut lifecycle_runs = 0;
    for lc in LIFECYCLE {
        let name = lc.name();
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        // Missing examples were reported (or refused) above.
        let Some(bin) = env.rust_server(lc.server) else { continue };
        let t = Instant::now();
        let (ok, detail) = run_lifecycle(&env, lc, bin);
        outcomes.push(Outcome { name, ok, detail, elapsed: t.elapsed() });
        lifecycle_runs += 1;
    }
    let lifecycle_time = lifecycle_start.elapsed();

    for run in [TlsRun::PythonClient, TlsRun::RustClient] {
        let name = run.name();
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        // Missing examples were reported (or refused) above.
        let ready = match run {
            TlsRun::PythonClient => env.tls_server.is_some(),
            TlsRun::RustClient => env.interop_client.is_some(),
        };
        if !ready {
            continue;
        }
        let t = Instant::now();
        let (ok, detail) = run_tls(&env, run).unwrap_or_else(|e| (false, e));
        outcomes.push(Outcome { name: name.to_owned(), ok, detail, elapsed: t.elapsed() });
    }

    say("");
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.ok).collect();
    for o in &outcomes {
        say(format!(
            "{:<4} {:<56} {:>7}  {}",
            if o.ok { "ok" } else { "FAIL" },
            o.name,
            fmt_dur(o.elapsed),
            o.detail
        ));
    }
    if env.chromium.is_some() {
        let runs: Vec<&Outcome> = outcomes.iter().filter(|o| o.name.starts_with("chromium-")).collect();
        let total: Duration = runs.iter().map(|o| o.elapsed).sum();
        say(format!(
            "interop: browser: {} chromium run(s) took {}, + setup {} = {} added",
            runs.len(),
            fmt_dur(total),
            fmt_dur(browser_setup),
            fmt_dur(total + browser_setup)
        ));
    }
    if lifecycle_runs > 0 {
        say(format!("interop: lifecycle: {lifecycle_runs} run(s) took {}", fmt_dur(lifecycle_time)));
    }
    if let Some(note) = &browser_note {
        say(note);
    }
    for ex in &skipped {
        say(format!(
            "WARNING: example `{ex}` does not exist yet: its interop runs were SKIPPED \
             (--require-rust or WS_CI_REQUIRE_EXAMPLES=1 makes this an error)"
        ));
    }
    say(format!(
        "interop: {} passed, {} failed ({}; logs in {})",
        outcomes.len() - failed.len(),
        failed.len(),
        fmt_dur(start.elapsed()),
        env.dir.display()
    ));
    if outcomes.is_empty() {
        return Err("interop: no run selected".into());
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("interop: {} run(s) failed", failed.len())) }
}

/// Installs the peers (tests-interop/setup.sh; quick once they are there) and returns their
/// home. `cargo xtask ci` runs it before `cargo test --workspace` too: ws-axum's test runs the
/// Python client from this venv.
pub fn setup_peers() -> Result<PathBuf> {
    let home = match std::env::var_os("WS_INTEROP_HOME") {
        Some(h) => PathBuf::from(h),
        None => util::home()?.join(".cache").join("ws-interop"),
    };
    let t = Instant::now();
    util::step_status(
        Command::new("bash").arg(Env::peer_dir().join("setup.sh")).env("WS_INTEROP_HOME", &home),
        "interop setup",
    )?;
    say(format!("interop: peers ready in {} ({})", home.display(), fmt_dur(t.elapsed())));
    Ok(home)
}

pub(crate) enum BrowserSetup {
    /// Not installable on this machine (not root, no apt-get): a skip unless required.
    Unavailable(String),
    Failed(String),
}

/// tests-interop/browser/setup.sh: find or install Chromium and chromedriver; Chromium's
/// path on stdout.
pub(crate) fn setup_browser() -> std::result::Result<PathBuf, BrowserSetup> {
    let script = Env::peer_dir().join("browser/setup.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| BrowserSetup::Failed(format!("cannot run {}: {e}", script.display())))?;
    let path = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_owned();
    match out.status.code() {
        Some(0) if !path.is_empty() => Ok(PathBuf::from(path)),
        Some(3) => Err(BrowserSetup::Unavailable(
            "no root or no apt-get, and no /usr/bin/chromium or /usr/bin/chromedriver".into(),
        )),
        _ => Err(BrowserSetup::Failed(format!("{} failed ({})", script.display(), out.status))),
    }
}

fn run_name(cfg: &Config, server: Impl, client: Impl) -> String {
    format!("{}-client -> {}-server [{}]", client.name(), server.name(), cfg.name)
}

/// Start one echo server, run the clients against it one by one, check what the
/// server saw (peer servers print a JSON line per closed connection).
fn run_server(env: &Env, cfg: &Config, server: Impl, clients: &[Impl]) -> Vec<Outcome> {
    let fail_all = |msg: String| {
        clients
            .iter()
            .map(|&c| Outcome {
                name: run_name(cfg, server, c),
                ok: false,
                detail: msg.clone(),
                elapsed: Duration::ZERO,
            })
            .collect()
    };
    let port = match util::free_port() {
        Ok(p) => p,
        Err(e) => return fail_all(e),
    };
    let log = env.dir.join(format!("{}-server-{}.log", server.name(), cfg.name));
    let mut srv = match Spawned::spawn(
        &format!("{}-server", server.name()),
        &mut env.server_cmd(server, port, cfg),
        &log,
    ) {
        Ok(s) => s,
        Err(e) => return fail_all(e),
    };
    if let Err(e) = util::wait_port(port, &mut srv, Duration::from_secs(30)) {
        return fail_all(e);
    }
    let uri = format!("ws://127.0.0.1:{port}/");
    let mut outcomes = vec![];
    for (i, &client) in clients.iter().enumerate() {
        let name = run_name(cfg, server, client);
        let t = Instant::now();
        let clog =
            env.dir.join(format!("{}-client-{}-server-{}.log", client.name(), server.name(), cfg.name));
        let (ok, detail) = run_client(env, client, &uri, cfg, &clog);
        let (ok, detail) = if ok && server != Impl::Rust {
            // The peer server must have seen our close code; it logs one line per connection.
            // (wait_port's probe connection logs nothing: it never completes a handshake.)
            check_server_saw_close(&log, i + 1).map_or_else(|e| (false, e), |()| (true, detail))
        } else {
            (ok, detail)
        };
        outcomes.push(Outcome { name, ok, detail, elapsed: t.elapsed() });
        if let Ok(Some(s)) = srv.try_wait() {
            outcomes.last_mut().expect("pushed").detail += &format!("; server exited ({s})");
            break;
        }
    }
    srv.kill();
    outcomes
}

fn run_client(env: &Env, client: Impl, uri: &str, cfg: &Config, log: &Path) -> (bool, String) {
    let mut cmd = env.client_cmd(client, uri, cfg);
    match run_summary_client(&format!("{}-client", client.name()), &mut cmd, log, Duration::from_secs(90)) {
        Ok(v) => {
            let ext = v["extensions"].as_str().filter(|e| !e.is_empty()).unwrap_or("-").to_owned();
            (true, format!("ext: {ext}"))
        }
        Err(e) => (false, e),
    }
}

/// Runs a client to its end (killed after `timeout`) and reads the JSON summary it prints
/// last (`{"ok": …, "failures": […], …}`): the summary if it passed (exit 0 and `ok`), else
/// why not.
fn run_summary_client(name: &str, cmd: &mut Command, log: &Path, timeout: Duration) -> Result<Value> {
    let mut child = Spawned::spawn(name, cmd, log)?;
    let status = match child.wait_timeout(timeout, Duration::from_secs(3600), || {})? {
        Some(s) => s,
        None => return Err(format!("client timed out; see {}", log.display())),
    };
    let text = fs::read_to_string(log).unwrap_or_default();
    let summary =
        text.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok().filter(Value::is_object));
    match summary {
        Some(v) if status.success() && v["ok"] == true => Ok(v),
        Some(v) => Err(format!("{status}: {}", v["failures"])),
        None => Err(format!("{status}, no JSON summary: {}", util::tail(log, 3))),
    }
}

/// One lifecycle scenario against a fresh server process on a free port.
fn run_lifecycle(env: &Env, lc: &Lifecycle, server_bin: &Path) -> (bool, String) {
    let tag = format!("lifecycle-{}-{}", lc.client.name(), lc.scenario);
    let port = match util::free_port() {
        Ok(p) => p,
        Err(e) => return (false, e),
    };
    let mut server = Command::new(server_bin);
    server.arg(format!("127.0.0.1:{port}")).current_dir(util::root());
    let slog = env.dir.join(format!("{tag}-{}.log", lc.server));
    let mut srv = match Spawned::spawn(lc.server, &mut server, &slog) {
        Ok(s) => s,
        Err(e) => return (false, e),
    };
    if let Err(e) = util::wait_port(port, &mut srv, Duration::from_secs(30)) {
        return (false, e);
    }
    let mut client = match lc.client {
        Impl::Python => {
            let mut c = Command::new(&env.venv_python);
            c.arg(Env::peer_dir().join("python/lifecycle.py"));
            c
        }
        Impl::Node => {
            let mut c = Command::new("node");
            c.arg(Env::peer_dir().join("node/lifecycle.js")).env("NODE_PATH", &env.node_path);
            c
        }
        Impl::Rust | Impl::Chromium => unreachable!("lifecycle clients are the peers"),
    };
    client.args([lc.scenario, "--uri", &format!("ws://127.0.0.1:{port}/")]).current_dir(util::root());
    let clog = env.dir.join(format!("{tag}.log"));
    let client_name = format!("{}-lifecycle", lc.client.name());
    let (mut ok, mut detail) =
        match run_summary_client(&client_name, &mut client, &clog, Duration::from_secs(60)) {
            Ok(v) => (true, v["note"].as_str().unwrap_or_default().to_owned()),
            Err(e) => (false, e),
        };
    // Our server must outlive every connection: an exit is a failure even if the client passed.
    if let Ok(Some(s)) = srv.try_wait() {
        ok = false;
        detail += &format!("; {} exited ({s}), see {}", lc.server, slog.display());
    }
    srv.kill();
    (ok, detail)
}

/// A CA and a certificate for localhost and 127.0.0.1 signed by it, as PEM files in `dir`:
/// `(ca.pem, cert.pem, key.pem)`.
fn make_certificates(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    };
    let e = |e: rcgen::Error| format!("making the test certificates: {e}");
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name.push(DnType::CommonName, "ws interop test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(e)?).map_err(e)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).map_err(e)?;
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    // OpenSSL's strict mode (Python 3.13's default context) wants it on CA-signed certificates.
    leaf.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(e)?;
    let cert = leaf.signed_by(&key, &ca).map_err(e)?;
    let paths = (dir.join("tls-ca.pem"), dir.join("tls-cert.pem"), dir.join("tls-key.pem"));
    let write =
        |path: &Path, text: String| fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()));
    write(&paths.0, ca.pem())?;
    write(&paths.1, cert.pem())?;
    write(&paths.2, key.serialize_pem())?;
    Ok(paths)
}

/// One TLS run against a fresh server on a free port, with certificates made for it.
fn run_tls(env: &Env, run: TlsRun) -> Result<(bool, String)> {
    let (ca, cert, key) = make_certificates(&env.dir)?;
    let port = util::free_port()?;
    let uri = format!("wss://localhost:{port}/");
    let (mut server, mut client, tag) = match run {
        TlsRun::PythonClient => {
            let mut server = Command::new(env.tls_server.as_ref().expect("checked"));
            server.arg(format!("127.0.0.1:{port}")).arg("--cert").arg(&cert).arg("--key").arg(&key);
            let mut client = Command::new(&env.venv_python);
            client.arg(Env::peer_dir().join("python/client.py")).arg(&uri).arg("--cafile").arg(&ca);
            (server, client, "tls-python-client-rust-server")
        }
        TlsRun::RustClient => {
            let mut server = Command::new(&env.venv_python);
            server.arg(Env::peer_dir().join("python/server.py")).args(["--port", &port.to_string()]);
            server.arg("--certfile").arg(&cert).arg("--keyfile").arg(&key);
            let mut client = Command::new(env.interop_client.as_ref().expect("checked"));
            // Our client's default trust: the platform's roots, or SSL_CERT_FILE when set.
            client.arg(&uri).env("SSL_CERT_FILE", &ca).env_remove("SSL_CERT_DIR");
            (server, client, "tls-rust-client-python-server")
        }
    };
    server.current_dir(util::root());
    client.current_dir(util::root());
    let slog = env.dir.join(format!("{tag}-server.log"));
    let mut srv = Spawned::spawn(&format!("{tag}-server"), &mut server, &slog)?;
    util::wait_port(port, &mut srv, Duration::from_secs(30))?;
    let clog = env.dir.join(format!("{tag}-client.log"));
    let outcome =
        match run_summary_client(&format!("{tag}-client"), &mut client, &clog, Duration::from_secs(60)) {
            Ok(v) => {
                let ext = v["extensions"].as_str().filter(|e| !e.is_empty()).unwrap_or("-").to_owned();
                match run {
                    // The peer server must have seen our close code.
                    TlsRun::RustClient => check_server_saw_close(&slog, 1)
                        .map_or_else(|e| (false, e), |()| (true, format!("ext: {ext}"))),
                    TlsRun::PythonClient => (true, format!("ext: {ext}")),
                }
            }
            Err(e) => (false, e),
        };
    srv.kill();
    Ok(outcome)
}

fn check_server_saw_close(log: &Path, nth: usize) -> Result {
    // The server prints its line when the connection ends; allow it a moment.
    let t = Instant::now();
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        let closed: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == "closed")
            .collect();
        if closed.len() >= nth {
            let v = &closed[nth - 1];
            return if v["code"] == 4000 {
                Ok(())
            } else {
                Err(format!("server saw close code {} (reason {}), expected 4000", v["code"], v["reason"]))
            };
        }
        if t.elapsed() > Duration::from_secs(5) {
            return Err(format!("server logged no close for connection {nth}; see {}", log.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
