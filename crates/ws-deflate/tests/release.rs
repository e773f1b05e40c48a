//! `release_memory`: a connection that frees its zlib streams between messages (or at any point,
//! mid-message included) must stay byte-exact with a peer that never does, with context takeover,
//! at every window size.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use proptest::prelude::*;
use ws_deflate::{PerMessageDeflate, PerMessageDeflateConfig};
use ws_extensions::{Bytes, Extension, Frame, OpCode, Rsv};

#[path = "support/json.rs"]
mod json;
use json::json;

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

fn ext(config: PerMessageDeflateConfig) -> PerMessageDeflate {
    PerMessageDeflate::new(config).expect("valid config")
}

/// Both directions with window `bits` and context takeover.
fn config(bits: u8, level: u8) -> PerMessageDeflateConfig {
    PerMessageDeflateConfig {
        local_max_window_bits: bits,
        remote_max_window_bits: bits,
        level,
        compression_threshold: Some(0),
        ..Default::default()
    }
}

/// Encodes `message` in fragments of `fragment` bytes, calling `between` after each frame.
fn encode(
    tx: &mut PerMessageDeflate,
    message: &[u8],
    fragment: usize,
    mut between: impl FnMut(&mut PerMessageDeflate, usize),
) -> Vec<Frame> {
    let chunks: Vec<&[u8]> =
        if message.is_empty() { vec![&[][..]] } else { message.chunks(fragment.max(1)).collect() };
    let last = chunks.len() - 1;
    let mut frames = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        let opcode = if i == 0 { OpCode::Binary } else { OpCode::Continuation };
        let mut frame = Frame::new(opcode, Bytes::copy_from_slice(chunk), i == last);
        tx.encode(&mut frame).expect("encode");
        frames.push(frame);
        between(tx, i);
    }
    frames
}

/// Decodes a message's frames, calling `between` after each frame.
fn decode(
    rx: &mut PerMessageDeflate,
    frames: &[Frame],
    mut between: impl FnMut(&mut PerMessageDeflate, usize),
) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let mut frame = frame.clone();
        rx.decode(&mut frame, None).expect("decode");
        assert_eq!(frame.rsv, Rsv::NONE);
        out.extend_from_slice(&frame.payload);
        between(rx, i);
    }
    out
}

/// An independent decoder that never frees anything: flate2 (zlib-rs inside, but not our code).
fn flate2_decode(decompress: &mut Decompress, frames: &[Frame], len: usize) -> Vec<u8> {
    let mut input: Vec<u8> = frames.iter().flat_map(|f| f.payload.iter().copied()).collect();
    input.extend_from_slice(&TAIL);
    let mut out = Vec::with_capacity(len + 64);
    let start = decompress.total_in();
    while ((decompress.total_in() - start) as usize) < input.len() {
        let at = (decompress.total_in() - start) as usize;
        out.reserve(len + 64);
        decompress.decompress_vec(&input[at..], &mut out, FlushDecompress::Sync).expect("flate2");
    }
    out
}

/// One message compressed by flate2 with context takeover, tail stripped.
fn flate2_encode(compress: &mut Compress, message: &[u8]) -> Frame {
    let mut out = Vec::with_capacity(message.len() + 64);
    let start = compress.total_in();
    loop {
        let at = (compress.total_in() - start) as usize;
        let before = out.len();
        out.reserve(message.len() / 2 + 64);
        compress.compress_vec(&message[at..], &mut out, FlushCompress::Sync).expect("flate2");
        // Done once all input is in and the flush fit (zlib emits nothing for an empty one).
        let done = (compress.total_in() - start) as usize == message.len();
        if done && (out.len() == before || out.len() < out.capacity()) {
            break;
        }
    }
    match out.ends_with(&TAIL) {
        true => out.truncate(out.len() - TAIL.len()),
        false => out.push(0),
    }
    let mut frame = Frame::new(OpCode::Binary, out, true);
    frame.rsv = Rsv::RSV1;
    frame
}

