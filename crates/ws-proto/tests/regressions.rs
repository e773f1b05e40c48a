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
