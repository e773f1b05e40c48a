//! Compression and decompression through the `Extension` hook: RFC 7692 §7.2.3 vectors, round
//! trips at every window size, context takeover, fragmentation, thresholds, errors and bombs.

use ws_deflate::{PerMessageDeflate, PerMessageDeflateConfig};
use ws_extensions::{Bytes, Extension, ExtensionError, Frame, OpCode, Rsv};

#[path = "support/json.rs"]
mod json;
use json::json;

fn config() -> PerMessageDeflateConfig {
    PerMessageDeflateConfig { compression_threshold: Some(0), ..Default::default() }
}

fn ext(config: PerMessageDeflateConfig) -> PerMessageDeflate {
    PerMessageDeflate::new(config).expect("valid config")
}

fn compressed(opcode: OpCode, payload: &[u8], fin: bool) -> Frame {
    let mut frame = Frame::new(opcode, Bytes::copy_from_slice(payload), fin);
    frame.rsv = Rsv::RSV1;
    frame
}

fn decode_one(ext: &mut PerMessageDeflate, payload: &[u8]) -> Result<Bytes, ExtensionError> {
    let mut frame = compressed(OpCode::Text, payload, true);
    ext.decode(&mut frame, None)?;
    assert_eq!(frame.rsv, Rsv::NONE);
    Ok(frame.payload)
}

/// Sends `message` through `tx` in fragments of `fragment` bytes and returns the frames.
fn encode_message(tx: &mut PerMessageDeflate, message: &[u8], fragment: usize) -> Vec<Frame> {
    let chunks: Vec<&[u8]> =
        if message.is_empty() { vec![&[][..]] } else { message.chunks(fragment).collect() };
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let opcode = if i == 0 { OpCode::Binary } else { OpCode::Continuation };
            let mut frame = Frame::new(opcode, Bytes::copy_from_slice(chunk), i == last);
            tx.encode(&mut frame).expect("encode");
            frame
        })
        .collect()
}

fn decode_message(rx: &mut PerMessageDeflate, frames: Vec<Frame>) -> Vec<u8> {
    let mut out = Vec::new();
    for mut frame in frames {
        rx.decode(&mut frame, None).expect("decode");
        assert_eq!(frame.rsv, Rsv::NONE);
        out.extend_from_slice(&frame.payload);
    }
    out
}

