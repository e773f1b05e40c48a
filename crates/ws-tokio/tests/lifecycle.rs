//! The connection lifecycle (issue 15) on loopback: every connection is driven whether or not
//! the application reads. Pings are answered and keepalive runs while a handler only sends (or
//! only holds the write half), close frames are answered at once, `max_queue` stops reading
//! (TCP backpressure) until keepalive ends a peer nobody reads, and a handler's outcome picks
//! the close code.
//!
//! Peers are mostly raw TCP sockets writing masked frames by hand, so that each test controls
//! exactly what is sent in one write and what is answered. Timeouts are short (100 ms keepalive)
//! and every wait is bounded, so a hang fails the test instead of stalling it.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should panic

mod common;

use common::{client_frame, close_frame, raw_client, read_frame, read_head, tiny_buffer_client};

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use ws_tokio::{
    Bytes, Cause, ClientBuilder, CloseCode, Error, HandlerResult, Server, ServerBuilder, State, Timeout,
    WebSocket,
};

// ---- helpers ----

/// Nothing in these tests should take this long: a wait that does is a failure, not a stall.
const WAIT: Duration = Duration::from_secs(5);

const MS_100: Duration = Duration::from_millis(100);

/// How often a push-only handler sends.
const TICK: Duration = Duration::from_millis(20);

/// A server whose handler is `handler`, on an ephemeral loopback port.
async fn server_with<H, F>(builder: ServerBuilder, handler: H) -> (Server, SocketAddr)
where
    H: Fn(WebSocket) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
    F::Output: HandlerResult,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (builder.serve_listener(handler, listener).unwrap(), addr)
}

/// A server that pings every 100 ms, waits 100 ms for the pong and 100 ms for a close frame.
fn keepalive_builder() -> ServerBuilder {
    ServerBuilder::new().ping_interval(Some(MS_100)).ping_timeout(Some(MS_100)).close_timeout(Some(MS_100))
}

/// The echo handler: `while let Ok(m) = ws.recv().await { if ws.send(m).await.is_err() { break } }`.
async fn echo(mut ws: WebSocket) {
    while let Ok(message) = ws.recv().await {
        if ws.send(message).await.is_err() {
            break;
        }
    }
}

/// How a push-only handler ended: the error its last `send` returned, the time from the
/// handler's start, and how many messages it sent before.
type PushReport = (Error, Duration, usize);

type BoxedHandler = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A handler that never reads: it sends "tick N" every 20 ms until `send` fails, and reports.
fn push_only(
    report: mpsc::UnboundedSender<PushReport>,
) -> impl Fn(WebSocket) -> BoxedHandler + Send + Sync + 'static {
    move |mut ws: WebSocket| {
        let report = report.clone();
        Box::pin(async move {
            let started = Instant::now();
            let mut sent = 0usize;
            let error = loop {
                tokio::time::sleep(TICK).await;
                if let Err(e) = ws.send(format!("tick {sent}")).await {
                    break e;
                }
                sent += 1;
            };
            let _ = report.send((error, started.elapsed(), sent));
        })
    }
}

/// A listener whose accepted sockets inherit tiny kernel buffers.
fn tiny_buffer_listener() -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(64).unwrap()
}

/// Reads one frame within [`WAIT`]; anything else fails the test.
async fn next_frame<R: AsyncRead + Unpin>(stream: &mut R) -> (u8, Vec<u8>) {
    tokio::time::timeout(WAIT, read_frame(stream))
        .await
        .expect("no frame came within the wait")
        .expect("the connection ended before the frame")
}

/// A close frame's code and reason.
fn close_payload(payload: &[u8]) -> (u16, String) {
    assert!(payload.len() >= 2, "a close frame without a code: {payload:?}");
    (u16::from_be_bytes([payload[0], payload[1]]), String::from_utf8(payload[2..].to_vec()).unwrap())
}

/// Reads frames until a close frame; returns its code and reason, and the frames before it.
async fn read_close<R: AsyncRead + Unpin>(stream: &mut R) -> (u16, String, Vec<(u8, Vec<u8>)>) {
    let mut before = Vec::new();
    loop {
        let (b0, payload) = next_frame(stream).await;
        if b0 == 0x88 {
            let (code, reason) = close_payload(&payload);
            return (code, reason, before);
        }
        before.push((b0, payload));
    }
}

