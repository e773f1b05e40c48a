//! Every message from any client goes to all clients (the sender too).
//!
//! `cargo run --release --example broadcast -- [ADDR]` (default 127.0.0.1:8765)
//!
//! Each connection joins a [`Broadcaster`] and passes on what it receives. A broadcast
//! encodes the message once and queues it on every connection without waiting: a client
//! that stops reading has at most its write limit's worth (32 KiB) waiting, then misses
//! messages, so it neither slows the others nor makes the server's memory grow. For a chat
//! with names, history and a web page, see `examples/chat.rs`.

mod common;

use std::time::Duration;

use ws_tokio::{Broadcaster, ServerBuilder};

#[tokio::main]
async fn main() -> Result<(), common::Report> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8765".to_owned());
    let hub = Broadcaster::default();
    let server = ServerBuilder::new()
        .serve(
            {
                let hub = hub.clone();
                move |mut ws| {
                    let hub = hub.clone();
                    async move {
                        // A member until dropped, i.e. until this handler returns.
                        let _member = hub.join(&ws);
                        while let Ok(message) = ws.recv().await {
                            hub.broadcast(message);
                        }
                    }
                }
            },
            addr.as_str(),
        )
        .await?;
    eprintln!("broadcast listening on {addr}");
    tokio::signal::ctrl_c().await?;
    let totals = hub.totals();
    eprintln!(
        "delivered {}, dropped {} (slow clients), {} to closed connections",
        totals.delivered, totals.dropped, totals.closed
    );
    server.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
