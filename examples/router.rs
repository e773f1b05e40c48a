//! One server, a handler per path (Python: `route()`): `/echo` echoes, `/rooms/{room}`
//! answers each message with its room, any other path gets 404 before the upgrade.
//!
//! `cargo run --release --example router -- [ADDR]` (default 127.0.0.1:8765), then e.g.
//! `cargo run --example client -- ws://127.0.0.1:8765/rooms/lobby`.

mod common;

use std::time::Duration;

use ws_tokio::{Message, Params, Router, ServerBuilder, WebSocket};

async fn echo(mut ws: WebSocket, _: Params) {
    while let Ok(message) = ws.recv().await {
        if ws.send(message).await.is_err() {
            break;
        }
    }
}

async fn room(mut ws: WebSocket, params: Params) -> Result<(), ws_tokio::Error> {
    let room = params.get("room").unwrap_or_default().to_owned();
    while let Ok(message) = ws.recv().await {
        if let Message::Text(text) = message {
            ws.send(format!("[{room}] {text}")).await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), common::Report> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8765".to_owned());
    let router = Router::new().route("/echo", echo).route("/rooms/{room}", room);
    let server = ServerBuilder::new().serve_router(router, addr.as_str()).await?;
    eprintln!("router listening on {}", server.local_addr().map_or(addr, |a| a.to_string()));
    tokio::signal::ctrl_c().await?;
    server.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