/// The server closes the TCP connection after its close frame, and sends nothing more.
async fn expect_eof(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(WAIT, stream.read(&mut buf)).await.expect("the server never closed TCP") {
        Ok(0) | Err(_) => {} // FIN, or a reset
        Ok(n) => panic!("{n} bytes after the close frame: {:?}", &buf[..n]),
    }
}

/// Waits for the report of a handler.
async fn report<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv()).await.expect("the handler did not end").unwrap()
}

// ---- 1. a push-only handler: keepalive and pings without anyone reading ----

/// A raw client that answers the server's keepalive pings stays connected to a handler that
/// only sends, and keeps getting its messages, for ten times the keepalive period.
#[tokio::test]
async fn push_only_handler_keeps_a_client_that_answers_pings() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, addr) = server_with(keepalive_builder(), push_only(tx)).await;
    let mut stream = raw_client(addr).await;
    let until = Instant::now() + Duration::from_secs(1);
    let (mut ticks, mut pings) = (0usize, 0usize);
    // Ticks come every 20 ms: the loop ends shortly after the second, between two frames.
    while Instant::now() < until {
        match next_frame(&mut stream).await {
            (0x81, payload) => {
                assert_eq!(payload, format!("tick {ticks}").as_bytes(), "messages in order, none lost");
                ticks += 1;
            }
            (0x89, payload) => {
                pings += 1;
                stream.write_all(&client_frame(0x8A, &payload)).await.unwrap();
            }
            (b0, payload) => panic!("after {ticks} messages and {pings} pings: frame {b0:#x} {payload:?}"),
        }
    }
    println!("push-only: {ticks} messages and {pings} keepalive pings in 1 s");
    assert!(pings >= 5, "keepalive pings every 100 ms, but only {pings} in 1 s");
    assert!(ticks >= 20, "a message every 20 ms, but only {ticks} in 1 s");
    assert!(rx.try_recv().is_err(), "the handler's send failed although the client answered every ping");

    // Then a clean close, answered although the handler never reads.
    stream.write_all(&close_frame(1000)).await.unwrap();
    let (code, _, _) = read_close(&mut stream).await;
    assert_eq!(code, 1000);
    expect_eof(&mut stream).await;
    let (error, _, _) = report(&mut rx).await;
    assert!(matches!(&error, Error::Closed(c) if c.code == CloseCode::NORMAL && c.ok), "{error:?}");
    server.shutdown(WAIT).await;
}

