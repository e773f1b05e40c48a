//! The `ws-proto` close/timer state machine under random event orders: a `Connection` and a
//! peer `Connection` of the other role exchange messages, pings, close frames, junk and EOF
//! while time jumps by arbitrary amounts. Replayed by `crates/ws-proto/tests/fuzz_replay.rs`.
//!
//! Input layout: byte 0 = role, auto-pong and message limit; byte 1 = `ping_interval`,
//! `ping_timeout` and `close_timeout` (2 bits each, from [`DURATIONS`]); then operations, one
//! byte each (its value modulo the number of operations) followed by their arguments.
//!
//! Invariants checked after every operation:
//! * the state only moves forward (open, closing, closed), and once closed, how it ended
//!   ([`Closure`]) never changes and no event arrives any more;
//! * sending, pinging and closing are refused once the connection is not open;
//! * once the close frame has been written out, nothing more is ever written;
//! * `poll_timeout` is never before the latest instant handed in, and right after
//!   `handle_timeout(now)` it is after `now` (every deadline that passed was acted on);
//! * `close_timeout` after the closing handshake started, the connection is closed and the
//!   transport may be closed;
//! * messages from the well-behaved peer arrive whole and in order (unless junk was injected),
//!   and everything this end writes is valid for the peer (the peer never fails).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ws_proto::{Buf, BytesMut, CloseCode, Closure, Config, Connection, Event, Message, Role, State};

use crate::input::Input;

/// Timeouts picked by byte 1: off, zero, short, long.
pub const DURATIONS: [Option<Duration>; 4] =
    [None, Some(Duration::ZERO), Some(Duration::from_millis(5)), Some(Duration::from_secs(20))];

/// How far time jumps, picked by an argument byte.
const STEPS: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_millis(1),
    Duration::from_millis(5),
    Duration::from_secs(1),
    Duration::from_secs(20),
    Duration::from_secs(60),
    Duration::from_secs(3600),
];

const MAX_SIZES: [Option<usize>; 4] = [None, Some(0), Some(125), Some(4096)];

const CODES: [u16; 8] = [1000, 1001, 1002, 1005, 1006, 1011, 3000, 4999];

fn rank(state: State) -> u8 {
    match state {
        State::Open => 0,
        State::Closing => 1,
        State::Closed => 2,
    }
}

fn drain(conn: &mut Connection, into: &mut Vec<u8>) {
    let out = conn.transmit();
    while out.has_remaining() {
        let chunk = out.chunk();
        into.extend_from_slice(chunk);
        let n = chunk.len();
        out.advance(n);
    }
}

/// What the harness knows about the connection under test.
struct Watch {
    state: State,
    closure: Option<Closure>,
    /// The close frame was written out: nothing may follow.
    sealed: bool,
    /// The latest instant handed in.
    now: Option<Instant>,
    /// The closing handshake started; its deadline runs from the next instant handed in.
    close_started: bool,
    close_armed_at: Option<Instant>,
    /// Junk went in: the peer's messages are no longer expected to arrive intact.
    tainted: bool,
}

