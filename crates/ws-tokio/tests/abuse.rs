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

mod common;

use common::{client_frame, close_frame, handshake, raw_client, read_frame, tiny_buffer_client};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use ws_tokio::{Bytes, CloseCode, Error, Message, Server, ServerBuilder, Timeout, WebSocket};

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
    H: Fn(WebSocket) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (builder.serve_listener(handler, listener).unwrap(), addr)
}

/// Echoes every message until the connection ends; reports how it ended.
fn echo_reporting(
    report: mpsc::UnboundedSender<(Error, Option<CloseCode>)>,
) -> impl Fn(WebSocket) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static {
    move |mut ws: WebSocket| {
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
    let (server, addr) = server_with(builder, move |mut ws: WebSocket| {
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
            let chunk = Bytes::from(vec![0u8; CHUNK]);
            let mut sent = 0usize;
            let error = loop {
                if let Err(e) = ws.send(chunk.clone()).await {
                    break e;
                }
                sent += 1;
            };
            let _ = tx.send((sent, error));
        }
    })
    .await;

    let before = rss();
    let opened = Instant::now();
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
        let (sent, error) = tokio::time::timeout(deadline, rx.recv())
            .await
            .expect("a slow reader was not dropped: keepalive did not fire while output was blocked")
            .unwrap();
        assert!(matches!(error, Error::Timeout(_)), "{error:?}");
        assert!(sent < 200, "{sent} messages of 64 KiB went out to a client that never reads");
        // Not early: keepalive counts from each opening handshake, all after `opened` (the
        // handler's own clock starts later still, by however long a loaded machine takes).
        assert!(opened.elapsed() >= interval + timeout, "{:?}", opened.elapsed());
    }
    println!("slow readers: all {SLOW} dropped by keepalive within {deadline:?}");
    drop(slow);
    server.shutdown(Duration::from_secs(2)).await;
}

// ---- many connections ----

/// The soft and hard `Max open files` limits from `/proc/self/limits`.
fn fd_limits() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    let parse =
        |s: Option<&str>| s.and_then(|s| if s == "unlimited" { Some(u64::MAX) } else { s.parse().ok() });
    Some((parse(fields.next())?, parse(fields.next())?))
}

/// Raises this process's soft fd limit to at least `want` (up to the hard limit) with the
/// `prlimit` utility, since the standard library cannot call `setrlimit`. Returns the limit
/// in force afterwards.
fn raise_fd_limit(want: u64) -> u64 {
    let Some((soft, hard)) = fd_limits() else { return want };
    if soft >= want {
        return soft;
    }
    let new = want.min(hard);
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={new}:{hard}")])
        .status();
    fd_limits().map_or(soft, |(soft, _)| soft)
}

