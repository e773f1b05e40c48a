//! The `ws-proto` harness: arbitrary bytes, cut arbitrarily, into a `Connection`.
//!
//! Input layout: byte 0 picks the limits and options, byte 1 the number `n` of chunk lengths
//! (low 4 bits), the next `n` bytes are chunk lengths (used in rotation; 0 means "the rest"),
//! and everything after is the wire. Replayed by `crates/ws-proto/tests/fuzz_replay.rs`.

use ws_proto::{Buf, BytesMut, Config, Connection, Event, MAX_HEADER_LEN, Message, Role, State};

const LIMITS: [Option<usize>; 8] =
    [Some(0), Some(1), Some(125), Some(126), Some(1000), Some(65_536), Some(1 << 20), None];

/// Runs `data` (laid out as the module doc says) through a connection of `role`, checking
/// after every `receive` that the read buffer holds at most one partial frame within the
/// limit, that text is UTF-8, and that the connection's state stays coherent. Panics on a
/// violation, as a fuzz target should.
pub fn run(role: Role, data: &[u8]) {
    run_with(role, data, |conn| conn);
}

/// [`run`], with `setup` applied to the connection first (e.g. to install extensions).
pub fn run_with(role: Role, data: &[u8], setup: impl FnOnce(Connection) -> Connection) {
    let [options, cuts, rest @ ..] = data else {
        return;
    };
    let n_cuts = usize::from(cuts & 0x0F).min(rest.len());
    let (cuts, wire) = rest.split_at(n_cuts);
    let max_frame = LIMITS[usize::from(options & 0x07)];
    let max_message = LIMITS[usize::from((options >> 3) & 0x07)];
    let auto_pong = options & 0x40 == 0;
    let echo = options & 0x80 != 0;
    let config =
        Config::default().with_max_frame_size(max_frame).with_max_size(max_message).with_auto_pong(auto_pong);
    let mut conn = setup(Connection::new(role, config).with_mask_seed([0x5a; 32]));

    let mut buf = BytesMut::new();
    let mut sink = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < wire.len() {
        let len = match cuts.get(i % cuts.len().max(1)) {
            Some(&0) | None => wire.len() - at,
            Some(&len) => usize::from(len).min(wire.len() - at),
        };
        i += 1;
        buf.extend_from_slice(&wire[at..at + len]);
        at += len;
        let result = conn.receive(&mut buf);
        if let Some(max) = max_frame {
            assert!(buf.len() <= max + MAX_HEADER_LEN, "{} bytes held, limit {max}", buf.len());
        }
        match &result {
            Ok(()) => {}
            Err(e) => {
                assert_eq!(conn.state(), State::Closed);
                assert_eq!(conn.failure(), Some(e));
                assert!(buf.is_empty());
            }
        }
        while let Some(event) = conn.next_event() {
            match event {
                Event::Message(message) => {
                    if let Some(max) = max_message {
                        assert!(message.len() <= max, "a message of {} bytes, limit {max}", message.len());
                    }
                    if let Message::Text(text) = &message {
                        assert!(std::str::from_utf8(text.as_bytes()).is_ok());
                    }
                    if echo {
                        // Sending may be refused once closing; it must never panic.
                        let _ = conn.send(message);
                    }
                }
                Event::Ping(payload) | Event::Pong(payload) => assert!(payload.len() <= 125),
                Event::Close(_) => assert_ne!(conn.state(), State::Open),
                _ => {}
            }
        }
        let out = conn.transmit();
        sink.clear();
        while out.has_remaining() {
            let chunk = out.chunk();
            sink.extend_from_slice(chunk);
            let n = chunk.len();
            out.advance(n);
        }
    }
    conn.receive_eof();
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.close_code().is_some());
}
