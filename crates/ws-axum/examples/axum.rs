//! An axum app with a plain HTTP route and a WebSocket echo route.
//!
//! `cargo run -p ws-axum --example axum [ADDR]` (default 127.0.0.1:3000), then
//! `curl http://127.0.0.1:3000/health` and connect a WebSocket client to `ws://127.0.0.1:3000/ws`.

use std::net::SocketAddr;

use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use ws_axum::WebSocketUpgrade;

async fn echo(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move {
        let info = socket.info();
        eprintln!("{:?} connected, extensions {:?}", info.remote_addr(), info.extensions());
        while let Ok(message) = socket.recv().await {
            if socket.send(message).await.is_err() {
                break;
            }
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    // The same settings as for `ws_tokio::serve` (permessage-deflate is on by default).
    let acceptor = ws_tokio::ServerBuilder::new().subprotocols(["chat"]).max_size(Some(16 << 20)).build()?;
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ws", get(echo))
        .layer(Extension(acceptor));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
