//! Fixed workloads for the instruction-count gate, `cargo xtask perf-gate`.
//!
//! `instructions <workload>` (or `cargo bench --bench instructions -- <workload>`) builds the workload's input, then runs a fixed number of
//! iterations inside [`perf_gate_measured`], the one function that the gate's callgrind run
//! counts (`--toggle-collect`): setup, argument parsing and process start-up are left out, so the
//! count depends only on the code under test, the toolchain and the CPU features that the
//! libraries detect. `instructions --list` prints the workloads, one `name<TAB>description` a
//! line. Each workload checks its own results, so a broken workload fails instead of counting
//! less work.
//!
//! Not a criterion bench (`harness = false`, no timing): run it through the gate, see
//! `docs/benchmarks-proto.md`, "Instruction-count gate".
#![allow(missing_docs)]

use std::hint::black_box;
use std::process::ExitCode;

use bytes::BufMut as _;
use ws_deflate::{PerMessageDeflate, PerMessageDeflateConfig};
use ws_proto::{
    Buf, Bytes, BytesMut, Config, Connection, Event, Extension, Frame, FrameHeader, HeaderParse,
    MAX_HEADER_LEN, Message, OpCode, Role, Rsv, Utf8Bytes, apply_mask,
};

#[path = "../crates/ws-deflate/tests/support/json.rs"]
mod json;
use json::json;

/// One workload: `setup(iterations)` builds the input and returns the body that runs once per
/// iteration.
struct Workload {
    name: &'static str,
    about: &'static str,
    iterations: u32,
    setup: fn(u32) -> Box<dyn FnMut()>,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "header_codec",
        about: "FrameHeader::parse + encode of 8 headers (7/16/64-bit lengths, masked or not, control)",
        iterations: 20_000,
        setup: header_codec,
    },
    Workload { name: "unmask_64k", about: "apply_mask over 64 KiB", iterations: 1_000, setup: unmask_64k },
    Workload {
        name: "utf8_ascii_64k",
        about: "Utf8Bytes::from_bytes of 64 KiB of ASCII",
        iterations: 1_000,
        setup: utf8_ascii_64k,
    },
    Workload {
        name: "utf8_multibyte_64k",
        about: "Utf8Bytes::from_bytes of 64 KiB of text with 2/3/4-byte code points",
        iterations: 1_000,
        setup: utf8_multibyte_64k,
    },
    Workload {
        name: "recv_text_64k",
        about: "server Connection::receive of one masked 64 KiB text frame (multibyte): copy in, unmask, incremental UTF-8",
        iterations: 200,
        setup: recv_text_64k,
    },
    Workload {
        name: "recv_small_batch",
        about: "server Connection::receive of 256 masked frames of 2-125 B (text, binary, fragmented text) + events",
        iterations: 100,
        setup: recv_small_batch,
    },
    Workload {
        name: "client_recv_small_batch",
        about: "client Connection::receive of 256 unmasked frames of 2-125 B (text, binary, fragmented text) + events",
        iterations: 100,
        setup: client_recv_small_batch,
    },
    Workload {
        name: "send_small_batch",
        about: "server Connection::send of 256 messages of 2-125 B (text and binary), transmit drained",
        iterations: 100,
        setup: send_small_batch,
    },
    Workload {
        name: "echo_small_batch",
        about: "server echo of a burst of 16 masked 20 B binary frames: receive, events, send each back, transmit drained",
        iterations: 1_000,
        setup: echo_small_batch,
    },
    Workload {
        name: "deflate_1k_compress",
        about: "PerMessageDeflate::encode of 1 KiB JSON-like messages, context takeover (16 distinct, cycled)",
        iterations: 200,
        setup: deflate_1k_compress,
    },
    Workload {
        name: "deflate_1k_decompress",
        about: "PerMessageDeflate::decode of the same stream, context takeover",
        iterations: 200,
        setup: deflate_1k_decompress,
    },
    Workload {
        name: "deflate_1k_shared_echo",
        about: "PerMessageDeflate encode + decode of 1 KiB JSON-like in Memory::Shared (the thread's streams borrowed per message)",
        iterations: 200,
        setup: deflate_1k_shared_echo,
    },
    Workload {
        name: "deflate_64k_compress",
        about: "PerMessageDeflate::encode of 64 KiB JSON-like, no context takeover",
        iterations: 10,
        setup: deflate_64k_compress,
    },
    Workload {
        name: "deflate_64k_decompress",
        about: "PerMessageDeflate::decode of 64 KiB JSON-like, no context takeover",
        iterations: 10,
        setup: deflate_64k_decompress,
    },
];

