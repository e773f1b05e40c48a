//! Echoes every message back, with the default settings (permessage-deflate on).
//!
//! `cargo run --release --example echo_server -- [ADDR] [--no-compression | --lean-compression]`
//! (default 127.0.0.1:8765). `--lean-compression` uses the memory-lean mode: per-thread zlib
//! streams, no context takeover.

mod common;

use std::time::Duration;

use ws_tokio::{Compression, Memory, ServerBuilder};

#[tokio::main]
async fn main() -> Result<(), common::Report> {
    let mut addr = "127.0.0.1:8765".to_owned();
    let mut compression = Some(Compression::default());
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--no-compression" => compression = None,
            "--lean-compression" => compression = Some(Compression::Deflate(Memory::Shared)),
            _ => addr = arg,
        }
    }
    let server = ServerBuilder::new()
        .compression(compression)
        .serve(
            |mut ws| async move {
                while let Ok(message) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            },
            addr.as_str(),
        )
        .await?;
    eprintln!("echo_server listening on {}", server.local_addr().map_or(addr, |a| a.to_string()));
    tokio::signal::ctrl_c().await?;
    server.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