/// A raw client's pings to a handler that only sends are each answered promptly.
#[tokio::test]
async fn push_only_handler_answers_pings_promptly() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, addr) = server_with(keepalive_builder(), push_only(tx)).await;
    let mut stream = raw_client(addr).await;
    let mut slowest = Duration::ZERO;
    for i in 0..20u32 {
        let payload = format!("client ping {i}");
        let sent = Instant::now();
        stream.write_all(&client_frame(0x89, payload.as_bytes())).await.unwrap();
        loop {
            match next_frame(&mut stream).await {
                (0x8A, pong) => {
                    assert_eq!(pong, payload.as_bytes(), "pongs answer pings in order");
                    break;
                }
                (0x89, keepalive) => stream.write_all(&client_frame(0x8A, &keepalive)).await.unwrap(),
                (0x81, _) => {}
                (b0, other) => panic!("ping {i}: frame {b0:#x} {other:?}"),
            }
        }
        slowest = slowest.max(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    println!("push-only: slowest pong of 20: {slowest:?}");
    assert!(slowest < MS_100, "a pong took {slowest:?}");
    assert!(rx.try_recv().is_err(), "the handler's send failed");
    stream.write_all(&close_frame(1000)).await.unwrap();
    assert_eq!(read_close(&mut stream).await.0, 1000);
    expect_eof(&mut stream).await;
    server.shutdown(WAIT).await;
}

// ---- 2. close replies, whether or not anybody reads ----

/// A message and a close frame in one write to an echo server: the close reply (1000) comes
/// every time, then the server closes TCP. The message may be echoed first, nothing else.
#[tokio::test]
async fn message_and_close_in_one_write_get_the_close_reply() {
    let (server, addr) = server_with(ServerBuilder::new(), echo).await;
    let mut echoed = 0;
    for round in 0..50 {
        let mut stream = raw_client(addr).await;
        let mut burst = client_frame(0x81, b"hello");
        burst.extend_from_slice(&close_frame(1000));
        stream.write_all(&burst).await.unwrap();
        let (code, reason, before) = read_close(&mut stream).await;
        assert_eq!((code, reason.as_str()), (1000, ""), "round {round}");
        for (b0, payload) in &before {
            assert_eq!((*b0, &payload[..]), (0x81, &b"hello"[..]), "round {round}");
        }
        echoed += before.len();
        expect_eof(&mut stream).await;
    }
    println!("message + close in one write: 50 close replies, {echoed} echoes before them");
    server.shutdown(WAIT).await;
}

/// A message and an invalid frame in one write to an echo server: the failure's close frame
/// comes every time, with the right code (1007 for invalid UTF-8, 1002 for a reserved opcode).
#[tokio::test]
async fn message_and_invalid_frame_in_one_write_get_the_failure_close() {
    let (server, addr) = server_with(ServerBuilder::new(), echo).await;
    let cases = [
        ("invalid UTF-8", client_frame(0x81, &[b'a', 0xff, 0xfe, b'z']), 1007u16),
        ("reserved opcode 3", client_frame(0x83, b"what"), 1002),
        ("reserved opcode 0xB", client_frame(0x8B, b""), 1002),
    ];
    for (what, invalid, expected) in cases {
        for round in 0..50 {
            let mut stream = raw_client(addr).await;
            let mut burst = client_frame(0x81, b"hello");
            burst.extend_from_slice(&invalid);
            stream.write_all(&burst).await.unwrap();
            let (code, _, before) = read_close(&mut stream).await;
            assert_eq!(code, expected, "{what}, round {round}");
            for (b0, payload) in &before {
                assert_eq!((*b0, &payload[..]), (0x81, &b"hello"[..]), "{what}, round {round}");
            }
            expect_eof(&mut stream).await;
        }
    }
    server.shutdown(WAIT).await;
}

/// A close frame to a handler that never reads is answered promptly (1000), and the handler's
/// next send reports the normal closure.
#[tokio::test]
async fn push_only_handler_answers_a_close_promptly() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, addr) = server_with(keepalive_builder(), push_only(tx)).await;
    for round in 0..10 {
        let mut stream = raw_client(addr).await;
        // Two messages first: the handler is in its loop.
        for _ in 0..2 {
            assert_eq!(next_frame(&mut stream).await.0, 0x81);
        }
        let started = Instant::now();
        stream.write_all(&close_frame(1000)).await.unwrap();
        let (code, _, before) = read_close(&mut stream).await;
        let elapsed = started.elapsed();
        assert_eq!(code, 1000, "round {round}");
        assert!(before.iter().all(|(b0, _)| *b0 == 0x81), "round {round}: {before:?}");
        assert!(elapsed < Duration::from_millis(50), "round {round}: the close reply took {elapsed:?}");
        expect_eof(&mut stream).await;
        let (error, _, _) = report(&mut rx).await;
        assert!(matches!(&error, Error::Closed(c) if c.code == CloseCode::NORMAL && c.ok), "{error:?}");
    }
    server.shutdown(WAIT).await;
}

// ---- 3, 4. keepalive fails a silent or vanished peer ----

/// Accepts one connection and completes the opening handshake by hand (no extension).
async fn accept_by_hand(listener: &TcpListener) -> TcpStream {
    let (mut stream, _) = listener.accept().await.unwrap();
    let head = read_head(&mut stream).await;
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
        })
        .expect("a Sec-WebSocket-Key");
    let accept = ws_handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await.unwrap();
    stream
}

