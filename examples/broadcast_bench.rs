//! The ws server of `cargo xtask bench --only broadcast` (xtask/src/bench_broadcast.rs): a
//! fan-out server with the two ways a ws user can write one.
//!
//! `cargo run --release --example broadcast_bench -- [ADDR] [--per-connection] [--no-compression]`
//! (default 127.0.0.1:8765)
//!
//! A connection to `/control` sends the messages: each one it sends is passed to every other
//! connection, then answered with `DELIVERED DROPPED` (the totals so far), so the load generator
//! can report what the server skipped. Every other connection only receives.
//!
//! - Default: a [`Broadcaster`] with its default settings (`max_buffered`: the write limit,
//!   32 KiB), and permessage-deflate without context takeover (`Deflate(Memory::Shared)`), so
//!   a message is compressed once for all connections.
//! - `--per-connection`: what one writes without a broadcaster: a `tokio::sync::broadcast`
//!   channel, and a task per connection sending what it receives with `send().await`, with the
//!   default compression (context takeover: each connection compresses each message itself).
//! - `--no-compression`: permessage-deflate declined, in either mode.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use ws_tokio::{Broadcaster, Compression, Memory, Message, ServerBuilder, WebSocket};

/// Messages the per-connection channel holds; a connection further behind skips ahead.
const CHANNEL: usize = 1024;

fn is_control(ws: &WebSocket) -> bool {
    ws.info().request().is_some_and(|r| r.uri().path() == "/control")
}

#[tokio::main]
async fn main() -> Result<(), common::Report> {
    let mut addr = "127.0.0.1:8765".to_owned();
    let (mut per_connection, mut compress) = (false, true);
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--per-connection" => per_connection = true,
            "--no-compression" => compress = false,
            _ => addr = arg,
        }
    }
    let compression = match (compress, per_connection) {
        (false, _) => None,
        (true, false) => Some(Compression::Deflate(Memory::Shared)),
        (true, true) => Some(Compression::default()),
    };
    let builder = ServerBuilder::new().compression(compression);
    let server = if per_connection {
        let (tx, _) = broadcast::channel::<Message>(CHANNEL);
        let lagged = Arc::new(AtomicU64::new(0));
        let delivered = Arc::new(AtomicU64::new(0));
        builder
            .serve(
                move |mut ws| {
                    let (tx, lagged, delivered) = (tx.clone(), lagged.clone(), delivered.clone());
                    async move {
                        if is_control(&ws) {
                            while let Ok(message) = ws.recv().await {
                                let n = tx.send(message).unwrap_or(0) as u64;
                                let total = delivered.fetch_add(n, Ordering::Relaxed) + n;
                                let reply = format!("{total} {}", lagged.load(Ordering::Relaxed));
                                if ws.send(reply).await.is_err() {
                                    break;
                                }
                            }
                            return;
                        }
                        let mut rx = tx.subscribe();
                        loop {
                            match rx.recv().await {
                                Ok(message) => {
                                    if ws.send(message).await.is_err() {
                                        break;
                                    }
                                }
                                Err(RecvError::Lagged(n)) => {
                                    lagged.fetch_add(n, Ordering::Relaxed);
                                }
                                Err(RecvError::Closed) => break,
                            }
                        }
                    }
                },
                addr.as_str(),
            )
            .await?
    } else {
        let hub = Broadcaster::default();
        builder
            .serve(
                move |mut ws| {
                    let hub = hub.clone();
                    async move {
                        if is_control(&ws) {
                            while let Ok(message) = ws.recv().await {
                                hub.broadcast(message);
                                let totals = hub.totals();
                                let reply = format!("{} {}", totals.delivered, totals.dropped);
                                if ws.send(reply).await.is_err() {
                                    break;
                                }
                            }
                            return;
                        }
                        // A member until the client goes (the driver answers its close).
                        let _member = hub.join(&ws);
                        while ws.recv().await.is_ok() {}
                    }
                },
                addr.as_str(),
            )
            .await?
    };
    eprintln!("broadcast_bench listening on {}", server.local_addr().map_or(addr, |a| a.to_string()));
    tokio::signal::ctrl_c().await?;
    server.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
