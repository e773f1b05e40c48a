//! What a hop through Redis costs: the latency a message gains, and the CPU per relayed message.
//!
//! ```text
//! cargo run --release -p ws-redis --example relay_bench [-- --redis URL] [--messages N] [--burst N]
//! ```
//!
//! Without `--redis` it starts its own `redis-server` on a free loopback port (no persistence).
//! Two nodes (each a ws server with its own `Broadcaster` and `Cluster`) run in this process,
//! with their clients: a sender and a receiver on node A, a receiver on node B.
//! - Latency: the sender sends one message at a time (`--messages`, default 2000) and waits
//!   until both receivers have it; the receiver on A gets it through A's local fan-out, the one
//!   on B through Redis. Percentiles of send-to-receive time for both.
//! - CPU: `--burst` messages (default 20000), sent in windows of 200, twice: once relayed
//!   (receivers on A and B, `Cluster::publish`), once local only (both receivers on A,
//!   `Room::broadcast_except`, no Redis). The difference in this process's CPU time (all its
//!   threads, clients included in both runs) per message is what relaying adds to the nodes;
//!   redis-server's own CPU time is reported apart (only when this program started it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use ws_redis::{Cluster, ClusterConfig};
use ws_tokio::{Broadcaster, Message, Server, WebSocket};

const ROOM: &str = "bench";

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    redis: Option<String>,
    messages: usize,
    burst: u64,
}