fn main() -> ExitCode {
    // `cargo bench` adds `--bench`; `cargo bench` / `cargo test --benches` alone run nothing.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => {
            println!("instructions: no workload given; `cargo xtask perf-gate` runs them (--list)");
            ExitCode::SUCCESS
        }
        ["--list"] => {
            for w in WORKLOADS {
                println!("{}\t{}\t{}", w.name, w.iterations, w.about);
            }
            ExitCode::SUCCESS
        }
        [name] => match WORKLOADS.iter().find(|w| w.name == *name) {
            Some(w) => {
                let iterations =
                    std::env::var("ITER").ok().and_then(|v| v.parse().ok()).unwrap_or(w.iterations);
                let mut body = (w.setup)(iterations);
                perf_gate_measured(iterations, &mut *body);
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("instructions: unknown workload `{name}` (see --list)");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("usage: instructions <workload> | --list");
            ExitCode::from(2)
        }
    }
}

/// The measured region: the gate's callgrind run counts instructions only while this function
/// (and what it calls) runs. Never inlined, so that the symbol exists.
#[inline(never)]
fn perf_gate_measured(iterations: u32, body: &mut dyn FnMut()) {
    for _ in 0..iterations {
        body();
    }
}

// ---- inputs ----

/// Deterministic filler bytes.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(7)).collect()
}

/// `len` bytes of text repeating `pattern`, padded with `.` (never splits a code point).
fn text(pattern: &str, len: usize) -> String {
    let mut text = String::with_capacity(len);
    while text.len() + pattern.len() <= len {
        text.push_str(pattern);
    }
    while text.len() < len {
        text.push('.');
    }
    text
}

const ASCII: &str = "The quick brown fox jumps over the lazy dog; {\"id\": 42, \"ok\": true} ";
const MULTIBYTE: &str = "The quick brown fox jumps over the lazy dog. κόσμε — 漢字 ✓ 𝄞 ";

/// One frame on the wire: masked with `mask` as a client sends it, or unmasked as a server does.
fn frame(wire: &mut Vec<u8>, opcode: OpCode, fin: bool, data: &[u8], mask: Option<[u8; 4]>) {
    let header = FrameHeader { fin, rsv: Rsv::NONE, opcode, mask, payload_len: data.len() as u64 };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    wire.extend_from_slice(&head[..n]);
    let start = wire.len();
    wire.extend_from_slice(data);
    if let Some(key) = mask {
        apply_mask(&mut wire[start..], key);
    }
}

fn key(i: usize) -> [u8; 4] {
    let k = (i as u32).wrapping_mul(0x9E37_79B9) ^ 0x37fa_213d;
    k.to_be_bytes()
}

fn server() -> Connection {
    Connection::new(Role::Server, Config::default().with_max_size(None))
}

// ---- ws-proto ----

