//! Burst mode: many connections busy at once, then quiet, then closed; what the server's memory
//! does meanwhile is read by the driver (`cargo xtask bench`'s memory part).
//!
//! The client compresses as browsers and Python `websockets` do (the offer of [`Options::deflate`]
//! without `client_no_context_takeover`): it offers `client_max_window_bits`, keeps its context,
//! and compresses in the window the server grants, so the server needs a decompressor with the
//! client's history as well as its compressor. Every message is different: the plan's pool is
//! the burst's `echoes` messages, encoded once for what the server accepted.

use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::{CLOSE_1000, EchoReader, Error, Negotiated, Options, Plan, build_plan_with_pool, open};

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
    let o = Rc::new(Options { inflight: INFLIGHT, size: o.size.max(1), ..o.clone() });
    let other = |e: std::io::Error| Error::Other(e.to_string());
    let mut opened = Vec::with_capacity(conns);
    let mut pending = std::collections::VecDeque::new();
    for i in 0..conns {
        let o = o.clone();
        pending.push_back(tokio::task::spawn_local(async move { open(&o).await }));
        if pending.len() >= OPENING || i + 1 == conns {
            while let Some(h) = pending.pop_front() {
                opened.push(h.await.map_err(|e| Error::Other(e.to_string()))??);
            }
        }
    }
    // The frames are compressed once for what the server accepted, the same on every connection.
    let neg = opened.first().map_or(Negotiated::NONE, |c| c.1);
    if let Some(other) = opened.iter().map(|c| c.1).find(|n| *n != neg) {
        return Err(Error::Other(format!(
            "the connections negotiated different parameters: {neg:?}, {other:?}"
        )));
    }
    let plan = Rc::new(build_plan_with_pool(&o, &neg, echoes.max(1)));
    // All connections are up: the burst starts on every one at the same time.
    let mut busy = Vec::with_capacity(opened.len());
    for (stream, neg, leftover) in opened {
        let plan = plan.clone();
        busy.push(tokio::task::spawn_local(async move {
            echo_burst(stream, neg, leftover, plan, echoes).await.map_err(Error::Other)
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

/// Sends the plan's `echoes` messages in order on one connection, `INFLIGHT` at a time, and
/// reads their echoes (each compared byte for byte).
async fn echo_burst(
    mut stream: TcpStream,
    neg: Negotiated,
    leftover: Vec<u8>,
    plan: Rc<Plan>,
    echoes: usize,
) -> Result<TcpStream, String> {
    let first = INFLIGHT.min(echoes);
    stream.write_all(plan.frames_from(0, first)).await.map_err(|e| e.to_string())?;
    let mut sent = first;
    let mut echo = EchoReader::new(plan.clone(), neg);
    let mut done = echo.feed(&leftover)?;
    let mut buf = vec![0u8; 64 * 1024];
    while done < echoes {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("server closed after {done} of {echoes} echoes"));
        }
        done += echo.feed(&buf[..n])?;
        let upto = echoes.min(done + INFLIGHT);
        if upto > sent {
            stream.write_all(plan.frames_from(sent, upto - sent)).await.map_err(|e| e.to_string())?;
            sent = upto;
        }
    }
    Ok(stream)
}
