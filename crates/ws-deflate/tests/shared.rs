//! `Memory::Shared`, the memory-lean mode: negotiation, round trips through the per-thread
//! streams (single-frame, fragmented, interleaved between connections, across threads), and
//! interoperability with dedicated-mode peers.

use flate2::{Decompress, FlushDecompress};
use ws_deflate::{
    ClientPerMessageDeflateFactory, Memory, PerMessageDeflate, PerMessageDeflateConfig,
    ServerPerMessageDeflateFactory,
};
use ws_extensions::header::parse_extensions;
use ws_extensions::{
    Bytes, ClientExtensionFactory, Extension, ExtensionError, ExtensionParam, Frame, OpCode, Rsv,
    ServerExtensionFactory,
};

#[path = "support/json.rs"]
mod json;
use json::json;

fn lean_server() -> ServerPerMessageDeflateFactory {
    ServerPerMessageDeflateFactory { memory: Memory::Shared, ..Default::default() }
}

fn lean_client() -> ClientPerMessageDeflateFactory {
    ClientPerMessageDeflateFactory { memory: Memory::Shared, ..Default::default() }
}

fn params(s: &str) -> Vec<ExtensionParam> {
    let header =
        if s.is_empty() { "permessage-deflate".to_owned() } else { format!("permessage-deflate; {s}") };
    parse_extensions(&header).expect("valid header").remove(0).params
}

