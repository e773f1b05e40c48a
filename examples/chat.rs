//! A chat room on one port: a web page at `/`, its WebSocket at `/ws`.
//!
//! `cargo run --release --example chat -- [ADDR] [--redis URL]` (default 127.0.0.1:8765), then open
//! `http://127.0.0.1:8765/` in a few browser tabs (or `/?name=alice` to skip the name prompt).
//!
//! The socket speaks plain text, so any client can join:
//!
//! ```text
//! websocat 'ws://127.0.0.1:8765/ws?name=bob'
//! python3 -m websockets 'ws://127.0.0.1:8765/ws?name=carol'
//! ```
//!
//! Each line a client sends reaches every other participant as `bob: hello` (the sender gets
//! no echo); newcomers get the last 50 lines, then everyone else sees `* bob joined`, and
//! later `* bob left`. A missing or unusable name (empty, over 32 characters) is refused with
//! HTTP 400 before the upgrade, other paths get 404.
//!
//! Messages go out through a [`ws_tokio::Broadcaster`]: each line is encoded once for all
//! participants and queued on each connection without waiting, so a participant that stops
//! reading misses lines rather than slowing the room. Compression is permessage-deflate
//! without context takeover (`Compression::Deflate(Memory::Shared)`): that is what lets a
//! broadcast compress a line once for everyone, and a connection keeps no zlib stream between
//! messages. The trade-off: every line is compressed on its own, so short lines shrink less
//! than with context takeover (the default, `Compression::default()`), which would compress
//! each line once per participant and keep ~210 KiB of zlib state per busy connection.
//!
//! Several chat servers share the lobby through Redis with `--redis` (the `ws-redis` crate; see
//! `docs/scale-out.md`), e.g. two on different ports, behind a load balancer or not:
//!
//! ```text
//! cargo run --release --example chat -- 127.0.0.1:8001 --redis redis://127.0.0.1:6379/
//! cargo run --release --example chat -- 127.0.0.1:8002 --redis redis://127.0.0.1:6379/
//! ```
//!
//! A line said on one reaches the participants of both; each server replays its own history
//! (the lines said anywhere while it had participants).
//!
//! The server lives in `examples/chat/server.rs` (the tests run it too), the page in
//! `examples/chat/index.html`.

mod common;
#[path = "chat/server.rs"]
mod server;

use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), common::Report> {
    let mut addr = "127.0.0.1:8765".to_owned();
    let mut redis = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--redis" {
            redis = Some(args.next().ok_or("--redis needs a URL (redis://127.0.0.1:6379/)")?);
        } else {
            addr = arg;
        }
    }
    let server = match &redis {
        None => server::serve(addr.as_str()).await?,
        Some(url) => server::serve_with(addr.as_str(), Some(url)).await?,
    };
    let at = server.local_addr().map_or(addr, |a| a.to_string());
    let shared = redis.map_or_else(String::new, |url| format!(", lobby shared through {url}"));
    eprintln!("chat on http://{at}/ (WebSocket: ws://{at}/ws?name=NAME){shared}");
    tokio::signal::ctrl_c().await?;
    server.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