fn header_codec(_: u32) -> Box<dyn FnMut()> {
    let headers = [
        (OpCode::Text, true, None, 5),
        (OpCode::Binary, true, Some([1, 2, 3, 4]), 125),
        (OpCode::Text, false, Some([9, 8, 7, 6]), 126),
        (OpCode::Continuation, true, None, 0xFFFF),
        (OpCode::Binary, true, Some([0xde, 0xad, 0xbe, 0xef]), 1 << 16),
        (OpCode::Binary, false, None, 1 << 40),
        (OpCode::Ping, true, Some([5, 5, 5, 5]), 4),
        (OpCode::Close, true, None, 2),
    ];
    let wire: Vec<Vec<u8>> = headers
        .iter()
        .map(|&(opcode, fin, mask, payload_len)| {
            let mut head = [0u8; MAX_HEADER_LEN];
            let n = FrameHeader { fin, rsv: Rsv::NONE, opcode, mask, payload_len }.encode(&mut head);
            head[..n].to_vec()
        })
        .collect();
    Box::new(move || {
        for bytes in &wire {
            let Ok(HeaderParse::Complete(header, len)) = FrameHeader::parse(black_box(bytes)) else {
                panic!("header_codec: a complete header did not parse");
            };
            let mut out = [0u8; MAX_HEADER_LEN];
            let n = black_box(header).encode(&mut out);
            assert!(n == len && out[0] == bytes[0], "header_codec: the header did not round-trip");
        }
    })
}

fn unmask_64k(_: u32) -> Box<dyn FnMut()> {
    let mut buf = payload(64 << 10);
    Box::new(move || {
        apply_mask(black_box(&mut buf), black_box([0x37, 0xfa, 0x21, 0x3d]));
    })
}

fn utf8(text: String) -> Box<dyn FnMut()> {
    let bytes = Bytes::from(text);
    Box::new(move || {
        let text = Utf8Bytes::from_bytes(black_box(bytes.clone()));
        assert!(black_box(text).is_some(), "utf8: valid text rejected");
    })
}

fn utf8_ascii_64k(_: u32) -> Box<dyn FnMut()> {
    utf8(text(ASCII, 64 << 10))
}

fn utf8_multibyte_64k(_: u32) -> Box<dyn FnMut()> {
    utf8(text(MULTIBYTE, 64 << 10))
}

fn recv_text_64k(_: u32) -> Box<dyn FnMut()> {
    let text = text(MULTIBYTE, 64 << 10);
    let mut wire = Vec::new();
    frame(&mut wire, OpCode::Text, true, text.as_bytes(), Some(key(1)));
    let mut conn = server();
    let mut buf = BytesMut::with_capacity(wire.len());
    Box::new(move || {
        buf.extend_from_slice(black_box(&wire));
        conn.receive(&mut buf).expect("recv_text_64k: a valid frame");
        match conn.next_event() {
            Some(Event::Message(Message::Text(t))) => assert_eq!(t.len(), 64 << 10),
            other => panic!("recv_text_64k: expected a text message, got {other:?}"),
        }
    })
}

/// 256 frames: binary and text messages of 2-125 bytes, every 8th text message in 3 fragments
/// split inside a multibyte code point, masked as a client sends them if `masked`. Returns the
/// wire bytes and the message count.
fn small_frames(masked: bool) -> (Vec<u8>, usize) {
    let mask = |i| masked.then(|| key(i));
    let mut wire = Vec::new();
    let (mut frames, mut messages) = (0, 0);
    let mut i = 0usize;
    while frames < 256 {
        let len = 2 + (i * 37) % 124;
        if i % 8 == 7 && frames + 3 <= 256 {
            // "κόσμε" repeated: 2-byte code points; cut at odd offsets to split them.
            let t = text("κόσμε ", 64);
            let b = t.as_bytes();
            frame(&mut wire, OpCode::Text, false, &b[..21], mask(i));
            frame(&mut wire, OpCode::Continuation, false, &b[21..43], mask(i + 1));
            frame(&mut wire, OpCode::Continuation, true, &b[43..], mask(i + 2));
            frames += 3;
        } else if i % 2 == 0 {
            frame(&mut wire, OpCode::Binary, true, &payload(len), mask(i));
            frames += 1;
        } else {
            frame(&mut wire, OpCode::Text, true, text(ASCII, len).as_bytes(), mask(i));
            frames += 1;
        }
        messages += 1;
        i += 1;
    }
    (wire, messages)
}

