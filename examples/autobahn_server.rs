//! Echo server for the Autobahn|Testsuite fuzzing client: 64 MiB messages, compression on.
//!
//! `cargo run --release --example autobahn_server -- [ADDR]` (default 127.0.0.1:9001)

use ws_tokio::ServerBuilder;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let server = ServerBuilder::new()
        .max_size(Some(64 << 20))
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
    eprintln!("autobahn_server listening on {addr}");
    server.serve_forever().await;
    Ok(())
}
