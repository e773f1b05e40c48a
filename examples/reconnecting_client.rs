//! Stays connected: prints what the server sends and reconnects, with backoff, whenever the
//! connection is lost or the server is down (Python: `async for websocket in connect(uri)`).
//! Stops on a fatal error (a 403, an invalid URI) or Ctrl-C.
//!
//! `cargo run --release --example reconnecting_client -- ws://127.0.0.1:8765`
//! (try it against `push_server`, and restart the server while it runs).

mod common;

use ws_tokio::{ClientBuilder, Message, is_transient};

#[tokio::main]
async fn main() -> Result<(), common::Report> {
    let uri = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:8765".to_owned());
    let mut connections = ClientBuilder::new().reconnecting(&uri).retry_if(|e| {
        // The default policy; printed here because the library logs retries with `tracing`.
        let retry = is_transient(e);
        if retry {
            eprintln!("connect failed, retrying: {e}");
        }
        retry
    });
    let run = async {
        while let Some(ws) = connections.next().await {
            let mut ws = ws?;
            eprintln!("connected to {uri}");
            ws.send("hello").await?;
            loop {
                match ws.recv().await {
                    Ok(Message::Text(text)) => println!("{text}"),
                    Ok(Message::Binary(data)) => println!("<{} bytes>", data.len()),
                    Err(e) => {
                        eprintln!("{e}; reconnecting");
                        break;
                    }
                }
            }
        }
        Ok::<_, common::Report>(())
    };
    tokio::select! {
        result = run => result,
        interrupted = tokio::signal::ctrl_c() => Ok(interrupted?),
    }
}