/// Message sizes around the window, fragmented or not.
fn sizes(bits: u8) -> Vec<(usize, usize)> {
    let window = 1usize << bits.max(9);
    vec![
        (1000, usize::MAX),
        (1000, usize::MAX),
        (0, usize::MAX),
        (16, usize::MAX),
        (window - 1, 300),
        (window, usize::MAX),
        (window + 1, 100),
        (300, usize::MAX),
        (70_000, 16_384),
        (40, usize::MAX),
        (1000, usize::MAX),
        (5, 1),
    ]
}

#[test]
fn releasing_between_every_message_round_trips_at_every_window() {
    for bits in 8..=15u8 {
        for level in [1u8, 6, 9] {
            let config = config(bits, level);
            let zlib_bits = bits.max(9);
            // `sleepy` releases after every message, both ways; `awake` and flate2 never do.
            let (mut sleepy, mut awake, mut reference) = (ext(config), ext(config), ext(config));
            let mut flate_rx = Decompress::new_with_window_bits(false, zlib_bits);
            let mut flate_tx = Compress::new_with_window_bits(Compression::new(6), false, zlib_bits);
            let mut sleepy_from_flate = ext(config);
            let (mut sleepy_bytes, mut reference_bytes) = (0, 0);
            for (i, (len, fragment)) in sizes(bits).into_iter().enumerate() {
                let what = format!("window {bits}, level {level}, message {i} ({len} B)");
                let message = json(len, i as u64 % 3);
                // Hibernating compressor: our awake decoder and flate2 both follow it.
                let frames = encode(&mut sleepy, &message, fragment, |_, _| {});
                sleepy.release_memory();
                sleepy_bytes += frames.iter().map(|f| f.payload.len()).sum::<usize>();
                reference_bytes += encode(&mut reference, &message, fragment, |_, _| {})
                    .iter()
                    .map(|f| f.payload.len())
                    .sum::<usize>();
                assert_eq!(decode(&mut awake, &frames, |_, _| {}), message, "{what}: ours");
                assert_eq!(flate2_decode(&mut flate_rx, &frames, len), message, "{what}: flate2");
                // Hibernating decompressor, following our awake compressor and flate2.
                let reply = json(len, 100 + i as u64);
                let frames = encode(&mut awake, &reply, fragment, |_, _| {});
                assert_eq!(decode(&mut sleepy, &frames, |_, _| {}), reply, "{what}: reply");
                sleepy.release_memory();
                let frame = flate2_encode(&mut flate_tx, &reply);
                let got = decode(&mut sleepy_from_flate, &[frame], |_, _| {});
                sleepy_from_flate.release_memory();
                assert_eq!(got, reply, "{what}: from flate2");
            }
            // The history survives the release: compression is as good as without releases.
            assert!(
                sleepy_bytes * 100 <= reference_bytes * 102 + 200,
                "window {bits}, level {level}: {sleepy_bytes} B with releases, {reference_bytes} B without"
            );
        }
    }
}

#[test]
fn a_repeated_message_after_a_release_is_a_back_reference() {
    let message = json(2000, 3);
    let mut tx = ext(config(15, 6));
    let first = encode(&mut tx, &message, usize::MAX, |_, _| {})[0].payload.len();
    tx.release_memory();
    let second = encode(&mut tx, &message, usize::MAX, |_, _| {})[0].payload.len();
    assert!(second * 10 < first, "{second} B after release, {first} B the first time");
}

#[test]
fn releasing_mid_message_round_trips() {
    let message = json(20_000, 9);
    let (mut tx, mut rx, mut awake) = (ext(config(12, 6)), ext(config(12, 6)), ext(config(12, 6)));
    for _ in 0..3 {
        let frames = encode(&mut tx, &message, 3000, |tx, _| tx.release_memory());
        assert_eq!(decode(&mut awake, &frames, |_, _| {}), message);
        assert_eq!(decode(&mut rx, &frames, |rx, _| rx.release_memory()), message);
    }
}