/// Thousands of connections opened and held, each proven live by an echo, then all closed
/// cleanly (1000 both ways). Reports the RSS per connection: the server's state plus the
/// client's socket, both in this process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_held_and_closed_cleanly() {
    let _serial = serial().await;
    let asked: usize =
        std::env::var("WS_ABUSE_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    // Two descriptors per connection (both ends are in this process), plus some slack.
    let limit = raise_fd_limit(asked as u64 * 2 + 256);
    let n = asked.min((limit.saturating_sub(256) / 2) as usize);
    if n < asked {
        println!("many connections: fd limit {limit} allows {n} connections, not {asked}; scaled down");
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Keepalive off: only the connections themselves are measured.
    let builder = ServerBuilder::new().ping_interval(None);
    let (server, addr) = server_with(builder, echo_reporting(tx)).await;

    let before = rss();
    let started = Instant::now();
    let mut clients = Vec::with_capacity(n);
    // In batches, so the listen backlog is never overrun.
    for batch in 0..n.div_ceil(100) {
        let size = 100.min(n - batch * 100);
        let mut tasks = Vec::with_capacity(size);
        for _ in 0..size {
            tasks.push(tokio::spawn(async move {
                let mut stream = raw_client(addr).await;
                stream.write_all(&client_frame(0x82, b"live")).await.unwrap();
                let (b0, payload) = read_frame(&mut stream).await.unwrap();
                assert_eq!((b0, &payload[..]), (0x82, &b"live"[..]));
                stream
            }));
        }
        for task in tasks {
            clients.push(task.await.unwrap());
        }
    }
    let opened = started.elapsed();
    assert_eq!(server.connections(), n, "every connection is held by the server");
    let held = rss();
    if let (Some(before), Some(held)) = (before, held) {
        let per = held.saturating_sub(before) / n.max(1);
        println!(
            "many connections: {n} opened (handshake + echo each) in {opened:?}; RSS {:.1} MiB -> {:.1} MiB: \
             {:.1} KiB per connection (server state + client socket)",
            mib(before),
            mib(held),
            per as f64 / 1024.0
        );
        assert!(per < 64 * 1024, "{per} bytes per idle connection");
    }

    // Close every one cleanly: close 1000, the server answers 1000 and closes the TCP connection.
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for mut stream in clients {
        tasks.push(tokio::spawn(async move {
            stream.write_all(&close_frame(1000)).await.unwrap();
            assert_eq!(read_close_code(&mut stream).await, 1000);
            let mut rest = [0u8; 16];
            assert_eq!(stream.read(&mut rest).await.unwrap(), 0, "the server closes the TCP connection");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for _ in 0..n {
        let (error, code) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        assert!(error.is_normal_closure(), "{error:?}");
        assert_eq!(code, Some(CloseCode::NORMAL));
    }
    println!("many connections: all {n} closed cleanly (1000) in {:?}", started.elapsed());
    tokio::time::timeout(Duration::from_secs(5), async {
        while server.connections() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every connection task ended");
    server.shutdown(Duration::from_secs(2)).await;
}

// ---- slowloris, vanishing peers ----

/// Many clients trickling their handshake one byte at a time are all dropped at
/// `open_timeout`, and a normal client is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_handshakes_are_dropped_after_open_timeout() {
    let _serial = serial().await;
    const LORIS: usize = 200;
    let open_timeout = Duration::from_millis(500);
    let (tx, _rx) = mpsc::unbounded_channel();
    let builder = ServerBuilder::new().open_timeout(Some(open_timeout));
    let (server, addr) = server_with(builder, echo_reporting(tx)).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..LORIS {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Padding: {}", "a".repeat(1000));
            let connected = Instant::now();
            // One byte every 20 ms, forever: the server must cut us off.
            for byte in request.bytes() {
                if stream.write_all(&[byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                let mut probe = [0u8; 1];
                if let Ok(Ok(0) | Err(_)) =
                    tokio::time::timeout(Duration::ZERO, stream.read(&mut probe)).await
                {
                    break;
                }
            }
            connected.elapsed()
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let slowest = slowest_round_trip(addr, 20).await;
    println!("slowloris: slowest echo round trip of a normal client meanwhile: {slowest:?}");
    let mut longest = Duration::ZERO;
    for task in tasks {
        let held = tokio::time::timeout(Duration::from_secs(10), task).await.expect("dropped").unwrap();
        // The server's clock starts at accept, a little before ours.
        assert!(held >= open_timeout * 3 / 4, "dropped too early: {held:?}");
        longest = longest.max(held);
    }
    println!(
        "slowloris: {LORIS} trickling handshakes all dropped, the last after {longest:?} (open_timeout {open_timeout:?})"
    );
    assert!(longest < open_timeout + Duration::from_secs(3), "{longest:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(server.connections(), 0);
    server.shutdown(Duration::from_secs(2)).await;
}

/// Peers that vanish in the middle of a message, by RST (`SO_LINGER` 0) or by FIN without a
/// close frame: the handler sees 1006 and the connection's resources are released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_vanishing_mid_message_release_resources_with_1006() {
    let _serial = serial().await;
    const EACH: usize = 50;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, addr) = server_with(ServerBuilder::new().ping_interval(None), echo_reporting(tx)).await;
    let before = rss();
    for reset in [true, false] {
        for _ in 0..EACH {
            let mut stream = raw_client(addr).await;
            // Half of a 100 KB binary frame, then gone.
            let frame = client_frame(0x82, &vec![7u8; 100_000]);
            stream.write_all(&frame[..50_000]).await.unwrap();
            if reset {
                // Deprecated because a lingering close blocks; a zero linger never does.
                #[allow(deprecated)]
                stream.set_linger(Some(Duration::ZERO)).unwrap();
                drop(stream); // RST
            } else {
                stream.shutdown().await.unwrap(); // FIN
                drop(stream);
            }
        }
        for _ in 0..EACH {
            let (error, code) =
                tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
            assert!(
                matches!(&error, Error::Closed(c) if c.code == CloseCode::ABNORMAL && !c.ok),
                "reset {reset}: {error:?}"
            );
            assert_eq!(code, Some(CloseCode::ABNORMAL));
        }
    }
    tokio::time::timeout(Duration::from_secs(5), async {
        while server.connections() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every connection task ended");
    if let (Some(before), Some(after)) = (before, rss()) {
        println!(
            "vanishing peers: {} RST + {EACH} FIN mid-message, all 1006; RSS {:.1} MiB -> {:.1} MiB afterwards",
            EACH,
            mib(before),
            mib(after)
        );
    }
    server.shutdown(Duration::from_secs(2)).await;
}

// ---- bombs, huge lengths, ping floods ----

/// Bits written least significant first, as DEFLATE packs them.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn bits(&mut self, value: u64, n: u32) {
        self.acc |= value << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code: sent most significant bit first.
    fn code(&mut self, code: u64, n: u32) {
        let reversed = (0..n).fold(0, |r, i| r | ((code >> i) & 1) << (n - 1 - i));
        self.bits(reversed, n);
    }
}

/// A permessage-deflate payload that inflates to `size` zero bytes (rounded up to 258): one
/// fixed-Huffman block of a literal 0 and back-references of length 258 at distance 1, ended
/// and padded the way a sync flush leaves it once `00 00 ff ff` is stripped. 13 bits per 258
/// output bytes: 64 MiB in about 420 KB.
fn deflate_bomb(size: usize) -> Vec<u8> {
    let mut w = BitWriter { out: Vec::new(), acc: 0, n: 0 };
    w.bits(0, 1); // BFINAL 0
    w.bits(1, 2); // BTYPE 01: fixed Huffman
    w.code(0b0011_0000, 8); // literal 0
    for _ in 0..size.div_ceil(258) {
        w.code(0b1100_0101, 8); // length code 285: 258
        w.code(0, 5); // distance code 0: 1
    }
    w.code(0, 7); // end of block
    w.bits(0, 3); // the empty stored block's header, as a sync flush writes it
    if w.n > 0 {
        w.bits(0, 8 - w.n);
    }
    w.out
}

/// A compression bomb (64 MiB of zeros in ~420 KB) from a raw client that negotiated
/// permessage-deflate is closed with 1009 under the default 1 MiB `max_size`, and the peak
/// memory while it is refused stays near the limit, not the bomb's size. A frame announcing
/// 2^63 bytes is refused with 1002 (the most significant bit must be 0) and one announcing
/// 2^62 bytes with 1009, before anything is allocated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bombs_and_huge_lengths_are_refused_without_allocating() {
    let _serial = serial().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, addr) = server_with(ServerBuilder::new().ping_interval(None), echo_reporting(tx)).await;

    // The bomb, prepared before measuring.
    let bomb = client_frame(0xC2, &deflate_bomb(64 << 20)); // FIN, RSV1, binary
    let mut stream = TcpStream::connect(addr).await.unwrap();
    handshake(&mut stream, addr, "Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
    // The decoder works: a small compressed message of 1000 zeros comes back as 1000 zeros.
    stream.write_all(&client_frame(0xC2, &deflate_bomb(1000))).await.unwrap();
    let (b0, payload) = read_frame(&mut stream).await.unwrap();
    assert_eq!(b0 & 0x0F, 0x2);
    assert!(b0 & 0x40 != 0, "the echo is compressed");
    assert!(payload.len() < 100, "{} bytes", payload.len());
    let (before, reset) = (rss(), reset_peak());
    stream.write_all(&bomb).await.unwrap();
    assert_eq!(read_close_code(&mut stream).await, 1009);
    let (error, _) = rx.recv().await.unwrap();
    // (`close_code()` is 1006: this client never answers the close frame.)
    assert!(matches!(&error, Error::Protocol(e) if e.close_code() == CloseCode::TOO_BIG), "{error:?}");
    if let (Some(before), true, Some(peak)) = (before, reset, status_bytes("VmHWM:")) {
        let extra = peak.saturating_sub(before);
        println!(
            "bomb: {} KB on the wire inflating to 64 MiB, max_size 1 MiB: closed 1009; peak RSS {:.1} MiB above \
             the baseline (the ~420 KB frame read, plus the 1 MiB message limit)",
            bomb.len() / 1000,
            mib(extra)
        );
        assert!(extra < 16 << 20, "{extra} bytes more at the peak");
    }

    for (len, expected) in [(1u64 << 63, 1002u16), (1u64 << 62, 1009), (u64::MAX, 1002)] {
        let mut stream = raw_client(addr).await;
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&len.to_be_bytes());
        header.extend_from_slice(&[0x37, 0xfa, 0x21, 0x3d]);
        header.extend_from_slice(&[0u8; 1024]);
        let (before, _) = (rss(), reset_peak());
        stream.write_all(&header).await.unwrap();
        assert_eq!(read_close_code(&mut stream).await, expected, "length {len:#x}");
        let (error, _) = rx.recv().await.unwrap();
        assert!(matches!(error, Error::Protocol(_)), "{error:?}");
        if let (Some(before), Some(peak)) = (before, status_bytes("VmHWM:")) {
            println!(
                "huge length {len:#x}: closed {expected}; peak RSS +{} KiB",
                peak.saturating_sub(before) / 1024
            );
            assert!(peak.saturating_sub(before) < 8 << 20);
        }
    }
    server.shutdown(Duration::from_secs(2)).await;
}

/// 100,000 pings from a client that does not read: the server answers while its output drains,
/// then stops reading once unwritten pongs pass the write limit (TCP backpressure), so neither
/// pongs nor pings pile up in its memory, and other clients are served meanwhile. Small socket
/// buffers on both sides make the backpressure show after kilobytes rather than megabytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_does_not_queue_pongs_without_bound() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let _serial = serial().await;
    const PINGS: usize = 100_000;
    const BATCH: usize = 500;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap(); // inherited by accepted sockets
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1024).unwrap();
    let addr = listener.local_addr().unwrap();
    let server =
        ServerBuilder::new().ping_interval(None).serve_listener(echo_reporting(tx), listener).unwrap();
    let stream = tiny_buffer_client(addr).await;
    let (mut read, mut write) = stream.into_split();
    let before = rss();
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let written = written.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH * 10);
            for start in (0..PINGS).step_by(BATCH) {
                batch.clear();
                for i in start..start + BATCH {
                    batch.extend_from_slice(&client_frame(0x89, &(i as u32).to_be_bytes()));
                }
                write.write_all(&batch).await.unwrap();
                written.fetch_add(BATCH, Ordering::Relaxed);
            }
            write.write_all(&close_frame(1000)).await.unwrap();
            write
        })
    };
    // Two seconds of flood while nothing is read.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stalled_at = written.load(Ordering::Relaxed);
    let during = rss();
    let slowest = slowest_round_trip(addr, 20).await;
    println!("ping flood: slowest echo round trip of a normal client meanwhile: {slowest:?}");
    assert!(slowest < Duration::from_secs(1), "{slowest:?}");
    assert!(stalled_at < PINGS, "the server kept reading pings it could not answer");
    // Now read: the server resumes, answers the rest, and the close goes through.
    let started = Instant::now();
    let mut pongs = 0usize;
    let mut next = 0u32;
    let code = loop {
        let mut head = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(20), read.read_exact(&mut head)).await.unwrap().unwrap();
        let mut payload = vec![0u8; usize::from(head[1] & 0x7F)];
        read.read_exact(&mut payload).await.unwrap();
        match head[0] {
            0x8A => {
                let n = u32::from_be_bytes(payload[..4].try_into().unwrap());
                assert!(n >= next, "pongs in order");
                next = n + 1;
                pongs += 1;
            }
            0x88 => break u16::from_be_bytes([payload[0], payload[1]]),
            other => panic!("unexpected frame {other:#x}"),
        }
    };
    let _write = writer.await.unwrap();
    assert_eq!(code, 1000);
    println!(
        "ping flood: the client could write only {stalled_at} of {PINGS} pings in 2 s without reading \
         (TCP backpressure); once it read, {pongs} pongs came back in {:?}; RSS {:.1} MiB -> {:.1} MiB \
         during the flood",
        started.elapsed(),
        mib(before.unwrap_or(0)),
        mib(during.unwrap_or(0))
    );
    assert!(pongs <= PINGS && pongs > 0);
    if let (Some(before), Some(during)) = (before, during) {
        // Pongs for 100k pings would be 600 KB; the pings themselves 1 MB.
        assert!(during.saturating_sub(before) < 4 << 20);
    }
    let (error, _) = rx.recv().await.unwrap();
    assert!(error.is_normal_closure(), "{error:?}");
    server.shutdown(Duration::from_secs(2)).await;
}