/// A ws_tokio client with keepalive (100 ms / 100 ms) against a server that completes the
/// handshake and then answers nothing, with nobody calling `recv`: keepalive fails the
/// connection, the server gets a close frame 1011 "keepalive ping timeout" then EOF, and the
/// client's next `send` says why.
#[tokio::test]
async fn client_keepalive_fails_a_silent_server_without_recv() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut stream = accept_by_hand(&listener).await;
        let opened = Instant::now();
        // Read (and never answer) everything until EOF.
        let mut frames = Vec::new();
        let end = loop {
            match tokio::time::timeout(WAIT, read_frame(&mut stream)).await.expect("no EOF from the client") {
                Ok((b0, payload)) => frames.push((b0, payload, opened.elapsed())),
                Err(e) => break e,
            }
        };
        (frames, end, opened.elapsed())
    });
    let mut ws = ClientBuilder::new()
        .ping_interval(Some(MS_100))
        .ping_timeout(Some(MS_100))
        .close_timeout(Some(MS_100))
        .connect(&format!("ws://{addr}/"))
        .await
        .unwrap();
    ws.send("early").await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let error = ws.send("late").await.unwrap_err();
    assert!(matches!(error, Error::Timeout(Timeout::Keepalive)), "{error:?}");
    assert_eq!(ws.state(), State::Closed);
    assert_eq!(ws.closure().unwrap().cause, Some(Cause::KeepaliveTimeout));
    assert_eq!(ws.close_code(), Some(CloseCode::ABNORMAL), "the server sent no close frame");

    let (frames, end, eof_at) = tokio::time::timeout(WAIT, silent).await.unwrap().unwrap();
    assert_eq!(end.kind(), std::io::ErrorKind::UnexpectedEof, "{end:?}");
    let opcodes: Vec<u8> = frames.iter().map(|(b0, _, _)| *b0).collect();
    assert_eq!(opcodes, [0x81, 0x89, 0x88], "text, one keepalive ping, close: {frames:?}");
    assert_eq!(frames[0].1, b"early");
    let (code, reason) = close_payload(&frames[2].1);
    assert_eq!((code, reason.as_str()), (1011, "keepalive ping timeout"));
    let (ping_at, close_at) = (frames[1].2, frames[2].2);
    println!("silent server: ping at {ping_at:?}, close 1011 at {close_at:?}, EOF at {eof_at:?}");
    assert!(ping_at >= Duration::from_millis(80) && ping_at < Duration::from_millis(300), "{ping_at:?}");
    assert!(close_at >= ping_at + Duration::from_millis(80), "{close_at:?}");
    assert!(eof_at < Duration::from_millis(400), "EOF only at {eof_at:?}");
}

/// A peer that vanished (it keeps the socket open, reads nothing, answers nothing) is detected
/// by keepalive while the handler only sends: its next `send` fails with the keepalive timeout.
#[tokio::test]
async fn vanished_peer_is_detected_by_a_push_only_handler() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, addr) = server_with(keepalive_builder(), push_only(tx)).await;
    let _vanished = raw_client(addr).await; // held open, never read from or written to
    let (error, elapsed, sent) = report(&mut rx).await;
    println!("vanished peer: the handler's send failed after {elapsed:?} and {sent} messages: {error}");
    assert!(matches!(error, Error::Timeout(Timeout::Keepalive)), "{error:?}");
    // ping_interval + ping_timeout (+ close_timeout, were the close frame stuck) + slack.
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert!(elapsed < 3 * MS_100 + Duration::from_millis(300), "{elapsed:?}");
    server.shutdown(WAIT).await;
}

// ---- 5. ping() with nobody in recv ----

