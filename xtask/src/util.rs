//! Small process / filesystem helpers shared by the tasks.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Error type of the tasks: a message for the user.
pub type Result<T = ()> = std::result::Result<T, String>;

/// Workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    dir.parent().unwrap_or(dir).to_path_buf()
}

/// The cargo that runs us (`$CARGO`), else `cargo` from `PATH`.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// `$HOME`, required for the default cache dirs.
pub fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| "HOME is not set (set AUTOBAHN_HOME / WS_INTEROP_HOME instead)".into())
}

/// What `cargo metadata` tells us about the workspace.
pub struct Metadata {
    /// Where cargo puts build output (honours `CARGO_TARGET_DIR` and config).
    pub target_dir: PathBuf,
    /// Example target names of the root `ws` package.
    pub examples: Vec<String>,
}

impl Metadata {
    pub fn load() -> Result<Self> {
        let out = Command::new(cargo())
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(root())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run `cargo metadata`: {e}"))?;
        if !out.status.success() {
            return Err(format!("`cargo metadata` failed ({})", out.status));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("cannot parse `cargo metadata` output: {e}"))?;
        let target_dir = v["target_directory"]
            .as_str()
            .map(PathBuf::from)
            .ok_or("`cargo metadata` has no target_directory")?;
        let mut examples = Vec::new();
        for pkg in v["packages"].as_array().into_iter().flatten() {
            if pkg["name"] != "ws" {
                continue;
            }
            for t in pkg["targets"].as_array().into_iter().flatten() {
                let is_example = t["kind"].as_array().into_iter().flatten().any(|k| k == "example");
                if let (true, Some(name)) = (is_example, t["name"].as_str()) {
                    examples.push(name.to_owned());
                }
            }
        }
        Ok(Self { target_dir, examples })
    }

    pub fn has_example(&self, name: &str) -> bool {
        self.examples.iter().any(|e| e == name)
    }

    /// Path of a release example binary.
    pub fn example_bin(&self, name: &str) -> PathBuf {
        self.target_dir.join("release").join("examples").join(name)
    }

    /// Build the given examples of the `ws` package in release mode.
    pub fn build_examples(&self, names: &[&str]) -> Result {
        self.build_examples_with(names, &[])
    }

    /// Build the given examples of the `ws` package in release mode, with these features.
    pub fn build_examples_with(&self, names: &[&str], features: &[String]) -> Result {
        if names.is_empty() {
            return Ok(());
        }
        for n in names {
            if !self.has_example(n) {
                return Err(format!(
                    "example `{n}` does not exist in the workspace (examples: {})",
                    if self.examples.is_empty() { "none".into() } else { self.examples.join(", ") }
                ));
            }
        }
        let mut cmd = Command::new(cargo());
        cmd.args(["build", "--release", "--package", "ws"]).current_dir(root());
        if !features.is_empty() {
            cmd.args(["--features", &features.join(",")]);
        }
        for n in names {
            cmd.args(["--example", n]);
        }
        step_status(&mut cmd, "build examples")
    }
}

/// Run a command to completion with inherited stdio; error on non-zero exit.
pub fn step_status(cmd: &mut Command, what: &str) -> Result {
    let status = cmd.status().map_err(|e| format!("{what}: cannot start {cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{what} failed ({status})")) }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot pick a free port: {e}"))
}

/// Wait until something accepts TCP on 127.0.0.1:`port`, or `child` dies.
pub fn wait_port(port: u16, child: &mut Spawned, timeout: Duration) -> Result {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            return Err(format!(
                "{} exited ({status}) before listening on port {port}; see {}",
                child.name,
                child.log.display()
            ));
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "{} did not listen on port {port} within {timeout:?}; see {}",
                child.name,
                child.log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process whose stdout+stderr go to a log file; killed on drop.
pub struct Spawned {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    done: Option<ExitStatus>,
}

impl Spawned {
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Self> {
        let f = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let f2 = f.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .spawn()
            .map_err(|e| format!("cannot start {name} ({cmd:?}): {e}"))?;
        Ok(Self { name: name.to_owned(), log: log.to_owned(), child, done: None })
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.done.is_none() {
            self.done = self.child.try_wait().map_err(|e| format!("{}: {e}", self.name))?;
        }
        Ok(self.done)
    }

    /// Wait for exit, at most `timeout`; calls `tick` about every `every`.
    pub fn wait_timeout(
        &mut self,
        timeout: Duration,
        every: Duration,
        mut tick: impl FnMut(),
    ) -> Result<Option<ExitStatus>> {
        let start = Instant::now();
        let mut last = Instant::now();
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if start.elapsed() >= timeout {
                self.kill();
                return Ok(None);
            }
            if last.elapsed() >= every {
                tick();
                last = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn kill(&mut self) {
        if self.done.is_none() {
            let _ = self.child.kill();
            self.done = self.child.wait().ok();
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Remove and recreate a directory.
pub fn fresh_dir(dir: &Path) -> Result {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

pub fn write_file(path: &Path, contents: &str) -> Result {
    fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `12m03s` / `4.2s`.
pub fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 { format!("{s:.1}s") } else { format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60) }
}

/// Print a line immediately (progress goes through threads).
pub fn say(msg: impl AsRef<str>) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{}", msg.as_ref());
    let _ = out.flush();
}

/// Split a `--server-cmd` style template on whitespace and substitute `{key}`.
pub fn template_cmd(template: &str, vars: &[(&str, &str)]) -> Result<Command> {
    let mut parts = template
        .split_whitespace()
        .map(|p| vars.iter().fold(p.to_owned(), |acc, (k, v)| acc.replace(&format!("{{{k}}}"), v)));
    let prog = parts.next().ok_or("empty command template")?;
    let mut cmd = Command::new(prog);
    cmd.args(parts);
    Ok(cmd)
}