#[test]
fn releasing_without_context_takeover_round_trips() {
    let config = PerMessageDeflateConfig {
        local_no_context_takeover: true,
        remote_no_context_takeover: true,
        ..config(10, 6)
    };
    let (mut tx, mut rx) = (ext(config), ext(config));
    for i in 0..20 {
        let message = json(500 + i * 300, i as u64);
        let frames = encode(&mut tx, &message, 700, |tx, _| {
            if i % 3 == 0 {
                tx.release_memory();
            }
        });
        tx.release_memory();
        assert_eq!(decode(&mut rx, &frames, |_, _| {}), message);
        rx.release_memory();
    }
}

/// A compressed message split at arbitrary bytes (not at flush points), as a peer may
/// fragment it.
fn split_anywhere(frame: &Frame, sizes: &[usize]) -> Vec<Frame> {
    let payload = &frame.payload[..];
    let mut frames = Vec::new();
    let mut at = 0;
    for (i, size) in sizes.iter().cycle().enumerate() {
        let end = (at + size).min(payload.len());
        let opcode = if i == 0 { OpCode::Binary } else { OpCode::Continuation };
        let mut fragment =
            Frame::new(opcode, Bytes::copy_from_slice(&payload[at..end]), end == payload.len());
        if i == 0 {
            fragment.rsv = Rsv::RSV1;
        }
        frames.push(fragment);
        at = end;
        if at == payload.len() {
            return frames;
        }
    }
    unreachable!()
}

