//! The behaviour of connect()/serve() on loopback: echo, limits, timeouts, closing handshake.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should panic

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::echo_server;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ws_tokio::{Bytes, ClientBuilder, CloseCode, Error, Message, Server, ServerBuilder, Timeout, WebSocket};

fn uri(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// A raw client: the handshake by hand, then raw bytes.
async fn raw_client(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    stream
}

/// Reads one unmasked server frame: (first byte, payload).
async fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.unwrap();
    let len = match head[1] & 0x7F {
        126 => usize::from(stream.read_u16().await.unwrap()),
        127 => stream.read_u64().await.unwrap() as usize,
        n => usize::from(n),
    };
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await.unwrap();
    (head[0], payload)
}

#[tokio::test]
async fn echo_with_and_without_compression() {
    for compressed in [true, false] {
        let builder = if compressed { ServerBuilder::new() } else { ServerBuilder::new().compression(None) };
        let (server, addr) = echo_server(builder).await;
        let mut ws = ws_tokio::connect(&uri(addr)).await.unwrap();
        assert_eq!(ws.info().extensions().is_empty(), !compressed);
        for size in [0usize, 1, 125, 126, 65535, 65536, 500_000] {
            let text = "é".repeat(size / 2);
            ws.send(text.as_str()).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), Message::text(text));
            let data = Bytes::from(vec![(size % 251) as u8; size]);
            ws.send(data.clone()).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), Message::Binary(data));
        }
        ws.send_fragmented(["frag", "ment", "", "ed"]).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text("fragmented"));
        ws.close(CloseCode::NORMAL, "bye").await.unwrap();
        assert_eq!(ws.close_code(), Some(CloseCode::NORMAL));
        assert!(ws.recv().await.unwrap_err().is_normal_closure());
        server.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn stream_sink_and_split() {
    let (server, addr) = echo_server(ServerBuilder::new()).await;
    let mut ws = ws_tokio::connect(&uri(addr)).await.unwrap();
    ws.send_all(&mut futures_util::stream::iter((0..100).map(|i| Ok(Message::text(i.to_string())))))
        .await
        .unwrap();
    let got: Vec<Message> = (&mut ws).take(100).map(Result::unwrap).collect().await;
    assert_eq!(got.last(), Some(&Message::text("99")));

    let (mut reader, mut writer) = ws.split();
    let reading = tokio::spawn(async move {
        let mut n = 0;
        while let Some(message) = reader.next().await {
            message.unwrap();
            n += 1;
        }
        n
    });
    for i in 0..1000 {
        writer.send(Message::binary(vec![i as u8; 1000])).await.unwrap();
    }
    let latency = writer.ping(None).await.unwrap().await.unwrap();
    assert!(latency > Duration::ZERO && latency < Duration::from_secs(30), "{latency:?}");
    writer.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(reading.await.unwrap(), 1000);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn ping_resolves_with_latency() {
    let (server, addr) = echo_server(ServerBuilder::new()).await;
    let mut ws = ws_tokio::connect(&uri(addr)).await.unwrap();
    let pong = ws.ping(Some(Bytes::from_static(b"abc"))).await.unwrap();
    ws.send("after ping").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("after ping"));
    let latency = pong.await.unwrap();
    assert!(latency > Duration::ZERO && latency == ws.latency());
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn stalled_handshake_is_dropped_after_open_timeout() {
    let (server, addr) =
        echo_server(ServerBuilder::new().open_timeout(Some(Duration::from_millis(200)))).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap(); // ...and never the rest
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "the server closes the connection");
    assert!(started.elapsed() >= Duration::from_millis(150));
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn client_open_timeout() {
    // A TCP server that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let (_socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let result =
        ClientBuilder::new().open_timeout(Some(Duration::from_millis(200))).connect(&uri(addr)).await;
    assert!(matches!(result, Err(Error::Timeout(Timeout::Open))), "{result:?}");
}

/// What a keepalive server's handler saw on its first `recv`.
struct FirstRecv {
    result: ws_tokio::Result<Message>,
    /// From the start of the handler.
    elapsed: Duration,
    /// The connection's latest ping round trip when `recv` returned.
    latency: Duration,
}

/// A server that pings every 100 ms and waits 100 ms for the pong, and reports its handler's
/// first `recv` (of its first connection).
async fn keepalive_server() -> (Server, SocketAddr, tokio::sync::oneshot::Receiver<FirstRecv>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ServerBuilder::new()
        .ping_interval(Some(Duration::from_millis(100)))
        .ping_timeout(Some(Duration::from_millis(100)))
        .serve_listener(
            move |mut ws: WebSocket| {
                let tx = tx.lock().unwrap().take();
                async move {
                    let started = Instant::now();
                    let result = ws.recv().await;
                    if let Some(tx) = tx {
                        let _ =
                            tx.send(FirstRecv { result, elapsed: started.elapsed(), latency: ws.latency() });
                    }
                }
            },
            listener,
        )
        .unwrap();
    (server, addr, rx)
}

#[tokio::test]
async fn silent_peer_is_closed_after_ping_interval_and_timeout() {
    let (server, addr, rx) = keepalive_server().await;
    let mut silent = raw_client(addr).await; // never answers pings
    let first = tokio::time::timeout(Duration::from_secs(5), rx).await.unwrap().unwrap();
    let (error, elapsed) = (first.result.unwrap_err(), first.elapsed);
    assert!(matches!(error, Error::Timeout(Timeout::Keepalive)), "{error:?}");
    assert!(elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(2), "{elapsed:?}");
    // The peer saw the ping, then a close frame with 1011.
    let (b0, _) = read_frame(&mut silent).await;
    assert_eq!(b0, 0x89, "a ping first");
    let (b0, payload) = read_frame(&mut silent).await;
    assert_eq!(b0, 0x88);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1011);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn reader_that_never_reads_keeps_server_memory_bounded() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ServerBuilder::new()
        .compression(None)
        .serve_listener(
            move |mut ws: WebSocket| {
                let tx = tx.lock().unwrap().take();
                async move {
                    let chunk = Bytes::from(vec![0u8; 64 * 1024]);
                    let mut sent = 0usize;
                    // 256 MiB could never fit in socket buffers: send must start waiting.
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        for _ in 0..4096 {
                            ws.send(chunk.clone()).await.unwrap();
                            sent += 1;
                        }
                    })
                    .await;
                    if let Some(tx) = tx {
                        let _ = tx.send(sent);
                    }
                }
            },
            listener,
        )
        .unwrap();
    let _stalled = raw_client(addr).await; // never reads
    let sent = rx.await.unwrap();
    // Kernel buffers take some megabytes; the rest waits in our 32 KiB write buffer, not in memory.
    assert!(sent < 4096, "send never waited: {sent} messages of 64 KiB went out");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let (server, addr) = echo_server(ServerBuilder::new().max_size(Some(1000))).await;
    for compressed in [true, false] {
        let builder = if compressed { ClientBuilder::new() } else { ClientBuilder::new().compression(None) };
        let mut ws = builder.connect(&uri(addr)).await.unwrap();
        ws.send(vec![1u8; 1001]).await.unwrap();
        match ws.recv().await {
            Err(Error::Closed(closed)) => assert_eq!(closed.code, CloseCode::TOO_BIG),
            other => panic!("expected a 1009 close, got {other:?}"),
        }
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn compression_bomb_closes_with_1009() {
    let (server, addr) = echo_server(ServerBuilder::new()).await; // max_size 1 MiB
    let mut ws = ClientBuilder::new().connect(&uri(addr)).await.unwrap();
    assert_eq!(ws.info().extensions(), ["permessage-deflate"]);
    // 64 MiB of zeros compresses to ~64 KiB on the wire.
    ws.send(vec![0u8; 64 << 20]).await.unwrap();
    match ws.recv().await {
        Err(Error::Closed(closed)) => assert_eq!(closed.code, CloseCode::TOO_BIG),
        other => panic!("expected a 1009 close, got {other:?}"),
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn connection_lost_without_close_frame_is_1006() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let server = ServerBuilder::new()
        .serve_listener(
            move |mut ws: WebSocket| {
                let tx = tx.lock().unwrap().take();
                async move {
                    let error = ws.recv().await.unwrap_err();
                    if let Some(tx) = tx {
                        let _ = tx.send((error, ws.close_code()));
                    }
                }
            },
            listener,
        )
        .unwrap();
    let client = raw_client(addr).await;
    drop(client); // FIN without a close frame
    let (error, code) = rx.await.unwrap();
    assert!(matches!(&error, Error::Closed(c) if c.code == CloseCode::ABNORMAL && !c.ok), "{error:?}");
    assert_eq!(code, Some(CloseCode::ABNORMAL));
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn server_closes_tcp_first() {
    let (server, addr) = echo_server(ServerBuilder::new()).await;
    let mut ws = ws_tokio::connect(&uri(addr)).await.unwrap();
    let started = Instant::now();
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    // The client waited for the server's FIN, which comes at once: no close_timeout wait.
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(ws.close_code(), Some(CloseCode::NORMAL));
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn graceful_shutdown_closes_with_1001() {
    let (server, addr) = echo_server(ServerBuilder::new()).await;
    let mut ws = ws_tokio::connect(&uri(addr)).await.unwrap();
    ws.send("hi").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("hi"));
    let shutdown = tokio::spawn(server.shutdown(Duration::from_secs(5)));
    match ws.recv().await {
        Err(Error::Closed(closed)) => {
            assert_eq!(closed.code, CloseCode::GOING_AWAY);
            assert!(closed.ok);
        }
        other => panic!("expected 1001, got {other:?}"),
    }
    shutdown.await.unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn handler_return_closes_with_1000() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ServerBuilder::new().serve_listener(|_ws: WebSocket| async {}, listener).unwrap();
    let mut ws = ws_tokio::connect(&uri(addr)).await.unwrap();
    match ws.recv().await {
        Err(Error::Closed(closed)) => assert_eq!(closed.code, CloseCode::NORMAL),
        other => panic!("expected 1000, got {other:?}"),
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn rejected_handshake_keeps_the_response() {
    let (server, addr) = echo_server(ServerBuilder::new().origins(["https://good.example"], false)).await;
    let error = ClientBuilder::new().origin("https://evil.example").connect(&uri(addr)).await.unwrap_err();
    match error {
        Error::Handshake(ws_handshake::ClientError::Rejected(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403, got {other:?}"),
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn any_async_read_write_transport() {
    // An in-memory pipe stands in for TLS, Unix sockets or an upgraded hyper connection.
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let acceptor = ServerBuilder::new().subprotocols(["chat"]).build().unwrap();
    let server = tokio::spawn(async move {
        let mut ws = acceptor.accept(server_io).await.unwrap();
        assert_eq!(ws.subprotocol(), Some("chat"));
        while let Ok(message) = ws.recv().await {
            ws.send(message).await.unwrap();
        }
        ws.close_code()
    });
    let mut ws =
        ClientBuilder::new().subprotocols(["chat"]).connect_with("ws://in-memory/", client_io).await.unwrap();
    assert_eq!(ws.info().subprotocol(), Some("chat"));
    assert_eq!(ws.info().extensions(), ["permessage-deflate"]);
    ws.send("over a pipe").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("over a pipe"));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(server.await.unwrap(), Some(CloseCode::NORMAL));
}

#[tokio::test]
async fn memory_lean_compression_mode() {
    let (server, addr) = echo_server(
        ServerBuilder::new().compression(Some(ws_tokio::Compression::Deflate(ws_tokio::Memory::Shared))),
    )
    .await;
    // The default client meets the lean server: both no-context-takeover flags come back.
    let mut ws = ws_tokio::connect(&uri(addr)).await.unwrap();
    let header =
        ws.info().response().unwrap().headers()["sec-websocket-extensions"].to_str().unwrap().to_owned();
    assert!(
        header.contains("server_no_context_takeover") && header.contains("client_no_context_takeover"),
        "{header}"
    );
    for i in 0..20 {
        let text = format!("message {i} ").repeat(100);
        ws.send(text.as_str()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text(text));
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn connection_info_keeps_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let _server = ServerBuilder::new()
        .serve_listener(
            move |mut ws: WebSocket| {
                let seen_tx = seen_tx.clone();
                async move {
                    let info = ws.info();
                    let request = info.request().unwrap();
                    let response = info.response().unwrap();
                    let _ = seen_tx.send((
                        request.uri().to_string(),
                        request.headers()["x-custom"].to_str().unwrap().to_owned(),
                        response.status().as_u16(),
                        info.remote_addr().is_some(),
                    ));
                    let _ = ws.recv().await;
                }
            },
            listener,
        )
        .unwrap();
    let ws = ClientBuilder::new()
        .header(http::HeaderName::from_static("x-custom"), http::HeaderValue::from_static("yes"))
        .connect(&format!("ws://{addr}/chat?room=1"))
        .await
        .unwrap();
    let (uri, custom, status, has_addr) = seen.recv().await.unwrap();
    assert_eq!((uri.as_str(), custom.as_str(), status, has_addr), ("/chat?room=1", "yes", 101, true));
    let request = ws.info().request().unwrap();
    assert_eq!(request.uri().path(), "/chat");
    assert_eq!(request.headers()["sec-websocket-version"], "13");
    let response = ws.info().response().unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["upgrade"].to_str().unwrap().to_ascii_lowercase(), "websocket");
}

#[tokio::test]
async fn idle_peer_that_answers_pings_stays_open() {
    let (server, addr, rx) = keepalive_server().await;
    let mut client = ClientBuilder::new().ping_interval(None).connect(&uri(addr)).await.unwrap();
    // The client reads (and so answers pings) but sends nothing for several ping intervals.
    let idle = tokio::time::timeout(Duration::from_millis(700), client.recv()).await;
    assert!(idle.is_err(), "the server closed an idle peer that answers its pings: {idle:?}");
    client.send("still here").await.unwrap();
    let first = rx.await.unwrap();
    assert_eq!(first.result.unwrap(), Message::text("still here"));
    assert!(first.latency > Duration::ZERO, "no pong was seen");
    server.shutdown(Duration::from_secs(1)).await;
}

/// `WriteHalf::close` leaves the messages its read half has not taken yet readable.
#[tokio::test]
async fn closing_the_write_half_keeps_unread_messages_for_the_read_half() {
    let (server, addr) = echo_server(ServerBuilder::new()).await;
    let ws = ws_tokio::connect(&uri(addr)).await.unwrap();
    let (mut reader, mut writer) = ws.split();
    for i in 0..5 {
        writer.send(format!("m{i}")).await.unwrap();
    }
    // The echoes arrive while nobody reads; then the close handshake completes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    writer.close(CloseCode::NORMAL, "").await.unwrap();
    for i in 0..5 {
        assert_eq!(reader.recv().await.unwrap(), Message::text(format!("m{i}")));
    }
    let end = reader.recv().await.unwrap_err();
    assert!(end.is_normal_closure(), "{end:?}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_duplicate_ping_payload_is_its_own_error() {
    // A server whose driver is never polled: the first ping never gets its pong.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let acceptor = ServerBuilder::new().ping_interval(None).build().unwrap();
        let (_ws, _driver) = acceptor.accept_with_driver(socket).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut ws = ws_tokio::connect(&uri(silent)).await.unwrap();
    let _first = ws.ping(Some(Bytes::from_static(b"same"))).await.unwrap();
    let second = ws.ping(Some(Bytes::from_static(b"same"))).await.unwrap_err();
    assert!(matches!(second, Error::DuplicatePing), "{second:?}");
}

/// After a protocol failure, every later call gets the same error, not a made-up 1006.
#[tokio::test]
async fn the_error_that_ended_a_connection_is_the_same_for_every_caller() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let server = ServerBuilder::new()
        .serve_listener(
            move |ws: WebSocket| {
                let tx = tx.clone();
                async move {
                    let (mut reader, mut writer) = ws.split();
                    let first = reader.recv().await.unwrap_err();
                    let second = reader.recv().await.unwrap_err();
                    let from_writer = writer.send("late").await.unwrap_err();
                    let taken = tx.lock().unwrap().take();
                    let _ = taken.unwrap().send([first, second, from_writer].map(|e| e.to_string()));
                }
            },
            listener,
        )
        .unwrap();
    let mut raw = raw_client(addr).await;
    raw.write_all(&[0x83, 0x80, 0, 0, 0, 0]).await.unwrap(); // reserved opcode 3
    let (b0, payload) = read_frame(&mut raw).await;
    assert_eq!(b0, 0x88);
    assert_eq!(payload[..2], 1002u16.to_be_bytes());
    let errors = rx.await.unwrap();
    assert!(errors[0].contains("reserved opcode"), "{errors:?}");
    assert_eq!(errors[0], errors[1]);
    assert_eq!(errors[0], errors[2]);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn connect_errors_name_what_failed() {
    // A port nothing listens on.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = ws_tokio::connect(&uri(addr)).await.unwrap_err();
    assert_eq!(err.to_string(), format!("connection refused: {addr}"));
    assert!(std::error::Error::source(&err).is_some(), "the OS error is the source");
    let err = ws_tokio::connect("ws://example.invalid/").await.unwrap_err();
    assert_eq!(err.to_string(), "cannot resolve example.invalid");
    assert!(std::error::Error::source(&err).is_some());
}

/// `send_fragmented` picks text or binary from its fragments, sends nothing for none, and
/// refuses fragments that mix the two: the half-sent message cannot be finished, so the
/// connection closes with 1011.
#[tokio::test]
async fn fragmented_messages_take_their_kind_from_the_fragments() {
    let (server, addr) = echo_server(ServerBuilder::new()).await;
    let mut ws = ws_tokio::connect(&uri(addr)).await.unwrap();
    ws.send_fragmented([Bytes::from_static(b"ab"), Bytes::from_static(b"c")]).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::binary(&b"abc"[..]));
    ws.send_fragmented(Vec::<String>::new()).await.unwrap();
    ws.send("after none").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("after none"));
    let mixed = [Message::text("one"), Message::binary(&b"two"[..])];
    let err = ws.send_fragmented(mixed).await.unwrap_err();
    assert!(matches!(err, Error::MixedFragments), "{err:?}");
    assert_eq!(ws.closure().and_then(|c| c.sent.flatten()).map(|f| f.code), Some(CloseCode::INTERNAL_ERROR));
    server.shutdown(Duration::from_secs(1)).await;
}

/// The negotiated extension parameters are readable on an open connection, on both sides.
#[tokio::test]
async fn negotiated_extension_parameters_are_in_info() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ServerBuilder::new()
        .serve_listener(
            move |mut ws: WebSocket| {
                let _ = tx.send(ws.info().extension_params());
                async move {
                    let _ = ws.recv().await;
                }
            },
            listener,
        )
        .unwrap();
    let ws = ClientBuilder::new()
        .extension(std::sync::Arc::new(ws_deflate::ClientPerMessageDeflateFactory {
            server_max_window_bits: Some(10),
            ..Default::default()
        }))
        .connect(&uri(addr))
        .await
        .unwrap();
    let on_client = ws.info().extension_params();
    assert_eq!(on_client.len(), 1, "{on_client:?}");
    assert_eq!(on_client[0].name, "permessage-deflate");
    let bits = on_client[0].params.iter().find(|p| p.name == "server_max_window_bits");
    assert_eq!(bits.and_then(|p| p.value.as_deref()), Some("10"), "{on_client:?}");
    assert_eq!(rx.recv().await.unwrap(), on_client, "both sides see the same agreement");
    drop(ws);
    server.shutdown(Duration::from_secs(1)).await;
}

/// An extension factory with settings out of range is an error at connect and serve time, not
/// a connection without compression.
#[tokio::test]
async fn invalid_extension_settings_are_errors() {
    let client =
        ClientBuilder::new().extension(std::sync::Arc::new(ws_deflate::ClientPerMessageDeflateFactory {
            server_max_window_bits: Some(20),
            ..Default::default()
        }));
    let err = client.connect("ws://127.0.0.1:1/").await.unwrap_err();
    assert!(err.to_string().contains("server_max_window_bits must be between 8 and 15, got 20"), "{err}");
    let server =
        ServerBuilder::new().extension(std::sync::Arc::new(ws_deflate::ServerPerMessageDeflateFactory {
            mem_level: 0,
            ..Default::default()
        }));
    let err = server.serve(|_ws: WebSocket| async {}, "127.0.0.1:0").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("mem_level must be between 1 and 9, got 0"), "{err}");
}

/// An asynchronous `process_response` hook edits the 101 after awaiting (a cookie from a
/// lookup), or refuses the upgrade with a response of its own, completed like any other.
#[tokio::test]
async fn async_process_response_edits_or_replaces_the_101() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ServerBuilder::new()
        .process_response_async(|request, mut response| async move {
            tokio::time::sleep(Duration::from_millis(10)).await; // a lookup elsewhere
            if request.uri().path() == "/closed" {
                let mut refusal = http::Response::new(Bytes::from_static(b"closed today\n"));
                *refusal.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                return Err(refusal);
            }
            response.headers_mut().insert("set-cookie", http::HeaderValue::from_static("session=42"));
            Ok(response)
        })
        .serve_listener(
            |mut ws: WebSocket| async move {
                while let Ok(message) = ws.recv().await {
                    let _ = ws.send(message).await;
                }
            },
            listener,
        )
        .unwrap();
    let err = ws_tokio::connect(&format!("ws://{addr}/closed")).await.unwrap_err();
    let Error::Handshake(ws_handshake::ClientError::Rejected(rejected)) = &err else { panic!("{err:?}") };
    assert_eq!(rejected.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rejected.headers()["content-length"], "13");
    assert_eq!(rejected.headers()["connection"], "close");
    let mut ws = ws_tokio::connect(&format!("ws://{addr}/")).await.unwrap();
    let response = ws.info().response().expect("the 101");
    assert_eq!(response.headers()["set-cookie"], "session=42");
    ws.send("in").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("in"));
    server.shutdown(Duration::from_secs(1)).await;
}

/// An asynchronous `process_request` hook with shared state: it awaits, then refuses requests
/// without a known token (its response completed like any other) and lets the others upgrade.
#[tokio::test]
async fn async_process_request_reaches_shared_state() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tokens = std::sync::Arc::new(std::collections::HashSet::from(["good".to_owned()]));
    let asked = std::sync::Arc::new(AtomicUsize::new(0));
    let hook_asked = asked.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ServerBuilder::new()
        .process_request_async(move |request| {
            let (tokens, asked) = (tokens.clone(), hook_asked.clone());
            async move {
                asked.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await; // a lookup elsewhere
                let token = request.uri().query().and_then(|q| q.strip_prefix("token="));
                if token.is_some_and(|t| tokens.contains(t)) {
                    return None;
                }
                let mut response = http::Response::new(Bytes::from_static(b"who are you?\n"));
                *response.status_mut() = http::StatusCode::UNAUTHORIZED;
                Some(response)
            }
        })
        .serve_listener(
            |mut ws: WebSocket| async move {
                while let Ok(message) = ws.recv().await {
                    let _ = ws.send(message).await;
                }
            },
            listener,
        )
        .unwrap();
    let err = ws_tokio::connect(&format!("ws://{addr}/?token=bad")).await.unwrap_err();
    let Error::Handshake(ws_handshake::ClientError::Rejected(rejected)) = &err else { panic!("{err:?}") };
    assert_eq!(rejected.status(), http::StatusCode::UNAUTHORIZED);
    let headers = rejected.headers();
    assert_eq!(headers["content-length"], "13");
    assert_eq!(headers["connection"], "close");
    assert!(headers.contains_key("date"));
    let mut ws = ws_tokio::connect(&format!("ws://{addr}/?token=good")).await.unwrap();
    ws.send("in").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("in"));
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    server.shutdown(Duration::from_secs(1)).await;
}

/// Unix sockets go through the same accept path as TCP: the handshake, the connection count
/// and graceful shutdown (1001) all work there too.
#[cfg(unix)]
#[tokio::test]
async fn unix_sockets_serve_and_connect_like_tcp() {
    let dir = std::env::temp_dir().join(format!("ws-unix-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    let server = ServerBuilder::new()
        .serve_unix(
            |mut ws: WebSocket| async move {
                assert!(matches!(ws.info().request().map(|r| r.uri().path()), Some("/chat")));
                while let Ok(message) = ws.recv().await {
                    let _ = ws.send(message).await;
                }
            },
            &path,
        )
        .unwrap();
    let mut ws = ws_tokio::ClientBuilder::new().connect_unix(&path, "ws://localhost/chat").await.unwrap();
    assert!(ws.info().remote_addr().is_none());
    ws.send("over a unix socket").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("over a unix socket"));
    assert_eq!(server.connections(), 1);
    server.shutdown(Duration::from_secs(1)).await;
    let err = ws.recv().await.unwrap_err();
    assert!(matches!(&err, Error::Closed(c) if c.code == CloseCode::GOING_AWAY), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