fn args() -> Result<Args, Error> {
    let mut args = Args { redis: None, messages: 2000, burst: 20_000 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--redis" => args.redis = Some(value),
            "--messages" => args.messages = value.parse()?,
            "--burst" => args.burst = value.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(args)
}

/// CPU time of a process so far, all its threads, in nanoseconds (Linux: schedstat).
fn cpu_ns(pid: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// A node whose connections join the room and relay what they send (or, with `relay` off,
/// send it to the local room only).
async fn node(url: &str, relay: Arc<AtomicBool>) -> Result<(Server, Cluster), Error> {
    let cluster = Cluster::connect(url, Broadcaster::default(), ClusterConfig::default()).await?;
    let handler_cluster = cluster.clone();
    let server = ws_tokio::serve(
        move |mut ws: WebSocket| {
            let cluster = handler_cluster.clone();
            let relay = relay.clone();
            async move {
                let member = cluster.hub().join(&ws);
                cluster.join_room(&member, ROOM).await;
                if ws.send("ready").await.is_err() {
                    return;
                }
                while let Ok(message) = ws.recv().await {
                    if relay.load(Ordering::Relaxed) {
                        cluster.publish(ROOM, message, Some(&member));
                    } else {
                        cluster.hub().room(ROOM).broadcast_except(message, &member);
                    }
                }
            }
        },
        "127.0.0.1:0",
    )
    .await?;
    Ok((server, cluster))
}

async fn client(server: &Server) -> Result<WebSocket, Error> {
    let addr = server.local_addr().ok_or("server has no address")?;
    let mut ws = ws_tokio::connect(&format!("ws://{addr}/")).await?;
    ws.recv().await?; // "ready": subscribed
    Ok(ws)
}

/// Reads messages numbered by their text, reports (number, arrival) and counts them.
fn receive(mut ws: WebSocket, count: Arc<AtomicU64>, arrivals: mpsc::UnboundedSender<(usize, Instant)>) {
    tokio::spawn(async move {
        while let Ok(message) = ws.recv().await {
            let now = Instant::now();
            count.fetch_add(1, Ordering::Relaxed);
            if let Message::Text(text) = message {
                if let Ok(number) = text.as_str().parse() {
                    let _ = arrivals.send((number, now));
                }
            }
        }
    });
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    format!("p50 {:?}  p90 {:?}  p99 {:?}  max {:?}", at(50), at(90), at(99), at(100))
}

/// Sends `burst` messages in windows of 200 and waits until every receiver has them all;
/// returns (wall time, this process's CPU time, redis-server's CPU time).
async fn burst(
    sender: &mut WebSocket,
    counts: &[Arc<AtomicU64>],
    burst: u64,
    redis_pid: Option<&str>,
) -> Result<(Duration, u64, u64), Error> {
    let base: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let received = || counts.iter().zip(&base).map(|(c, b)| c.load(Ordering::Relaxed) - b).min().unwrap_or(0);
    let (cpu0, redis0, start) = (cpu_ns("self"), redis_pid.map_or(0, cpu_ns), Instant::now());
    for i in 0..burst {
        sender.send(format!("burst {i}")).await?;
        if i % 200 == 199 {
            while received() + 200 < i {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while received() < burst {
        if Instant::now() > deadline {
            return Err(format!("only {} of {burst} messages arrived", received()).into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok((start.elapsed(), cpu_ns("self") - cpu0, redis_pid.map_or(0, cpu_ns) - redis0))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = args()?;
    let mut own_redis = None;
    let url = match &args.redis {
        Some(url) => url.clone(),
        None => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let child = std::process::Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start redis-server (apt-get install redis-server): {e}"))?;
            own_redis = Some(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                if Instant::now() > deadline {
                    return Err("redis-server did not start".into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            format!("redis://127.0.0.1:{port}/")
        }
    };
    let redis_pid = own_redis.as_ref().map(|child| child.id().to_string());
    let relay = Arc::new(AtomicBool::new(true));
    let (server_a, _cluster_a) = node(&url, relay.clone()).await?;
    let (server_b, _cluster_b) = node(&url, relay.clone()).await?;

    // Latency: one message at a time.
    let mut sender = client(&server_a).await?;
    let (local_tx, mut local_rx) = mpsc::unbounded_channel();
    let (remote_tx, mut remote_rx) = mpsc::unbounded_channel();
    let local_count = Arc::new(AtomicU64::new(0));
    let remote_count = Arc::new(AtomicU64::new(0));
    receive(client(&server_a).await?, local_count.clone(), local_tx);
    receive(client(&server_b).await?, remote_count.clone(), remote_tx);
    let (mut local, mut remote) = (Vec::new(), Vec::new());
    for i in 0..args.messages {
        let sent = Instant::now();
        sender.send(i.to_string()).await?;
        let (l, r) =
            (local_rx.recv().await.ok_or("receiver gone")?, remote_rx.recv().await.ok_or("receiver gone")?);
        assert_eq!((l.0, r.0), (i, i), "messages out of order");
        local.push(l.1 - sent);
        remote.push(r.1 - sent);
    }
    println!("latency over {} messages, one at a time (send to receive):", args.messages);
    println!("  same node (local fan-out):  {}", percentiles(local));
    println!("  other node (through Redis): {}", percentiles(remote));

    // CPU: relayed (receivers on A and B), then local only (both receivers on A).
    let counts = [local_count.clone(), remote_count.clone()];
    let (wall, cpu, redis_cpu) = burst(&mut sender, &counts, args.burst, redis_pid.as_deref()).await?;
    relay.store(false, Ordering::Relaxed);
    let (tx, _rx) = mpsc::unbounded_channel();
    let second_local = Arc::new(AtomicU64::new(0));
    receive(client(&server_a).await?, second_local.clone(), tx);
    // Node B's receiver stays connected but gets nothing now: count A's two receivers.
    let counts = [local_count, second_local];
    let (local_wall, local_cpu, _) = burst(&mut sender, &counts, args.burst, None).await?;
    let per = |ns: u64| Duration::from_nanos(ns / args.burst);
    println!("CPU over {} messages to 2 receivers (this process: nodes and clients):", args.burst);
    println!("  relayed through Redis: {:?} per message ({:?} wall in all)", per(cpu), wall);
    println!("  local only:            {:?} per message ({:?} wall in all)", per(local_cpu), local_wall);
    println!("  added by the relay:    {:?} per message", per(cpu.saturating_sub(local_cpu)));
    if redis_pid.is_some() {
        println!("  redis-server:          {:?} per message", per(redis_cpu));
    }
    if let Some(mut child) = own_redis {
        child.kill()?;
        child.wait()?;
    }
    Ok(())
}
