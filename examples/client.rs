//! Sends each line of stdin as a text message and prints the replies.
//!
//! `cargo run --release --example client -- ws://127.0.0.1:8765`, or a `wss://` URI: its server
//! certificate is checked against the platform's roots, or those of `SSL_CERT_FILE` /
//! `SSL_CERT_DIR` when set (e.g. the CA the `tls_server` example writes).
//!
//! Like Python's `connect`, it goes through the proxy the environment names
//! (`http_proxy=http://user:pw@proxy:3128`, `all_proxy=socks5h://proxy:1080`, `no_proxy`...)
//! and follows redirects.

mod common;

use tokio::io::{AsyncBufReadExt, BufReader};
use ws_tokio::{CloseCode, Message};

#[tokio::main]
async fn main() -> Result<(), common::Report> {
    let uri = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:8765".to_owned());
    let ws = ws_tokio::connect(&uri).await?;
    let (mut reader, mut writer) = ws.split();
    let printer = tokio::spawn(async move {
        while let Ok(message) = reader.recv().await {
            match message {
                Message::Text(text) => println!("{text}"),
                Message::Binary(data) => println!("<{} bytes>", data.len()),
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        writer.send(line).await?;
    }
    writer.close(CloseCode::NORMAL, "").await?;
    printer.await?;
    Ok(())
}
