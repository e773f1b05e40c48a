//! Bad input at the door (issue 23): upgrade requests that could smuggle a second request
//! past a proxy, `max_connections`, and `max_handshakes_per_ip` against half-finished
//! handshakes (slowloris) from one address while another is served.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{client_frame, read_head};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use ws_tokio::{ClientBuilder, ClientError, Error, Server, ServerBuilder, WebSocket};

const TAIL: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// An echo server counting the handlers it started.
async fn counting_server(builder: ServerBuilder) -> (Server, SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let count = started.clone();
    let server = builder
        .serve_listener(
            move |mut ws: WebSocket| {
                count.fetch_add(1, Ordering::SeqCst);
                async move {
                    while let Ok(message) = ws.recv().await {
                        if ws.send(message).await.is_err() {
                            break;
                        }
                    }
                }
            },
            listener,
        )
        .unwrap();
    (server, addr, started)
}

/// Reads everything until the server closes (within 5 s).
async fn read_to_end(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut all)).await.unwrap().unwrap();
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn upgrade_requests_with_a_body_are_refused_and_the_body_is_not_read_as_frames() {
    let (server, addr, started) = counting_server(ServerBuilder::new()).await;
    // What the body carries: a masked text frame that the server would echo if it read it.
    let frame = client_frame(0x81, b"smuggled");
    let mut chunked = format!("{:x}\r\n", frame.len()).into_bytes();
    chunked.extend_from_slice(&frame);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let cases: Vec<(String, Vec<u8>, &str)> = vec![
        (
            format!("GET / HTTP/1.1\r\nHost: {addr}\r\n{TAIL}Content-Length: {}\r\n\r\n", frame.len()),
            frame.clone(),
            "no body",
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: {addr}\r\n{TAIL}Transfer-Encoding: chunked\r\n\r\n"),
            chunked,
            "no body",
        ),
        (
            format!("GET / HTTP/1.1\nHost: {addr}\n{}\n", TAIL.replace("\r\n", "\n")),
            frame.clone(),
            "without CR",
        ),
        (format!("GET * HTTP/1.1\r\nHost: {addr}\r\n{TAIL}\r\n"), frame.clone(), "request target"),
    ];
    for (head, body, needle) in cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut request = head.into_bytes();
        request.extend_from_slice(&body);
        stream.write_all(&request).await.unwrap();
        let response = read_to_end(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{response}");
        assert!(response.contains(needle), "{response:?} lacks {needle:?}");
        assert!(!response.contains("smuggled"), "{response}");
    }
    assert_eq!(started.load(Ordering::SeqCst), 0, "no handler ran");
    // `Content-Length: 0` is still fine (some clients send it).
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n{TAIL}Content-Length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 101"));
    server.shutdown(Duration::from_secs(2)).await;
}

fn status_of(error: &Error) -> Option<u16> {
    match error {
        Error::Handshake(ClientError::Rejected(response)) => Some(response.status().as_u16()),
        _ => None,
    }
}

