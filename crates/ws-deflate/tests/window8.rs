//! Window bits 8: zlib cannot compress with a 256-byte window and uses 512 bytes instead. That is
//! safe only because zlib never emits a distance above `window - 262` (250 for 512 bytes). This
//! test decodes our window-8 output with a strict decoder that refuses any distance above 256,
//! at every compression level (zlib-rs has a different match finder per level range), also for a
//! compressor re-created after `release_memory` from its 512-byte history.

use ws_deflate::{PerMessageDeflate, PerMessageDeflateConfig};
use ws_extensions::{Bytes, Extension, Frame, OpCode};

/// Reads bits least significant first, as DEFLATE packs them.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u32,
    count: u32,
}

impl Bits<'_> {
    fn get(&mut self, n: u32) -> Result<u32, String> {
        while self.count < n {
            let byte = *self.data.get(self.pos).ok_or("out of input")?;
            self.pos += 1;
            self.buf |= u32::from(byte) << self.count;
            self.count += 8;
        }
        let value = self.buf & ((1u32 << n) - 1);
        self.buf >>= n;
        self.count -= n;
        Ok(value)
    }

    fn align(&mut self) {
        self.buf = 0;
        self.count = 0;
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Code {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Code {
    fn new(lengths: &[u8]) -> Self {
        let mut counts = [0u16; 16];
        for &len in lengths {
            counts[usize::from(len)] += 1;
        }
        counts[0] = 0;
        let mut offsets = [0u16; 16];
        for len in 1..15 {
            offsets[len + 1] = offsets[len] + counts[len];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (symbol, &len) in lengths.iter().enumerate() {
            if len != 0 {
                symbols[usize::from(offsets[usize::from(len)])] = symbol as u16;
                offsets[usize::from(len)] += 1;
            }
        }
        Self { counts, symbols }
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Result<u16, String> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.get(1)? as i32;
            let count = i32::from(self.counts[len]);
            if code - first < count {
                return Ok(self.symbols[(index + code - first) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err("invalid Huffman code".into())
    }
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195,
    227, 258,
];
const LEN_EXTRA: [u8; 29] =
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
    4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] =
    [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

/// A DEFLATE decoder with a hard window limit, keeping history across messages.
struct StrictInflater {
    window: usize,
    history: Vec<u8>,
    max_distance: usize,
}

impl StrictInflater {
    /// Decodes one permessage-deflate message (tail already appended); returns its bytes.
    fn message(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        let start = self.history.len();
        let mut bits = Bits { data, pos: 0, buf: 0, count: 0 };
        while bits.pos < data.len() || bits.count >= 8 {
            let last = bits.get(1)?;
            match bits.get(2)? {
                0 => {
                    bits.align();
                    let len = bits.get(16)?;
                    let nlen = bits.get(16)?;
                    if len != !nlen & 0xffff {
                        return Err("bad stored length".into());
                    }
                    for _ in 0..len {
                        self.history.push(bits.get(8)? as u8);
                    }
                }
                1 => {
                    let mut lengths = [8u8; 288];
                    lengths[144..256].fill(9);
                    lengths[256..280].fill(7);
                    self.codes(&mut bits, &Code::new(&lengths), &Code::new(&[5; 30]))?;
                }
                2 => {
                    let hlit = bits.get(5)? as usize + 257;
                    let hdist = bits.get(5)? as usize + 1;
                    let hclen = bits.get(4)? as usize + 4;
                    const ORDER: [usize; 19] =
                        [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
                    let mut code_lengths = [0u8; 19];
                    for &i in &ORDER[..hclen] {
                        code_lengths[i] = bits.get(3)? as u8;
                    }
                    let lencode = Code::new(&code_lengths);
                    let mut lengths = Vec::with_capacity(hlit + hdist);
                    while lengths.len() < hlit + hdist {
                        let (value, repeat) = match lencode.decode(&mut bits)? {
                            sym @ 0..=15 => (sym as u8, 1),
                            16 => (*lengths.last().ok_or("repeat with no length")?, 3 + bits.get(2)?),
                            17 => (0, 3 + bits.get(3)?),
                            _ => (0, 11 + bits.get(7)?),
                        };
                        lengths.extend(std::iter::repeat_n(value, repeat as usize));
                    }
                    self.codes(&mut bits, &Code::new(&lengths[..hlit]), &Code::new(&lengths[hlit..]))?;
                }
                _ => return Err("invalid block type".into()),
            }
            if last == 1 {
                break;
            }
        }
        Ok(self.history[start..].to_vec())
    }

    fn codes(&mut self, bits: &mut Bits<'_>, lit: &Code, dist: &Code) -> Result<(), String> {
        loop {
            let symbol = usize::from(lit.decode(bits)?);
            if symbol < 256 {
                self.history.push(symbol as u8);
                continue;
            }
            if symbol == 256 {
                return Ok(());
            }
            let index = symbol - 257;
            let len = usize::from(LEN_BASE[index]) + bits.get(u32::from(LEN_EXTRA[index]))? as usize;
            let d = usize::from(dist.decode(bits)?);
            let distance = usize::from(DIST_BASE[d]) + bits.get(u32::from(DIST_EXTRA[d]))? as usize;
            if distance > self.window || distance > self.history.len() {
                return Err(format!("distance {distance} beyond the {}-byte window", self.window));
            }
            self.max_distance = self.max_distance.max(distance);
            for _ in 0..len {
                self.history.push(self.history[self.history.len() - distance]);
            }
        }
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let mut state = 1u64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    (0..60)
        .map(|i| {
            let len = [10, 100, 255, 256, 257, 300, 1000, 5000][i % 8];
            let mut msg = Vec::with_capacity(len + 64);
            while msg.len() < len {
                let n = next();
                let item =
                    format!(r#"{{"k":"{}","v":{},"pad":"{}"}}"#, n % 50, n % 1000, "ab".repeat(n % 40));
                msg.extend_from_slice(item.as_bytes());
            }
            msg.truncate(len);
            msg
        })
        .collect()
}

#[test]
fn window_8_output_fits_a_strict_256_byte_window_at_every_level() {
    let messages = corpus();
    for level in 0..=9u8 {
        // `release`: the compressor is freed after every message and re-created from its history.
        for (no_context_takeover, release) in [(false, false), (true, false), (false, true)] {
            let config = PerMessageDeflateConfig {
                local_max_window_bits: 8,
                local_no_context_takeover: no_context_takeover,
                level,
                compression_threshold: Some(0),
                ..Default::default()
            };
            let mut tx = PerMessageDeflate::new(config).expect("config");
            let mut strict = StrictInflater { window: 256, history: Vec::new(), max_distance: 0 };
            for (i, message) in messages.iter().enumerate() {
                let mut frame = Frame::new(OpCode::Binary, Bytes::copy_from_slice(message), true);
                tx.encode(&mut frame).expect("encode");
                let mut data = frame.payload.to_vec();
                data.extend_from_slice(&[0, 0, 0xff, 0xff]);
                let what = format!("level {level}, release {release}, message {i}");
                let out = strict.message(&data).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(&out, message, "{what}");
                if release {
                    tx.release_memory();
                }
            }
            if level > 0 {
                assert!(
                    strict.max_distance > 128,
                    "level {level}: matches were used ({})",
                    strict.max_distance
                );
            }
        }
    }
}

#[test]
fn the_strict_decoder_does_refuse_far_distances() {
    // Sanity check of the checker: window-15 output of repeated 1000-byte records has far matches.
    let config = PerMessageDeflateConfig { compression_threshold: Some(0), ..Default::default() };
    let mut tx = PerMessageDeflate::new(config).expect("config");
    let record: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut frame = Frame::new(OpCode::Binary, record.repeat(3), true);
    tx.encode(&mut frame).expect("encode");
    let mut data = frame.payload.to_vec();
    data.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut strict = StrictInflater { window: 256, history: Vec::new(), max_distance: 0 };
    assert!(strict.message(&data).is_err());
    let mut lenient = StrictInflater { window: 32768, history: Vec::new(), max_distance: 0 };
    assert_eq!(lenient.message(&data).expect("window 15"), record.repeat(3));
}
