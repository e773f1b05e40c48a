//! Property tests: the header codec round-trips, a client and a server agree on any message
//! stream cut anywhere, arbitrary input never panics nor buffers without bound, and incremental
//! UTF-8 validation agrees with `std::str::from_utf8` wherever the fragments are cut.

use proptest::prelude::*;
use ws_proto::{
    Buf, Bytes, BytesMut, Config, Connection, Event, Frame, FrameHeader, HeaderParse, MAX_HEADER_LEN,
    Message, OpCode, ProtocolError, Role, Rsv, State,
};

// ---- helpers ----

/// Drains a connection's output into one contiguous buffer.
fn drain(conn: &mut Connection) -> Vec<u8> {
    let out = conn.transmit();
    out.copy_to_bytes(out.remaining()).to_vec()
}

/// Cuts `len` bytes into consecutive ranges at the given cut points (taken modulo `len + 1`,
/// sorted, duplicates allowed: empty chunks are fine).
fn cut(len: usize, cuts: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    points.sort_unstable();
    let mut ranges = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for p in points.into_iter().chain(Some(len)) {
        ranges.push(start..p);
        start = p;
    }
    ranges
}

/// Feeds `wire` to `conn` in the chunks `cuts` gives, through one reused buffer, collecting the
/// events; stops at the first error.
fn feed_in_chunks(
    conn: &mut Connection,
    wire: &[u8],
    cuts: &[usize],
) -> (Vec<Event>, Result<(), ProtocolError>) {
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    for range in cut(wire.len(), cuts) {
        buf.extend_from_slice(&wire[range]);
        let result = conn.receive(&mut buf);
        events.extend(std::iter::from_fn(|| conn.next_event()));
        if result.is_err() {
            return (events, result);
        }
    }
    (events, Ok(()))
}

// ---- (a) header codec ----

fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

/// A payload length in one of the three wire forms, with the form's edges well represented.
fn payload_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..=125,
        prop_oneof![Just(126u64), Just(127), Just(0xFFFF), 126u64..=0xFFFF],
        prop_oneof![Just(0x1_0000u64), Just(u64::MAX >> 1), 0x1_0000u64..=u64::MAX >> 1],
    ]
}

/// Any header the parser accepts: control frames are final and at most 125 bytes long.
fn header() -> impl Strategy<Value = FrameHeader> {
    (opcode(), any::<bool>(), 0u8..8, any::<Option<[u8; 4]>>(), payload_len()).prop_map(
        |(opcode, fin, rsv, mask, len)| FrameHeader {
            fin: fin || opcode.is_control(),
            rsv: Rsv::from_bits(rsv << 4),
            opcode,
            mask,
            payload_len: if opcode.is_control() { len % 126 } else { len },
        },
    )
}

proptest! {
    #[test]
    fn header_round_trips(h in header(), trailing in proptest::collection::vec(any::<u8>(), 0..8)) {
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut head);
        let form = match h.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        prop_assert_eq!(n, form + if h.mask.is_some() { 4 } else { 0 });

        // The header alone, and the header followed by payload bytes, parse back the same.
        prop_assert_eq!(FrameHeader::parse(&head[..n]), Ok(HeaderParse::Complete(h, n)));
        let mut longer = head[..n].to_vec();
        longer.extend_from_slice(&trailing);
        prop_assert_eq!(FrameHeader::parse(&longer), Ok(HeaderParse::Complete(h, n)));

        // Every strict prefix is incomplete and asks for at least one byte, never more than
        // the header still lacks.
        for at in 0..n {
            match FrameHeader::parse(&head[..at]) {
                Ok(HeaderParse::Incomplete(more)) => prop_assert!(more >= 1 && at + more <= n),
                other => prop_assert!(false, "prefix of {} bytes gave {:?}", at, other),
            }
        }
    }

    #[test]
    fn header_parse_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
        if let Ok(HeaderParse::Complete(h, n)) = FrameHeader::parse(&bytes) {
            prop_assert!(n <= bytes.len() && n <= MAX_HEADER_LEN);
            // A parsed header encodes back to the same bytes whenever the sender used the
            // shortest length form (the only form this encoder writes).
            let mut head = [0u8; MAX_HEADER_LEN];
            let m = h.encode(&mut head);
            if m == n {
                prop_assert_eq!(&head[..m], &bytes[..n]);
            }
        }
    }
}

