//! Burst mode: many connections busy at once, then quiet, then closed; what the server's memory
//! does meanwhile is read by the driver (`cargo xtask bench`'s memory part).
//!
//! Unlike the throughput run, the client compresses as browsers and Python `websockets` do: it
//! offers `client_max_window_bits`, keeps its context, and compresses each message with its own
//! stream, so the server needs a decompressor with the client's history as well as its
//! compressor. Every message is different (consecutive slices of one JSON-like text).

use std::rc::Rc;
use std::time::Duration;

use flate2::{Compress, Compression, FlushCompress};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::{CLOSE_1000, EchoReader, Error, Negotiated, Options, Plan, handshake, json_payload};

/// What a browser offers: context takeover both ways, and a window the server may reduce.
const OFFER_BROWSER: &str = "permessage-deflate; client_max_window_bits";
/// Messages in flight per connection during the burst.
const INFLIGHT: usize = 8;
/// Handshakes in flight while the connections open.
const OPENING: usize = 256;

/// Opens `conns` connections (compressed when `o.deflate`), then on all of them at once echoes
/// `echoes` different messages of `o.size` bytes (8 in flight per connection), calls `ready`
/// with how many connections are up, and holds them, quiet, until stdin closes. It then closes
/// them all with 1000 and waits (2 s at most) for the server to close its side. Must run inside
/// a [`tokio::task::LocalSet`].
pub async fn run_burst(
    o: &Options,
    conns: usize,
    echoes: usize,
    ready: impl FnOnce(usize),
) -> Result<(), Error> {
    let size = o.size.max(1);
    let text = Rc::new(json_payload(size * echoes.max(1)));
    let plan = Rc::new(Plan {
        frames: Vec::new(),
        frame_len: 0,
        payload: text[..size].to_vec(),
        masked: Vec::new(),
        opcode: 1,
        deflate: o.deflate,
        inflight: INFLIGHT,
    });
    let other = |e: std::io::Error| Error::Other(e.to_string());
    let mut opened = Vec::with_capacity(conns);
    let mut pending = std::collections::VecDeque::new();
    for i in 0..conns {
        let o = o.clone();
        pending.push_back(tokio::task::spawn_local(async move {
            let connect = |source| Error::Connect { addr: o.addr.clone(), source };
            let mut stream = TcpStream::connect(&o.addr).await.map_err(connect)?;
            stream.set_nodelay(true).map_err(connect)?;
            let host = o.host.as_deref().unwrap_or(&o.addr);
            let offer = o.deflate.then_some(OFFER_BROWSER);
            let (neg, leftover) = handshake(&mut stream, host, &o.path, offer)
                .await
                .map_err(|source| Error::Handshake { addr: o.addr.clone(), source })?;
            Ok::<_, Error>((stream, neg, leftover))
        }));
        if pending.len() >= OPENING || i + 1 == conns {
            while let Some(h) = pending.pop_front() {
                opened.push(h.await.map_err(|e| Error::Other(e.to_string()))??);
            }
        }
    }
    // All connections are up: the burst starts on every one at the same time.
    let mut busy = Vec::with_capacity(opened.len());
    for (stream, neg, leftover) in opened {
        let (plan, text) = (plan.clone(), text.clone());
        busy.push(tokio::task::spawn_local(async move {
            echo_burst(stream, neg, leftover, plan, &text, size, echoes).await.map_err(Error::Other)
        }));
    }
    let mut held = Vec::with_capacity(busy.len());
    for h in busy {
        held.push(h.await.map_err(|e| Error::Other(e.to_string()))??);
    }
    ready(held.len());
    tokio::task::spawn_blocking(|| {
        let mut sink = [0u8; 64];
        while matches!(std::io::Read::read(&mut std::io::stdin(), &mut sink), Ok(n) if n > 0) {}
    })
    .await
    .map_err(|e| Error::Other(e.to_string()))?;
    // Close politely, then wait for the server's side to close: the driver then measures a
    // server that has finished with every connection, not one still timing them out.
    let mut closing = Vec::with_capacity(held.len());
    for mut stream in held {
        closing.push(tokio::task::spawn_local(async move {
            stream.write_all(&CLOSE_1000).await.map_err(other)?;
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await.map_err(other)? > 0 {}
            Ok::<_, Error>(())
        }));
    }
    let all = async {
        for h in closing {
            let _ = h.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), all).await;
    Ok(())
}

/// Sends `echoes` consecutive `size`-byte slices of `text` on one connection, `INFLIGHT` at a
/// time, and reads their echoes (the first compared byte for byte, the others by length).
async fn echo_burst(
    mut stream: TcpStream,
    neg: Negotiated,
    leftover: Vec<u8>,
    plan: Rc<Plan>,
    text: &[u8],
    size: usize,
    echoes: usize,
) -> Result<TcpStream, String> {
    let bits = neg.client_max_window_bits.unwrap_or(15).clamp(9, 15);
    // Level 1: the client's cost is not what is measured, and the server's memory does not
    // depend on how well the client compresses.
    let mut deflate = neg.deflate.then(|| Compress::new_with_window_bits(Compression::fast(), false, bits));
    let mask = [0x5a, 0x13, 0xc4, 0x7e];
    let mut frame = |i: usize| -> Result<Vec<u8>, String> {
        let message = &text[i * size..(i + 1) * size];
        match &mut deflate {
            Some(c) => {
                let out = compress_message(c, message)?;
                Ok(crate::encode_frame(1, true, &out, mask))
            }
            None => Ok(crate::encode_frame(1, false, message, mask)),
        }
    };
    let mut sent = 0;
    let first = INFLIGHT.min(echoes);
    let mut batch = Vec::new();
    for i in 0..first {
        batch.extend_from_slice(&frame(i)?);
    }
    sent += first;
    stream.write_all(&batch).await.map_err(|e| e.to_string())?;
    let mut echo = EchoReader::new(plan, neg);
    let mut done = echo.feed(&leftover)?;
    let mut buf = vec![0u8; 64 * 1024];
    while done < echoes {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("server closed after {done} of {echoes} echoes"));
        }
        let now = echo.feed(&buf[..n])?;
        done += now;
        let mut more = Vec::new();
        while sent < echoes && sent < done + INFLIGHT {
            more.extend_from_slice(&frame(sent)?);
            sent += 1;
        }
        if !more.is_empty() {
            stream.write_all(&more).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(stream)
}

/// One message through a stream that keeps its context: sync flush, tail stripped (RFC 7692).
fn compress_message(c: &mut Compress, message: &[u8]) -> Result<Vec<u8>, String> {
    let start = c.total_in();
    let mut out = Vec::with_capacity(message.len() / 2 + 64);
    loop {
        let at = (c.total_in() - start) as usize;
        c.compress_vec(&message[at..], &mut out, FlushCompress::Sync).map_err(|e| format!("deflate: {e}"))?;
        // Room left over means the flush is complete.
        if (c.total_in() - start) as usize == message.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    if !out.ends_with(&[0, 0, 0xff, 0xff]) {
        return Err("deflate: sync flush without its tail".into());
    }
    out.truncate(out.len() - 4);
    Ok(out)
}
