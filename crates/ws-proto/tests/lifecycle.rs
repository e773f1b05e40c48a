//! The lifecycle: one state, how a connection ended, and every timer driven through
//! `handle_timeout` with instants made up by the test (no clock, no sleeping).

use std::time::{Duration, Instant};

use ws_proto::{
    Buf, Bytes, BytesMut, Cause, CloseCode, CloseFrame, Config, Connection, Event, Extension, ExtensionError,
    Frame, ProtocolError, Role, Rsv, SendError, State, apply_mask,
};

const SECOND: Duration = Duration::from_secs(1);

fn output(conn: &mut Connection) -> Vec<u8> {
    let out = conn.transmit();
    out.copy_to_bytes(out.remaining()).to_vec()
}

/// A frame as a client sends it (masked).
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 125);
    let key = [9, 8, 7, 6];
    let mut out = vec![b0, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    let mut masked = payload.to_vec();
    apply_mask(&mut masked, key);
    out.extend_from_slice(&masked);
    out
}

/// A frame as a server sends it (unmasked).
fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 125);
    let mut out = vec![b0, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    out.extend_from_slice(reason.as_bytes());
    out
}

fn feed(conn: &mut Connection, bytes: &[u8]) -> Result<(), ProtocolError> {
    conn.receive(&mut BytesMut::from(bytes))
}

/// A server's output frames as (opcode byte, payload).
fn server_frames(mut out: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = vec![];
    while !out.is_empty() {
        let len = usize::from(out[1] & 0x7F);
        assert!(len <= 125 && out[1] & 0x80 == 0, "a short unmasked frame: {out:02x?}");
        frames.push((out[0], out[2..2 + len].to_vec()));
        out = &out[2 + len..];
    }
    frames
}

fn keepalive_server(interval: u64, timeout: Option<u64>) -> Connection {
    let config = Config::default()
        .with_keepalive(Some(SECOND * interval as u32), timeout.map(|t| SECOND * t as u32))
        .with_close_timeout(Some(SECOND * 10));
    Connection::new(Role::Server, config)
}

// ---- keepalive ----

#[test]
fn no_timer_runs_before_time_is_handed_in_or_when_none_is_configured() {
    let conn = keepalive_server(20, Some(20));
    assert_eq!(conn.poll_timeout(), None, "no instant known yet");
    let mut plain = Connection::new(Role::Server, Config::default());
    plain.handle_timeout(Instant::now());
    assert_eq!(plain.poll_timeout(), None);
    assert!(output(&mut plain).is_empty());
}

/// Found by the `proto_lifecycle` fuzz target: with a zero `ping_interval` and no
/// `ping_timeout`, `handle_timeout` sent pings forever without returning.
#[test]
fn a_zero_ping_interval_pings_at_most_once_a_millisecond_and_handle_timeout_returns() {
    let t0 = Instant::now();
    let config = Config::default().with_keepalive(Some(Duration::ZERO), None);
    let mut server = Connection::new(Role::Server, config);
    server.handle_timeout(t0);
    assert_eq!(server.poll_timeout(), Some(t0 + Duration::from_millis(1)));
    server.handle_timeout(t0 + Duration::from_millis(1));
    assert_eq!(output(&mut server), [0x89, 4, 0, 0, 0, 1], "one ping");
    assert_eq!(server.poll_timeout(), Some(t0 + Duration::from_millis(2)));
    server.handle_timeout(t0 + Duration::from_millis(2));
    assert_eq!(output(&mut server), [0x89, 4, 0, 0, 0, 2], "the next one a millisecond later");
}