fn show(params: &[ExtensionParam]) -> String {
    params
        .iter()
        .map(|p| match &p.value {
            Some(v) => format!("{}={v}", p.name),
            None => p.name.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

type Pair = (Box<dyn Extension>, Box<dyn Extension>);

/// Negotiates `client` with `server`: (client extension, server extension).
fn connect(client: &ClientPerMessageDeflateFactory, server: &ServerPerMessageDeflateFactory) -> Pair {
    let offers = client.request_params();
    let (response, server_ext) = server.process_request_params(&offers[0], &[]).expect("server accepts");
    let client_ext = client.process_response_params(&response, &[]).expect("client accepts");
    (client_ext, server_ext)
}

/// The frames of `message`, split into `fragments` parts, before encoding.
fn frames(message: &[u8], fragments: usize) -> Vec<Frame> {
    let size = message.len().div_ceil(fragments).max(1);
    let mut chunks: Vec<&[u8]> = message.chunks(size).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let opcode = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            Frame::new(opcode, Bytes::copy_from_slice(chunk), i == last)
        })
        .collect()
}

/// Sends `message` from `tx` to `rx` in `fragments` frames, one frame at a time.
fn send(tx: &mut dyn Extension, rx: &mut dyn Extension, message: &[u8], fragments: usize) {
    let mut out = Vec::new();
    for mut frame in frames(message, fragments) {
        tx.encode(&mut frame).expect("encode");
        rx.decode(&mut frame, None).expect("decode");
        out.extend_from_slice(&frame.payload);
    }
    assert_eq!(out, message);
}

/// Inflates one message with a fresh raw inflater: what a peer that keeps no history sees.
fn inflate_alone(compressed: &[u8]) -> Vec<u8> {
    let mut input = compressed.to_vec();
    input.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    let mut inflater = Decompress::new_with_window_bits(false, 15);
    let mut out = Vec::with_capacity(1 << 20);
    inflater.decompress_vec(&input, &mut out, FlushDecompress::Sync).expect("inflate");
    out
}

#[test]
fn lean_server_imposes_no_context_takeover_on_any_offer() {
    let server = lean_server();
    let answer = |offer: &str| {
        let (response, _) = server.process_request_params(&params(offer), &[]).expect("accepted");
        show(&response)
    };
    // Python websockets' and this crate's default client offer (browsers offer the same).
    assert_eq!(
        answer("client_max_window_bits"),
        "server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; \
         client_max_window_bits=12"
    );
    // A bare offer: client_no_context_takeover may still be added (RFC 7692 §7.1.1.2), but not
    // client_max_window_bits (§7.1.2.2).
    assert_eq!(
        answer(""),
        "server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12"
    );
    assert_eq!(
        answer("server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10"),
        "server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; \
         client_max_window_bits=10"
    );
}

#[test]
fn lean_client_offers_no_context_takeover_both_ways() {
    let offer = lean_client().request_params();
    assert_eq!(
        show(&offer[0]),
        "server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
    );
    // The server must echo server_no_context_takeover (§7.1.1.1).
    let client = lean_client();
    assert!(client.process_response_params(&params("server_max_window_bits=12"), &[]).is_err());
    assert!(client.process_response_params(&params("server_no_context_takeover"), &[]).is_ok());
}

#[test]
fn lean_server_with_default_client() {
    let client = ClientPerMessageDeflateFactory::default();
    let (mut client_ext, mut server_ext) = connect(&client, &lean_server());
    let messages: Vec<Vec<u8>> = (0..5).map(|i| json(3000, i)).collect();
    for message in &messages {
        // The dedicated client honours client_no_context_takeover: a fresh inflater decodes
        // each of its messages alone.
        let mut frame = Frame::new(OpCode::Text, Bytes::copy_from_slice(message), true);
        client_ext.encode(&mut frame).expect("encode");
        assert_eq!(frame.rsv, Rsv::RSV1);
        assert_eq!(inflate_alone(&frame.payload), *message);
        server_ext.decode(&mut frame, None).expect("decode");
        assert_eq!(frame.payload, *message);

        let mut frame = Frame::new(OpCode::Text, Bytes::copy_from_slice(message), true);
        server_ext.encode(&mut frame).expect("encode");
        assert_eq!(inflate_alone(&frame.payload), *message);
        client_ext.decode(&mut frame, None).expect("decode");
        assert_eq!(frame.payload, *message);
    }
}

#[test]
fn lean_client_with_default_server() {
    let (mut client_ext, mut server_ext) =
        connect(&lean_client(), &ServerPerMessageDeflateFactory::default());
    for seed in 0..5 {
        let message = json(3000, seed);
        for fragments in [1, 3] {
            send(client_ext.as_mut(), server_ext.as_mut(), &message, fragments);
            send(server_ext.as_mut(), client_ext.as_mut(), &message, fragments);
        }
    }
}

#[test]
fn lean_both_sides_single_and_fragmented() {
    let (mut client_ext, mut server_ext) = connect(&lean_client(), &lean_server());
    for seed in 0..4 {
        for (len, fragments) in [(0, 1), (10, 1), (100, 1), (5000, 1), (5000, 4), (70_000, 7), (3, 3)] {
            let message = json(len, seed);
            send(client_ext.as_mut(), server_ext.as_mut(), &message, fragments);
            send(server_ext.as_mut(), client_ext.as_mut(), &message, fragments);
        }
    }
}

#[test]
fn interleaved_fragmented_messages_of_two_connections_on_one_thread() {
    let (mut a_client, mut a_server) = connect(&lean_client(), &lean_server());
    let (mut b_client, mut b_server) = connect(&lean_client(), &lean_server());
    let a_message = json(9000, 1);
    let b_message = json(7000, 2);
    let c_message = json(2000, 3);
    let mut a_frames = frames(&a_message, 3).into_iter();
    let mut b_frames = frames(&b_message, 2).into_iter();
    let (mut a_out, mut b_out) = (Vec::new(), Vec::new());
    let step =
        |tx: &mut Box<dyn Extension>, rx: &mut Box<dyn Extension>, mut frame: Frame, out: &mut Vec<u8>| {
            tx.encode(&mut frame).expect("encode");
            rx.decode(&mut frame, None).expect("decode");
            out.extend_from_slice(&frame.payload);
        };
    // a1, b1, a2, (a single-frame message on b's reverse direction), b2, a3.
    step(&mut a_client, &mut a_server, a_frames.next().expect("a1"), &mut a_out);
    step(&mut b_client, &mut b_server, b_frames.next().expect("b1"), &mut b_out);
    step(&mut a_client, &mut a_server, a_frames.next().expect("a2"), &mut a_out);
    let mut c_out = Vec::new();
    let c_frame = Frame::new(OpCode::Text, Bytes::copy_from_slice(&c_message), true);
    step(&mut b_server, &mut b_client, c_frame, &mut c_out);
    step(&mut b_client, &mut b_server, b_frames.next().expect("b2"), &mut b_out);
    step(&mut a_client, &mut a_server, a_frames.next().expect("a3"), &mut a_out);
    assert_eq!(a_out, a_message);
    assert_eq!(b_out, b_message);
    assert_eq!(c_out, c_message);

    // All of A's and B's frames encoded alternately, then decoded alternately.
    let mut a_wire = frames(&a_message, 4);
    let mut b_wire = frames(&b_message, 4);
    for (a, b) in a_wire.iter_mut().zip(b_wire.iter_mut()) {
        a_client.encode(a).expect("encode a");
        b_server.encode(b).expect("encode b");
    }
    let (mut a_out, mut b_out) = (Vec::new(), Vec::new());
    for (mut a, mut b) in a_wire.into_iter().zip(b_wire) {
        a_server.decode(&mut a, None).expect("decode a");
        b_client.decode(&mut b, None).expect("decode b");
        a_out.extend_from_slice(&a.payload);
        b_out.extend_from_slice(&b.payload);
    }
    assert_eq!(a_out, a_message);
    assert_eq!(b_out, b_message);
}

#[test]
fn a_fragmented_message_can_move_to_another_thread() {
    fn assert_send<T: Send>(_: &T) {}
    let (mut client_ext, mut server_ext) = connect(&lean_client(), &lean_server());
    assert_send(&client_ext);
    let message = json(20_000, 9);
    let mut wire = frames(&message, 4);
    let (first, rest) = wire.split_at_mut(2);
    for frame in first.iter_mut() {
        client_ext.encode(frame).expect("encode");
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            for frame in rest.iter_mut() {
                client_ext.encode(frame).expect("encode on another thread");
            }
        });
    });
    let mut out = Vec::new();
    for (i, mut frame) in wire.into_iter().enumerate() {
        if i == 2 {
            // Decoding moves threads mid-message too.
            let mut frame2 = frame;
            std::thread::scope(|s| {
                s.spawn(|| server_ext.decode(&mut frame2, None).expect("decode"));
            });
            out.extend_from_slice(&frame2.payload);
            continue;
        }
        server_ext.decode(&mut frame, None).expect("decode");
        out.extend_from_slice(&frame.payload);
    }
    assert_eq!(out, message);
}