/// The same with a split connection: the read half waits in `recv` while the write half is
/// blocked in `send`; keepalive still drops the peer and both halves see the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_of_a_split_connection_is_dropped_by_keepalive() {
    let _serial = serial().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tx = Arc::new(Mutex::new(tx));
    let builder = ServerBuilder::new()
        .compression(None)
        .ping_interval(Some(Duration::from_millis(200)))
        .ping_timeout(Some(Duration::from_millis(200)))
        .close_timeout(Some(Duration::from_millis(200)));
    let (server, addr) = server_with(builder, move |ws: WebSocket| {
        let tx = tx.lock().unwrap().clone();
        async move {
            let (mut read, mut write) = ws.split();
            let reader = tokio::spawn(async move {
                loop {
                    if let Err(e) = read.recv().await {
                        break e;
                    }
                }
            });
            let chunk = Bytes::from(vec![0u8; 64 * 1024]);
            let error = loop {
                if let Err(e) = write.send(chunk.clone()).await {
                    break e;
                }
            };
            let read_error =
                tokio::time::timeout(Duration::from_secs(5), reader).await.ok().map(Result::unwrap);
            let _ = tx.send((error, read_error));
        }
    })
    .await;
    let _stream = tiny_buffer_client(addr).await; // never reads
    let (write_error, read_error) =
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("dropped").unwrap();
    let read_error = read_error.expect("the read half saw the end too");
    // Whichever half polled first reports the keepalive timeout; the other sees the closure.
    assert!(
        [&write_error, &read_error].iter().any(|e| matches!(e, Error::Timeout(Timeout::Keepalive))),
        "{write_error:?} / {read_error:?}"
    );
    for error in [&write_error, &read_error] {
        assert!(matches!(error, Error::Timeout(_) | Error::Closed(_)), "{error:?}");
    }
    server.shutdown(Duration::from_secs(2)).await;
}

