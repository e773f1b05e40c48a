//! Helpers shared by the integration tests: an echo server, and a raw client that does the
//! handshake by hand and reads and writes frames byte by byte.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses some of them

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use ws_tokio::{Server, ServerBuilder, WebSocket};

/// An echo server with `builder`'s settings on a free loopback port.
pub(crate) async fn echo_server(builder: ServerBuilder) -> (Server, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = builder
        .serve_listener(
            |mut ws: WebSocket| async move {
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

const REQUEST_TAIL: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Reads an HTTP head, up to and including the blank line.
pub(crate) async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// The opening handshake by hand on `stream`, with extra header lines (each ending in CRLF).
pub(crate) async fn handshake(stream: &mut TcpStream, addr: SocketAddr, extra: &str) {
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n{REQUEST_TAIL}{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

pub(crate) async fn raw_client(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    handshake(&mut stream, addr, "").await;
    stream
}

/// A raw client whose kernel buffers are as small as the kernel allows, so that backpressure
/// shows after a few kilobytes rather than megabytes.
pub(crate) async fn tiny_buffer_client(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    handshake(&mut stream, addr, "").await;
    stream
}

/// A masked client frame (mask `37 fa 21 3d`). `first` is the first byte (FIN, RSV, opcode).
pub(crate) fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
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

pub(crate) fn close_frame(code: u16) -> Vec<u8> {
    client_frame(0x88, &code.to_be_bytes())
}

/// Reads one frame: (first byte, payload), unmasked if it was masked.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(stream: &mut R) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await?;
    let len = match head[1] & 0x7F {
        126 => usize::from(stream.read_u16().await?),
        127 => stream.read_u64().await? as usize,
        n => usize::from(n),
    };
    let mask = if head[1] & 0x80 != 0 {
        let mut mask = [0u8; 4];
        stream.read_exact(&mut mask).await?;
        Some(mask)
    } else {
        None
    };
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await?;
    if let Some(mask) = mask {
        payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= mask[i % 4]);
    }
    Ok((head[0], payload))
}