// ---- (b) client to server ----

/// One message as the client sends it: its payload and where to cut it into fragments (none:
/// one frame), and whether to slip a ping in after each fragment but the last.
#[derive(Debug, Clone)]
struct Outgoing {
    message: Message,
    cuts: Option<Vec<usize>>,
    pings: bool,
}

fn payload_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..300),
        // Around the 16-bit and 64-bit length forms, without generating every byte.
        1 => (prop_oneof![120usize..130, 65_530usize..65_540], any::<u8>())
            .prop_map(|(len, seed)| (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()),
    ]
}

fn outgoing() -> impl Strategy<Value = Outgoing> {
    let message = prop_oneof![
        any::<String>().prop_map(Message::text),
        "[a-zé€𝄞]{0,200}".prop_map(Message::text),
        payload_bytes().prop_map(Message::binary),
    ];
    let cuts = proptest::option::of(proptest::collection::vec(any::<usize>(), 0..6));
    (message, cuts, any::<bool>()).prop_map(|(message, cuts, pings)| Outgoing { message, cuts, pings })
}

/// Queues `out` on the client, fragmented as asked; returns the pings it slipped in.
fn send(client: &mut Connection, out: &Outgoing) -> Vec<Bytes> {
    let mut pings = Vec::new();
    let Some(cuts) = &out.cuts else {
        client.send(out.message.clone()).expect("an open client sends");
        return pings;
    };
    let (first, payload) = match &out.message {
        Message::Text(text) => (OpCode::Text, text.as_bytes().clone()),
        Message::Binary(data) => (OpCode::Binary, data.clone()),
    };
    let ranges = cut(payload.len(), cuts);
    let last = ranges.len() - 1;
    for (i, range) in ranges.into_iter().enumerate() {
        let opcode = if i == 0 { first } else { OpCode::Continuation };
        client.send_frame(Frame::new(opcode, payload.slice(range), i == last)).expect("fragments in order");
        if out.pings && i != last {
            let ping = Bytes::from(format!("ping {i}"));
            client.send_ping(ping.clone()).expect("a short ping");
            pings.push(ping);
        }
    }
    pings
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn server_receives_what_client_sends(
        messages in proptest::collection::vec(outgoing(), 0..8),
        wire_cuts in proptest::collection::vec(any::<usize>(), 0..16),
        seed in any::<[u8; 32]>(),
    ) {
        let mut client = Connection::new(Role::Client, Config::default()).with_mask_seed(seed);
        let mut server = Connection::new(Role::Server, Config::default());
        let mut expected = Vec::new();
        for out in &messages {
            expected.extend(send(&mut client, out).into_iter().map(Event::Ping));
            expected.push(Event::Message(out.message.clone()));
        }
        let wire = drain(&mut client);
        let (events, result) = feed_in_chunks(&mut server, &wire, &wire_cuts);
        prop_assert_eq!(result, Ok(()));
        prop_assert_eq!(events, expected);
        prop_assert_eq!(server.state(), State::Open);
    }
}

// ---- (c) arbitrary input ----

/// Input that looks like frames often enough to get past the header checks: a mix of frames
/// with arbitrary first bytes, the given masking and short random payloads, and raw garbage.
fn frame_soup(masked: bool) -> impl Strategy<Value = Vec<u8>> {
    let frame = (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..140), any::<[u8; 4]>(), 0u8..10)
        .prop_map(move |(b0, payload, key, mode)| {
            let b0 = if mode < 6 { b0 & 0x8F } else { b0 };
            let mut out = vec![b0];
            let mask_bit = if masked == (mode != 9) { 0x80 } else { 0 };
            match payload.len() {
                n @ 0..=125 => out.push(mask_bit | n as u8),
                n => {
                    out.push(mask_bit | 126);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                }
            }
            if mask_bit != 0 {
                out.extend_from_slice(&key);
            }
            out.extend_from_slice(&payload);
            out
        });
    let garbage = proptest::collection::vec(any::<u8>(), 0..40);
    proptest::collection::vec(prop_oneof![6 => frame, 1 => garbage], 0..12).prop_map(|parts| parts.concat())
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Server), Just(Role::Client)]
}