/// Runs `data` (laid out as the module doc says). Panics on a violated invariant.
pub fn run(data: &[u8]) {
    let [options, timing, ops @ ..] = data else {
        return;
    };
    let role = if options & 1 == 0 { Role::Server } else { Role::Client };
    let peer_role = if role == Role::Server { Role::Client } else { Role::Server };
    let max_size = MAX_SIZES[usize::from(options >> 2 & 3)];
    let close_timeout = DURATIONS[usize::from(timing >> 4 & 3)];
    let config = Config::default()
        .with_auto_pong(options & 2 == 0)
        .with_max_size(max_size)
        .with_keepalive(DURATIONS[usize::from(timing & 3)], DURATIONS[usize::from(timing >> 2 & 3)])
        .with_close_timeout(close_timeout);
    let mut conn = Connection::new(role, config).with_mask_seed([0x5a; 32]);
    let mut peer =
        Connection::new(peer_role, Config::default().with_max_size(None)).with_mask_seed([0xa5; 32]);

    let mut input = Input(ops);
    let start = Instant::now();
    let mut now = start;
    // Bytes written by one side, not yet delivered to the other.
    let mut to_conn = Vec::new();
    let mut to_peer = Vec::new();
    let (mut conn_buf, mut peer_buf) = (BytesMut::new(), BytesMut::new());
    // What the peer sent that the connection has not received yet.
    let mut expected: VecDeque<Message> = VecDeque::new();
    let mut sent_close: Option<u16> = None;
    let mut watch = Watch {
        state: State::Open,
        closure: None,
        sealed: false,
        now: None,
        close_started: false,
        close_armed_at: None,
        tainted: false,
    };

    handle_timeout(&mut conn, &mut watch, now, close_timeout);

    for _ in 0..256 {
        if input.0.is_empty() {
            break;
        }
        let open = conn.state() == State::Open;
        let op = input.byte() % 14;
        match op {
            0 => {
                let n = usize::from(input.byte());
                let payload = input.bytes(n).to_vec();
                let result = match String::from_utf8(payload) {
                    Ok(text) => conn.send_text(text),
                    Err(e) => conn.send_binary(e.into_bytes()),
                };
                assert!(open || result.is_err(), "a message accepted while not open");
            }
            1 => {
                let n = usize::from(input.byte() % 130);
                let result = conn.send_ping(input.bytes(n).to_vec());
                assert!(open || result.is_err(), "a ping accepted while not open");
            }
            2 => {
                let code = CODES[usize::from(input.byte() % 8)];
                let n = usize::from(input.byte() % 130);
                let reason = "r".repeat(n);
                let result = conn.close(CloseCode(code), &reason);
                assert!(open || result.is_err(), "a close accepted while not open");
                if result.is_ok() {
                    sent_close = Some(code);
                }
            }
            3 => {
                now += STEPS[usize::from(input.byte() % 8)];
                handle_timeout(&mut conn, &mut watch, now, close_timeout);
                peer.handle_timeout(now);
            }
            4 => {
                if let Some(at) = conn.poll_timeout() {
                    now = now.max(at);
                    handle_timeout(&mut conn, &mut watch, now, close_timeout);
                }
            }
            5 => {
                let n = usize::from(input.byte());
                let payload = input.bytes(n).to_vec();
                let message = match String::from_utf8(payload) {
                    Ok(text) => Message::text(text),
                    Err(e) => Message::binary(e.into_bytes()),
                };
                if peer.send(message.clone()).is_ok() {
                    expected.push_back(message);
                }
                drain(&mut peer, &mut to_conn);
            }
            6 => {
                let arg = input.byte();
                let payload = input.bytes(usize::from(arg % 8)).to_vec();
                let _ = if arg & 0x80 == 0 { peer.send_ping(payload) } else { peer.send_pong(payload) };
                drain(&mut peer, &mut to_conn);
            }
            7 => {
                let code = CODES[usize::from(input.byte() % 8)];
                let _ = peer.close(CloseCode(code), "bye");
                drain(&mut peer, &mut to_conn);
            }
            8 => {
                // Deliver up to n bytes of the peer's output.
                let n = usize::from(input.byte()).min(to_conn.len());
                conn_buf.extend_from_slice(&to_conn[..n]);
                to_conn.drain(..n);
                let _ = conn.receive(&mut conn_buf);
            }
            9 => {
                drain(&mut conn, &mut to_peer);
                if conn.state() != State::Open {
                    watch.sealed = true;
                }
                let n = usize::from(input.byte()).min(to_peer.len());
                peer_buf.extend_from_slice(&to_peer[..n]);
                to_peer.drain(..n);
                let result = peer.receive(&mut peer_buf);
                assert!(result.is_ok(), "our output is invalid: {result:?}");
                while peer.next_event().is_some() {}
                drain(&mut peer, &mut to_conn);
            }
            10 => {
                let n = usize::from(input.byte() % 32);
                conn_buf.extend_from_slice(input.bytes(n));
                watch.tainted = true;
                let _ = conn.receive(&mut conn_buf);
            }
            11 => conn.receive_eof(),
            12 => conn.release_memory(),
            _ => {
                // The peer answers what it got so far (pongs, its close reply).
                drain(&mut peer, &mut to_conn);
            }
        }
        check(&mut conn, &mut watch, &mut expected, max_size);
        assert!(peer.failure().is_none(), "our output failed the peer: {:?}", peer.failure());
        if let Some(code) = sent_close {
            if let Some(Some(frame)) = conn.close_sent() {
                assert_eq!(frame.code, CloseCode(code), "the close frame sent changed");
            }
        }
    }
    conn.receive_eof();
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.should_close_transport());
    let code = conn.close_code();
    conn.handle_timeout(now + Duration::from_secs(3600));
    assert_eq!(conn.close_code(), code);
}

/// Hands `at` to the connection and checks the deadlines that follow from it.
fn handle_timeout(conn: &mut Connection, watch: &mut Watch, at: Instant, close_timeout: Option<Duration>) {
    conn.handle_timeout(at);
    watch.now = Some(at);
    if watch.close_started && watch.close_armed_at.is_none() {
        watch.close_armed_at = Some(at);
    }
    if let Some(next) = conn.poll_timeout() {
        assert!(next > at, "a deadline at or before the instant just handed in");
    }
    if let (Some(armed), Some(timeout)) = (watch.close_armed_at, close_timeout) {
        if at >= armed + timeout {
            assert_eq!(conn.state(), State::Closed, "still closing after close_timeout");
            assert!(conn.should_close_transport(), "transport kept after close_timeout");
        }
    }
}

fn check(
    conn: &mut Connection,
    watch: &mut Watch,
    expected: &mut VecDeque<Message>,
    max_size: Option<usize>,
) {
    let state = conn.state();
    assert!(rank(state) >= rank(watch.state), "state went back from {:?} to {state:?}", watch.state);
    let was_closed = watch.state == State::Closed;
    if state != State::Open && watch.state == State::Open {
        watch.close_started = true;
    }
    watch.state = state;
    match (&watch.closure, conn.closure()) {
        (Some(before), Some(now)) => assert_eq!(before, now, "the closure changed"),
        (Some(_), None) => panic!("the closure went away"),
        (None, now) => {
            watch.closure = now.cloned();
            assert_eq!(now.is_some(), state == State::Closed);
        }
    }
    if let (Some(latest), Some(next)) = (watch.now, conn.poll_timeout()) {
        assert!(next >= latest, "poll_timeout before the latest instant handed in");
    }
    if watch.sealed {
        assert!(!conn.wants_write(), "bytes written after the close frame");
    }
    while let Some(event) = conn.next_event() {
        assert!(!was_closed, "an event after the connection closed: {event:?}");
        match event {
            Event::Message(message) => {
                if let Some(max) = max_size {
                    assert!(message.len() <= max);
                }
                if !watch.tainted {
                    assert_eq!(expected.pop_front().as_ref(), Some(&message), "a message lost or changed");
                }
            }
            Event::Close(_) => assert_ne!(conn.state(), State::Open),
            Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
            _ => {}
        }
    }
}