#[test]
fn keepalive_pings_every_interval_and_measures_the_round_trip() {
    let t0 = Instant::now();
    let mut server = keepalive_server(20, Some(20));
    server.handle_timeout(t0);
    assert_eq!(server.poll_timeout(), Some(t0 + 20 * SECOND));
    server.handle_timeout(t0 + 19 * SECOND);
    assert!(output(&mut server).is_empty(), "nothing due before the interval");

    let sent = t0 + 20 * SECOND;
    server.handle_timeout(sent);
    let frames = server_frames(&output(&mut server));
    assert_eq!(frames.len(), 1);
    let (opcode, payload) = &frames[0];
    assert_eq!(*opcode, 0x89, "a ping");
    assert_eq!(server.poll_timeout(), Some(sent + 20 * SECOND), "its pong is due within ping_timeout");

    // The pong arrives; the round trip is measured at the next instant handed in.
    feed(&mut server, &client_frame(0x8A, payload)).unwrap();
    assert_eq!(server.next_event(), Some(Event::Pong(Bytes::copy_from_slice(payload))));
    assert!(server.poll_timeout().is_some_and(|at| at <= sent), "wants the time now");
    server.handle_timeout(sent + Duration::from_millis(35));
    assert_eq!(server.latency(), Some(Duration::from_millis(35)));
    assert_eq!(server.poll_timeout(), Some(sent + 20 * SECOND), "next ping an interval after the last");

    server.handle_timeout(sent + 20 * SECOND);
    let frames = server_frames(&output(&mut server));
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0, 0x89);
    assert_ne!(&frames[0].1, payload, "each ping has its own payload");
    assert_eq!(server.state(), State::Open);
}

#[test]
fn a_missing_pong_fails_the_connection_with_1011() {
    let t0 = Instant::now();
    let mut server = keepalive_server(20, Some(10));
    server.handle_timeout(t0);
    server.handle_timeout(t0 + 20 * SECOND);
    let _ping = output(&mut server);
    // An unrelated pong does not count.
    feed(&mut server, &client_frame(0x8A, b"other")).unwrap();
    server.handle_timeout(t0 + 29 * SECOND);
    assert_eq!(server.state(), State::Open);
    server.handle_timeout(t0 + 30 * SECOND);
    assert_eq!(server.state(), State::Closed);
    let frames = server_frames(&output(&mut server));
    assert_eq!(frames, [(0x88, close_payload(1011, "keepalive ping timeout"))]);
    let closure = server.closure().expect("closed");
    assert_eq!(closure.cause, Some(Cause::KeepaliveTimeout));
    assert_eq!(closure.code(), CloseCode::ABNORMAL, "no close frame from the peer");
    assert!(!closure.is_ok());
    assert!(server.should_close_transport(), "a failed connection closes at once");
    assert_eq!(server.send_text("late"), Err(SendError::Closed));
}

#[test]
fn without_ping_timeout_keepalive_keeps_pinging() {
    let t0 = Instant::now();
    let mut server = keepalive_server(5, None);
    server.handle_timeout(t0);
    for n in 1..=3u32 {
        server.handle_timeout(t0 + 5 * SECOND * n);
        let frames = server_frames(&output(&mut server));
        assert_eq!(frames.len(), 1, "ping {n}");
        assert_eq!(frames[0].0, 0x89);
    }
    assert_eq!(server.state(), State::Open);
}

#[test]
fn keepalive_stops_once_the_closing_handshake_starts() {
    let t0 = Instant::now();
    let mut server = keepalive_server(5, Some(5));
    server.handle_timeout(t0);
    server.close(CloseCode::NORMAL, "").unwrap();
    let _close = output(&mut server);
    server.handle_timeout(t0 + 6 * SECOND);
    assert!(output(&mut server).is_empty(), "no ping after a close frame");
    assert_eq!(server.state(), State::Closing);
}

// ---- closing timeout ----

#[test]
fn a_closing_handshake_the_peer_never_answers_ends_at_close_timeout() {
    let t0 = Instant::now();
    let mut server = keepalive_server(20, Some(20));
    server.handle_timeout(t0);
    let t1 = t0 + 3 * SECOND;
    server.close(CloseCode::NORMAL, "bye").unwrap();
    assert!(server.poll_timeout().is_some_and(|at| at <= t1), "the deadline starts at the next instant");
    server.handle_timeout(t1);
    assert_eq!(server.poll_timeout(), Some(t1 + 10 * SECOND));
    server.handle_timeout(t1 + 10 * SECOND - Duration::from_millis(1));
    assert_eq!(server.state(), State::Closing);
    assert!(!server.should_close_transport());
    server.handle_timeout(t1 + 10 * SECOND);
    assert_eq!(server.state(), State::Closed);
    let closure = server.closure().expect("closed");
    assert_eq!(closure.cause, Some(Cause::CloseTimeout));
    assert_eq!(closure.sent, Some(Some(CloseFrame::new(1000, "bye"))));
    assert!(server.should_close_transport());
}

