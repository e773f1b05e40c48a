//! A server whose handler only pushes: a text message ("tick N") every interval, and never
//! calls `recv`. Pings, keepalive and the closing handshake must still work while it only
//! sends; `cargo xtask interop` (lifecycle runs) checks that against real clients.
//!
//! `cargo run --release --example push_server -- [ADDR] [--no-compression] [--interval-ms N]`
//! (default 127.0.0.1:8765, 100 ms). The handler returns once `send` fails.

mod common;

use std::time::Duration;

use ws_tokio::{Compression, ServerBuilder};

#[tokio::main]
async fn main() -> Result<(), common::Report> {
    let mut addr = "127.0.0.1:8765".to_owned();
    let mut compression = Some(Compression::default());
    let mut interval = Duration::from_millis(100);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-compression" => compression = None,
            "--interval-ms" => {
                let ms = args.next().and_then(|v| v.parse().ok()).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "--interval-ms needs a number")
                })?;
                interval = Duration::from_millis(ms);
            }
            _ => addr = arg,
        }
    }
    let server = ServerBuilder::new()
        .compression(compression)
        .serve(
            move |mut ws| async move {
                let mut ticks = tokio::time::interval(interval);
                for n in 0u64.. {
                    ticks.tick().await;
                    if ws.send(format!("tick {n}")).await.is_err() {
                        break;
                    }
                }
            },
            addr.as_str(),
        )
        .await?;
    eprintln!("push_server listening on {}", server.local_addr().map_or(addr, |a| a.to_string()));
    tokio::signal::ctrl_c().await?;
    server.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