/// `ping()` resolves with the round trip although the client never calls `recv`, and
/// `latency()` follows, for application pings and for keepalive.
#[tokio::test]
async fn ping_resolves_without_recv_and_updates_latency() {
    let (server, addr) = server_with(ServerBuilder::new(), echo).await;
    let uri = format!("ws://{addr}/");
    let mut ws = ClientBuilder::new().ping_interval(None).connect(&uri).await.unwrap();
    assert_eq!(ws.latency(), Duration::ZERO);
    for i in 0..5 {
        let payload = (i % 2 == 0).then(|| Bytes::from(format!("app ping {i}")));
        let pong = ws.ping(payload).await.unwrap();
        let rtt = tokio::time::timeout(WAIT, pong).await.expect("the pong never resolved").unwrap();
        assert!(rtt > Duration::ZERO && rtt < Duration::from_secs(1), "{rtt:?}");
        assert_eq!(ws.latency(), rtt);
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();

    // Keepalive pings measure the latency too, with nobody reading.
    let ws = ClientBuilder::new()
        .ping_interval(Some(Duration::from_millis(50)))
        .ping_timeout(Some(MS_100))
        .connect(&uri)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ws.state(), State::Open);
    let latency = ws.latency();
    assert!(latency > Duration::ZERO && latency < MS_100, "{latency:?}");
    server.shutdown(WAIT).await;
}

// ---- 6. the handler's outcome picks the close code ----

/// Waits for one message, then fails with an error whose text must not reach the peer.
async fn fails(mut ws: WebSocket) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ws.recv().await?;
    Err("boom: the database password is hunter2".into())
}

/// Waits for one message, then panics.
async fn panics(mut ws: WebSocket) {
    let _ = ws.recv().await;
    panic!("handler panic (expected by the test handler_outcomes_pick_the_close_code)");
}

/// Waits for one message, then returns.
async fn returns(mut ws: WebSocket) {
    let _ = ws.recv().await;
}

async fn close_after_go(addr: SocketAddr) -> (u16, String) {
    let mut stream = raw_client(addr).await;
    stream.write_all(&client_frame(0x81, b"go")).await.unwrap();
    let (code, reason, before) = read_close(&mut stream).await;
    assert!(before.is_empty(), "{before:?}");
    stream.write_all(&close_frame(code)).await.unwrap();
    expect_eof(&mut stream).await;
    (code, reason)
}

/// `Err` closes with 1011 and an empty reason (nothing of the error leaks), a panic with 1011,
/// a handler that returns `()` with 1000.
#[tokio::test]
async fn handler_outcomes_pick_the_close_code() {
    let (error_server, error_addr) = server_with(ServerBuilder::new(), fails).await;
    let (panic_server, panic_addr) = server_with(ServerBuilder::new(), panics).await;
    let (unit_server, unit_addr) = server_with(ServerBuilder::new(), returns).await;
    for _ in 0..3 {
        assert_eq!(close_after_go(error_addr).await, (1011, String::new()), "Err(..)");
        assert_eq!(close_after_go(panic_addr).await, (1011, String::new()), "panic");
        assert_eq!(close_after_go(unit_addr).await, (1000, String::new()), "()");
    }
    for server in [error_server, panic_server, unit_server] {
        server.shutdown(WAIT).await;
    }
}

// ---- 7. max_queue: reading stops, then keepalive ends the connection ----

/// Writes `bytes` whole, counting in `written` as it goes (the test reads it while this blocks).
async fn write_counted(
    stream: &mut tokio::net::tcp::OwnedWriteHalf,
    bytes: &[u8],
    written: &AtomicUsize,
) -> std::io::Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        let n = stream.write(&bytes[at..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        at += n;
        written.fetch_add(n, Ordering::Relaxed);
    }
    Ok(())
}

/// A raw client with tiny socket buffers that sends small messages as fast as the server takes
/// them, and answers pings (and a close frame) between two messages.
struct Flooder {
    started: Instant,
    /// Bytes written so far.
    written: Arc<AtomicUsize>,
    /// The writer's end: the error that stopped it, or `None` after writing a close reply.
    writer: tokio::task::JoinHandle<Option<std::io::Error>>,
    /// The reader's report: pings seen, the close frame's code and reason, when it came, and
    /// when the server closed TCP afterwards.
    reader: tokio::task::JoinHandle<(usize, (u16, String), Instant, Instant)>,
}

/// One message of the flood, as written.
fn flood_message() -> Vec<u8> {
    client_frame(0x81, &[b'x'; 100])
}

