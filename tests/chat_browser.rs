//! The chat example in a real browser: two headless Chromium sessions (through chromedriver
//! and WebDriver) open the page, join, talk both ways, check that permessage-deflate was
//! negotiated (`WebSocket.extensions`), and one leaves while the other watches.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`tests-interop/browser/setup.sh` installs
//! both; `WS_CHROMIUM` / `WS_CHROMEDRIVER` point elsewhere). Without them the test skips
//! with a WARNING, except under `CI=true` (or `WS_CI_REQUIRE_BROWSER=1`), where it fails.
#![allow(clippy::unwrap_used)]

#[path = "../examples/chat/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod chat;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// How long to wait for something to show up on a page (it takes well under a second; the
/// margin is for a CI machine busy with other tests).
const WAIT: Duration = Duration::from_secs(10);

/// A program from `var` or `default`, or `None` if it is not there.
fn program(var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    path.is_file().then_some(path)
}

/// chromedriver, killed when dropped (a failing test must not leave it running).
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(chromedriver: &PathBuf) -> Driver {
    // A free port: bound, read, released. chromedriver takes it a moment later.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
    Driver { child, url: format!("http://127.0.0.1:{port}") }
}

/// A new headless Chromium session (retried while chromedriver is starting up).
async fn browser(driver: &Driver, chromium: &PathBuf) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
            // The rest: no first-run UI, no calls home (the machine has no network but loopback).
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync",
                // Leaving a page must end it: Chromium 156 keeps a page left for about:blank in
                // its back/forward cache, and the server heard nothing of it within the wait.
                "--disable-features=BackForwardCache",
            ],
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match ClientBuilder::new(HttpConnector::new()).capabilities(caps.clone()).connect(&driver.url).await {
            Ok(client) => return client,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no WebDriver session from chromedriver at {}: {e}", driver.url),
        }
    }
}

/// Waits for a line in the page's message list.
async fn line(client: &Client, who: &str, text: &str) {
    let xpath = format!("//ul[@id='log']/li[text()=\"{text}\"]");
    if let Err(e) = client.wait().at_most(WAIT).for_element(Locator::XPath(&xpath)).await {
        let log = client.find(Locator::Id("log")).await.unwrap().text().await.unwrap_or_default();
        panic!("{who} never showed {text:?} ({e}); its log:\n{log}");
    }
}

/// How many times a line is in the page's message list.
async fn count(client: &Client, text: &str) -> usize {
    let xpath = format!("//ul[@id='log']/li[text()=\"{text}\"]");
    client.find_all(Locator::XPath(&xpath)).await.unwrap().len()
}

/// Opens the page as `name` and waits for its WebSocket to open; returns the extensions
/// the page reports.
async fn open(client: &Client, base: &str, name: &str) -> String {
    client.goto(&format!("{base}/?name={name}")).await.unwrap();
    let status = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#status[data-state=open]"))
        .await
        .unwrap_or_else(|e| panic!("{name}'s page never connected: {e}"));
    // The page's own reading of `WebSocket.extensions`, also shown in its status line.
    let extensions = client.execute("return ws.extensions;", vec![]).await.unwrap();
    assert_eq!(status.attr("data-extensions").await.unwrap().as_deref(), extensions.as_str());
    extensions.as_str().unwrap().to_owned()
}

/// Types `text` into the page's input and sends it.
async fn say(client: &Client, text: &str) {
    let input = client.find(Locator::Id("text")).await.unwrap();
    input.send_keys(text).await.unwrap();
    client.find(Locator::Css("#send button")).await.unwrap().click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_chat() {
    let required = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("WS_CI_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let chromium = program("WS_CHROMIUM", "/usr/bin/chromium");
    let chromedriver = program("WS_CHROMEDRIVER", "/usr/bin/chromedriver");
    let (Some(chromium), Some(chromedriver)) = (chromium.clone(), chromedriver.clone()) else {
        let what = format!(
            "chromium ({}) and chromedriver ({}) are needed (Debian: apt-get install chromium \
             chromium-driver, or bash tests-interop/browser/setup.sh)",
            if chromium.is_some() { "found" } else { "MISSING" },
            if chromedriver.is_some() { "found" } else { "MISSING" },
        );
        assert!(!required, "{what}, and CI=true requires the browser test");
        eprintln!("WARNING: two_browsers_chat SKIPPED: {what}");
        return;
    };
    let started = Instant::now();
    let server = chat::serve("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let driver = start_driver(&chromedriver);
    let (alice, bob) = tokio::join!(browser(&driver, &chromium), browser(&driver, &chromium));

    let extensions = open(&alice, &base, "alice").await;
    assert!(extensions.starts_with("permessage-deflate"), "alice negotiated {extensions:?}");
    // The server's preset: no context takeover either way (compress once for everyone).
    assert!(extensions.contains("server_no_context_takeover"), "{extensions:?}");
    let extensions = open(&bob, &base, "bob").await;
    assert!(extensions.starts_with("permessage-deflate"), "bob negotiated {extensions:?}");
    line(&alice, "alice", "* bob joined").await;
    line(&bob, "bob", "* alice joined").await;

    say(&alice, "hello bob").await;
    line(&bob, "bob", "alice: hello bob").await;
    say(&bob, "hi alice, ünïcödé too").await;
    line(&alice, "alice", "bob: hi alice, ünïcödé too").await;
    // Each page shows its own line once: the server does not echo it back.
    line(&alice, "alice", "alice: hello bob").await;
    assert_eq!(count(&alice, "alice: hello bob").await, 1);
    assert_eq!(count(&bob, "bob: hi alice, ünïcödé too").await, 1);

    // Bob leaves the page; alice sees him go.
    bob.goto("about:blank").await.unwrap();
    line(&alice, "alice", "* bob left").await;

    bob.close().await.unwrap();
    alice.close().await.unwrap();
    drop(driver);
    server.shutdown(Duration::from_secs(1)).await;
    eprintln!("two_browsers_chat: {:.1?}", started.elapsed());
}
