//! Abuse tests: misbehaving and hostile peers against a real server on loopback, bounded in
//! time. Each prints its figures (`cargo test -p ws-tokio --test abuse -- --nocapture`), which
//! `docs/security.md` quotes.
//!
//! The server runs in this process and the clients are mostly raw TCP sockets with a
//! hand-made handshake, so that memory figures (from `/proc/self/status`, Linux only; other
//! systems skip the memory checks) are the server's plus a few hundred bytes per client socket.
//! The tests run one at a time (see [`serial`]) so that one test's memory does not show up in
//! another's figures.
//!
//! `WS_ABUSE_CONNECTIONS=10000` raises the number of held connections from the default 2,000.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should panic

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use ws_tokio::{Bytes, CloseCode, Error, Message, Server, ServerBuilder, WebSocket};

// ---- helpers ----

/// One test at a time: memory figures are per process.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`), or `None` off Linux.
fn status_bytes(field: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn rss() -> Option<usize> {
    status_bytes("VmRSS:")
}

/// Resets the peak RSS (`VmHWM`) to the current RSS (Linux ≥ 4.0), so that a later
/// `status_bytes("VmHWM:")` is the peak of what follows.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A server whose handler is `handler`, on an ephemeral loopback port.
async fn server_with<H, F>(builder: ServerBuilder, handler: H) -> (Server, SocketAddr)
where
    H: Fn(WebSocket<TcpStream>) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (builder.serve_listener(handler, listener), addr)
}

/// Echoes every message until the connection ends; reports how it ended.
fn echo_reporting(
    report: mpsc::UnboundedSender<(Error, Option<CloseCode>)>,
) -> impl Fn(WebSocket<TcpStream>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static
{
    move |mut ws: WebSocket<TcpStream>| {
        let report = report.clone();
        Box::pin(async move {
            let error = loop {
                match ws.recv().await {
                    Ok(message) => {
                        if let Err(e) = ws.send(message).await {
                            break e;
                        }
                    }
                    Err(e) => break e,
                }
            };
            let _ = report.send((error, ws.close_code()));
        })
    }
}

const REQUEST_TAIL: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// The opening handshake by hand on `stream`, with extra header lines (each ending in CRLF).
async fn handshake(stream: &mut TcpStream, addr: SocketAddr, extra: &str) {
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n{REQUEST_TAIL}{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
}

async fn raw_client(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    handshake(&mut stream, addr, "").await;
    stream
}

/// A raw client whose kernel receive buffer is as small as the kernel allows, so that a
/// server writing to it meets backpressure after a few kilobytes rather than megabytes.
async fn tiny_buffer_client(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    handshake(&mut stream, addr, "").await;
    stream
}

/// A masked client frame (mask `37 fa 21 3d`). `first` is the first byte (FIN, RSV, opcode).
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

fn close_frame(code: u16) -> Vec<u8> {
    client_frame(0x88, &code.to_be_bytes())
}

/// Reads one unmasked server frame: (first byte, payload).
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await?;
    let len = match head[1] & 0x7F {
        126 => usize::from(stream.read_u16().await?),
        127 => stream.read_u64().await? as usize,
        n => usize::from(n),
    };
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await?;
    Ok((head[0], payload))
}

/// Reads frames until a close frame; returns its code.
async fn read_close_code(stream: &mut TcpStream) -> u16 {
    loop {
        let (b0, payload) = read_frame(stream).await.unwrap();
        if b0 & 0x0F == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

/// Echo round trips with a normal client; returns the slowest.
async fn slowest_round_trip(addr: SocketAddr, rounds: usize) -> Duration {
    let mut ws = ws_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
    let mut slowest = Duration::ZERO;
    for i in 0..rounds {
        let started = Instant::now();
        ws.send(format!("round {i}")).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text(format!("round {i}")));
        slowest = slowest.max(started.elapsed());
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    slowest
}

// ---- slow readers ----

/// Clients that never read while the server sends: the server's memory stays bounded by the
/// write limit per connection, a normal client is still served promptly, and keepalive drops
/// the slow clients even though the server's output to them is blocked (the ping cannot even
/// be written): after `ping_interval + ping_timeout`, then `close_timeout` for the close frame
/// that cannot be written either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_are_bounded_and_dropped_by_keepalive() {
    let _serial = serial().await;
    const SLOW: usize = 20;
    const CHUNK: usize = 64 * 1024;
    let (interval, timeout, close) =
        (Duration::from_millis(300), Duration::from_millis(300), Duration::from_millis(300));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tx = Arc::new(Mutex::new(tx));
    let builder = ServerBuilder::new()
        .compression(None)
        .ping_interval(Some(interval))
        .ping_timeout(Some(timeout))
        .close_timeout(Some(close));
    let (server, addr) = server_with(builder, move |mut ws: WebSocket<TcpStream>| {
        let tx = tx.lock().unwrap().clone();
        async move {
            // "flood": send 64 KiB messages until the connection fails; anything else: echo.
            let Ok(first) = ws.recv().await else { return };
            if first != Message::text("flood") {
                let _ = ws.send(first).await;
                while let Ok(message) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
                return;
            }
            let started = Instant::now();
            let chunk = Bytes::from(vec![0u8; CHUNK]);
            let mut sent = 0usize;
            let error = loop {
                if let Err(e) = ws.send(chunk.clone()).await {
                    break e;
                }
                sent += 1;
            };
            let _ = tx.send((sent, error, started.elapsed()));
        }
    })
    .await;

    let before = rss();
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let mut stream = tiny_buffer_client(addr).await;
        stream.write_all(&client_frame(0x81, b"flood")).await.unwrap();
        slow.push(stream); // ...and never read
    }
    // Let the handlers fill the socket buffers and block in `send`.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let during = rss();
    let slowest = slowest_round_trip(addr, 20).await;
    println!("slow readers: slowest echo round trip of a normal client meanwhile: {slowest:?}");
    assert!(slowest < Duration::from_secs(1), "the server stalled: {slowest:?}");
    if let (Some(before), Some(during)) = (before, during) {
        let per = during.saturating_sub(before) / SLOW;
        println!(
            "slow readers: RSS {:.1} MiB -> {:.1} MiB with {SLOW} blocked senders: {:.0} KiB each \
             (write limit 32 KiB + one 64 KiB message + 16 KiB read buffer)",
            mib(before),
            mib(during),
            per as f64 / 1024.0
        );
        // Nothing grows with what the handlers try to send (they would send megabytes).
        assert!(per < 512 * 1024, "{per} bytes per slow connection");
    }

    // Every slow reader is dropped by keepalive.
    let deadline = interval + timeout + close + Duration::from_secs(3);
    for _ in 0..SLOW {
        let (sent, error, elapsed) = tokio::time::timeout(deadline, rx.recv())
            .await
            .expect("a slow reader was not dropped: keepalive did not fire while output was blocked")
            .unwrap();
        assert!(matches!(error, Error::Timeout(_)), "{error:?}");
        assert!(sent < 200, "{sent} messages of 64 KiB went out to a client that never reads");
        assert!(elapsed >= interval + timeout, "{elapsed:?}");
    }
    println!("slow readers: all {SLOW} dropped by keepalive within {deadline:?}");
    drop(slow);
    server.shutdown(Duration::from_secs(2)).await;
}