#[test]
fn a_client_waits_for_the_server_to_close_the_transport_up_to_close_timeout() {
    let t0 = Instant::now();
    let config = Config::default().with_close_timeout(Some(SECOND * 10));
    let mut client = Connection::new(Role::Client, config);
    client.handle_timeout(t0);
    feed(&mut client, &server_frame(0x88, &close_payload(1000, ""))).unwrap();
    assert_eq!(client.state(), State::Closed);
    assert!(client.closure().is_some_and(|c| c.is_ok()));
    assert!(!client.should_close_transport(), "RFC 6455 §7.1.1: the server closes first");
    client.handle_timeout(t0 + SECOND);
    client.handle_timeout(t0 + 11 * SECOND);
    assert!(client.should_close_transport(), "the server did not: the client does");
    assert!(client.closure().is_some_and(|c| c.is_ok() && c.cause.is_none()), "still a normal closure");

    // The server side of the same exchange closes the transport at once.
    let mut server = Connection::new(Role::Server, Config::default());
    feed(&mut server, &client_frame(0x88, &close_payload(1000, ""))).unwrap();
    assert!(server.should_close_transport());

    // A client that sees EOF is done.
    let mut client = Connection::new(Role::Client, Config::default());
    feed(&mut client, &server_frame(0x88, &close_payload(1001, ""))).unwrap();
    assert!(!client.should_close_transport());
    client.receive_eof();
    assert!(client.should_close_transport());
    assert!(client.closure().is_some_and(|c| c.is_ok()), "EOF after the handshake is the normal end");
}

// ---- one state ----

/// Found by the `tokio_driver` fuzz target: after EOF, output the peer does not read was
/// waited for forever. It gets `close_timeout`, as the closing handshake does.
#[test]
fn eof_starts_the_close_timeout_for_output_still_unwritten() {
    let t0 = Instant::now();
    let config = Config::default().with_close_timeout(Some(SECOND));
    let mut server = Connection::new(Role::Server, config);
    server.handle_timeout(t0);
    server.send_text("unread").unwrap();
    server.receive_eof();
    assert!(server.should_close_transport() && server.wants_write());
    server.handle_timeout(t0);
    assert_eq!(server.poll_timeout(), Some(t0 + SECOND));
    assert!(!server.closing_timed_out());
    server.handle_timeout(t0 + SECOND);
    assert!(server.closing_timed_out(), "the transport may be closed without the unread output");
    assert_eq!(server.close_code(), Some(CloseCode::ABNORMAL));
}

#[test]
fn after_eof_nothing_can_be_sent_and_the_state_stays_closed() {
    let mut server = Connection::new(Role::Server, Config::default());
    server.receive_eof();
    assert_eq!(server.close(CloseCode::NORMAL, ""), Err(SendError::Closed));
    assert_eq!(server.state(), State::Closed, "close() after EOF does not reopen the handshake");
    assert_eq!(server.send_text("x"), Err(SendError::Closed));
    assert_eq!(server.send_ping(""), Err(SendError::Closed));
    assert!(output(&mut server).is_empty());
    let closure = server.closure().expect("closed");
    assert_eq!(closure.cause, Some(Cause::TransportClosed));
    assert_eq!(closure.code(), CloseCode::ABNORMAL);
}

#[test]
fn a_second_close_is_refused_and_sends_nothing() {
    let mut server = Connection::new(Role::Server, Config::default());
    server.close(CloseCode::NORMAL, "").unwrap();
    let _ = output(&mut server);
    assert_eq!(server.close(CloseCode::GOING_AWAY, ""), Err(SendError::Closed));
    assert!(output(&mut server).is_empty());
}

#[test]
fn eof_during_the_closing_handshake_is_abnormal_but_keeps_what_was_sent() {
    let mut server = Connection::new(Role::Server, Config::default());
    server.close(CloseCode::NORMAL, "bye").unwrap();
    server.receive_eof();
    let closure = server.closure().expect("closed").clone();
    assert_eq!(closure.sent, Some(Some(CloseFrame::new(1000, "bye"))));
    assert_eq!(closure.received, None);
    assert_eq!(closure.cause, Some(Cause::TransportClosed));
    assert!(!closure.is_ok());
}