#[test]
fn rfc7692_hello_is_compressed_as_in_7_2_3_1() {
    let mut tx = ext(config());
    let mut frame = Frame::new(OpCode::Text, "Hello", true);
    tx.encode(&mut frame).expect("encode");
    assert_eq!(frame.rsv, Rsv::RSV1);
    assert_eq!(&frame.payload[..], [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
}

#[test]
fn rfc7692_vectors_decode() {
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    // §7.2.3.1: one message.
    assert_eq!(&decode_one(&mut ext(config()), &hello).expect("decode")[..], b"Hello");
    // §7.2.3.1: the same message in two fragments, RSV1 on the first only.
    let mut rx = ext(config());
    let mut first = compressed(OpCode::Text, &hello[..3], false);
    let mut second = Frame::new(OpCode::Continuation, Bytes::copy_from_slice(&hello[3..]), true);
    rx.decode(&mut first, None).expect("first fragment");
    rx.decode(&mut second, None).expect("second fragment");
    assert_eq!([&first.payload[..], &second.payload[..]].concat(), b"Hello");
    // §7.2.3.2: a second "Hello" sharing the window.
    let mut rx = ext(config());
    decode_one(&mut rx, &hello).expect("first");
    assert_eq!(&decode_one(&mut rx, &[0xf2, 0x00, 0x11, 0x00, 0x00]).expect("second")[..], b"Hello");
    // §7.2.3.3: a stored (uncompressed) block.
    let stored = [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00];
    assert_eq!(&decode_one(&mut ext(config()), &stored).expect("stored")[..], b"Hello");
    // §7.2.3.4: a block with BFINAL set; the stream restarts for the next message.
    let mut rx = ext(config());
    let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    assert_eq!(&decode_one(&mut rx, &bfinal).expect("bfinal")[..], b"Hello");
    assert_eq!(&decode_one(&mut rx, &hello).expect("after bfinal")[..], b"Hello");
    // §7.2.3.5: two deflate blocks in one message.
    let two = [0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(&decode_one(&mut ext(config()), &two).expect("two blocks")[..], b"Hello");
    // §7.2.3.6: an empty message is a single 0x00.
    assert_eq!(&decode_one(&mut ext(config()), &[0x00]).expect("empty")[..], b"");
}

#[test]
fn empty_messages_round_trip_and_are_one_zero_byte() {
    let (mut tx, mut rx) = (ext(config()), ext(config()));
    for message in [&b""[..], b"x", b"", b"", b"xx", b""] {
        let frames = encode_message(&mut tx, message, 16);
        if message.is_empty() {
            assert_eq!(&frames[0].payload[..], [0x00]);
        }
        assert_eq!(decode_message(&mut rx, frames), message);
    }
}

#[test]
fn round_trips_at_every_window_size_and_takeover_mode() {
    let corpus = json(200_000, 7);
    for bits in 8..=15u8 {
        for no_context_takeover in [false, true] {
            let tx_config = PerMessageDeflateConfig {
                local_max_window_bits: bits,
                local_no_context_takeover: no_context_takeover,
                ..config()
            };
            let rx_config = PerMessageDeflateConfig {
                remote_max_window_bits: bits,
                remote_no_context_takeover: no_context_takeover,
                ..config()
            };
            let (mut tx, mut rx) = (ext(tx_config), ext(rx_config));
            let mut offset = 0;
            for (i, size) in [16usize, 1000, 70_000, 0, 5, 100_000].into_iter().enumerate() {
                let message = &corpus[offset..offset + size];
                offset += size;
                let frames = encode_message(&mut tx, message, 1 + i * 4096);
                assert_eq!(decode_message(&mut rx, frames), message, "window {bits}, message {i}");
            }
        }
    }
}

#[test]
fn context_takeover_shrinks_later_messages() {
    let message = json(2000, 3);
    let sizes = |no_context_takeover: bool| -> Vec<usize> {
        let mut tx =
            ext(PerMessageDeflateConfig { local_no_context_takeover: no_context_takeover, ..config() });
        let mut rx =
            ext(PerMessageDeflateConfig { remote_no_context_takeover: no_context_takeover, ..config() });
        (0..100)
            .map(|_| {
                let frames = encode_message(&mut tx, &message, usize::MAX);
                let size = frames[0].payload.len();
                assert_eq!(decode_message(&mut rx, frames), message);
                size
            })
            .collect()
    };
    let takeover = sizes(false);
    let fresh = sizes(true);
    // Without takeover every message compresses alike; with it, repeats shrink to a back-reference.
    assert!(fresh.iter().all(|&s| s == fresh[0]), "{fresh:?}");
    assert_eq!(takeover[0], fresh[0]);
    assert!(takeover[1..].iter().all(|&s| s * 10 < fresh[0]), "{takeover:?} vs {}", fresh[0]);
}

#[test]
fn fragmented_messages_carry_rsv1_on_the_first_frame_only() {
    let message = json(10_000, 5);
    let (mut tx, mut rx) = (ext(config()), ext(config()));
    let frames = encode_message(&mut tx, &message, 1000);
    assert_eq!(frames.len(), 10);
    assert_eq!(frames[0].rsv, Rsv::RSV1);
    assert!(frames[1..].iter().all(|f| f.rsv == Rsv::NONE && f.opcode == OpCode::Continuation));
    assert_eq!(decode_message(&mut rx, frames), message);
}

#[test]
fn control_frames_pass_untouched() {
    let mut ext = ext(config());
    for opcode in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        let original = Frame::new(opcode, "ping payload, compressible compressible compressible", true);
        let mut frame = original.clone();
        ext.encode(&mut frame).expect("encode");
        assert_eq!(frame, original);
        ext.decode(&mut frame, Some(10)).expect("decode");
        assert_eq!(frame, original);
    }
    // Even in the middle of a fragmented message.
    let mut first = Frame::new(OpCode::Text, "abc", false);
    ext.encode(&mut first).expect("first");
    let mut ping = Frame::new(OpCode::Ping, "p", true);
    ext.encode(&mut ping).expect("ping");
    assert_eq!(&ping.payload[..], b"p");
}

#[test]
fn rsv1_on_control_or_continuation_frames_is_a_protocol_error() {
    let mut rx = ext(config());
    let mut ping = compressed(OpCode::Ping, b"", true);
    assert!(matches!(rx.decode(&mut ping, None), Err(ExtensionError::Protocol(_))));

    let mut rx = ext(config());
    let mut first = compressed(OpCode::Text, &[0xf2, 0x48, 0xcd], false);
    rx.decode(&mut first, None).expect("first");
    let mut next = compressed(OpCode::Continuation, &[0xc9, 0xc9, 0x07, 0x00], true);
    let err = rx.decode(&mut next, None).expect_err("RSV1 on continuation");
    assert!(matches!(err, ExtensionError::Protocol(_)));
    assert_eq!(err.close_code().0, 1002);
}

#[test]
fn uncompressed_messages_pass_through() {
    let mut rx = ext(config());
    let mut frame = Frame::new(OpCode::Text, "plain", false);
    rx.decode(&mut frame, None).expect("plain first");
    let mut next = Frame::new(OpCode::Continuation, " text", true);
    rx.decode(&mut next, None).expect("plain continuation");
    assert_eq!((&frame.payload[..], &next.payload[..]), (&b"plain"[..], &b" text"[..]));
}

#[test]
fn no_compress_and_threshold_send_plain_messages() {
    let mut tx = ext(PerMessageDeflateConfig { compression_threshold: Some(64), ..config() });
    let mut rx = ext(config());
    // Below the threshold.
    let mut small = Frame::new(OpCode::Text, "short", true);
    tx.encode(&mut small).expect("small");
    assert_eq!((small.rsv, &small.payload[..]), (Rsv::NONE, &b"short"[..]));
    // At the threshold.
    let big = "x".repeat(64);
    let mut frame = Frame::new(OpCode::Text, big.clone(), true);
    tx.encode(&mut frame).expect("big");
    assert_eq!(frame.rsv, Rsv::RSV1);
    rx.decode(&mut frame, None).expect("decode big");
    assert_eq!(&frame.payload[..], big.as_bytes());
    // A small first fragment of a longer message is still compressed.
    let mut first = Frame::new(OpCode::Text, "sh", false);
    tx.encode(&mut first).expect("fragment");
    assert_eq!(first.rsv, Rsv::RSV1);
    let mut last = Frame::new(OpCode::Continuation, "ort", true);
    tx.encode(&mut last).expect("fragment");
    // The application's no_compress, on a fragmented message.
    let secret = "secret ".repeat(100);
    let mut first = Frame::new(OpCode::Binary, secret.clone(), false);
    first.no_compress = true;
    tx.encode(&mut first).expect("secret");
    let mut last = Frame::new(OpCode::Continuation, secret.clone(), true);
    tx.encode(&mut last).expect("secret end");
    assert_eq!((first.rsv, last.rsv), (Rsv::NONE, Rsv::NONE));
    assert_eq!((&first.payload[..], &last.payload[..]), (secret.as_bytes(), secret.as_bytes()));
}

#[test]
fn corrupt_data_is_invalid_data() {
    let mut rx = ext(config());
    let err = decode_one(&mut rx, &[0xff, 0xff, 0xff, 0xff, 0x00]).expect_err("corrupt");
    assert!(matches!(err, ExtensionError::InvalidData(_)), "{err:?}");
    assert_eq!(err.close_code().0, 1007);
}

#[test]
fn bombs_stop_at_max_size() {
    // 64 MiB of zeros compresses to about 64 KiB.
    let mut tx = ext(config());
    let zeros = vec![0u8; 64 << 20];
    let mut frame = Frame::new(OpCode::Binary, zeros, true);
    tx.encode(&mut frame).expect("encode");
    assert!(frame.payload.len() < 100_000, "{}", frame.payload.len());

    for max in [0usize, 1, 1000, 1 << 20] {
        let mut rx = ext(config());
        let mut bomb = frame.clone();
        let err = rx.decode(&mut bomb, Some(max)).expect_err("bomb");
        assert_eq!(err, ExtensionError::TooBig);
        assert_eq!(err.close_code().0, 1009);
    }
    // Exactly at the limit is fine.
    let mut tx = ext(config());
    let mut rx = ext(config());
    let mut frame = Frame::new(OpCode::Binary, vec![7u8; 5000], true);
    tx.encode(&mut frame).expect("encode");
    rx.decode(&mut frame, Some(5000)).expect("at the limit");
    assert_eq!(frame.payload.len(), 5000);
}

#[test]
fn fragment_limits_apply_per_frame() {
    let message = json(50_000, 9);
    let (mut tx, mut rx) = (ext(config()), ext(config()));
    let frames = encode_message(&mut tx, &message, 10_000);
    let mut budget = 45_000usize;
    let mut result = Ok(());
    for mut frame in frames {
        match rx.decode(&mut frame, Some(budget)) {
            Ok(()) => budget -= frame.payload.len(),
            Err(err) => {
                result = Err(err);
                break;
            }
        }
    }
    assert_eq!(result, Err(ExtensionError::TooBig));
}

#[test]
fn interoperates_with_flate2() {
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
    let message = json(30_000, 11);
    // flate2 compresses, we decompress.
    let mut compress = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let mut out = Vec::with_capacity(40_000);
    compress.compress_vec(&message, &mut out, FlushCompress::Sync).expect("flate2 compress");
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    assert_eq!(&decode_one(&mut ext(config()), &out).expect("decode")[..], &message[..]);
    // We compress, flate2 decompresses.
    let mut tx = ext(config());
    let frames = encode_message(&mut tx, &message, usize::MAX);
    let mut input = frames[0].payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut decompress = Decompress::new_with_window_bits(false, 15);
    let mut plain = Vec::with_capacity(message.len() + 1);
    decompress.decompress_vec(&input, &mut plain, FlushDecompress::Sync).expect("flate2 decompress");
    assert_eq!(plain, message);
}

#[test]
fn invalid_configs_are_refused() {
    for config in [
        PerMessageDeflateConfig { local_max_window_bits: 7, ..config() },
        PerMessageDeflateConfig { remote_max_window_bits: 16, ..config() },
        PerMessageDeflateConfig { level: 10, ..config() },
        PerMessageDeflateConfig { mem_level: 0, ..config() },
        PerMessageDeflateConfig { mem_level: 10, ..config() },
    ] {
        assert!(PerMessageDeflate::new(config).is_err(), "{config:?}");
    }
}

#[test]
fn the_automatic_threshold_depends_on_context_takeover() {
    let auto = PerMessageDeflateConfig::default();
    assert_eq!(auto.compression_threshold, None);
    let mut takeover = ext(auto);
    let mut fresh = ext(PerMessageDeflateConfig { local_no_context_takeover: true, ..auto });
    let small = "x".repeat(ws_deflate::NO_CONTEXT_TAKEOVER_THRESHOLD - 1);
    let mut frame = Frame::new(OpCode::Text, small.clone(), true);
    takeover.encode(&mut frame).expect("encode");
    assert_eq!(frame.rsv, Rsv::RSV1);
    let mut frame = Frame::new(OpCode::Text, small, true);
    fresh.encode(&mut frame).expect("encode");
    assert_eq!(frame.rsv, Rsv::NONE);
    let mut frame = Frame::new(OpCode::Text, "x".repeat(ws_deflate::NO_CONTEXT_TAKEOVER_THRESHOLD), true);
    fresh.encode(&mut frame).expect("encode");
    assert_eq!(frame.rsv, Rsv::RSV1);
}