async fn flood(addr: SocketAddr) -> Flooder {
    let stream = tiny_buffer_client(addr).await;
    let started = Instant::now();
    let (mut read, mut write) = stream.into_split();
    let written = Arc::new(AtomicUsize::new(0));
    // Control frames (pongs, the close reply) go out between two messages, from the writer.
    let (control_tx, mut control_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = {
        let written = written.clone();
        tokio::spawn(async move {
            let message = flood_message();
            loop {
                while let Ok(control) = control_rx.try_recv() {
                    if let Err(e) = write_counted(&mut write, &control, &written).await {
                        return Some(e);
                    }
                    if control[0] == 0x88 {
                        return None;
                    }
                }
                if let Err(e) = write_counted(&mut write, &message, &written).await {
                    return Some(e);
                }
            }
        })
    };
    let reader = tokio::spawn(async move {
        let mut pings = 0usize;
        let close = loop {
            match next_frame(&mut read).await {
                (0x89, payload) => {
                    pings += 1;
                    let _ = control_tx.send(client_frame(0x8A, &payload));
                }
                (0x88, payload) => break close_payload(&payload),
                (b0, payload) => panic!("frame {b0:#x} {payload:?}"),
            }
        };
        let close_at = Instant::now();
        let _ = control_tx.send(close_frame(close.0));
        let mut rest = [0u8; 256];
        let end =
            tokio::time::timeout(WAIT, read.read(&mut rest)).await.expect("the server never closed TCP");
        assert!(matches!(end, Ok(0) | Err(_)), "data after the close frame: {end:?}");
        (pings, close, close_at, Instant::now())
    });
    Flooder { started, written, writer, reader }
}

/// A server on a listener with tiny socket buffers whose handler never reads: it watches the
/// state until the connection is closed, then reports its `send` error, when that was, and how
/// many messages were left unread in the queue.
fn never_reads(
    builder: ServerBuilder,
) -> (Server, SocketAddr, mpsc::UnboundedReceiver<(Error, Duration, usize)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let server = builder
        .serve_listener(
            move |mut ws: WebSocket| {
                let tx = tx.clone();
                async move {
                    let started = Instant::now();
                    while ws.state() != State::Closed {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    let closed_after = started.elapsed();
                    let error = ws.send("after the end").await.unwrap_err();
                    // Only now: what was queued stays readable after the end.
                    let mut queued = 0;
                    while ws.recv().await.is_ok() {
                        queued += 1;
                    }
                    let _ = tx.send((error, closed_after, queued));
                }
            },
            tiny_buffer_listener(),
        )
        .unwrap();
    let addr = server.local_addr().unwrap();
    (server, addr, rx)
}

/// A handler that never reads, `max_queue` 4, and a raw client that keeps sending small
/// messages while answering pings: the server stops reading, so the client's writes block on
/// tiny socket buffers and its pongs are not read either, and keepalive fails the connection
/// with 1011 within a bound. Without `max_queue`, the same server reads all the client sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_stops_reading_until_keepalive_closes() {
    // The control: no max_queue, the server reads everything (and queues it).
    let (server, addr, _rx) = never_reads(keepalive_builder().compression(None).max_queue(None));
    let control = flood(addr).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let unbounded = control.written.load(Ordering::Relaxed);
    control.writer.abort();
    control.reader.abort();
    server.shutdown(WAIT).await;

    let (server, addr, mut rx) = never_reads(keepalive_builder().compression(None).max_queue(Some(4)));
    let flooder = flood(addr).await;
    let started = flooder.started;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let at_150ms = flooder.written.load(Ordering::Relaxed);
    let (pings, (code, reason), close_at, eof_at) = tokio::time::timeout(WAIT, flooder.reader)
        .await
        .expect("no close: the server kept reading, or keepalive did not fire")
        .unwrap();
    let write_end = tokio::time::timeout(WAIT, flooder.writer).await.unwrap().unwrap();
    let written = flooder.written.load(Ordering::Relaxed);
    let (error, closed_after, queued) = report(&mut rx).await;
    println!(
        "max_queue: without it the client wrote {unbounded} bytes in 150 ms; with 4, {at_150ms} bytes in \
         150 ms and {written} in all, {queued} messages queued; {pings} ping(s); close {code} at {:?}, \
         EOF at {:?}; the writer ended with {write_end:?}",
        close_at - started,
        eof_at - started,
    );
    // Tiny socket buffers on both sides and one read of the server (64 KiB at most).
    assert!(written < 256 * 1024, "the server read {written} bytes although it stopped at 4 messages");
    assert!(written * 4 < unbounded, "the client wrote {written} bytes, {unbounded} to a server that reads");
    assert!(write_end.is_some(), "the client's blocked write went through: the server read again");
    let messages_written = written / flood_message().len();
    assert!(queued >= 4 && queued <= messages_written, "{queued} messages queued of {messages_written} sent");
    assert!(pings >= 1, "no keepalive ping");
    assert_eq!((code, reason.as_str()), (1011, "keepalive ping timeout"));
    let closed = close_at - started;
    assert!(closed >= Duration::from_millis(150), "{closed:?}");
    assert!(closed < 3 * MS_100 + Duration::from_millis(500), "closed only after {closed:?}");
    assert!(eof_at - close_at < Duration::from_millis(500), "TCP closed only {:?} later", eof_at - close_at);
    assert!(matches!(error, Error::Timeout(Timeout::Keepalive)), "{error:?}");
    assert!(closed_after < Duration::from_secs(1), "{closed_after:?}");
    server.shutdown(WAIT).await;
}

// ---- 8. a write half alone ----

/// A handler that splits its connection, never polls the read half (it only holds it), and
/// sends on the write half every 20 ms until that fails.
fn write_half_only(
    report: mpsc::UnboundedSender<PushReport>,
) -> impl Fn(WebSocket) -> BoxedHandler + Send + Sync + 'static {
    move |ws: WebSocket| {
        let report = report.clone();
        Box::pin(async move {
            let (read, mut write) = ws.split();
            let started = Instant::now();
            let mut sent = 0usize;
            let error = loop {
                tokio::time::sleep(TICK).await;
                if let Err(e) = write.send(format!("tick {sent}")).await {
                    break e;
                }
                sent += 1;
            };
            drop(read);
            let _ = report.send((error, started.elapsed(), sent));
        })
    }
}

