//! Echoes every message back, with the default settings (permessage-deflate on).
//!
//! `cargo run --release --example echo_server -- [ADDR] [--no-compression | --lean-compression]
//! [--report-tasks] [--reuse-port]` (default 127.0.0.1:8765). `--lean-compression` uses the
//! memory-lean mode: per-thread zlib streams, no context takeover. `--report-tasks` prints
//! `tasks N` on stdout once a second, N being the runtime's live tasks (`cargo xtask soak`
//! watches it for leaks). `--reuse-port` binds with `SO_REUSEPORT` (Unix), so that several
//! processes can serve one port, the kernel spreading connections over them. With `RUST_LOG`
//! set (`RUST_LOG=ws_tokio::pump=debug`: each connection's close code and cause), it logs to
//! stderr.

mod common;

use std::io::Write as _;
use std::time::Duration;

use ws_tokio::{Compression, Memory, ServerBuilder};

#[tokio::main]
async fn main() -> Result<(), common::Report> {
    let mut addr = "127.0.0.1:8765".to_owned();
    let mut compression = Some(Compression::default());
    let mut report_tasks = false;
    let mut reuse_port = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--no-compression" => compression = None,
            "--reuse-port" => reuse_port = true,
            "--lean-compression" => compression = Some(Compression::Deflate(Memory::Shared)),
            "--report-tasks" => report_tasks = true,
            _ => addr = arg,
        }
    }
    // Logs only when asked (RUST_LOG=ws_tokio=debug, say): the benches read stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let echo = |mut ws: ws_tokio::WebSocket| async move {
        while let Ok(message) = ws.recv().await {
            if ws.send(message).await.is_err() {
                break;
            }
        }
    };
    let builder = ServerBuilder::new().compression(compression);
    let server = if reuse_port {
        builder.serve_listener(echo, reuse_port_listener(&addr).await?)?
    } else {
        builder.serve(echo, addr.as_str()).await?
    };
    eprintln!("echo_server listening on {}", server.local_addr().map_or(addr, |a| a.to_string()));
    if report_tasks {
        // One counter read a second (tokio's stable RuntimeMetrics); this task counts as one.
        let metrics = tokio::runtime::Handle::current().metrics();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                // Whoever reads may go away: stop reporting rather than panic.
                if writeln!(std::io::stdout(), "tasks {}", metrics.num_alive_tasks()).is_err() {
                    break;
                }
            }
        });
    }
    tokio::signal::ctrl_c().await?;
    server.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

/// A listener on `addr` bound with `SO_REUSEPORT` (and `SO_REUSEADDR`, as
/// `tokio::net::TcpListener::bind` sets it), with tokio's default backlog.
#[cfg(unix)]
async fn reuse_port_listener(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let addr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{addr}: no address")))?;
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

#[cfg(not(unix))]
async fn reuse_port_listener(_addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    Err(std::io::Error::other("--reuse-port needs SO_REUSEPORT (Unix)"))
}