/// Waits until `server` serves `n` connections (handshakes included).
async fn wait_for(server: &Server, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.connections() != n {
        assert!(Instant::now() < deadline, "{} connections, expected {n}", server.connections());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn max_connections_answers_503_beyond_the_limit() {
    const MAX: usize = 3;
    let (server, addr, _) = counting_server(ServerBuilder::new().max_connections(Some(MAX))).await;
    let uri = format!("ws://{addr}/");
    let mut open = Vec::new();
    for _ in 0..MAX {
        open.push(ClientBuilder::new().connect(&uri).await.unwrap());
        assert!(server.connections() <= MAX);
    }
    wait_for(&server, MAX).await;
    for _ in 0..5 {
        let error = ClientBuilder::new().connect(&uri).await.unwrap_err();
        assert_eq!(status_of(&error), Some(503), "{error}");
        assert!(ws_tokio::is_transient(&error), "a reconnecting client retries it");
        assert!(server.connections() <= MAX);
    }
    // A raw client sees the whole response, even when it sends its request after the 503 was
    // written: the server reads it before closing, so no reset destroys the answer.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n{TAIL}\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let response = read_to_end(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{response}");
    assert!(response.contains("Too many connections"), "{response}");
    // The ones admitted still work; once one leaves, a new client gets in.
    let mut first = open.remove(0);
    first.send("still here").await.unwrap();
    assert_eq!(first.recv().await.unwrap().as_bytes(), "still here".as_bytes());
    first.close(ws_tokio::CloseCode::NORMAL, "").await.unwrap();
    drop(first);
    wait_for(&server, MAX - 1).await;
    let mut again = ClientBuilder::new().connect(&uri).await.unwrap();
    again.send("in").await.unwrap();
    assert_eq!(again.recv().await.unwrap().as_bytes(), "in".as_bytes());
    assert!(server.connections() <= MAX);
    server.shutdown(Duration::from_secs(2)).await;
}

/// A TCP connection to `addr` from the loopback address `from` (any 127.0.0.0/8 address
/// works on Linux without configuration).
async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test]
async fn max_handshakes_per_ip_refuses_a_slowloris_address_and_serves_others() {
    const MAX: usize = 4;
    let builder =
        ServerBuilder::new().max_handshakes_per_ip(Some(MAX)).open_timeout(Some(Duration::from_secs(10)));
    let (server, addr, _) = counting_server(builder).await;
    // Half-finished handshakes from 127.0.0.1: the request line and a header, never the end.
    let mut loris = Vec::new();
    for _ in 0..MAX {
        let mut stream = connect_from([127, 0, 0, 1], addr).await;
        stream.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n").as_bytes()).await.unwrap();
        loris.push(stream);
    }
    wait_for(&server, MAX).await;
    // More from the same address are refused at once, long before `open_timeout`.
    for _ in 0..10 {
        let started = Instant::now();
        let mut stream = connect_from([127, 0, 0, 1], addr).await;
        let response = read_to_end(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{response}");
        assert!(response.contains("from this address"), "{response}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    assert_eq!(server.connections(), MAX);
    // Another address is served meanwhile, and a finished handshake frees nothing of its
    // address's count but its own slot: 127.0.0.2 can open several in turn.
    for _ in 0..MAX + 2 {
        let stream = connect_from([127, 0, 0, 2], addr).await;
        let mut ws = ClientBuilder::new().connect_with(&format!("ws://{addr}/"), stream).await.unwrap();
        ws.send("hello").await.unwrap();
        assert_eq!(ws.recv().await.unwrap().as_bytes(), "hello".as_bytes());
        ws.close(ws_tokio::CloseCode::NORMAL, "").await.unwrap();
    }
    // Once the half-finished handshakes go, 127.0.0.1 gets in again.
    drop(loris);
    wait_for(&server, 0).await;
    let stream = connect_from([127, 0, 0, 1], addr).await;
    let mut ws = ClientBuilder::new().connect_with(&format!("ws://{addr}/"), stream).await.unwrap();
    ws.send("back").await.unwrap();
    assert_eq!(ws.recv().await.unwrap().as_bytes(), "back".as_bytes());
    server.shutdown(Duration::from_secs(2)).await;
}

/// A client that sends the first fragment of a compressed message and then goes quiet past
/// `idle_release`: the server parks the message (frees its decompressor) and, when the rest
/// comes, rebuilds it; the message and the next one (context takeover) arrive intact.
#[tokio::test]
async fn a_compressed_message_finished_after_an_idle_pause_arrives_intact() {
    use ws_deflate::{PerMessageDeflate, PerMessageDeflateConfig};
    use ws_extensions::{Bytes, Extension, Frame, OpCode, Rsv};

    let builder = ServerBuilder::new().idle_release(Some(Duration::from_millis(50)));
    let (server, addr, _) = counting_server(builder).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\n{TAIL}Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.contains("permessage-deflate"), "{head}");
    // Both windows 15 bits, context takeover both ways: what a bare offer negotiates.
    let config = PerMessageDeflateConfig { compression_threshold: Some(0), ..Default::default() };
    let (mut ours, mut theirs) =
        (PerMessageDeflate::new(config).unwrap(), PerMessageDeflate::new(config).unwrap());
    for round in 0..3 {
        let message = format!("{{\"round\":{round},\"data\":\"{}\"}}", "abc".repeat(3000));
        let (head, tail) = message.as_bytes().split_at(7);
        let mut first = Frame::new(OpCode::Text, Bytes::copy_from_slice(head), false);
        ours.encode(&mut first).unwrap();
        assert_eq!(first.rsv, Rsv::RSV1);
        stream.write_all(&client_frame(0x41, &first.payload)).await.unwrap();
        // Quiet for several idle periods: the server parks the unfinished message.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut last = Frame::new(OpCode::Continuation, Bytes::copy_from_slice(tail), true);
        ours.encode(&mut last).unwrap();
        stream.write_all(&client_frame(0x80, &last.payload)).await.unwrap();
        let (byte, payload) = common::read_frame(&mut stream).await.unwrap();
        assert_eq!(byte & 0x0F, 0x1, "a text frame");
        let mut echo = Frame::new(OpCode::Text, Bytes::from(payload), byte & 0x80 != 0);
        echo.rsv = if byte & 0x40 != 0 { Rsv::RSV1 } else { Rsv::NONE };
        theirs.decode(&mut echo, None).unwrap();
        assert_eq!(&echo.payload[..], message.as_bytes(), "round {round}");
    }
    server.shutdown(Duration::from_secs(2)).await;
}
