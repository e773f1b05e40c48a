//! Echo servers on other Rust WebSocket stacks, for `cargo xtask bench` only.
//!
//! `ws-peers --impl NAME [ADDR]` with NAME one of:
//! `raw` (TCP echo, the ceiling), `tungstenite` (tokio-tungstenite), `fastwebsockets`,
//! `ratchet`, `ratchet-deflate` (ratchet_rs with permessage-deflate, its default config),
//! `sockudo` (sockudo-ws), `tokio-websockets`; and `tungstenite-flush`, `sockudo-flush`: the
//! same two libraries with a flush after every message.
//!
//! Each peer runs the echo loop its own examples or README write, the fastest they document:
//! tokio-tungstenite splits the socket and `forward`s the stream into the sink (flushing only
//! when no message is ready), sockudo-ws `feed`s replies (flushed when the input batch runs
//! out), fastwebsockets and tokio-websockets run the handler in `tokio::task::unconstrained`.
//! The `-flush` variants are the receive / `send` loop many applications write, kept as a
//! second row. All run on a multi-thread tokio runtime with `TOKIO_WORKER_THREADS` workers
//! (default 2), TCP_NODELAY on, like the ws `echo_server` example. Prints `listening on ADDR`
//! to stderr once bound.
//!
//! `ws-peers --spin` is no server: it busy-loops on one thread until killed. `cargo xtask bench`
//! runs one per CPU at `SCHED_IDLE` priority so that idle vCPUs do not halt between echoes.

use std::error::Error;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

type Res = Result<(), Box<dyn Error + Send + Sync>>;

fn main() -> Res {
    let mut imp = String::new();
    let mut addr = "127.0.0.1:8766".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--impl" => imp = args.next().ok_or("--impl needs a value")?,
            "--spin" => spin(),
            _ => addr = a,
        }
    }
    let workers = std::env::var("TOKIO_WORKER_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("{imp} listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let imp = imp.clone();
            tokio::spawn(async move {
                let r = match imp.as_str() {
                    "raw" => raw(stream).await,
                    "tungstenite" => tungstenite(stream).await,
                    "tungstenite-flush" => tungstenite_flush(stream).await,
                    "fastwebsockets" => tokio::task::unconstrained(fastws(stream)).await,
                    "ratchet" => ratchet(stream, false).await,
                    "ratchet-deflate" => ratchet(stream, true).await,
                    "sockudo" => sockudo(stream, false).await,
                    "sockudo-flush" => sockudo(stream, true).await,
                    "tokio-websockets" => tokio::task::unconstrained(tokio_websockets(stream)).await,
                    other => {
                        eprintln!("unknown --impl {other}");
                        std::process::exit(2);
                    }
                };
                drop(r);
            });
        }
    })
}

/// The ceiling: answers the opening handshake, then returns every byte as it came (the client's
/// masked frames), with no WebSocket processing at all.
async fn raw(mut stream: TcpStream) -> Res {
    let leftover = handshake(&mut stream).await?;
    stream.write_all(&leftover).await?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// Keeps its CPU out of idle (see the module docs); never returns.
fn spin() -> ! {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// tokio-tungstenite's `echo-server` example: the split halves, `forward`ed.
async fn tungstenite(stream: TcpStream) -> Res {
    use futures_util::{StreamExt as _, TryStreamExt as _};
    let ws = tokio_tungstenite::accept_async(stream).await?;
    let (write, read) = ws.split();
    read.try_filter(|msg| std::future::ready(msg.is_text() || msg.is_binary())).forward(write).await?;
    Ok(())
}

/// tokio-tungstenite with `send` (a flush) after every message.
async fn tungstenite_flush(stream: TcpStream) -> Res {
    use futures_util::{SinkExt as _, StreamExt as _};
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        } else if msg.is_close() {
            break;
        }
    }
    Ok(())
}

/// A minimal server handshake for the stacks that leave it to the application.
async fn handshake(stream: &mut TcpStream) -> Result<Vec<u8>, Box<dyn Error + Send + Sync>> {
    use base64::Engine as _;
    use sha1::Digest as _;
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("eof during handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&buf[..end])?;
    let key = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
        .ok_or("no Sec-WebSocket-Key")?
        .value;
    let mut h = sha1::Sha1::new();
    h.update(key);
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(h.finalize());
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(resp.as_bytes()).await?;
    Ok(buf[end..].to_vec())
}

async fn fastws(mut stream: TcpStream) -> Res {
    use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
    let leftover = handshake(&mut stream).await?;
    if !leftover.is_empty() {
        return Err("fastwebsockets: frames pipelined behind the handshake are not supported here".into());
    }
    let mut ws = FragmentCollector::new(WebSocket::after_handshake(stream, Role::Server));
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}

async fn ratchet(stream: TcpStream, deflate: bool) -> Res {
    use ratchet_rs::deflate::DeflateExtProvider;
    use ratchet_rs::{Message, NoExtProvider, PayloadType, SubprotocolRegistry, WebSocketConfig};
    let config = WebSocketConfig { max_message_size: 64 << 20 };
    macro_rules! echo {
        ($ext:expr) => {{
            let up = ratchet_rs::accept_with(stream, config, $ext, SubprotocolRegistry::default()).await?;
            let mut ws = up.upgrade().await?.websocket;
            let mut buf = bytes::BytesMut::new();
            loop {
                match ws.read(&mut buf).await? {
                    Message::Text => ws.write(&mut buf, PayloadType::Text).await?,
                    Message::Binary => ws.write(&mut buf, PayloadType::Binary).await?,
                    Message::Ping(_) | Message::Pong(_) => {}
                    Message::Close(_) => return Ok(()),
                }
                buf.clear();
            }
        }};
    }
    if deflate { echo!(DeflateExtProvider::default()) } else { echo!(NoExtProvider) }
}

/// sockudo-ws: replies `feed` as its README's echo loop does, or `send` (a flush each) with `flush`.
async fn sockudo(mut stream: TcpStream, flush: bool) -> Res {
    use futures_util::{SinkExt as _, StreamExt as _};
    use sockudo_ws::protocol::Message;
    use sockudo_ws::{Config, WebSocketStream};
    let leftover = handshake(&mut stream).await?;
    let leftover = (!leftover.is_empty()).then(|| bytes::Bytes::from(leftover));
    let mut ws = WebSocketStream::from_raw_with_leftover(
        stream,
        sockudo_ws::Role::Server,
        Config::default(),
        leftover,
    );
    while let Some(msg) = ws.next().await {
        match msg? {
            m @ (Message::Text(_) | Message::Binary(_)) if flush => ws.send(m).await?,
            m @ (Message::Text(_) | Message::Binary(_)) => ws.feed(m).await?,
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}

/// tokio-websockets' `echo_server` example (its SIMD masking and UTF-8 validation are chosen at
/// run time since 0.11.1, no feature needed).
async fn tokio_websockets(stream: TcpStream) -> Res {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_websockets::{Config, Limits, ServerBuilder};
    let (_request, mut ws) = ServerBuilder::new()
        .config(Config::default().frame_size(usize::MAX))
        .limits(Limits::unlimited())
        .accept(stream)
        .await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}