fn recv_small_batch(_: u32) -> Box<dyn FnMut()> {
    receive_batch(server(), small_frames(true))
}

fn client_recv_small_batch(_: u32) -> Box<dyn FnMut()> {
    let client = Connection::new(Role::Client, Config::default().with_max_size(None)).with_mask_seed([5; 32]);
    receive_batch(client, small_frames(false))
}

/// `conn` receives `wire` whole, every time, and hands out its `messages` messages.
fn receive_batch(mut conn: Connection, (wire, messages): (Vec<u8>, usize)) -> Box<dyn FnMut()> {
    let mut buf = BytesMut::with_capacity(wire.len());
    Box::new(move || {
        buf.extend_from_slice(black_box(&wire));
        conn.receive(&mut buf).expect("receive_batch: valid frames");
        let mut n = 0;
        while let Some(event) = conn.next_event() {
            assert!(matches!(event, Event::Message(_)), "receive_batch: unexpected {event:?}");
            black_box(event);
            n += 1;
        }
        assert_eq!(n, messages, "receive_batch: message count");
        assert!(buf.is_empty(), "receive_batch: bytes left over");
    })
}

fn echo_small_batch(_: u32) -> Box<dyn FnMut()> {
    let mut wire = Vec::new();
    for i in 0..16 {
        frame(&mut wire, OpCode::Binary, true, &payload(20), Some(key(i)));
    }
    let mut conn = server();
    let mut buf = BytesMut::with_capacity(wire.len());
    Box::new(move || {
        buf.extend_from_slice(black_box(&wire));
        conn.receive(&mut buf).expect("echo_small_batch: valid frames");
        let mut n = 0;
        while let Some(event) = conn.next_event() {
            let Event::Message(message) = event else { panic!("echo_small_batch: unexpected {event:?}") };
            conn.send(message).expect("echo_small_batch: an open connection sends");
            n += 1;
        }
        assert_eq!(n, 16, "echo_small_batch: message count");
        let out = conn.transmit();
        let len = out.remaining();
        black_box(out.chunk());
        out.advance(len);
    })
}

fn send_small_batch(_: u32) -> Box<dyn FnMut()> {
    let messages: Vec<Message> = (0..256usize)
        .map(|i| {
            let len = 2 + (i * 37) % 124;
            if i % 2 == 0 { Message::binary(payload(len)) } else { Message::text(text(ASCII, len)) }
        })
        .collect();
    let mut conn = server();
    let mut sink = Vec::with_capacity(64 << 10);
    Box::new(move || {
        for m in &messages {
            conn.send(black_box(m.clone())).expect("send_small_batch: an open connection sends");
        }
        sink.clear();
        sink.put(&mut *conn.transmit());
        black_box(&mut sink);
    })
}

// ---- ws-deflate ----

/// Context takeover both ways, the defaults otherwise (level 6, memLevel 5).
fn takeover() -> PerMessageDeflate {
    PerMessageDeflate::new(PerMessageDeflateConfig { compression_threshold: Some(0), ..Default::default() })
        .expect("a valid deflate config")
}

/// No context takeover: every iteration compresses the same way.
fn no_takeover() -> PerMessageDeflate {
    PerMessageDeflate::new(PerMessageDeflateConfig {
        local_no_context_takeover: true,
        remote_no_context_takeover: true,
        compression_threshold: Some(0),
        ..Default::default()
    })
    .expect("a valid deflate config")
}

fn messages_1k() -> Vec<Bytes> {
    (0..16).map(|seed| Bytes::from(json(1 << 10, seed))).collect()
}