/// With only the write half in use, pings are answered (keepalive keeps a client that answers)
/// and a client's close is answered; the write half's next `send` reports the normal closure.
#[tokio::test]
async fn write_half_alone_gets_keepalive_and_close_handling() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, addr) = server_with(keepalive_builder(), write_half_only(tx)).await;

    // A client that answers pings for half a second, then closes.
    let mut stream = raw_client(addr).await;
    let until = Instant::now() + Duration::from_millis(500);
    let mut pings = 0usize;
    while Instant::now() < until {
        match next_frame(&mut stream).await {
            (0x81, _) => {}
            (0x89, payload) => {
                pings += 1;
                stream.write_all(&client_frame(0x8A, &payload)).await.unwrap();
            }
            (b0, payload) => panic!("frame {b0:#x} {payload:?}"),
        }
    }
    assert!(pings >= 2, "{pings} pings in 500 ms");
    let started = Instant::now();
    stream.write_all(&close_frame(1000)).await.unwrap();
    let (code, _, _) = read_close(&mut stream).await;
    assert_eq!(code, 1000);
    assert!(started.elapsed() < Duration::from_millis(50), "the close reply took {:?}", started.elapsed());
    expect_eof(&mut stream).await;
    let (error, elapsed, _) = report(&mut rx).await;
    assert!(matches!(&error, Error::Closed(c) if c.code == CloseCode::NORMAL && c.ok), "{error:?}");
    assert!(elapsed >= Duration::from_millis(500), "the connection ended early: {elapsed:?}");

    // A client that answers nothing: keepalive fails it, seen by the write half.
    let mut silent = raw_client(addr).await;
    let (error, elapsed, _) = report(&mut rx).await;
    assert!(matches!(error, Error::Timeout(Timeout::Keepalive)), "{error:?}");
    assert!(elapsed < 3 * MS_100 + Duration::from_millis(300), "{elapsed:?}");
    let (code, reason, _) = read_close(&mut silent).await;
    assert_eq!((code, reason.as_str()), (1011, "keepalive ping timeout"));
    expect_eof(&mut silent).await;
    server.shutdown(WAIT).await;
}