// ---- the receive queue ----

/// Clients that send full-size messages to handlers that never read: each connection holds at
/// most `max_queue` messages of `max_size` (plus one read and the frame in progress), then
/// stops reading, and the clients' writes stall (TCP backpressure). docs/security.md quotes
/// the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_messages_are_bounded_by_max_queue_times_max_size() {
    let _serial = serial().await;
    const CLIENTS: usize = 16;
    const QUEUE: usize = 4;
    const SIZE: usize = 256 << 10;
    const MESSAGES: usize = 40; // 10 MiB per client if nothing pushed back
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap(); // inherited by accepted sockets
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1024).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ServerBuilder::new()
        .compression(None)
        .ping_interval(None)
        .max_queue(Some(QUEUE))
        .max_size(Some(SIZE))
        .serve_listener(
            |_ws: WebSocket| async move {
                // Holds the connection and never reads.
                tokio::time::sleep(Duration::from_secs(30)).await;
            },
            listener,
        )
        .unwrap();
    let before = rss();
    // One copy shared by the clients: the RSS growth is the server's.
    let frame = Bytes::from(client_frame(0x82, &vec![7u8; SIZE]));
    let mut writers = Vec::new();
    for _ in 0..CLIENTS {
        let mut stream = tiny_buffer_client(addr).await;
        let frame = frame.clone();
        writers.push(tokio::spawn(async move {
            let mut sent = 0;
            for _ in 0..MESSAGES {
                match tokio::time::timeout(Duration::from_millis(1500), stream.write_all(&frame)).await {
                    Ok(Ok(())) => sent += 1,
                    _ => break,
                }
            }
            (sent, stream)
        }));
    }
    let mut streams = Vec::new();
    let mut most = 0;
    for writer in writers {
        let (sent, stream) = writer.await.unwrap();
        most = most.max(sent);
        assert!(sent < MESSAGES, "the server read all {sent} unread messages: no backpressure");
        assert!(sent <= QUEUE + 2, "{sent} messages of {SIZE} B taken with max_queue {QUEUE}");
        streams.push(stream);
    }
    println!("unread messages: at most {most} of {MESSAGES} messages written before the writes stalled");
    let during = rss();
    if let (Some(before), Some(during)) = (before, during) {
        let per = during.saturating_sub(before) / CLIENTS;
        // Each queued message keeps the read buffer it was read into: its own bytes and at most
        // one read (64 KiB) of the next frame's start. A quarter more for the allocator.
        let bound = (QUEUE + 1) * (SIZE + (64 << 10)) * 5 / 4;
        println!(
            "unread messages: RSS {:.1} MiB -> {:.1} MiB with {CLIENTS} clients: {:.0} KiB each \
             (bound: (max_queue {QUEUE} + the frame in progress) x (max_size {} KiB + one read) \
             + 25% = {} KiB)",
            mib(before),
            mib(during),
            per as f64 / 1024.0,
            SIZE / 1024,
            bound / 1024
        );
        assert!(per <= bound, "{per} bytes per connection");
    }
    drop(streams);
    server.shutdown(Duration::from_secs(2)).await;
}