fn input_for(role: Role) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..600), frame_soup(role == Role::Server),].boxed()
}

/// Feeds `wire` in chunks, checking after every `receive` that the buffer holds at most one
/// partial frame, bounded by the frame limit; never panics whatever the input.
fn receive_arbitrary(role: Role, max_frame: usize, wire: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let config = Config::default().with_max_frame_size(Some(max_frame));
    let mut conn = Connection::new(role, config).with_mask_seed([1; 32]);
    let mut buf = BytesMut::new();
    for range in cut(wire.len(), cuts) {
        buf.extend_from_slice(&wire[range]);
        let result = conn.receive(&mut buf);
        prop_assert!(buf.len() <= max_frame + MAX_HEADER_LEN, "{} bytes held after receive", buf.len());
        while let Some(event) = conn.next_event() {
            if let Event::Message(Message::Text(text)) = event {
                prop_assert!(std::str::from_utf8(text.as_bytes()).is_ok());
            }
        }
        let out = conn.transmit();
        out.advance(out.remaining());
        match result {
            Ok(()) if conn.failure().is_none() && conn.close_received().is_none() => {
                // What is left is one incomplete frame.
                match FrameHeader::parse(&buf) {
                    Ok(HeaderParse::Incomplete(_)) => {}
                    Ok(HeaderParse::Complete(h, n)) => {
                        prop_assert!((n as u64) + h.payload_len > buf.len() as u64)
                    }
                    Err(e) => prop_assert!(false, "an invalid header was left in the buffer: {:?}", e),
                }
            }
            Ok(()) => prop_assert!(buf.is_empty()),
            Err(e) => {
                prop_assert_eq!(conn.state(), State::Closed);
                prop_assert_eq!(conn.failure(), Some(&e));
            }
        }
    }
    conn.receive_eof();
    prop_assert_eq!(conn.state(), State::Closed);
    prop_assert!(conn.close_code().is_some());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_input_never_panics_nor_overbuffers(
        (role, wire) in role().prop_flat_map(|role| (Just(role), input_for(role))),
        max_frame in prop_oneof![0usize..200, Just(1 << 20)],
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        receive_arbitrary(role, max_frame, &wire, &cuts)?;
    }
}

// ---- (d) incremental UTF-8 ----

