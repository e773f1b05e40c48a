//! The connection's rules, one test each, driven through an in-memory pair.

use ws_proto::{
    Buf, Bytes, BytesMut, CloseCode, CloseFrame, Config, Connection, Event, Extension, ExtensionError, Frame,
    Message, OpCode, ProtocolError, Role, Rsv, SendError, State, apply_mask,
};

/// Drains a connection's output into bytes.
fn output(conn: &mut Connection) -> BytesMut {
    let out = conn.transmit();
    BytesMut::from(out.copy_to_bytes(out.remaining()).as_ref())
}

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.next_event()).collect()
}

/// A raw frame as a client would send it (masked with a fixed key).
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let mut out = vec![b0];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    let mut masked = payload.to_vec();
    apply_mask(&mut masked, key);
    out.extend_from_slice(&masked);
    out
}

fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

fn feed(conn: &mut Connection, bytes: &[u8]) -> Result<(), ProtocolError> {
    conn.receive(&mut BytesMut::from(bytes))
}

fn close_payload(out: &[u8]) -> (u16, Vec<u8>) {
    // An unmasked server close frame: 0x88, len, code, reason.
    assert_eq!(out[0], 0x88, "expected a close frame, got {out:02x?}");
    let len = usize::from(out[1] & 0x7F);
    (u16::from_be_bytes([out[2], out[3]]), out[4..2 + len].to_vec())
}

// ---- RFC 6455 §5.7 examples ----

#[test]
fn rfc_examples_unmasked_text() {
    let mut client = Connection::new(Role::Client, Config::default());
    feed(&mut client, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]).unwrap();
    assert_eq!(events(&mut client), [Event::Message(Message::text("Hello"))]);
}

#[test]
fn rfc_examples_masked_text() {
    let mut server = server();
    feed(&mut server, &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]).unwrap();
    assert_eq!(events(&mut server), [Event::Message(Message::text("Hello"))]);
}

#[test]
fn rfc_examples_fragmented_text() {
    let mut client = Connection::new(Role::Client, Config::default());
    feed(&mut client, &[0x01, 0x03, 0x48, 0x65, 0x6c]).unwrap();
    assert!(events(&mut client).is_empty());
    feed(&mut client, &[0x80, 0x02, 0x6c, 0x6f]).unwrap();
    assert_eq!(events(&mut client), [Event::Message(Message::text("Hello"))]);
}