fn compress(ext: &mut PerMessageDeflate, data: &Bytes) -> Bytes {
    let mut frame = Frame::new(OpCode::Text, data.clone(), true);
    ext.encode(&mut frame).expect("deflate: encode");
    assert!(frame.rsv.contains(Rsv::RSV1), "deflate: the message was not compressed");
    frame.payload
}

fn decompress(ext: &mut PerMessageDeflate, data: &Bytes) -> Bytes {
    let mut frame = Frame::new(OpCode::Text, data.clone(), true);
    frame.rsv = Rsv::RSV1;
    ext.decode(&mut frame, None).expect("deflate: decode");
    frame.payload
}

/// Messages sent before measuring: past ws-deflate's warm-up on borrowed per-thread streams, so
/// that the count is the steady state of a busy connection with streams of its own.
const WARM_UP: usize = ws_deflate::WARM_UP_MESSAGES as usize + 1;

fn deflate_1k_compress(_: u32) -> Box<dyn FnMut()> {
    let messages = messages_1k();
    let mut tx = takeover();
    for data in messages.iter().take(WARM_UP) {
        compress(&mut tx, data);
    }
    let mut i = WARM_UP;
    Box::new(move || {
        let data = &messages[i % messages.len()];
        black_box(compress(&mut tx, black_box(data)));
        i += 1;
    })
}

fn deflate_1k_decompress(iterations: u32) -> Box<dyn FnMut()> {
    let messages = messages_1k();
    let mut tx = takeover();
    let compressed: Vec<Bytes> = (0..iterations as usize + WARM_UP)
        .map(|i| compress(&mut tx, &messages[i % messages.len()]))
        .collect();
    let mut rx = takeover();
    for data in compressed.iter().take(WARM_UP) {
        decompress(&mut rx, data);
    }
    let mut i = WARM_UP;
    Box::new(move || {
        let out = decompress(&mut rx, black_box(&compressed[i]));
        assert!(out == messages[i % messages.len()], "deflate_1k_decompress: round trip");
        i += 1;
    })
}

/// A lean-mode connection echoing: each message borrows the thread's compressor, then its
/// decompressor, and gives them back.
fn deflate_1k_shared_echo(_: u32) -> Box<dyn FnMut()> {
    let messages = messages_1k();
    let lean = || {
        // As the factories negotiate lean mode: no context takeover either way.
        PerMessageDeflate::new(PerMessageDeflateConfig {
            local_no_context_takeover: true,
            remote_no_context_takeover: true,
            compression_threshold: Some(0),
            memory: ws_deflate::Memory::Shared,
            ..Default::default()
        })
        .expect("a valid deflate config")
    };
    let (mut tx, mut rx) = (lean(), lean());
    for data in messages.iter().take(WARM_UP) {
        decompress(&mut rx, &compress(&mut tx, data));
    }
    let mut i = WARM_UP;
    Box::new(move || {
        let data = &messages[i % messages.len()];
        let out = decompress(&mut rx, &compress(&mut tx, black_box(data)));
        assert!(out == *data, "deflate_1k_shared_echo: round trip");
        i += 1;
    })
}

fn deflate_64k_compress(_: u32) -> Box<dyn FnMut()> {
    let data = Bytes::from(json(64 << 10, 42));
    let mut tx = no_takeover();
    for _ in 0..WARM_UP {
        compress(&mut tx, &data);
    }
    Box::new(move || {
        black_box(compress(&mut tx, black_box(&data)));
    })
}

fn deflate_64k_decompress(_: u32) -> Box<dyn FnMut()> {
    let data = Bytes::from(json(64 << 10, 42));
    let compressed = compress(&mut no_takeover(), &data);
    let mut rx = no_takeover();
    for _ in 0..WARM_UP {
        decompress(&mut rx, &compressed);
    }
    Box::new(move || {
        let out = decompress(&mut rx, black_box(&compressed));
        assert!(out == data, "deflate_64k_decompress: round trip");
    })
}