/// An idle connection parks an unfinished message (frees its stream, keeps what replays it):
/// fragments split anywhere in the deflate stream, a release after every one, context
/// takeover or not, the thread's stream lent to another connection in between, and messages
/// too big to park (incompressible, beyond `PARK_MAX`) whose stream is kept: all decode as
/// without releases, and the messages after them too.
#[test]
fn parked_messages_split_anywhere_round_trip() {
    for (bits, reset, memory) in [
        (12u8, false, ws_deflate::Memory::Dedicated),
        (15, false, ws_deflate::Memory::Dedicated),
        (12, true, ws_deflate::Memory::Shared),
        (15, true, ws_deflate::Memory::Shared),
    ] {
        let config = PerMessageDeflateConfig {
            remote_no_context_takeover: reset,
            local_no_context_takeover: reset,
            memory,
            ..config(bits, 6)
        };
        let (mut sleepy, mut other) = (ext(config), ext(config));
        let mut peer = Compress::new_with_window_bits(Compression::new(6), false, bits);
        let mut other_peer = Compress::new_with_window_bits(Compression::new(6), false, bits);
        for i in 0..12u64 {
            let what = format!("window {bits}, reset {reset}, message {i}");
            let message = match i % 4 {
                // Incompressible: its compressed input passes PARK_MAX.
                3 => (0..60_000u64).map(|n| (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8).collect(),
                _ => json(3000 + 4000 * i as usize, i),
            };
            let whole = flate2_encode(&mut peer, &message);
            if reset {
                peer.reset();
            }
            let frames = split_anywhere(&whole, &[1, 7, 300, 2, 1500]);
            let got = decode(&mut sleepy, &frames, |rx, _| {
                rx.release_memory();
                // Another connection on the thread meanwhile (the shared stream in lean mode).
                let reply = json(500, i);
                let frame = flate2_encode(&mut other_peer, &reply);
                if reset {
                    other_peer.reset();
                }
                assert_eq!(decode(&mut other, &[frame], |_, _| {}), reply);
            });
            assert_eq!(got, message, "{what}");
        }
    }
}

/// One message in the random scenario.
#[derive(Debug, Clone)]
struct Step {
    /// Which side sends.
    from_a: bool,
    len: usize,
    fragment: usize,
    seed: u64,
    /// Bit `i` (mod 32): release the sender after frame `i`; bit `i + 32`: the receiver.
    releases: u64,
    release_after: (bool, bool),
}

fn step() -> impl Strategy<Value = Step> {
    (
        any::<bool>(),
        prop_oneof![4 => 0usize..2000, 1 => 2000usize..40_000],
        1usize..6000,
        any::<u64>(),
        any::<u64>(),
        any::<(bool, bool)>(),
    )
        .prop_map(|(from_a, len, fragment, seed, releases, release_after)| Step {
            from_a,
            len,
            fragment,
            seed,
            releases,
            release_after,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A and B both release at random points; `a_watch` and `b_watch` never release and decode
    /// the same frames as B and A respectively.
    #[test]
    fn releasing_at_random_points_round_trips(
        a_bits in 8u8..=15,
        b_bits in 8u8..=15,
        level in 0u8..=9,
        mem_level in 1u8..=9,
        a_reset in any::<bool>(),
        b_reset in any::<bool>(),
        steps in prop::collection::vec(step(), 1..24),
    ) {
        let a_config = PerMessageDeflateConfig {
            local_max_window_bits: a_bits,
            remote_max_window_bits: b_bits,
            local_no_context_takeover: a_reset,
            remote_no_context_takeover: b_reset,
            level,
            mem_level,
            compression_threshold: Some(0),
            ..Default::default()
        };
        let b_config = PerMessageDeflateConfig {
            local_max_window_bits: b_bits,
            remote_max_window_bits: a_bits,
            local_no_context_takeover: b_reset,
            remote_no_context_takeover: a_reset,
            ..a_config
        };
        let (mut a, mut b) = (ext(a_config), ext(b_config));
        let (mut a_watch, mut b_watch) = (ext(a_config), ext(b_config));
        for step in steps {
            let message = json(step.len, step.seed);
            let (tx, rx, watch) =
                if step.from_a { (&mut a, &mut b, &mut b_watch) } else { (&mut b, &mut a, &mut a_watch) };
            let frames = encode(tx, &message, step.fragment, |tx, i| {
                if step.releases >> (i % 32) & 1 == 1 {
                    tx.release_memory();
                }
            });
            prop_assert_eq!(decode(watch, &frames, |_, _| {}), message.clone());
            prop_assert_eq!(
                decode(rx, &frames, |rx, i| if step.releases >> (32 + i % 32) & 1 == 1 { rx.release_memory() }),
                message
            );
            if step.release_after.0 {
                a.release_memory();
            }
            if step.release_after.1 {
                b.release_memory();
            }
        }
    }
}

/// Connections in their warm-up borrow the thread's streams one message at a time, each primed
/// with its own history: interleaved on one thread, every connection's messages must still
/// decode with its peer's context (flate2, which never frees anything), both ways.
#[test]
fn interleaved_connections_borrowing_the_threads_streams_round_trip() {
    let connections = 6;
    let mut ours: Vec<PerMessageDeflate> = (0..connections).map(|_| ext(config(12, 6))).collect();
    let mut peer_inflate: Vec<Decompress> =
        (0..connections).map(|_| Decompress::new_with_window_bits(false, 15)).collect();
    let mut peer_deflate: Vec<Compress> =
        (0..connections).map(|_| Compress::new_with_window_bits(Compression::new(6), false, 12)).collect();
    let rounds = usize::from(ws_deflate::WARM_UP_MESSAGES) * 3;
    for round in 0..rounds {
        for c in 0..connections {
            let message = json(700 + 97 * c, (round * connections + c) as u64 % 5);
            // Ours → peer, fragmented every other round.
            let fragment = if round % 2 == 0 { usize::MAX } else { 256 };
            let frames = encode(&mut ours[c], &message, fragment, |_, _| {});
            assert_eq!(flate2_decode(&mut peer_inflate[c], &frames, message.len()), message);
            // Peer → ours.
            let frame = flate2_encode(&mut peer_deflate[c], &message);
            assert_eq!(decode(&mut ours[c], &[frame], |_, _| {}), message);
            // Some connections go quiet now and then: back to borrowing.
            if (round + c) % 5 == 0 {
                ours[c].release_memory();
            }
        }
    }
}
