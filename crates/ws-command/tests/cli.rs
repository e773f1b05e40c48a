//! The `ws` binary end to end: `ws serve` and `ws connect` with each other, with Python
//! `websockets` and Node `ws` peers (the interop venv and node_modules of
//! `tests-interop/setup.sh`), interactively in a pseudo-terminal, the errors a person sees,
//! and `ws bench` against `ws serve --echo`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const WS: &str = env!("CARGO_BIN_EXE_ws");

/// A child process killed when dropped (a failing test leaves no server behind).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a server whose first stdout line holding `port` tells where it listens; returns it
/// with its `ws://127.0.0.1:PORT` URL.
fn start(mut cmd: Command) -> (Running, String) {
    let mut child = Running(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn server"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server did not say where it listens");
        if let Some(port) = port_in(&line) {
            // Keep draining the server's stdout so it never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            let scheme = if line.contains("wss://") { "wss" } else { "ws" };
            return (child, format!("{scheme}://127.0.0.1:{port}/"));
        }
    }
}

/// The port in `listening on ws://127.0.0.1:PORT` or `{"event":"listening",...,"port": PORT}`.
fn port_in(line: &str) -> Option<u16> {
    if let Some(rest) =
        line.strip_prefix("listening on ws://").or_else(|| line.strip_prefix("listening on wss://"))
    {
        return rest.rsplit(':').next()?.trim().parse().ok();
    }
    let at = line.find("\"port\"")? + "\"port\"".len();
    let digits: String =
        line[at..].chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn ws_serve(args: &[&str]) -> (Running, String) {
    let mut cmd = Command::new(WS);
    cmd.args(["serve", "127.0.0.1:0"]).args(args).env("RUST_LOG", "warn");
    start(cmd)
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` with `input` on stdin, within `timeout`.
fn run(mut cmd: Command, input: &str, timeout: Duration) -> Output {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().expect("stdout")));
    let err = read(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: out.join().expect("stdout"), stderr: err.join().expect("stderr") }
}

fn ws_connect(url: &str, args: &[&str], input: &str) -> Output {
    let mut cmd = Command::new(WS);
    cmd.args(["connect", url]).args(args);
    run(cmd, input, Duration::from_secs(30))
}

/// `ws connect` sends each line and prints each echo, then closes with 1000 (exit 0).
fn assert_echoes(url: &str, args: &[&str]) {
    let lines = ["hello", "wörld ✓", "", "{\"json\": [1, 2, 3]}"];
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let out = ws_connect(url, args, &input);
    assert!(out.status.success(), "ws connect {url} {args:?} failed: {}", out.stderr);
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), lines, "stderr: {}", out.stderr);
    assert_eq!(out.stderr.trim(), "connection closed: code 1000");
}

#[test]
fn connect_and_serve_echo_talk_to_each_other() {
    let (_server, url) = ws_serve(&["--echo"]);
    assert_echoes(&url, &[]);
    assert_echoes(&url, &["--no-compression"]);
    assert_echoes(&url, &["--deflate-window-bits", "9"]);
    assert_echoes(&url, &["--header", "Authorization: Bearer t0ken", "--subprotocol", "chat"]);
}

#[test]
fn serve_without_compression_and_a_size_limit() {
    let (_server, url) = ws_serve(&["--echo", "--no-compression", "--max-size", "32"]);
    assert_echoes(&url, &[]);
    // A message over --max-size closes the connection with 1009: an error closure, exit 1.
    let out = ws_connect(&url, &[], &format!("{}\n", "x".repeat(33)));
    assert!(!out.status.success());
    assert!(out.stderr.contains("code 1009"), "{}", out.stderr);
}

#[test]
fn broadcast_reaches_every_client() {
    let (_server, url) = ws_serve(&["--broadcast"]);
    // A first client, kept open: its own message coming back shows it has joined.
    let mut first = Running(
        Command::new(WS)
            .args(["connect", &url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let mut stdin = first.0.stdin.take().expect("stdin");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = first.0.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    writeln!(stdin, "first here").expect("write");
    let line = |what| rx.recv_timeout(Duration::from_secs(20)).expect(what);
    assert_eq!(line("first client's own message"), "first here");
    // A second client's message reaches both.
    let out = ws_connect(&url, &[], "to everyone\n");
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "to everyone\n", "the sender is a member too");
    assert_eq!(line("the broadcast at the first client"), "to everyone");
    drop(stdin);
    let status = first.0.wait().expect("wait");
    assert!(status.success());
}

#[test]
fn refused_connection_is_one_line_with_a_hint() {
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let out = ws_connect(&format!("ws://127.0.0.1:{port}/"), &[], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.starts_with(&format!("ws: connection refused by 127.0.0.1:{port}")), "{}", out.stderr);
    assert!(out.stderr.contains("ws serve"), "says what to try: {}", out.stderr);
}

#[test]
fn refused_handshake_shows_the_http_status() {
    // A plain HTTP server with no WebSocket endpoint: 404 to everything.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nno route\r\n",
            );
        }
    });
    let out = ws_connect(&format!("ws://127.0.0.1:{port}/nowhere"), &[], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 404 Not Found"), "{}", out.stderr);
    assert!(out.stderr.contains("(\"no route\")"), "{}", out.stderr);
    assert!(out.stderr.contains("check the URL's path"), "{}", out.stderr);
}

#[test]
fn invalid_url_is_one_line() {
    let out = ws_connect("http://127.0.0.1:1/", &[], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.starts_with("ws: invalid URL `http://127.0.0.1:1/`"), "{}", out.stderr);
}

#[test]
fn interactive_session_in_a_pseudo_terminal() {
    use expectrl::{ControlCode, Eof, Expect as _, Session};

    let (_server, url) = ws_serve(&["--echo"]);
    let mut cmd = Command::new(WS);
    cmd.args(["connect", &url]);
    let mut p = Session::spawn(cmd).expect("spawn ws connect in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    p.expect(format!("connected to {url}")).expect("greeting");
    p.expect("> ").expect("prompt");
    // Enter is a carriage return in raw mode.
    p.send("hello from a terminal\r").expect("type");
    p.expect("< hello from a terminal").expect("the echo, printed above the prompt");
    p.send("second line\r").expect("type");
    p.expect("< second line").expect("second echo");
    p.send(ControlCode::EndOfTransmission).expect("Ctrl-D");
    p.expect("connection closed: code 1000").expect("the close code");
    p.expect(Eof).expect("exit");
    let status = p.get_process().wait().expect("wait");
    assert_eq!(status, expectrl::process::unix::WaitStatus::Exited(p.get_process().pid(), 0));
}

#[test]
fn tls_server_and_insecure_client() {
    // A self-signed certificate for localhost, as a person would make for a test server.
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let dir = std::env::temp_dir().join(format!("ws-command-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let (cert, key) = (cert.to_str().expect("utf-8"), key.to_str().expect("utf-8"));
    let (_server, url) = ws_serve(&["--echo", "--tls-cert", cert, "--tls-key", key]);
    assert!(url.starts_with("wss://"), "{url}");
    let url = url.replace("127.0.0.1", "localhost");
    assert_echoes(&url, &["--insecure"]);

    // Without --insecure: one line saying the certificate is not trusted, and what to try.
    let out = ws_connect(&url, &[], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.starts_with(&format!("ws: TLS failed with {url}")), "{}", out.stderr);
    assert!(out.stderr.contains("--insecure"), "{}", out.stderr);

    // Plain ws:// to a TLS server: the handshake fails and the hint points at wss://.
    let out = ws_connect(&url.replace("wss://", "ws://"), &[], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    eprintln!("ws:// to a wss:// server: {}", out.stderr.trim());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_against_the_echo_server_prints_the_table() {
    let (_server, url) = ws_serve(&["--echo"]);
    let mut cmd = Command::new(WS);
    cmd.args(["bench", &url, "--conns", "2", "--duration", "1s", "--warmup", "200ms", "--size", "100"]);
    let out = run(cmd, "", Duration::from_secs(30));
    assert!(out.status.success(), "{}", out.stderr);
    for row in ["messages/s", "MB/s", "latency p50", "latency p90", "latency p99", "latency max", "errors"] {
        assert!(out.stdout.contains(row), "no {row} in\n{}", out.stdout);
    }
    let mut cmd = Command::new(WS);
    cmd.args(["bench", &url, "--json", "--duration", "500ms", "--warmup", "100ms"]);
    cmd.args(["--payload", "random", "--compression", "--in-flight", "4"]);
    let out = run(cmd, "", Duration::from_secs(30));
    assert!(out.status.success(), "{}", out.stderr);
    let json = out.stdout.trim();
    assert!(json.starts_with('{') && json.ends_with('}') && json.lines().count() == 1, "{json}");
    for key in [
        "\"messages_per_s\":",
        "\"mb_per_s\":",
        "\"p50_us\":",
        "\"p99_us\":",
        "\"errors\":0",
        "\"in_flight\":4",
        "\"sent_wire_ratio\":",
        "\"echo_wire_ratio\":",
    ] {
        assert!(json.contains(key), "no {key} in {json}");
    }
    // Compressed JSON, a pool of distinct messages with context takeover both ways: both
    // directions are far smaller on the wire than the payload.
    let mut cmd = Command::new(WS);
    cmd.args(["bench", &url, "--duration", "500ms", "--warmup", "100ms", "--size", "1024", "--compression"]);
    let out = run(cmd, "", Duration::from_secs(30));
    assert!(out.status.success(), "{}", out.stderr);
    for row in ["wire / sent", "wire / echo"] {
        let ratio: f64 = out
            .stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(row))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {row} in\n{}", out.stdout));
        assert!(ratio > 0.05 && ratio < 0.5, "{row} {ratio} in\n{}", out.stdout);
    }
}

#[test]
fn bench_without_a_server_says_so() {
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut cmd = Command::new(WS);
    cmd.args(["bench", &format!("ws://127.0.0.1:{port}/"), "--duration", "1s"]);
    let out = run(cmd, "", Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("connection refused") && out.stderr.contains("ws serve"), "{}", out.stderr);
}

// ---- Python `websockets` and Node `ws` peers

/// The interop peers' home (`tests-interop/setup.sh`), if installed. Missing: a failure under
/// `CI=true` (`cargo xtask ci` installs them before `cargo test`), a loud skip otherwise.
fn interop_home(test: &str) -> Option<PathBuf> {
    let home = match std::env::var_os("WS_INTEROP_HOME") {
        Some(h) => PathBuf::from(h),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/ws-interop"),
    };
    let ok = home.join("venv/bin/python").exists() && home.join("node/node_modules/ws").exists();
    if ok {
        return Some(home);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but the interop peers are missing in {}: run `bash tests-interop/setup.sh` first",
        home.display()
    );
    eprintln!(
        "WARNING: SKIPPED {test}: no interop peers in {} (run `bash tests-interop/setup.sh` once, or set WS_INTEROP_HOME)",
        home.display()
    );
    None
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests-interop")
}

#[test]
fn connect_to_python_and_node_echo_servers() {
    let Some(home) = interop_home("connect_to_python_and_node_echo_servers") else { return };
    let mut python = Command::new(home.join("venv/bin/python"));
    python.arg(interop_dir().join("python/server.py"));
    let (_py, url) = start(python);
    assert_echoes(&url, &[]);
    assert_echoes(&url, &["--no-compression"]);
    assert_echoes(&url, &["--deflate-window-bits", "10"]);

    let mut node = Command::new("node");
    node.arg(interop_dir().join("node/server.js")).env("NODE_PATH", home.join("node/node_modules"));
    let (_node, url) = start(node);
    assert_echoes(&url, &[]);
    assert_echoes(&url, &["--no-compression"]);
    assert_echoes(&url, &["--deflate-window-bits", "10"]);
}

#[test]
fn python_and_node_clients_against_ws_serve() {
    let Some(home) = interop_home("python_and_node_clients_against_ws_serve") else { return };
    let (_server, url) = ws_serve(&["--echo"]);
    let python = r#"
import sys
from websockets.sync.client import connect
with connect(sys.argv[1]) as ws:
    assert ws.response.headers.get("Sec-WebSocket-Extensions", "").startswith("permessage-deflate"), ws.response.headers
    for m in ["hello", b"\x00\x01\xff", "x" * 100000]:
        ws.send(m)
        assert ws.recv() == m
print("python ok")
"#;
    let mut cmd = Command::new(home.join("venv/bin/python"));
    cmd.args(["-c", python, &url]);
    let out = run(cmd, "", Duration::from_secs(30));
    assert!(out.status.success() && out.stdout.contains("python ok"), "{}{}", out.stdout, out.stderr);

    let node = r#"
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[1], { perMessageDeflate: true });
const sent = ['hello', Buffer.from([0, 1, 255]), 'y'.repeat(100000)];
let i = 0;
ws.on('open', () => ws.send(sent[0]));
ws.on('message', (data, isBinary) => {
  const want = sent[i];
  const ok = isBinary ? Buffer.isBuffer(want) && data.equals(want) : data.toString() === want;
  if (!ok) { console.error('mismatch at', i); process.exit(1); }
  if (++i === sent.length) { ws.close(1000); } else { ws.send(sent[i]); }
});
ws.on('close', (code) => { if (code === 1000 && i === sent.length) { console.log('node ok'); } else { process.exit(1); } });
ws.on('error', (e) => { console.error(String(e)); process.exit(1); });
"#;
    let mut cmd = Command::new("node");
    cmd.args(["-e", node, &url]).env("NODE_PATH", home.join("node/node_modules"));
    let out = run(cmd, "", Duration::from_secs(30));
    assert!(out.status.success() && out.stdout.contains("node ok"), "{}{}", out.stdout, out.stderr);
}
