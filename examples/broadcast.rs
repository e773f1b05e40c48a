//! Every message from any client goes to all clients.
//!
//! `cargo run --release --example broadcast -- [ADDR]` (default 127.0.0.1:8765)
//!
//! Each client has a reader and a writer. Messages go through a bounded broadcast channel: a
//! slow client that falls more than `BACKLOG` messages behind skips the ones it missed (and is
//! told so), so it neither slows the others nor makes the server's memory grow; its own
//! writer waits on the connection's write limit.

mod common;

use std::time::Duration;

use tokio::sync::broadcast;
use ws_tokio::{CloseCode, Message, ServerBuilder};

const BACKLOG: usize = 256;

#[tokio::main]
async fn main() -> Result<(), common::Report> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8765".to_owned());
    let (hub, _) = broadcast::channel::<Message>(BACKLOG);
    let server = ServerBuilder::new()
        .serve(
            move |ws| {
                let hub = hub.clone();
                async move {
                    let mut inbox = hub.subscribe();
                    let (mut reader, mut writer) = ws.split();
                    let forward = async {
                        while let Ok(message) = reader.recv().await {
                            // No receivers is fine: nobody to tell.
                            let _ = hub.send(message);
                        }
                    };
                    let deliver = async {
                        loop {
                            match inbox.recv().await {
                                Ok(message) => {
                                    if writer.send(message).await.is_err() {
                                        break;
                                    }
                                }
                                Err(broadcast::error::RecvError::Lagged(missed)) => {
                                    let note = format!("(slow connection: {missed} messages skipped)");
                                    if writer.send(note).await.is_err() {
                                        break;
                                    }
                                }
                                Err(broadcast::error::RecvError::Closed) => break,
                            }
                        }
                    };
                    // Whichever ends first ends the connection.
                    tokio::select! {
                        () = forward => {}
                        () = deliver => {}
                    }
                    let _ = writer.close(CloseCode::NORMAL, "").await;
                }
            },
            addr.as_str(),
        )
        .await?;
    eprintln!("broadcast listening on {addr}");
    tokio::signal::ctrl_c().await?;
    server.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