#[test]
fn lean_and_dedicated_peers_interoperate_both_ways() {
    let cases = [
        (lean_client(), ServerPerMessageDeflateFactory::default()),
        (ClientPerMessageDeflateFactory::default(), lean_server()),
        (
            ClientPerMessageDeflateFactory {
                server_max_window_bits: Some(9),
                client_max_window_bits: Some(9),
                mem_level: 1,
                ..Default::default()
            },
            ServerPerMessageDeflateFactory { memory: Memory::Shared, level: 9, ..Default::default() },
        ),
        (
            ClientPerMessageDeflateFactory {
                memory: Memory::Shared,
                server_max_window_bits: Some(15),
                client_max_window_bits: Some(8),
                ..Default::default()
            },
            ServerPerMessageDeflateFactory { server_max_window_bits: None, ..Default::default() },
        ),
    ];
    for (client, server) in cases {
        let (mut client_ext, mut server_ext) = connect(&client, &server);
        for seed in 0..3 {
            let message = json(40_000, seed);
            for fragments in [1, 5] {
                send(client_ext.as_mut(), server_ext.as_mut(), &message, fragments);
                send(server_ext.as_mut(), client_ext.as_mut(), &message, fragments);
            }
        }
    }
}

#[test]
fn lean_mode_decompresses_a_peer_that_keeps_context_with_its_own_stream() {
    // Only a hand-built configuration gets here: the factories always negotiate
    // no context takeover in lean mode.
    let sender_config = PerMessageDeflateConfig { compression_threshold: Some(0), ..Default::default() };
    let lean_config = PerMessageDeflateConfig { memory: Memory::Shared, ..sender_config };
    let mut tx = PerMessageDeflate::new(sender_config).expect("config");
    let mut rx = PerMessageDeflate::new(lean_config).expect("config");
    let message = json(2000, 4);
    let mut sizes = Vec::new();
    for _ in 0..3 {
        let mut frame = Frame::new(OpCode::Binary, Bytes::copy_from_slice(&message), true);
        tx.encode(&mut frame).expect("encode");
        sizes.push(frame.payload.len());
        rx.decode(&mut frame, None).expect("decode");
        assert_eq!(frame.payload, message);
        // And a second, lean connection on the same thread meanwhile.
        let mut other = PerMessageDeflate::new(PerMessageDeflateConfig {
            remote_no_context_takeover: true,
            ..lean_config
        })
        .expect("config");
        let mut tx2 = PerMessageDeflate::new(lean_config).expect("config");
        send(&mut tx2, &mut other, &message, 2);
    }
    // The repeats referred to the first message: the history was kept.
    assert!(sizes[1] < sizes[0] / 4, "{sizes:?}");
}

#[test]
fn errors_leave_the_shared_streams_usable() {
    let config = PerMessageDeflateConfig {
        memory: Memory::Shared,
        remote_no_context_takeover: true,
        local_no_context_takeover: true,
        compression_threshold: Some(0),
        ..Default::default()
    };
    let message = json(5000, 5);
    for fragments in [1, 2] {
        // Corrupt data, in a single frame or at the start of a fragmented message.
        let mut rx = PerMessageDeflate::new(config).expect("config");
        let mut frame = Frame::new(OpCode::Text, Bytes::from_static(b"\xff\xff\xff garbage"), fragments == 1);
        frame.rsv = Rsv::RSV1;
        assert!(matches!(rx.decode(&mut frame, None), Err(ExtensionError::InvalidData(_))));
        // Too big, in the middle of a message.
        let mut tx = PerMessageDeflate::new(config).expect("config");
        let mut rx = PerMessageDeflate::new(config).expect("config");
        let mut frame = Frame::new(OpCode::Text, Bytes::copy_from_slice(&message), true);
        tx.encode(&mut frame).expect("encode");
        assert_eq!(rx.decode(&mut frame, Some(100)), Err(ExtensionError::TooBig));
        // Another connection on this thread still works.
        let mut tx = PerMessageDeflate::new(config).expect("config");
        let mut rx = PerMessageDeflate::new(config).expect("config");
        send(&mut tx, &mut rx, &message, fragments);
    }
}

#[test]
fn release_thread_streams_is_harmless() {
    let (mut client_ext, mut server_ext) = connect(&lean_client(), &lean_server());
    let message = json(3000, 6);
    send(client_ext.as_mut(), server_ext.as_mut(), &message, 1);
    ws_deflate::release_thread_streams();
    send(client_ext.as_mut(), server_ext.as_mut(), &message, 2);
    send(server_ext.as_mut(), client_ext.as_mut(), &message, 1);
    ws_deflate::release_thread_streams();
    ws_deflate::release_thread_streams();
}