/// A transport whose shutdown never finishes, as a TLS stream's does when `close_notify` (and
/// what it still buffers) cannot be written because the peer stopped reading.
struct ShutdownNeverEnds(tokio::io::DuplexStream);

impl AsyncRead for ShutdownNeverEnds {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ShutdownNeverEnds {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Pending
    }
}

/// Regression: the driver waited for the transport's shutdown without a bound, so a TLS
/// connection whose peer vanished with full buffers never ended (found by `cargo xtask
/// faults`, `matrix_tls`). The shutdown now gets `close_timeout`, none if the closing handshake
/// timed out already; after a normal closing handshake and after the peer's end of file alike.
#[tokio::test]
async fn a_transport_shutdown_that_never_finishes_is_given_up_after_close_timeout() {
    let acceptor = ServerBuilder::new().close_timeout(Some(MS_100)).build().unwrap();

    // After a normal closing handshake.
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let (server, client) = tokio::join!(
        acceptor.accept(ShutdownNeverEnds(server_io)),
        ClientBuilder::new().close_timeout(Some(MS_100)).connect_with("ws://in-memory/", client_io)
    );
    let (mut server, mut client) = (server.unwrap(), client.unwrap());
    let t = Instant::now();
    let (_, ended) =
        tokio::join!(client.close(CloseCode::NORMAL, ""), tokio::time::timeout(WAIT, server.recv()));
    let error = ended.expect("the server's connection never ended").unwrap_err();
    assert!(error.is_normal_closure(), "{error:?}");
    let elapsed = t.elapsed();
    assert!(elapsed >= MS_100 && elapsed < 4 * MS_100, "ended after {elapsed:?}");

    // After the peer's end of file, without a close frame: no closing handshake, no closing timer.
    let (server_io, mut client_io) = tokio::io::duplex(64 * 1024);
    let request = "GET / HTTP/1.1\r\nHost: in-memory\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let (server, ()) = tokio::join!(acceptor.accept(ShutdownNeverEnds(server_io)), async {
        client_io.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(client_io.read_u8().await.unwrap());
        }
    });
    let mut server = server.unwrap();
    let t = Instant::now();
    drop(client_io);
    let ended = tokio::time::timeout(WAIT, server.recv()).await;
    let error = ended.expect("the server's connection never ended").unwrap_err();
    assert!(matches!(&error, Error::Closed(c) if c.code == CloseCode::ABNORMAL), "{error:?}");
    let elapsed = t.elapsed();
    assert!(elapsed >= MS_100 && elapsed < 4 * MS_100, "ended after {elapsed:?}");
}

/// Found by the `tokio_driver` fuzz target: a peer that stops reading and then half-closes
/// (FIN) left the driver waiting forever to write what it had queued, holding the connection.
/// Now what is unwritten at EOF gets `close_timeout`, then the transport is closed.
#[tokio::test]
async fn a_peer_that_stops_reading_and_half_closes_is_let_go_after_close_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (ours, _) = listener.accept().await.unwrap();
    let mut config = ws_tokio::Config::default();
    config.ping_interval = None;
    config.close_timeout = Some(Duration::from_millis(200));
    // Room for more than the socket buffers hold, so the driver keeps reading and sees the FIN.
    config.write_limit = (64 << 20).into();
    let (mut ws, driver) =
        WebSocket::from_upgraded(ours, ws_tokio::Role::Server, Vec::new(), ws_tokio::BytesMut::new(), config);
    let driver = tokio::spawn(driver);
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..32 {
        ws.send(chunk.clone()).await.unwrap();
    }
    let (_unread, mut write) = peer.into_split();
    write.shutdown().await.unwrap();
    let fin = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("the driver let the connection go")
        .unwrap();
    assert!(fin.elapsed() >= Duration::from_millis(150), "not before close_timeout: {:?}", fin.elapsed());
    assert_eq!(ws.close_code(), Some(CloseCode::ABNORMAL));
}