#[test]
fn the_failure_is_read_as_often_as_asked() {
    let mut server = Connection::new(Role::Server, Config::default());
    assert!(feed(&mut server, &client_frame(0x83, b"")).is_err());
    for _ in 0..3 {
        assert_eq!(server.failure(), Some(&ProtocolError::ReservedOpcode(3)));
        assert_eq!(
            server.closure().and_then(|c| c.cause.clone()),
            Some(Cause::Protocol(ProtocolError::ReservedOpcode(3)))
        );
    }
    assert!(server.should_close_transport());
}

#[test]
fn normal_closure_codes_are_1000_1001_and_no_code() {
    for (code, ok) in
        [(Some(1000), true), (Some(1001), true), (None, true), (Some(1011), false), (Some(4000), false)]
    {
        let mut server = Connection::new(Role::Server, Config::default());
        let payload = code.map_or_else(Vec::new, |c| close_payload(c, ""));
        feed(&mut server, &client_frame(0x88, &payload)).unwrap();
        assert_eq!(server.closure().map(|c| c.is_ok()), Some(ok), "peer's code {code:?}");
    }
    // This end's code counts too.
    let mut server = Connection::new(Role::Server, Config::default());
    server.close(CloseCode(4000), "").unwrap();
    feed(&mut server, &client_frame(0x88, &close_payload(1000, ""))).unwrap();
    assert_eq!(server.closure().map(|c| c.is_ok()), Some(false));
}

#[test]
fn a_close_reason_over_123_bytes_is_refused() {
    let mut server = Connection::new(Role::Server, Config::default());
    let long = "é".repeat(62); // 124 bytes
    assert_eq!(server.close(CloseCode::NORMAL, &long), Err(SendError::CloseReasonTooLong(124)));
    assert_eq!(server.state(), State::Open);
    server.close(CloseCode::NORMAL, &long[..122]).unwrap();
}

/// Fails every incoming frame with an internal error whose text must stay private.
#[derive(Debug)]
struct Broken;

impl Extension for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn rsv(&self) -> Rsv {
        Rsv::NONE
    }
    fn encode(&mut self, _frame: &mut Frame) -> Result<(), ExtensionError> {
        Ok(())
    }
    fn decode(&mut self, _frame: &mut Frame, _max: Option<usize>) -> Result<(), ExtensionError> {
        Err(ExtensionError::Internal("secret key 1234 not loaded".into()))
    }
}

#[test]
fn an_internal_failure_sends_1011_without_its_text() {
    let mut server = Connection::new(Role::Server, Config::default()).with_extensions(vec![Box::new(Broken)]);
    let err = feed(&mut server, &client_frame(0x81, b"hi")).unwrap_err();
    assert_eq!(err.close_code(), CloseCode::INTERNAL_ERROR);
    assert_eq!(server_frames(&output(&mut server)), [(0x88, close_payload(1011, ""))]);

    // A protocol error keeps its reason, as in Python `websockets`.
    let mut server = Connection::new(Role::Server, Config::default());
    assert!(feed(&mut server, &client_frame(0x83, b"")).is_err());
    let frames = server_frames(&output(&mut server));
    assert_eq!(frames[0].1[..2], 1002u16.to_be_bytes());
    assert!(frames[0].1.len() > 2);
}

#[test]
fn control_frames_are_counted_as_they_arrive() {
    let mut server = Connection::new(Role::Server, Config::default());
    let mut bytes = client_frame(0x81, b"text");
    bytes.extend(client_frame(0x89, b"ping"));
    bytes.extend(client_frame(0x8A, b"pong"));
    feed(&mut server, &bytes).unwrap();
    assert_eq!(server.control_frames_received(), 2);
    assert_eq!(server.pending_events(), 3, "the count is of arrivals: events still wait");
    feed(&mut server, &client_frame(0x88, &close_payload(1000, ""))).unwrap();
    assert_eq!(server.control_frames_received(), 3);
}
