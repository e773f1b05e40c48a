//! A client and a server on blocking `std::net` sockets, using only the Sans-I/O layers:
//! ws-handshake for the upgrade, ws-proto for frames, ws-deflate for compression. Proof that
//! the layers serve users who bring their own I/O.
//!
//! `cargo run --release --example sansio_blocking`

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use ws_deflate::{ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory};
use ws_handshake::{ClientConfig, ClientHandshake, ServerConfig, ServerHandshake};
use ws_proto::{Buf, BytesMut, CloseCode, Config, Connection, Event, Message, State};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// Writes everything the connection has queued.
fn flush(conn: &mut Connection, socket: &mut TcpStream) -> std::io::Result<()> {
    let out = conn.transmit();
    while out.has_remaining() {
        let n = socket.write(out.chunk())?;
        out.advance(n);
    }
    Ok(())
}

/// Reads until the connection has an event (or the peer is gone).
fn next_event(
    conn: &mut Connection,
    socket: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<Option<Event>, AnyError> {
    loop {
        if let Some(event) = conn.next_event() {
            flush(conn, socket)?; // pongs and close replies
            return Ok(Some(event));
        }
        if conn.state() == State::Closed {
            flush(conn, socket)?;
            return Ok(None);
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = socket.read(&mut chunk)?;
        if n == 0 {
            conn.receive_eof();
            continue;
        }
        buf.extend_from_slice(&chunk[..n]);
        conn.receive(buf)?;
    }
}

fn server(listener: TcpListener) -> Result<(), AnyError> {
    let (mut socket, _) = listener.accept()?;
    let mut config = ServerConfig::default();
    config.extensions.push(Arc::new(ServerPerMessageDeflateFactory::default()));
    let mut handshake = ServerHandshake::new(Arc::new(config));
    let mut chunk = [0u8; 4096];
    let request = loop {
        let n = socket.read(&mut chunk)?;
        if let Some(request) = handshake.receive(&chunk[..n])? {
            break request;
        }
    };
    let accepted = handshake.accept(&request, Some(std::time::SystemTime::now()))?;
    let mut response = Vec::new();
    accepted.write_response(&mut response);
    socket.write_all(&response)?;

    // The connection, with whatever the client pipelined behind its request already received.
    let (mut conn, mut buf) = accepted.into_connection(Config::default());
    // Echo until the client closes.
    while let Some(event) = next_event(&mut conn, &mut socket, &mut buf)? {
        if let Event::Message(message) = event {
            conn.send(message)?;
            flush(&mut conn, &mut socket)?;
        }
    }
    // The server closes the TCP connection first.
    socket.shutdown(std::net::Shutdown::Both)?;
    Ok(())
}

fn client(addr: std::net::SocketAddr) -> Result<(), AnyError> {
    let mut socket = TcpStream::connect(addr)?;
    let mut config = ClientConfig::default();
    config.extensions.push(Arc::new(ClientPerMessageDeflateFactory::default()));
    let mut handshake = ClientHandshake::new(&format!("ws://{addr}/echo"), Arc::new(config))?;
    let mut request = Vec::new();
    handshake.write_request(&mut request);
    socket.write_all(&request)?;
    let mut chunk = [0u8; 4096];
    let accepted = loop {
        let n = socket.read(&mut chunk)?;
        if n == 0 {
            return Err(handshake.receive_eof().into());
        }
        if let Some(accepted) = handshake.receive(&chunk[..n])? {
            break accepted;
        }
    };
    let names: Vec<&str> = accepted.extensions.iter().map(|e| e.name()).collect();
    println!("client: connected, extensions {names:?}");

    // Frames that came in the same read as the 101 are already received: none is lost.
    let (mut conn, mut buf) = accepted.into_connection(Config::default());
    for text in ["Hello", "from a blocking client", &"compressible ".repeat(100)] {
        conn.send_text(text)?;
        flush(&mut conn, &mut socket)?;
        match next_event(&mut conn, &mut socket, &mut buf)? {
            Some(Event::Message(Message::Text(echo))) => {
                assert_eq!(echo.as_str(), text);
                println!("client: echoed {} bytes", echo.len());
            }
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }
    conn.close(CloseCode::NORMAL, "done")?;
    flush(&mut conn, &mut socket)?;
    // Wait for the server's close frame, then for it to close the TCP connection.
    while next_event(&mut conn, &mut socket, &mut buf)?.is_some() {}
    println!("client: closed with {:?}", conn.close_code());
    Ok(())
}

fn main() -> Result<(), common::Report> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || server(listener));
    client(addr)?;
    server.join().map_err(|_| "server thread panicked")??;
    Ok(())
}