/// Byte strings that are valid UTF-8, or nearly: text with a few bytes flipped, inserted or cut.
fn nearly_utf8() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![any::<String>(), "[a-zé€𝄞\u{10FFFF}\u{FFFD}]{0,40}"].prop_map(String::into_bytes);
    let edit = (any::<usize>(), any::<u8>(), 0u8..3);
    prop_oneof![
        2 => text.clone(),
        3 => (text, proptest::collection::vec(edit, 1..3)).prop_map(|(mut bytes, edits)| {
            for (at, byte, kind) in edits {
                let at = at % (bytes.len() + 1);
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => bytes.truncate(at),
                }
            }
            bytes
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn utf8_validation_agrees_with_std(bytes in nearly_utf8(), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        let mut client = Connection::new(Role::Client, Config::default()).with_mask_seed([2; 32]);
        let mut server = Connection::new(Role::Server, Config::default());
        let payload = Bytes::from(bytes.clone());
        let ranges = cut(payload.len(), &cuts);
        let last = ranges.len() - 1;

        // One frame per fragment, each received on its own, so a failure names its fragment.
        let mut failed_on = None;
        let mut events = Vec::new();
        for (i, range) in ranges.iter().enumerate() {
            let opcode = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            client.send_frame(Frame::new(opcode, payload.slice(range.clone()), i == last)).unwrap();
            let mut wire = BytesMut::from(&drain(&mut client)[..]);
            let result = server.receive(&mut wire);
            events.extend(std::iter::from_fn(|| server.next_event()));
            if let Err(e) = result {
                prop_assert_eq!(e, ProtocolError::InvalidUtf8);
                failed_on = Some(i);
                break;
            }
        }

        match std::str::from_utf8(&bytes) {
            Ok(text) => {
                prop_assert_eq!(failed_on, None);
                prop_assert_eq!(events, vec![Event::Message(Message::text(text))]);
            }
            Err(e) => {
                prop_assert!(events.is_empty());
                let Some(i) = failed_on else {
                    return Err(TestCaseError::fail("invalid UTF-8 was accepted"));
                };
                let range = &ranges[i];
                match e.error_len() {
                    // Truncated at the end: only the final fragment can tell.
                    None => prop_assert_eq!(i, last),
                    Some(n) => {
                        // Fails fast: not before the invalid sequence starts arriving, and no
                        // later than the fragment carrying the byte that makes it invalid.
                        let decisive = (e.valid_up_to() + n).min(bytes.len() - 1);
                        prop_assert!(range.end > e.valid_up_to(), "failed early: {:?} for {:?}", range, e);
                        prop_assert!(range.start <= decisive, "failed late: {:?} for {:?}", range, e);
                    }
                }
            }
        }
    }
}

// ---- (e) the fast path agrees with the general one ----

/// One frame as a peer might send it, valid or not: the cases the fast path for whole text and
/// binary messages takes, and every case it must leave to the general path.
fn wire_frame() -> impl Strategy<Value = Vec<u8>> {
    let payload = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..140),
        4 => "[a-z é€]{0,60}".prop_map(String::into_bytes),
        1 => (126usize..400).prop_map(|n| vec![b'x'; n]),
    ];
    (0u8..16, any::<bool>(), 0u8..8, any::<bool>(), payload, any::<[u8; 4]>(), any::<bool>()).prop_map(
        |(opcode, fin, rsv, masked, payload, key, long_form)| {
            let mut wire = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
            let mask_bit = if masked { 0x80 } else { 0 };
            match payload.len() {
                // A 16-bit length for a short payload too, now and then (not minimal, but valid).
                n @ 0..=125 if !long_form => wire.push(mask_bit | n as u8),
                n => {
                    wire.push(mask_bit | 126);
                    wire.extend_from_slice(&(n as u16).to_be_bytes());
                }
            }
            let mut payload = payload;
            if masked {
                wire.extend_from_slice(&key);
                ws_proto::apply_mask(&mut payload, key);
            }
            wire.extend_from_slice(&payload);
            wire
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Fed whole, most frames go through the fast path; fed a byte at a time, every frame with
    /// a payload is partial first and goes through the general path. Both must give the same
    /// events and the same error, under a frame limit that some frames exceed, on either side
    /// of the connection.
    #[test]
    fn fast_path_agrees_with_general_path(
        server in any::<bool>(),
        frames in proptest::collection::vec(prop_oneof![
            6 => wire_frame().prop_map(|wire| (wire, None)),
            // Mostly the frames the fast path is for: final, text or binary, masked as the
            // receiving side requires (the key is used only by a server).
            4 => (prop_oneof![Just(1u8), Just(2u8)], proptest::collection::vec(any::<u8>(), 0..130), any::<[u8; 4]>())
                .prop_map(|(opcode, payload, key)| {
                    (vec![0x80 | opcode, payload.len() as u8], Some((payload, key)))
                }),
        ], 0..12),
    ) {
        let wire: Vec<u8> = frames
            .into_iter()
            .flat_map(|(mut wire, plain)| {
                if let Some((mut payload, key)) = plain {
                    if server {
                        wire[1] |= 0x80;
                        wire.extend_from_slice(&key);
                        ws_proto::apply_mask(&mut payload, key);
                    }
                    wire.extend_from_slice(&payload);
                }
                wire
            })
            .collect();
        let role = if server { Role::Server } else { Role::Client };
        let config = Config::default().with_max_size(Some(200));
        // The same masking keys on both, for a client's replies (a close frame) to compare.
        let mut whole = Connection::new(role, config.clone()).with_mask_seed([7; 32]);
        let mut bytewise = Connection::new(role, config).with_mask_seed([7; 32]);
        let all_cuts: Vec<usize> = (1..wire.len()).collect();
        let (events_whole, result_whole) = feed_in_chunks(&mut whole, &wire, &[]);
        let (events_bytewise, result_bytewise) = feed_in_chunks(&mut bytewise, &wire, &all_cuts);
        prop_assert_eq!(events_whole, events_bytewise);
        prop_assert_eq!(result_whole, result_bytewise);
        prop_assert_eq!(whole.state(), bytewise.state());
        prop_assert_eq!(drain(&mut whole), drain(&mut bytewise));
    }
}
