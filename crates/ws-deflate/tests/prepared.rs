//! A message prepared once for many connections: compressed once for every connection that
//! compresses without context takeover with the same settings, per connection otherwise, and
//! received intact everywhere.

use ws_deflate::{Memory, PerMessageDeflate, PerMessageDeflateConfig};
use ws_proto::{Buf, BytesMut, Config, Connection, Event, Message, PreparedMessage, Role, SendError};

/// A server and its client, with permessage-deflate as `server` and the matching client side.
fn pair(server: PerMessageDeflateConfig) -> (Connection, Connection) {
    let client = PerMessageDeflateConfig {
        local_no_context_takeover: server.remote_no_context_takeover,
        remote_no_context_takeover: server.local_no_context_takeover,
        local_max_window_bits: server.remote_max_window_bits,
        remote_max_window_bits: server.local_max_window_bits,
        ..Default::default()
    };
    let server = Connection::new(Role::Server, Config::default())
        .with_extensions(vec![Box::new(PerMessageDeflate::new(server).expect("valid"))]);
    let client = Connection::new(Role::Client, Config::default())
        .with_extensions(vec![Box::new(PerMessageDeflate::new(client).expect("valid"))]);
    (server, client)
}

/// What the client receives of everything the server queued, and the bytes on the wire.
fn deliver(server: &mut Connection, client: &mut Connection) -> (Vec<Message>, usize) {
    let out = server.transmit();
    let mut wire = BytesMut::new();
    while out.has_remaining() {
        let chunk = out.chunk();
        wire.extend_from_slice(chunk);
        let n = chunk.len();
        out.advance(n);
    }
    let len = wire.len();
    client.receive(&mut wire).expect("valid frames");
    let mut messages = Vec::new();
    while let Some(event) = client.next_event() {
        if let Event::Message(message) = event {
            messages.push(message);
        }
    }
    (messages, len)
}

fn json(n: usize) -> String {
    (0..n).map(|i| format!("{{\"id\":{i},\"user\":\"alice\",\"text\":\"hello, room\"}}")).collect()
}

#[test]
fn compressed_once_for_connections_without_context_takeover() {
    let text = json(40);
    let message = PreparedMessage::new(Message::text(text.clone()));
    let no_takeover = PerMessageDeflateConfig { local_no_context_takeover: true, ..Default::default() };
    let mut wire_sizes = Vec::new();
    for _ in 0..5 {
        let (mut server, mut client) = pair(no_takeover);
        server.send_prepared(&message).unwrap();
        let (messages, wire) = deliver(&mut server, &mut client);
        assert_eq!(messages, vec![Message::text(text.clone())]);
        wire_sizes.push(wire);
    }
    assert_eq!(message.encoded_forms(), 1, "one compression for all five");
    assert!(wire_sizes.iter().all(|&w| w == wire_sizes[0] && w < text.len() / 4), "{wire_sizes:?}");

    // Another window is another form; the lean mode with the same settings shares the first.
    let small_window = PerMessageDeflateConfig {
        local_no_context_takeover: true,
        local_max_window_bits: 10,
        ..Default::default()
    };
    let (mut server, mut client) = pair(small_window);
    server.send_prepared(&message).unwrap();
    assert_eq!(deliver(&mut server, &mut client).0, vec![Message::text(text.clone())]);
    assert_eq!(message.encoded_forms(), 2);
    let lean = PerMessageDeflateConfig { memory: Memory::Shared, ..no_takeover };
    let (mut server, mut client) = pair(lean);
    server.send_prepared(&message).unwrap();
    assert_eq!(deliver(&mut server, &mut client).0, vec![Message::text(text)]);
    assert_eq!(message.encoded_forms(), 2);
}

#[test]
fn context_takeover_compresses_per_connection_and_keeps_its_history() {
    let (mut server, mut client) = pair(PerMessageDeflateConfig::default());
    for i in 0..3 {
        let text = json(10 + i);
        let message = PreparedMessage::new(Message::text(text.clone()));
        server.send_prepared(&message).unwrap();
        assert_eq!(deliver(&mut server, &mut client).0, vec![Message::text(text)]);
        assert_eq!(message.encoded_forms(), 0, "encoded by the connection itself");
        // Interleaved with ordinary sends, the shared history stays right.
        server.send_frame(ws_proto::Frame::new(ws_proto::OpCode::Text, json(3), true)).unwrap();
        assert_eq!(deliver(&mut server, &mut client).0, vec![Message::text(json(3))]);
    }
}

#[test]
fn without_extensions_the_payload_goes_as_it_is() {
    let message = PreparedMessage::new(Message::binary(vec![7u8; 10_000]));
    let mut server = Connection::new(Role::Server, Config::default());
    let mut client = Connection::new(Role::Client, Config::default());
    server.send_prepared(&message).unwrap();
    let (messages, wire) = deliver(&mut server, &mut client);
    assert_eq!(messages, vec![Message::binary(vec![7u8; 10_000])]);
    assert_eq!(wire, 10_000 + 4);
    assert_eq!(message.encoded_forms(), 0);
}

#[test]
fn refused_when_closing_or_inside_a_fragmented_message() {
    let message = PreparedMessage::new(Message::text("x"));
    let mut server = Connection::new(Role::Server, Config::default());
    server.send_frame(ws_proto::Frame::new(ws_proto::OpCode::Text, "part", false)).unwrap();
    assert_eq!(server.send_prepared(&message), Err(SendError::Fragmentation));
    server.send_frame(ws_proto::Frame::new(ws_proto::OpCode::Continuation, "", true)).unwrap();
    server.close(ws_proto::CloseCode::NORMAL, "").unwrap();
    assert_eq!(server.send_prepared(&message), Err(SendError::Closed));
}
