//! Two ws servers share a room through a real `redis-server` (Debian's package; `.ci/run`
//! installs it), started here on a free loopback port and restarted mid-test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};
use ws_redis::{Cluster, ClusterConfig};
use ws_tokio::{Broadcaster, Message, Server, WebSocket};

const ROOM: &str = "lobby";

/// The `tracing` warnings logged so far (all tests of this binary), by a minimal subscriber.
fn warnings() -> &'static std::sync::Mutex<Vec<String>> {
    static WARNINGS: std::sync::OnceLock<std::sync::Mutex<Vec<String>>> = std::sync::OnceLock::new();
    WARNINGS.get_or_init(|| {
        let _ = tracing::subscriber::set_global_default(Warnings);
        std::sync::Mutex::new(Vec::new())
    })
}

struct Warnings;

impl tracing::Subscriber for Warnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0 += &format!("{}={value:?} ", field.name());
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        warnings().lock().unwrap().push(text.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn warned(what: &str) -> bool {
    warnings().lock().unwrap().iter().any(|warning| warning.contains(what))
}

/// A `redis-server` on loopback, without persistence; killed when dropped.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    /// `None` (after a loud warning) when the binary is missing outside CI.
    async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { port, child: None };
        if !redis.spawn() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is missing (Debian: apt-get install redis-server; .ci/run installs it)"
            );
            // Straight to stderr: the test harness would hide an eprintln! of a passing test.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                concat!(
                    "WARNING: redis-server is not installed: the ws-redis cluster tests are SKIPPED",
                    "\n"
                )
                .as_bytes(),
            );
            return None;
        }
        redis.wait_ready().await;
        Some(redis)
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        match child {
            Ok(child) => {
                self.child = Some(child);
                true
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
            Err(error) => panic!("cannot start redis-server: {error}"),
        }
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on port {}", self.port);
            sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    async fn restart(&mut self) {
        assert!(self.spawn());
        self.wait_ready().await;
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One node: a ws server whose connections join `lobby` and publish what they send to it.
async fn node(redis: &Redis) -> (Server, Cluster) {
    let config = ClusterConfig::default().with_timeout(Duration::from_secs(2));
    let cluster = Cluster::connect(&redis.url(), Broadcaster::default(), config).await.unwrap();
    let handler_cluster = cluster.clone();
    let server = ws_tokio::serve(
        move |mut ws: WebSocket| {
            let cluster = handler_cluster.clone();
            async move {
                let member = cluster.hub().join(&ws);
                // Tells the client that it receives the other nodes' messages from now on.
                let subscribed = cluster.join_room(&member, ROOM).await;
                ws.send(format!("joined {subscribed}")).await.unwrap();
                while let Ok(message) = ws.recv().await {
                    cluster.publish(ROOM, message, Some(&member));
                }
            }
        },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    (server, cluster)
}

async fn client(addr: SocketAddr) -> WebSocket {
    client_subscribed(addr, true).await
}

/// A client, once its node has said whether it is subscribed to the room's channel.
async fn client_subscribed(addr: SocketAddr, subscribed: bool) -> WebSocket {
    let mut ws = ws_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
    assert_eq!(recv_text(&mut ws).await, format!("joined {subscribed}"));
    ws
}

async fn recv_text(ws: &mut WebSocket) -> String {
    match timeout(Duration::from_secs(10), ws.recv()).await {
        Ok(Ok(Message::Text(text))) => text.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

async fn send_numbered(ws: &mut WebSocket, sender: &str, range: std::ops::Range<u32>) {
    for i in range {
        ws.send(format!("{sender}:{i}")).await.unwrap();
    }
}

/// Receives `count` messages and checks that each sender's numbers come in order, without gaps
/// or repeats, starting at `first[sender]`.
async fn expect_in_order(ws: &mut WebSocket, count: usize, first: &[(&str, u32)]) {
    let mut next: HashMap<String, u32> = first.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect();
    for _ in 0..count {
        let text = recv_text(ws).await;
        let (sender, number) = text.split_once(':').unwrap();
        let expected = next.get_mut(sender).unwrap_or_else(|| panic!("unexpected sender in {text}"));
        assert_eq!(number.parse::<u32>().unwrap(), *expected, "out of order or repeated: {text}");
        *expected += 1;
    }
}

/// Nothing more arrives (no message is delivered twice).
async fn expect_quiet(ws: &mut WebSocket) {
    if let Ok(message) = timeout(Duration::from_millis(300), ws.recv()).await {
        panic!("unexpected extra message: {message:?}");
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_a_room_in_order_once() {
    let Some(redis) = Redis::start().await else { return };
    let (server_a, cluster_a) = node(&redis).await;
    let (server_b, cluster_b) = node(&redis).await;
    assert_ne!(cluster_a.node_id(), cluster_b.node_id());
    // alice and carol on node A, bob and dave on node B.
    let mut alice = client(server_a.local_addr().unwrap()).await;
    let mut carol = client(server_a.local_addr().unwrap()).await;
    let mut bob = client(server_b.local_addr().unwrap()).await;
    let mut dave = client(server_b.local_addr().unwrap()).await;

    // alice and bob send 200 numbered messages each, at the same time.
    tokio::join!(send_numbered(&mut alice, "alice", 0..200), send_numbered(&mut bob, "bob", 0..200));
    // Everyone gets the others' messages once, in order per sender; nobody gets their own.
    expect_in_order(&mut alice, 200, &[("bob", 0)]).await;
    expect_in_order(&mut bob, 200, &[("alice", 0)]).await;
    expect_in_order(&mut carol, 400, &[("alice", 0), ("bob", 0)]).await;
    expect_in_order(&mut dave, 400, &[("alice", 0), ("bob", 0)]).await;
    for ws in [&mut alice, &mut bob, &mut carol, &mut dave] {
        expect_quiet(ws).await;
    }
    let (a, b) = (cluster_a.stats(), cluster_b.stats());
    assert_eq!((a.published, a.received, a.not_published, a.missed), (200, 200, 0, 0), "{a:?}");
    assert_eq!((b.published, b.received, b.not_published, b.missed), (200, 200, 0, 0), "{b:?}");

    // The last member leaving unsubscribes the node; a new one subscribes it again.
    drop((bob, dave));
    wait_until("node B unsubscribed", || !cluster_b.is_subscribed(ROOM)).await;
    let mut erin = client(server_b.local_addr().unwrap()).await;
    assert!(cluster_b.is_subscribed(ROOM));
    send_numbered(&mut alice, "alice", 200..201).await;
    expect_in_order(&mut erin, 1, &[("alice", 200)]).await;
    assert_eq!(cluster_b.stats().missed, 0, "a room joined again starts afresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_survive_a_redis_restart() {
    let Some(mut redis) = Redis::start().await else { return };
    warnings();
    let (server_a, cluster_a) = node(&redis).await;
    let (server_b, cluster_b) = node(&redis).await;
    let mut alice = client(server_a.local_addr().unwrap()).await;
    let mut carol = client(server_a.local_addr().unwrap()).await;
    let mut bob = client(server_b.local_addr().unwrap()).await;

    send_numbered(&mut alice, "alice", 0..50).await;
    expect_in_order(&mut bob, 50, &[("alice", 0)]).await;
    expect_in_order(&mut carol, 50, &[("alice", 0)]).await;

    redis.kill();
    wait_until("both nodes saw Redis go", || !cluster_a.is_connected() && !cluster_b.is_connected()).await;
    // The local room keeps working; the messages are counted as not published.
    send_numbered(&mut alice, "alice", 50..55).await;
    expect_in_order(&mut carol, 5, &[("alice", 50)]).await;
    wait_until("5 messages counted as not published", || cluster_a.stats().not_published == 5).await;
    assert_eq!(cluster_a.stats().disconnects, 1);
    // A room that gains its first member on a node meanwhile is subscribed on reconnection.
    let mut erin = client_subscribed(server_b.local_addr().unwrap(), false).await;
    drop(bob);
    wait_until("node B's room moved to erin", || cluster_b.hub().len() == 1).await;

    redis.restart().await;
    wait_until("both nodes reconnected", || {
        cluster_a.is_connected() && cluster_b.is_connected() && cluster_b.is_subscribed(ROOM)
    })
    .await;
    send_numbered(&mut alice, "alice", 55..255).await;
    expect_in_order(&mut erin, 200, &[("alice", 55)]).await;
    expect_in_order(&mut carol, 200, &[("alice", 55)]).await;
    expect_quiet(&mut erin).await;
    // Both the loss and the recovery were logged, with what was not published.
    assert!(warned("subscriber disconnected"), "{:?}", warnings().lock().unwrap());
    assert!(warned("subscriber reconnected and resubscribed"));
    assert!(warned("5 messages were not published"), "{:?}", warnings().lock().unwrap());
    // Node B tells the gap from alice's sequence numbers.
    let b = cluster_b.stats();
    assert_eq!((b.received, b.missed, b.disconnects), (250, 5, 1), "{b:?}");
    assert_eq!(cluster_a.stats().published, 250);
}