#[test]
fn rfc_examples_ping_and_pong() {
    let mut server = server();
    feed(&mut server, &[0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]).unwrap();
    assert_eq!(events(&mut server), [Event::Ping(Bytes::from_static(b"Hello"))]);
    // The automatic answer is the RFC's unmasked pong example.
    assert_eq!(&output(&mut server)[..], &[0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

#[test]
fn rfc_examples_binary_lengths() {
    for (len, head) in
        [(256usize, vec![0x82, 0x7E, 0x01, 0x00]), (65536, vec![0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])]
    {
        let mut server = Connection::new(Role::Server, Config::default());
        server.send_binary(vec![7u8; len]).unwrap();
        let out = output(&mut server);
        assert_eq!(&out[..head.len()], &head[..]);
        assert_eq!(out.len(), head.len() + len);
    }
}

// ---- masking ----

#[test]
fn server_refuses_unmasked_and_client_refuses_masked() {
    let mut server = server();
    assert_eq!(feed(&mut server, &[0x81, 0x00]), Err(ProtocolError::UnmaskedFrame));
    assert_eq!(close_payload(&output(&mut server)).0, 1002);
    let mut client = Connection::new(Role::Client, Config::default());
    assert_eq!(feed(&mut client, &[0x81, 0x80, 1, 2, 3, 4]), Err(ProtocolError::MaskedFrame));
}

#[test]
fn client_masks_every_frame_with_a_fresh_key() {
    let mut client = Connection::new(Role::Client, Config::default()).with_mask_seed([9; 32]);
    client.send_text("abcd").unwrap();
    client.send_text("abcd").unwrap();
    let out = output(&mut client);
    let (a, b) = (&out[..10], &out[10..]);
    assert_eq!(a[1] & 0x80, 0x80);
    assert_ne!(a[2..6], b[2..6], "a fresh key per frame");
    let mut server = server();
    server.receive(&mut BytesMut::from(&out[..])).unwrap();
    assert_eq!(events(&mut server).len(), 2);
}

#[test]
fn mask_seed_replays_exactly() {
    let run = || {
        let mut c = Connection::new(Role::Client, Config::default()).with_mask_seed([3; 32]);
        c.send_binary(vec![0u8; 100]).unwrap();
        output(&mut c)
    };
    assert_eq!(run(), run());
}

// ---- frames and messages ----

#[test]
fn partial_input_waits_for_the_rest() {
    let bytes = client_frame(0x81, b"Hello, world");
    let mut server = server();
    let mut buf = BytesMut::new();
    for byte in &bytes {
        buf.extend_from_slice(std::slice::from_ref(byte));
        server.receive(&mut buf).unwrap();
    }
    assert_eq!(events(&mut server), [Event::Message(Message::text("Hello, world"))]);
    assert!(buf.is_empty());
}

#[test]
fn reserved_bits_without_extension_are_protocol_errors() {
    let mut server = server();
    assert_eq!(feed(&mut server, &client_frame(0xC1, b"x")), Err(ProtocolError::ReservedBits(0x40)));
    assert_eq!(server.state(), State::Closed);
}

#[test]
fn reserved_opcodes_are_protocol_errors() {
    for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let mut server = server();
        assert_eq!(feed(&mut server, &client_frame(0x80 | op, b"")), Err(ProtocolError::ReservedOpcode(op)));
    }
}

#[test]
fn control_frames_interleave_with_fragments() {
    let mut server = server();
    let mut bytes = client_frame(0x01, b"fra");
    bytes.extend(client_frame(0x89, b"ping"));
    bytes.extend(client_frame(0x80, b"gment"));
    feed(&mut server, &bytes).unwrap();
    assert_eq!(
        events(&mut server),
        [Event::Ping(Bytes::from_static(b"ping")), Event::Message(Message::text("fragment"))]
    );
}

#[test]
fn continuation_without_message_and_new_message_inside_one_fail() {
    let mut server = server();
    assert_eq!(feed(&mut server, &client_frame(0x80, b"x")), Err(ProtocolError::UnexpectedContinuation));
    let mut server = Connection::new(Role::Server, Config::default());
    let mut bytes = client_frame(0x01, b"a");
    bytes.extend(client_frame(0x81, b"b"));
    assert_eq!(feed(&mut server, &bytes), Err(ProtocolError::ExpectedContinuation));
}

#[test]
fn control_frame_rules() {
    let mut server = server();
    assert_eq!(feed(&mut server, &client_frame(0x09, b"")), Err(ProtocolError::FragmentedControlFrame));
    let mut server = Connection::new(Role::Server, Config::default());
    assert_eq!(feed(&mut server, &client_frame(0x89, &[0; 126])), Err(ProtocolError::ControlFrameTooLong));
    let mut server = Connection::new(Role::Server, Config::default());
    assert_eq!(server.send_ping(vec![0; 126]), Err(SendError::ControlFrameTooLong));
}

#[test]
fn invalid_utf8_fails_on_the_fragment_that_carries_it() {
    let mut server = server();
    // The first fragment is fine; the second carries a surrogate: fail now, not at FIN.
    feed(&mut server, &client_frame(0x01, "κόσμε".as_bytes())).unwrap();
    assert_eq!(feed(&mut server, &client_frame(0x00, b"\xed\xa0\x80")), Err(ProtocolError::InvalidUtf8));
    assert_eq!(close_payload(&output(&mut server)).0, 1007);
}

#[test]
fn utf8_split_across_fragments_is_fine() {
    let text = "a€b".as_bytes();
    let mut server = server();
    let mut bytes = client_frame(0x01, &text[..2]);
    bytes.extend(client_frame(0x80, &text[2..]));
    feed(&mut server, &bytes).unwrap();
    assert_eq!(events(&mut server), [Event::Message(Message::text("a€b"))]);
}

#[test]
fn single_frame_payload_is_a_slice_of_the_read_buffer() {
    let mut server = server();
    let mut buf = BytesMut::from(&client_frame(0x82, &[5u8; 300])[..]);
    let base = buf.as_ptr() as usize;
    server.receive(&mut buf).unwrap();
    let Some(Event::Message(Message::Binary(data))) = server.next_event() else { panic!() };
    let at = data.as_ptr() as usize;
    assert!(at >= base && at < base + 310, "payload was copied");
}

// ---- limits ----

#[test]
fn frame_over_limit_closes_1009_before_buffering() {
    let mut server = Connection::new(Role::Server, Config::default().with_max_frame_size(Some(100)));
    // Only the header arrives: the verdict does not wait for the payload.
    let bytes = client_frame(0x82, &[0; 101]);
    assert!(matches!(
        feed(&mut server, &bytes[..8]),
        Err(ProtocolError::FrameTooBig { size: 101, max: 100 })
    ));
    assert_eq!(close_payload(&output(&mut server)).0, 1009);
}

#[test]
fn message_over_limit_closes_1009() {
    let mut server = Connection::new(Role::Server, Config::default().with_max_size(Some(100)));
    let mut bytes = client_frame(0x02, &[0; 60]);
    bytes.extend(client_frame(0x80, &[0; 60]));
    assert!(matches!(feed(&mut server, &bytes), Err(ProtocolError::MessageTooBig { max: 100 })));
    assert_eq!(close_payload(&output(&mut server)).0, 1009);
}

#[test]
fn huge_length_header_allocates_nothing() {
    let mut server = Connection::new(Role::Server, Config::default().with_max_size(None));
    let mut bytes = vec![0x82, 0xFF];
    bytes.extend_from_slice(&(1u64 << 63).to_be_bytes());
    bytes.extend_from_slice(&[0; 4]);
    assert_eq!(feed(&mut server, &bytes), Err(ProtocolError::LengthOverflow));
}

#[test]
fn unlimited_sizes() {
    let mut server = Connection::new(Role::Server, Config::default().with_max_size(None));
    feed(&mut server, &client_frame(0x82, &vec![1; 2 << 20])).unwrap();
    assert!(matches!(server.next_event(), Some(Event::Message(m)) if m.len() == 2 << 20));
}

// ---- close ----

#[test]
fn close_codes_on_the_wire() {
    let allowed =
        [1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
    let refused = [0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
    for code in allowed {
        let mut server = server();
        feed(&mut server, &client_frame(0x88, &code.to_be_bytes())).unwrap();
        assert_eq!(server.close_code(), Some(CloseCode(code)));
        assert_eq!(close_payload(&output(&mut server)).0, code, "echoes the code");
    }
    for code in refused {
        let mut server = server();
        assert_eq!(
            feed(&mut server, &client_frame(0x88, &code.to_be_bytes())),
            Err(ProtocolError::InvalidClosePayload)
        );
        assert_eq!(close_payload(&output(&mut server)).0, 1002);
        assert!(Connection::new(Role::Server, Config::default()).close(CloseCode(code), "").is_err());
    }
}

#[test]
fn close_payload_rules() {
    let mut server = server();
    assert_eq!(feed(&mut server, &client_frame(0x88, &[3])), Err(ProtocolError::InvalidClosePayload));
    let mut server = Connection::new(Role::Server, Config::default());
    assert_eq!(feed(&mut server, &client_frame(0x88, b"\x03\xe8\xff")), Err(ProtocolError::InvalidUtf8));
    assert_eq!(close_payload(&output(&mut server)).0, 1007);
    let mut server = Connection::new(Role::Server, Config::default());
    feed(&mut server, &client_frame(0x88, b"")).unwrap();
    assert_eq!(server.close_code(), Some(CloseCode::NO_STATUS));
    assert_eq!(&output(&mut server)[..], &[0x88, 0x00], "an empty close is answered with an empty close");
}

#[test]
fn closing_handshake_initiated_locally() {
    let mut server = server();
    server.close(CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(server.state(), State::Closing);
    assert_eq!(close_payload(&output(&mut server)), (1000, b"bye".to_vec()));
    assert_eq!(server.send_text("late"), Err(SendError::Closed));
    assert_eq!(server.send_ping(""), Err(SendError::Closed));
    assert_eq!(server.close(CloseCode::NORMAL, ""), Err(SendError::Closed));
    // Data still arrives until the peer's close.
    feed(&mut server, &client_frame(0x81, b"still")).unwrap();
    feed(&mut server, &client_frame(0x88, &1000u16.to_be_bytes())).unwrap();
    assert_eq!(server.state(), State::Closed);
    assert!(output(&mut server).is_empty(), "no second close frame");
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::text("still")), Event::Close(Some(CloseFrame::new(1000, "")))]
    );
}

#[test]
fn reply_to_close_is_sent_once_and_nothing_follows() {
    let mut server = server();
    let mut bytes = client_frame(0x88, &1001u16.to_be_bytes());
    bytes.extend(client_frame(0x88, &1000u16.to_be_bytes()));
    bytes.extend(client_frame(0x89, b"late ping"));
    feed(&mut server, &bytes).unwrap();
    let out = output(&mut server);
    assert_eq!(out.len(), 4, "exactly one close frame: {out:02x?}");
    assert_eq!(server.send_text("x"), Err(SendError::Closed));
    assert_eq!(server.close_code(), Some(CloseCode::GOING_AWAY));
}

#[test]
fn eof_without_close_is_abnormal() {
    let mut server = server();
    server.receive_eof();
    assert_eq!(server.state(), State::Closed);
    assert_eq!(server.close_code(), Some(CloseCode::ABNORMAL));
}

#[test]
fn input_after_failure_is_ignored() {
    let mut server = server();
    let mut bytes = client_frame(0x83, b"");
    bytes.extend(client_frame(0x81, b"ignored"));
    assert!(feed(&mut server, &bytes).is_err());
    feed(&mut server, &client_frame(0x81, b"ignored too")).unwrap();
    assert!(events(&mut server).is_empty());
}

// ---- pings ----

#[test]
fn every_ping_is_answered_in_order() {
    let mut server = server();
    let mut bytes = client_frame(0x89, b"1");
    bytes.extend(client_frame(0x89, b"2"));
    bytes.extend(client_frame(0x81, b"text"));
    feed(&mut server, &bytes).unwrap();
    server.send_text("reply").unwrap();
    let out = output(&mut server);
    assert_eq!(&out[..6], &[0x8A, 1, b'1', 0x8A, 1, b'2'], "pongs in order, before later replies");
    assert_eq!(&out[6..], b"\x81\x05reply");
}

#[test]
fn ping_flood_from_a_peer_that_does_not_read_is_answered_once() {
    let mut server = server();
    // 64 KiB of output the peer has not read yet.
    server.send_binary(vec![0u8; 64 * 1024]).unwrap();
    let mut bytes = Vec::new();
    for i in 0..1000u32 {
        bytes.extend(client_frame(0x89, &i.to_be_bytes()));
    }
    feed(&mut server, &bytes).unwrap();
    let out = output(&mut server);
    assert_eq!(&out[out.len() - 6..], &[0x8A, 4, 0, 0, 0x03, 0xE7], "only the latest ping is answered");
    assert_eq!(out.len(), 10 + 64 * 1024 + 6);
}

#[test]
fn sending_fragments_in_order() {
    let mut server = server();
    assert_eq!(server.send_frame(Frame::new(OpCode::Continuation, "x", true)), Err(SendError::Fragmentation));
    server.send_frame(Frame::new(OpCode::Text, "a", false)).unwrap();
    assert_eq!(server.send_text("b"), Err(SendError::Fragmentation));
    server.send_ping("p").unwrap();
    server.send_frame(Frame::new(OpCode::Continuation, "c", true)).unwrap();
    let mut client = Connection::new(Role::Client, Config::default());
    client.receive(&mut output(&mut server)).unwrap();
    assert_eq!(
        events(&mut client),
        [Event::Ping(Bytes::from_static(b"p")), Event::Message(Message::text("ac"))]
    );
}

// ---- extension hooks ----

/// Reverses payloads and marks them with RSV2; owns RSV2.
struct Reverse;

impl Extension for Reverse {
    fn name(&self) -> &str {
        "x-reverse"
    }
    fn rsv(&self) -> Rsv {
        Rsv::RSV2
    }
    fn encode(&mut self, frame: &mut Frame) -> Result<(), ExtensionError> {
        if frame.opcode.is_data() {
            frame.payload = frame.payload.iter().rev().copied().collect::<Vec<_>>().into();
            frame.rsv.set(Rsv::RSV2, true);
        }
        Ok(())
    }
    fn decode(&mut self, frame: &mut Frame, max_size: Option<usize>) -> Result<(), ExtensionError> {
        if frame.rsv.contains(Rsv::RSV2) {
            if max_size.is_some_and(|max| frame.payload.len() > max) {
                return Err(ExtensionError::TooBig);
            }
            frame.payload = frame.payload.iter().rev().copied().collect::<Vec<_>>().into();
            frame.rsv.set(Rsv::RSV2, false);
        }
        Ok(())
    }
}

#[test]
fn extensions_transform_both_ways_and_own_their_rsv_bits() {
    let mut client =
        Connection::new(Role::Client, Config::default()).with_extensions(vec![Box::new(Reverse)]);
    let mut server =
        Connection::new(Role::Server, Config::default()).with_extensions(vec![Box::new(Reverse)]);
    client.send_text("stressed").unwrap();
    let mut wire = output(&mut client);
    assert_eq!(wire[0] & 0x70, 0x20, "RSV2 on the wire");
    server.receive(&mut wire).unwrap();
    assert_eq!(events(&mut server), [Event::Message(Message::text("stressed"))]);
    // RSV1 is still nobody's.
    assert_eq!(feed(&mut server, &client_frame(0xC1, b"x")), Err(ProtocolError::ReservedBits(0x40)));
}

/// A message over the limit is one error, with the limit in it, whether an extension (here one
/// that transforms payloads, as compression does) or the frame headers found it.
#[test]
fn message_too_big_is_one_error_with_or_without_extensions() {
    let config = Config::default().with_max_size(Some(4));
    let mut server = Connection::new(Role::Server, config.clone()).with_extensions(vec![Box::new(Reverse)]);
    let err = feed(&mut server, &client_frame(0xA2, b"too long")).unwrap_err();
    assert_eq!(err, ProtocolError::MessageTooBig { max: 4 });
    assert_eq!(err.close_code(), CloseCode::TOO_BIG);
    let mut plain = Connection::new(Role::Server, config);
    assert_eq!(
        feed(&mut plain, &client_frame(0x82, b"too long")),
        Err(ProtocolError::MessageTooBig { max: 4 })
    );
}
