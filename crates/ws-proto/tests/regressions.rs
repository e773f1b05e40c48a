//! Regression tests for bugs found by the property tests and fuzzing.

use ws_proto::{BytesMut, Config, Connection, ProtocolError, Role, State};

/// A failing `receive` used to leave the offending bytes (and whatever followed) in the
/// caller's buffer, so a caller that kept reading into it buffered garbage past the frame
/// limit until the next call. The failure now discards the buffer.
#[test]
fn failed_receive_leaves_the_buffer_empty() {
    let mut server = Connection::new(Role::Server, Config::default().with_max_frame_size(Some(16)));
    // A reserved opcode, followed by more than a frame's worth of bytes.
    let mut buf = BytesMut::from(&[0x83u8; 200][..]);
    assert_eq!(server.receive(&mut buf), Err(ProtocolError::ReservedOpcode(3)));
    assert!(buf.is_empty(), "{} bytes left after a failure", buf.len());
    assert_eq!(server.state(), State::Closed);

    // A valid frame, then a bad one: the first is delivered, nothing is left.
    let mut server = Connection::new(Role::Server, Config::default());
    let mut buf = BytesMut::from(&[0x82u8, 0x81, 0, 0, 0, 0, 7, 0x82, 0x01, 9][..]);
    assert_eq!(server.receive(&mut buf), Err(ProtocolError::UnmaskedFrame));
    assert!(buf.is_empty());
    assert!(server.next_event().is_some());
}

/// With no frame limit, `receive` reserved room for the whole announced payload as soon as
/// the header arrived: a 14-byte header announcing 2^62 bytes made it try to allocate 4 EiB
/// and abort the process (found by the `proto_server` fuzz target). It now reserves at most
/// 1 MiB ahead and grows the buffer as the payload arrives.
#[test]
fn huge_announced_length_without_limit_does_not_reserve_it() {
    let mut server = Connection::new(Role::Server, Config::default().with_max_size(None));
    let mut buf = BytesMut::from(&[0x82u8, 0xFF][..]);
    buf.extend_from_slice(&(1u64 << 62).to_be_bytes());
    buf.extend_from_slice(&[1, 2, 3, 4, 0, 0]);
    assert_eq!(server.receive(&mut buf), Ok(()));
    assert!(buf.capacity() <= 2 << 20, "reserved {} bytes", buf.capacity());
    assert_eq!(server.state(), State::Open);

    // A large frame within reach still arrives whole, through repeated partial reads.
    let mut server = Connection::new(Role::Server, Config::default().with_max_size(None));
    let len = 3 << 20;
    let mut wire = vec![0x82u8, 0xFF];
    wire.extend_from_slice(&(len as u64).to_be_bytes());
    wire.extend_from_slice(&[0; 4]);
    wire.resize(wire.len() + len, 7);
    let mut buf = BytesMut::new();
    for chunk in wire.chunks(64 << 10) {
        buf.extend_from_slice(chunk);
        server.receive(&mut buf).unwrap();
    }
    match server.next_event() {
        Some(ws_proto::Event::Message(m)) => assert!(m.len() == len && m.as_bytes().iter().all(|&b| b == 7)),
        other => panic!("expected the message, got {other:?}"),
    }
}
