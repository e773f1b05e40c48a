//! Project automation for the ws workspace. Run `cargo xtask help`.

mod autobahn;
mod bench;
mod bench_broadcast;
mod bench_scale;
mod interop;
mod perf_gate;
mod soak;
mod util;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use util::{Result, fmt_dur, say};

const HELP: &str = "\
usage: cargo xtask <task> [args]

tasks:
  ci        the interop peers, browser setup (Chromium + chromedriver, for tests/chat_browser.rs),
            cargo test --workspace, bench/coming-from (the other libraries' snippets of
            docs/coming-from.md), ws-tokio's metrics test, then `interop`,
            then `autobahn` (quick profile),
            then `perf-gate` (installs valgrind with apt-get as root, else skips it)
  autobahn  Autobahn|Testsuite, both roles  (cargo xtask autobahn --help)
  interop   Python websockets / Node ws interop matrix, headless Chromium client
            (cargo xtask interop --help)
  perf-gate instruction counts (callgrind) of benches/instructions.rs against the
            baseline benches/instructions.toml; fails on > 5 % growth without a note
            (cargo xtask perf-gate --help; re-record: --record --note \"why\")
  bench     echo throughput / memory / broadcast against other stacks (cargo xtask bench --help)
  soak      thousands of connections coming and going for N minutes against echo_server:
            RSS, fds, tasks and p99 once a second, CSV + PNG; fails on errors or growth
            (cargo xtask soak --help)
  faults    a real ws-tokio client and server through a fault-injecting TCP relay: delay,
            1-byte segments, 30 s stalls, resets and half-closes (also swept over byte
            offsets), vanishing peers; both ways, deflate on and off, plain and TLS
            (about 4 minutes; `cargo test` runs a quick subset). Extra arguments filter
            the tests (cargo xtask faults vanish)
  miri      the tests of the code under `unsafe` (ws-proto's Utf8Bytes) under Miri
            (nightly; installs the miri component with rustup when missing)

Caches: AUTOBAHN_HOME (default ~/.cache/ws-autobahn), WS_INTEROP_HOME (default
~/.cache/ws-interop). Build output follows CARGO_TARGET_DIR / cargo config.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    let res = match args.first().map(String::as_str) {
        Some("ci") => ci(rest),
        Some("autobahn") => autobahn::run(rest),
        Some("interop") => interop::run(rest),
        Some("bench") => bench::run(rest),
        Some("perf-gate") => perf_gate::run(rest),
        Some("soak") => soak::run(rest),
        Some("miri") => miri(rest),
        Some("faults") => faults(rest),
        None | Some("help" | "-h" | "--help") => {
            println!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{HELP}")),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask miri`: the unit tests of every module that holds `unsafe`, under Miri.
fn miri(args: &[String]) -> Result {
    if let Some(a) = args.first() {
        return Err(format!("`miri` takes no arguments (got `{a}`)"));
    }
    let has_miri = Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("miri"));
    if !has_miri {
        util::step_status(
            Command::new("rustup").args(["component", "add", "--toolchain", "nightly", "miri", "rust-src"]),
            "rustup component add miri",
        )?;
    }
    // `message::` holds the unsafe block; `utf8::` the incremental check received text relies on.
    util::step_status(
        Command::new("rustup")
            .args(["run", "nightly", "cargo", "miri", "test", "-p", "ws-proto", "--lib", "--"])
            .args(["message::", "utf8::"])
            .current_dir(util::root()),
        "cargo miri test",
    )
}

/// `cargo xtask faults [FILTER...]`: every case of crates/ws-faults/tests/faults.rs, the
/// `#[ignore]`d matrix included, one at a time (they count the process's file descriptors),
/// with each case's outcome and timings printed.
fn faults(filters: &[String]) -> Result {
    if let Some(a) = filters.iter().find(|a| a.starts_with('-')) {
        return Err(format!("`faults` takes test name filters, not options (got `{a}`)"));
    }
    let t = Instant::now();
    util::step_status(
        Command::new(util::cargo())
            .args(["test", "-p", "ws-faults", "--test", "faults", "--"])
            .args(["--include-ignored", "--nocapture", "--test-threads", "1"])
            .args(filters)
            .current_dir(util::root()),
        "cargo test -p ws-faults --test faults -- --include-ignored",
    )?;
    say(format!("faults: all cases passed in {}", fmt_dur(t.elapsed())));
    Ok(())
}

/// tests-interop/browser/setup.sh (Chromium and chromedriver); a machine where they cannot be
/// installed only gets a warning here (the browser test then decides: skip, or fail in CI).
fn browser_setup() -> Result {
    match interop::setup_browser() {
        Ok(_) => Ok(()),
        Err(interop::BrowserSetup::Unavailable(e)) => {
            say(format!("WARNING: browser setup: {e}"));
            Ok(())
        }
        Err(interop::BrowserSetup::Failed(e)) => Err(format!("browser setup: {e}")),
    }
}

/// `cargo xtask ci`: every test the project has, each step timed.
fn ci(args: &[String]) -> Result {
    if let Some(a) = args.first() {
        return Err(format!("`ci` takes no arguments (got `{a}`)"));
    }
    type Step = (&'static str, Box<dyn Fn() -> Result>);
    let steps: Vec<Step> = vec![
        // First: a test of `cargo test --workspace` (ws-axum) runs Python from the interop venv.
        ("interop peers", Box::new(|| interop::setup_peers().map(drop))),
        // Before the tests: tests/chat_browser.rs drives Chromium through chromedriver, and
        // under CI=true fails when they are missing.
        ("browser setup", Box::new(browser_setup)),
        (
            "cargo test --workspace",
            Box::new(|| {
                util::step_status(
                    Command::new(util::cargo()).args(["test", "--workspace"]).current_dir(util::root()),
                    "cargo test --workspace",
                )
            }),
        ),
        // The other libraries' snippets of docs/coming-from.md, compiled against those crates
        // in the benchmark workspace (the root one does not depend on them).
        (
            "cargo test (bench/coming-from)",
            Box::new(|| {
                let meta = util::Metadata::load()?;
                util::step_status(
                    Command::new(util::cargo())
                        .args(["test", "-p", "ws-coming-from", "--manifest-path"])
                        .arg(util::root().join("bench/Cargo.toml"))
                        .arg("--target-dir")
                        .arg(&meta.target_dir),
                    "cargo test -p ws-coming-from (bench/)",
                )
            }),
        ),
        (
            "cargo test (ws-tokio, feature metrics)",
            Box::new(|| {
                let args = ["test", "-p", "ws-tokio", "--features", "metrics", "--test", "metrics", "--lib"];
                util::step_status(
                    Command::new(util::cargo()).args(args).current_dir(util::root()),
                    "cargo test -p ws-tokio --features metrics",
                )
            }),
        ),
        (
            "cargo test (ws-deflate, feature zlib)",
            Box::new(|| {
                // The stock zlib engine is opt-in: tested here so that it cannot rot.
                let args = ["test", "-p", "ws-deflate", "--features", "zlib"];
                util::step_status(
                    Command::new(util::cargo()).args(args).current_dir(util::root()),
                    "cargo test -p ws-deflate --features zlib",
                )
            }),
        ),
        ("cargo xtask interop", Box::new(|| interop::run(&[]))),
        ("cargo xtask autobahn", Box::new(autobahn::run_quick)),
        // Last: its release build then reuses the one of the examples above.
        ("cargo xtask perf-gate", Box::new(perf_gate::run_ci)),
    ];
    let total = Instant::now();
    let mut times: Vec<(&str, Duration, bool)> = vec![];
    let mut first_err = None;
    for (name, step) in &steps {
        say(format!("\n##### ci: {name}"));
        let t = Instant::now();
        let r = step();
        let ok = r.is_ok();
        times.push((name, t.elapsed(), ok));
        say(format!("##### ci: {name}: {} in {}", if ok { "ok" } else { "FAILED" }, fmt_dur(t.elapsed())));
        if let Err(e) = r {
            eprintln!("xtask: {name}: {e}");
            first_err.get_or_insert(e);
            // Keep going: the later steps' reports are useful even after a failure.
        }
    }
    say("\n##### ci: timings");
    for (name, d, ok) in &times {
        say(format!("  {:<24} {:>8}  {}", name, fmt_dur(*d), if *ok { "ok" } else { "FAILED" }));
    }
    say(format!("  {:<24} {:>8}", "total", fmt_dur(total.elapsed())));
    first_err.map_or(Ok(()), Err)
}
