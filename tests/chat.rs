//! The chat example's protocol, driven by Rust clients (no browser): the server is
//! `examples/chat/server.rs` itself, run in-process.
#![allow(clippy::unwrap_used)]

#[path = "../examples/chat/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod chat;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_tokio::{ClientError, Error, Message, WebSocket};

async fn start() -> (ws_tokio::Server, String) {
    let server = chat::serve("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    (server, addr)
}

async fn join(addr: &str, name: &str) -> WebSocket {
    ws_tokio::connect(&format!("ws://{addr}/ws?name={name}")).await.unwrap()
}

/// The next text message, within a second.
async fn next(ws: &mut WebSocket) -> String {
    match tokio::time::timeout(Duration::from_secs(1), ws.recv()).await {
        Ok(Ok(Message::Text(text))) => text.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Asserts that nothing arrives for a while.
async fn quiet(ws: &mut WebSocket) {
    if let Ok(got) = tokio::time::timeout(Duration::from_millis(200), ws.recv()).await {
        panic!("expected nothing, got {got:?}");
    }
}

/// The status line and body of a plain HTTP GET.
async fn get(addr: &str, target: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[tokio::test]
async fn messages_reach_the_others_with_the_name_and_not_the_sender() {
    let (server, addr) = start().await;
    let mut alice = join(&addr, "alice").await;
    let mut bob = join(&addr, "bob").await;
    // Each sees the other's arrival, live or in the replay, whichever came first.
    assert_eq!(next(&mut alice).await, "* bob joined");
    assert_eq!(next(&mut bob).await, "* alice joined");

    alice.send("hello").await.unwrap();
    assert_eq!(next(&mut bob).await, "alice: hello");
    bob.send("hi alice").await.unwrap();
    assert_eq!(next(&mut alice).await, "bob: hi alice");
    // No echo: alice never gets her own "hello".
    quiet(&mut alice).await;

    bob.close(ws_tokio::CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(next(&mut alice).await, "* bob left");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn newcomers_get_the_history_then_live_lines() {
    let (server, addr) = start().await;
    let mut alice = join(&addr, "alice").await;
    let mut bob = join(&addr, "bob").await;
    assert_eq!(next(&mut alice).await, "* bob joined");
    assert_eq!(next(&mut bob).await, "* alice joined");
    for i in 0..chat::HISTORY + 5 {
        alice.send(format!("line {i}")).await.unwrap();
    }
    // Once bob has them all, they are all in the history.
    for i in 0..chat::HISTORY + 5 {
        assert_eq!(next(&mut bob).await, format!("alice: line {i}"));
    }
    let mut carol = join(&addr, "carol").await;
    let mut replay = vec![];
    for _ in 0..chat::HISTORY {
        replay.push(next(&mut carol).await);
    }
    // The last HISTORY lines, oldest first: the two join notices and the first lines are gone.
    let expected: Vec<String> = (5..chat::HISTORY + 5).map(|i| format!("alice: line {i}")).collect();
    assert_eq!(replay, expected);
    assert_eq!(next(&mut alice).await, "* carol joined");

    // Then live lines, after the replay.
    alice.send("welcome").await.unwrap();
    assert_eq!(next(&mut carol).await, "alice: welcome");
    // A later newcomer's replay includes the join notice and the live line.
    let mut dave = join(&addr, "dave").await;
    let mut last = String::new();
    for _ in 0..chat::HISTORY {
        last = next(&mut dave).await;
    }
    assert_eq!(last, "alice: welcome");
    assert_eq!(next(&mut carol).await, "* dave joined");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn names_are_decoded_and_checked_before_the_upgrade() {
    let (server, addr) = start().await;
    for bad in ["", "?name=", "?name=%20%20", "?other=x", "?name=%zz", &format!("?name={}", "x".repeat(33))] {
        match ws_tokio::connect(&format!("ws://{addr}/ws{bad}")).await {
            Err(Error::Handshake(ClientError::Rejected(response))) => {
                assert_eq!(response.status(), 400, "{bad:?}");
            }
            other => panic!("{bad:?}: expected a 400, got {other:?}"),
        }
    }
    // Percent-encoded UTF-8, and `+` for a space, as browsers and Python send them.
    let mut zoe = join(&addr, "Zo%C3%AB+K").await;
    let mut yan = join(&addr, "yan").await;
    assert_eq!(next(&mut zoe).await, "* yan joined");
    assert_eq!(next(&mut yan).await, "* Zoë K joined");
    zoe.send("hi").await.unwrap();
    assert_eq!(next(&mut yan).await, "Zoë K: hi");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_page_is_at_the_root_and_other_paths_are_404() {
    let (server, addr) = start().await;
    let (status, body) = get(&addr, "/").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("<title>ws chat</title>"), "{body}");
    assert_eq!(get(&addr, "/nope").await.0, "HTTP/1.1 404 Not Found");
    match ws_tokio::connect(&format!("ws://{addr}/elsewhere?name=alice")).await {
        Err(Error::Handshake(ClientError::Rejected(response))) => assert_eq!(response.status(), 404),
        other => panic!("expected a 404, got {other:?}"),
    }
    server.shutdown(Duration::from_secs(1)).await;
}

/// `redis-server` on a free loopback port, killed when dropped; `None` (after a warning) when
/// it is not installed outside CI (`.ci/run` installs it).
struct Redis(std::process::Child, u16);

impl Redis {
    async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                assert!(std::env::var("CI").as_deref() != Ok("true"), "redis-server is missing");
                // Straight to stderr: the test harness would hide an eprintln! of a passing test.
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    concat!("WARNING: redis-server is not installed: the chat --redis test is SKIPPED", "\n")
                        .as_bytes(),
                );
                return None;
            }
            Err(error) => panic!("cannot start redis-server: {error}"),
        };
        let redis = Self(child, port);
        for _ in 0..500 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(redis);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not listen on port {port}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `n` servers subscribe to the lobby's Redis channel.
async fn lobby_subscribers(url: &str, n: u64) {
    use ws_redis::redis;
    let mut connection = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    for _ in 0..500 {
        let counts: Vec<(String, u64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("ws-chat:lobby")
            .query_async(&mut connection)
            .await
            .unwrap();
        if counts.first().is_some_and(|(_, count)| *count == n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the lobby never had {n} subscribing servers");
}

/// `chat --redis`: two servers share the lobby; each line reaches the other server's
/// participants once, and the other server's history has it.
#[tokio::test]
async fn two_servers_share_the_lobby_through_redis() {
    let Some(redis) = Redis::start().await else { return };
    let url = format!("redis://127.0.0.1:{}/", redis.1);
    let one = chat::serve_with("127.0.0.1:0", Some(&url)).await.unwrap();
    let two = chat::serve_with("127.0.0.1:0", Some(&url)).await.unwrap();
    let (addr_one, addr_two) = (one.local_addr().unwrap().to_string(), two.local_addr().unwrap().to_string());

    let mut alice = join(&addr_one, "alice").await;
    // Server one subscribes to the lobby once alice is in it; bob's arrival would be missed
    // before that (ws-redis drops nothing it was subscribed for, but keeps nothing either).
    lobby_subscribers(&url, 1).await;
    let mut bob = join(&addr_two, "bob").await;
    assert_eq!(next(&mut alice).await, "* bob joined");
    alice.send("hello from one").await.unwrap();
    assert_eq!(next(&mut bob).await, "alice: hello from one");
    bob.send("hi from two").await.unwrap();
    assert_eq!(next(&mut alice).await, "bob: hi from two");
    quiet(&mut alice).await;
    quiet(&mut bob).await;

    // A newcomer on server two gets the lines said on both (as far as two had participants).
    let mut carol = join(&addr_two, "carol").await;
    assert_eq!(next(&mut carol).await, "* bob joined");
    assert_eq!(next(&mut carol).await, "alice: hello from one");
    assert_eq!(next(&mut carol).await, "bob: hi from two");
    assert_eq!(next(&mut alice).await, "* carol joined");
    assert_eq!(next(&mut bob).await, "* carol joined");

    bob.close(ws_tokio::CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(next(&mut alice).await, "* bob left");
    assert_eq!(next(&mut carol).await, "* bob left");
    one.shutdown(Duration::from_secs(1)).await;
    two.shutdown(Duration::from_secs(1)).await;
}
