//! The permessage-deflate harnesses. Replayed by `crates/ws-deflate/tests/fuzz_replay.rs`.
//!
//! * [`run_decode`]: arbitrary frames through [`PerMessageDeflate::decode`] (the `Extension`
//!   trait) with a small message budget; or, with the mode bit set, the same payloads as plain
//!   messages compressed by one endpoint and decompressed by another, which must agree.
//! * [`run_connection`]: the `proto` harness on a server `Connection` with the extension
//!   installed, so reassembly, the message limit after decompression and close codes are
//!   exercised together.

use ws_deflate::{PerMessageDeflate, PerMessageDeflateConfig};
use ws_extensions::{Extension, ExtensionError, Frame, OpCode, Rsv};
use ws_proto::Role;

/// Message budgets for `decode`, picked by the options byte: small, so bombs hit them.
const BUDGETS: [Option<usize>; 8] =
    [Some(0), Some(1), Some(16), Some(125), Some(1024), Some(4096), Some(65_536), None];

/// Splits `wire` into frames: a flags byte (bit 0 FIN, bit 1 RSV1, bits 2–3 the opcode:
/// continuation, text, binary, ping), a little-endian `u16` length (cut to what is left) and
/// the payload.
fn frames(mut wire: &[u8]) -> impl Iterator<Item = Frame> + '_ {
    std::iter::from_fn(move || {
        let [flags, lo, hi, rest @ ..] = wire else {
            return None;
        };
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
        let (payload, tail) = rest.split_at(len);
        wire = tail;
        let opcode =
            [OpCode::Continuation, OpCode::Text, OpCode::Binary, OpCode::Ping][usize::from(flags >> 2 & 3)];
        let mut frame = Frame::new(opcode, payload.to_vec(), flags & 1 != 0 || opcode.is_control());
        frame.rsv.set(Rsv::RSV1, flags & 2 != 0);
        Some(frame)
    })
}

fn config(options: u8) -> PerMessageDeflateConfig {
    let bits = 8 + (options & 0x07);
    PerMessageDeflateConfig {
        local_max_window_bits: bits,
        remote_max_window_bits: bits,
        local_no_context_takeover: options & 0x08 != 0,
        remote_no_context_takeover: options & 0x08 != 0,
        compression_threshold: Some(0),
        ..Default::default()
    }
}

/// Byte 0: bits 0–2 the window (8–15), bit 3 no context takeover, bits 4–6 the message budget,
/// bit 7 round-trip mode. Then frames as [`frames`] reads them.
pub fn run_decode(data: &[u8]) {
    let [options, wire @ ..] = data else {
        return;
    };
    let config = config(*options);
    if options & 0x80 != 0 {
        return round_trip(config, wire);
    }
    let budget = BUDGETS[usize::from(options >> 4 & 0x07)];
    let mut deflate = PerMessageDeflate::new(config).expect("a valid config");
    let mut size = 0usize;
    for mut frame in frames(wire) {
        let left = if frame.opcode.is_control() { Some(125) } else { budget.map(|b| b.saturating_sub(size)) };
        let before = frame.payload.len();
        let rsv1 = frame.rsv.contains(Rsv::RSV1);
        match deflate.decode(&mut frame, left) {
            Ok(()) => {
                assert!(!frame.rsv.contains(Rsv::RSV1) || !rsv1, "RSV1 left set");
                if let Some(left) = left {
                    assert!(
                        frame.payload.len() <= left.max(before),
                        "{} bytes, budget {left}",
                        frame.payload.len()
                    );
                    // A compressed frame's output always respects the budget.
                    if rsv1 {
                        assert!(frame.payload.len() <= left);
                    }
                }
                if !frame.opcode.is_control() {
                    size = if frame.fin { 0 } else { size + frame.payload.len() };
                }
            }
            // The connection fails here; nothing more would reach the extension.
            Err(ExtensionError::TooBig | ExtensionError::Protocol(_) | ExtensionError::InvalidData(_)) => {
                return;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

/// Every data frame's payload sent as a message (fragmented as the frames say) through one
/// endpoint's `encode` and the other's `decode`: the bytes must come back unchanged. A frame
/// with RSV1 set is followed by `release_memory` on the sender (even payload length), the
/// receiver (odd), or both (empty), mid-message included.
fn round_trip(config: PerMessageDeflateConfig, wire: &[u8]) {
    let mut sender = PerMessageDeflate::new(config).expect("a valid config");
    let mut receiver = PerMessageDeflate::new(config).expect("a valid config");
    let mut in_message = false;
    for frame in frames(wire) {
        let opcode = match (frame.opcode, in_message) {
            (OpCode::Ping, _) => OpCode::Ping,
            (_, true) => OpCode::Continuation,
            (OpCode::Continuation, false) => OpCode::Binary,
            (opcode, false) => opcode,
        };
        let release = frame.rsv.contains(Rsv::RSV1).then_some(frame.payload.len());
        let plain = frame.payload.clone();
        let mut frame = Frame::new(opcode, plain.clone(), frame.fin);
        sender.encode(&mut frame).expect("encoding a well-ordered message");
        receiver.decode(&mut frame, None).expect("decoding what we encoded");
        assert_eq!(frame.payload, plain);
        match release {
            Some(0) => {
                sender.release_memory();
                receiver.release_memory();
            }
            Some(len) if len % 2 == 0 => sender.release_memory(),
            Some(_) => receiver.release_memory(),
            None => {}
        }
        if !opcode.is_control() {
            in_message = !frame.fin;
        }
    }
}

/// The `proto` harness on a server connection with permessage-deflate. Byte 1's high bits (the
/// `proto` harness reads only its low 4) pick the window and context takeover as in
/// [`run_decode`].
pub fn run_connection(data: &[u8]) {
    let options = data.get(1).map_or(0, |b| b >> 4);
    let deflate = PerMessageDeflate::new(config(options)).expect("a valid config");
    crate::proto::run_with(Role::Server, data, |conn| conn.with_extensions(vec![Box::new(deflate)]));
}
