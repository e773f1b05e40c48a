//! Behind a reverse proxy: the client's address from a trusted proxy's forwarding header, and
//! from a PROXY protocol header (versions 1 and 2) written by a raw TCP client before the
//! HTTP upgrade request.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{client_frame, handshake, read_frame, read_head};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ws_tokio::{ForwardedHeader, IpNet, Server, ServerBuilder, WebSocket};

const REQUEST: &str = "GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A server whose handler first sends what it knows of the addresses, then echoes.
async fn address_server(builder: ServerBuilder) -> (Server, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = builder
        .serve_listener(
            |mut ws: WebSocket| async move {
                let info = ws.info();
                let report = format!(
                    "client={:?} remote={:?} source={:?} destination={:?}",
                    info.client_addr(),
                    info.remote_addr().map(|a| a.ip()),
                    info.proxy_source(),
                    info.proxy_destination(),
                );
                ws.send(report).await.unwrap();
                while let Ok(message) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            },
            listener,
        )
        .unwrap();
    (server, addr)
}

async fn report(stream: &mut TcpStream) -> String {
    let (first, payload) = read_frame(stream).await.unwrap();
    assert_eq!(first, 0x81);
    String::from_utf8(payload).unwrap()
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_peer() {
    let builder = ServerBuilder::new().trusted_proxies(["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
    let (server, addr) = address_server(builder).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    handshake(&mut stream, addr, "X-Forwarded-For: 198.51.100.9, 203.0.113.7\r\n").await;
    assert_eq!(
        report(&mut stream).await,
        "client=Some(203.0.113.7) remote=Some(127.0.0.1) source=None destination=None"
    );
    drop(stream);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn forwarded_rfc7239_walks_past_trusted_hops() {
    let builder = ServerBuilder::new()
        .trusted_proxies(["127.0.0.0/8".parse::<IpNet>().unwrap(), "10.0.0.0/8".parse().unwrap()])
        .forwarded_header(ForwardedHeader::Forwarded);
    let (server, addr) = address_server(builder).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let extra = "Forwarded: for=192.0.2.1, for=\"[2001:db8::7]:4711\";proto=https\r\n\
        Forwarded: for=10.1.1.1\r\nX-Forwarded-For: 6.6.6.6\r\n";
    handshake(&mut stream, addr, extra).await;
    assert!(report(&mut stream).await.starts_with("client=Some(2001:db8::7) remote=Some(127.0.0.1)"));
    drop(stream);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let builder = ServerBuilder::new().trusted_proxies(["10.0.0.0/8".parse::<IpNet>().unwrap()]);
    let (server, addr) = address_server(builder).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    handshake(&mut stream, addr, "X-Forwarded-For: 203.0.113.7\r\n").await;
    assert!(report(&mut stream).await.starts_with("client=Some(127.0.0.1) remote=Some(127.0.0.1)"));
    drop(stream);
    server.shutdown(Duration::from_secs(1)).await;

    // Without trusted proxies (the default), never believed.
    let (server, addr) = address_server(ServerBuilder::new()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    handshake(&mut stream, addr, "X-Forwarded-For: 203.0.113.7\r\n").await;
    assert!(report(&mut stream).await.starts_with("client=Some(127.0.0.1)"));
    drop(stream);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn proxy_protocol_v1_then_the_request_in_one_write() {
    let (server, addr) = address_server(ServerBuilder::new().proxy_protocol(true)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut bytes = b"PROXY TCP4 192.0.2.1 198.51.100.2 5678 443\r\n".to_vec();
    bytes.extend(REQUEST.as_bytes());
    stream.write_all(&bytes).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(
        report(&mut stream).await,
        "client=Some(192.0.2.1) remote=Some(127.0.0.1) source=Some(192.0.2.1:5678) \
         destination=Some(198.51.100.2:443)"
    );
    drop(stream);
    server.shutdown(Duration::from_secs(1)).await;
}

fn proxy_v2_tcp6(source: [u8; 16], destination: [u8; 16], ports: (u16, u16)) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.extend([0x21, 0x21]); // version 2, PROXY; TCP over IPv6
    let mut body = Vec::new();
    body.extend(source);
    body.extend(destination);
    body.extend(ports.0.to_be_bytes());
    body.extend(ports.1.to_be_bytes());
    body.extend([0x04, 0x00, 0x03, b'a', b'b', b'c']); // a TLV (NOOP), skipped
    out.extend((body.len() as u16).to_be_bytes());
    out.extend(body);
    out
}

#[tokio::test]
async fn proxy_protocol_v2_then_request_and_frame_in_one_write() {
    let (server, addr) = address_server(ServerBuilder::new().proxy_protocol(true)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let source = "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
    let destination = "2001:db8::2".parse::<std::net::Ipv6Addr>().unwrap().octets();
    // Header, upgrade request and a first message together: nothing after the header is lost.
    let mut bytes = proxy_v2_tcp6(source, destination, (40000, 443));
    bytes.extend(REQUEST.as_bytes());
    bytes.extend(client_frame(0x81, b"pipelined"));
    stream.write_all(&bytes).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(
        report(&mut stream).await,
        "client=Some(2001:db8::1) remote=Some(127.0.0.1) source=Some([2001:db8::1]:40000) \
         destination=Some([2001:db8::2]:443)"
    );
    assert_eq!(read_frame(&mut stream).await.unwrap(), (0x81, b"pipelined".to_vec()));
    drop(stream);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn proxy_protocol_source_is_checked_against_trusted_proxies() {
    // HAProxy (PROXY header) in front of another proxy that sets X-Forwarded-For.
    let builder =
        ServerBuilder::new().proxy_protocol(true).trusted_proxies(["192.0.2.0/24".parse::<IpNet>().unwrap()]);
    let (server, addr) = address_server(builder).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = REQUEST.replace("\r\n\r\n", "\r\nX-Forwarded-For: 203.0.113.50\r\n\r\n");
    let bytes = format!("PROXY TCP4 192.0.2.1 198.51.100.2 5678 443\r\n{request}");
    stream.write_all(bytes.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(report(&mut stream).await.starts_with("client=Some(203.0.113.50) remote=Some(127.0.0.1)"));
    drop(stream);
    server.shutdown(Duration::from_secs(1)).await;
}

/// The server drops the connection without answering: end of file (or a reset), no response.
async fn assert_dropped(addr: SocketAddr, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may close before it reads everything: a reset on write is a drop too.
    let _ = stream.write_all(bytes).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    match read.expect("the server should drop the connection at once") {
        Ok(_) => assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer)),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
}

#[tokio::test]
async fn missing_malformed_or_oversized_proxy_header_is_refused() {
    let (server, addr) = address_server(ServerBuilder::new().proxy_protocol(true)).await;
    // No header: the HTTP request straight away.
    assert_dropped(addr, REQUEST.as_bytes()).await;
    // Malformed version 1 (a port missing) and version 2 (bad version nibble).
    assert_dropped(addr, format!("PROXY TCP4 192.0.2.1 198.51.100.2 5678\r\n{REQUEST}").as_bytes()).await;
    let mut bad_v2 = proxy_v2_tcp6([0; 16], [0; 16], (1, 2));
    bad_v2[12] = 0x31;
    assert_dropped(addr, &bad_v2).await;
    // Oversized version 1: no CRLF within 107 bytes.
    let mut long = b"PROXY TCP4 ".to_vec();
    long.resize(2000, b'1');
    assert_dropped(addr, &long).await;
    // The server still serves well-formed connections.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(format!("PROXY UNKNOWN\r\n{REQUEST}").as_bytes()).await.unwrap();
    assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 101"));
    // UNKNOWN carries no address: the peer's stands.
    assert!(
        report(&mut stream).await.starts_with("client=Some(127.0.0.1) remote=Some(127.0.0.1) source=None")
    );
    drop(stream);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn acceptor_reads_the_proxy_header_too() {
    let acceptor = ServerBuilder::new().proxy_protocol(true).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("PROXY TCP4 192.0.2.9 198.51.100.2 1 2\r\n{REQUEST}").as_bytes())
            .await
            .unwrap();
        read_head(&mut stream).await
    });
    let (stream, _) = listener.accept().await.unwrap();
    let ws = acceptor.accept(stream).await.unwrap();
    assert_eq!(ws.info().client_addr(), Some("192.0.2.9".parse().unwrap()));
    assert_eq!(ws.info().proxy_source(), Some("192.0.2.9:1".parse().unwrap()));
    assert!(client.await.unwrap().starts_with("HTTP/1.1 101"));
}

/// HAProxy's binary, if installed (`.ci/run` installs Debian's `haproxy` as root). Missing: a
/// failure under CI (`CI=true`), else a loud skip.
fn haproxy() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain(["/usr/sbin".into()])
        .map(|dir| dir.join("haproxy"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "haproxy is not installed (Debian: apt-get install haproxy; .ci/run installs it as root)"
        );
        eprintln!("WARNING: haproxy is not installed: the real-proxy PROXY protocol test is SKIPPED");
    }
    found
}

/// A port free right now on loopback, for HAProxy to listen on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn through_a_real_haproxy_with_send_proxy_v1_and_v2() {
    let Some(haproxy) = haproxy() else { return };
    let (server, addr) = address_server(ServerBuilder::new().proxy_protocol(true)).await;
    let (v1_port, v2_port) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("ws-edge-haproxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("haproxy.cfg");
    // TCP mode: HAProxy passes the upgrade through and prepends the PROXY header.
    std::fs::write(
        &config,
        format!(
            "global\n  maxconn 100\n\
             defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             listen v1\n  bind 127.0.0.1:{v1_port}\n  server ws {addr} send-proxy\n\
             listen v2\n  bind 127.0.0.1:{v2_port}\n  server ws {addr} send-proxy-v2\n"
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(haproxy)
        .arg("-db") // foreground, no daemon
        .arg("-f")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for port in [v1_port, v2_port] {
        let uri = format!("ws://127.0.0.1:{port}");
        // HAProxy takes a moment to bind.
        let mut ws = None;
        for _ in 0..100 {
            if let Ok(connected) = ws_tokio::connect(&uri).await {
                ws = Some(connected);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut ws = ws.expect("connected through haproxy");
        let client = ws.info().local_addr().unwrap();
        let ws_tokio::Message::Text(report) = ws.recv().await.unwrap() else { panic!("a text report") };
        let report = report.as_str();
        // The server sees HAProxy as its peer, and the client's own address and port in the
        // PROXY header, and where the client connected.
        let expected = format!(
            "client=Some(127.0.0.1) remote=Some(127.0.0.1) source=Some({client}) \
             destination=Some(127.0.0.1:{port})"
        );
        assert_eq!(report, expected, "port {port}");
        ws.send("through haproxy").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), ws_tokio::Message::text("through haproxy"));
        ws.close(ws_tokio::CloseCode::NORMAL, "").await.unwrap();
    }
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn forwarded_for_after_an_upgrade_by_another_http_server() {
    // hyper/axum parse the request; the acceptor's trusted proxies still apply.
    let acceptor =
        ServerBuilder::new().trusted_proxies(["127.0.0.1/32".parse::<IpNet>().unwrap()]).build().unwrap();
    let request = ws_tokio::http::Request::get("/")
        .header("host", "test")
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .header("x-forwarded-for", "203.0.113.7")
        .body(())
        .unwrap();
    let mut upgrade = acceptor.accept_request(request).await.unwrap();
    upgrade.set_addrs(None, Some("127.0.0.1:40000".parse().unwrap()));
    let (io, _peer) = tokio::io::duplex(64);
    let (ws, _driver) = upgrade.open(io);
    assert_eq!(ws.info().client_addr(), Some("203.0.113.7".parse().unwrap()));
    assert_eq!(ws.info().remote_addr(), Some("127.0.0.1:40000".parse().unwrap()));
}
