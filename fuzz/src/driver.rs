//! The `ws-tokio` driver against a scripted peer: an in-memory duplex pipe whose far end writes
//! frames and junk in arbitrary pieces, reads or stops reading, and ends its side, while the
//! application sends, receives, pings, closes and lets go, on a current-thread runtime with
//! paused time (timeouts elapse at once, deterministically). Replayed by
//! `crates/ws-tokio/tests/fuzz_replay.rs`.
//!
//! Input layout: byte 0 = role, permessage-deflate, `max_queue`, `max_size`, keepalive; byte 1
//! = write limit, `close_timeout`, `idle_release`, and how the peer behaves at the end; byte 2
//! = the number of leftover bytes (read past the handshake), then those bytes; then
//! operations, one byte each (its value modulo the number of operations) with their arguments.
//!
//! Checked: nothing panics (the driver's task included); the state only moves forward and how
//! the connection ended never changes; messages keep within `max_size`; once `recv` fails it
//! fails the same way every time; and once the application lets go, the driver closes the
//! transport within `close_timeout`, whether the peer then reads, stops reading or ends its
//! side. Memory is bounded by libFuzzer's `-rss_limit_mb` / `-malloc_limit_mb`.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use ws_deflate::{PerMessageDeflate, PerMessageDeflateConfig};
use ws_tokio::{BytesMut, CloseCode, Config, Message, Role, State, WebSocket};

use crate::input::Input;

/// How long an application or peer step may wait, picked by an argument byte.
const WAITS: [Duration; 4] =
    [Duration::ZERO, Duration::from_millis(1), Duration::from_millis(100), Duration::from_secs(2)];

const MAX_QUEUES: [usize; 4] = [1, 2, 4, 16];
const MAX_SIZES: [usize; 4] = [16, 125, 1024, 65_536];
const WRITE_LIMITS: [(usize, usize); 4] = [(0, 0), (16, 4), (1024, 256), (32 * 1024, 8 * 1024)];
const CLOSE_TIMEOUTS: [Duration; 4] =
    [Duration::ZERO, Duration::from_millis(10), Duration::from_secs(1), Duration::from_secs(10)];
const IDLE_RELEASES: [Option<Duration>; 4] =
    [None, Some(Duration::ZERO), Some(Duration::from_millis(5)), Some(Duration::from_secs(1))];
const CODES: [u16; 8] = [1000, 1001, 1002, 1005, 1006, 1011, 3000, 4999];

/// The pipe's capacity each way: small, so backpressure comes quickly.
const PIPE: usize = 1024;

/// Slack on top of `close_timeout` for the timer's millisecond granularity.
const SLACK: Duration = Duration::from_millis(10);

/// How long an operation waits, from one byte of the input.
fn pick_wait(input: &mut Input<'_>) -> Duration {
    WAITS[usize::from(input.byte() & 3)]
}

/// Runs `future` for at most `wait` (a zero wait polls it once); `None` if it did not finish.
async fn within<F: Future>(wait: Duration, future: F) -> Option<F::Output> {
    if wait.is_zero() {
        let mut future = std::pin::pin!(future);
        return std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending => Poll::Ready(None),
        })
        .await;
    }
    tokio::time::timeout(wait, future).await.ok()
}

fn rank(state: State) -> u8 {
    match state {
        State::Open => 0,
        State::Closing => 1,
        State::Closed => 2,
    }
}

/// A frame as the peer writes it: `b0` as given (FIN, RSV, opcode), masked as the peer's role
/// requires unless `wrong_mask`.
fn frame(b0: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![b0];
    let mask_bit = if masked { 0x80 } else { 0 };
    if payload.len() < 126 {
        out.push(mask_bit | payload.len() as u8);
    } else {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// What a run reached, for tests that check the harness gets somewhere.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    /// Messages the application received.
    pub messages: usize,
    /// Bytes the peer read from the connection.
    pub peer_read: usize,
    /// The close code, if the application saw the connection closed before letting go.
    pub code: Option<u16>,
}

/// Runs `data` (laid out as the module doc says). Panics on a violated invariant.
pub fn run(data: &[u8]) -> Reached {
    let [options, more, rest @ ..] = data else {
        return Reached::default();
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(script(*options, *more, rest))
}

async fn script(options: u8, more: u8, rest: &[u8]) -> Reached {
    let mut reached = Reached::default();
    let role = if options & 1 == 0 { Role::Server } else { Role::Client };
    let deflate = options & 2 != 0;
    let max_size = MAX_SIZES[usize::from(options >> 4 & 3)];
    let close_timeout = CLOSE_TIMEOUTS[usize::from(more >> 2 & 3)];
    let mut config = Config::default();
    config.max_queue = Some(MAX_QUEUES[usize::from(options >> 2 & 3)]);
    config.max_size = Some(max_size);
    config.ping_interval = (options & 0x40 != 0).then_some(Duration::from_secs(1));
    config.ping_timeout = (options & 0x80 == 0).then_some(Duration::from_secs(1));
    config.close_timeout = Some(close_timeout);
    config.write_limit = WRITE_LIMITS[usize::from(more & 3)].into();
    config.idle_release = IDLE_RELEASES[usize::from(more >> 4 & 3)];
    let end = more >> 6;

    let mut input = Input(rest);
    let n = usize::from(input.byte() % 32);
    let leftover = BytesMut::from(input.bytes(n));
    let extensions: Vec<Box<dyn ws_tokio::Extension>> = if deflate {
        let config = PerMessageDeflateConfig { compression_threshold: Some(0), ..Default::default() };
        vec![Box::new(PerMessageDeflate::new(config).expect("a valid deflate config"))]
    } else {
        Vec::new()
    };
    let (ours, mut peer) = tokio::io::duplex(PIPE);
    let (ws, driver) = WebSocket::from_upgraded(ours, role, extensions, leftover, config);
    let mut driver = tokio::spawn(driver);
    let mut ws: Option<WebSocket<DuplexStream>> = Some(ws);
    // A client's frames are masked: the peer of a server is a client.
    let peer_masks = role == Role::Server;

    let mut outbox: Vec<u8> = Vec::new();
    let mut peer_ended = false;
    let mut state = State::Open;
    let mut closure = None;
    let mut recv_error: Option<String> = None;
    let mut read = vec![0; 64 * 256];

    for _ in 0..128 {
        if input.0.is_empty() {
            break;
        }
        match input.byte() % 13 {
            0 => {
                let b0 = input.byte();
                let len = input.byte();
                let payload = input.bytes(usize::from(len & 0x7f) * if len & 0x40 != 0 { 4 } else { 1 });
                outbox.extend(frame(b0, payload, peer_masks != (len & 0x80 != 0)));
            }
            1 => {
                let n = usize::from(input.byte() % 64);
                outbox.extend_from_slice(input.bytes(n));
            }
            2 => {
                let wait = pick_wait(&mut input);
                if !peer_ended && !outbox.is_empty() {
                    match within(wait, peer.write(&outbox)).await {
                        Some(Ok(n)) => drop(outbox.drain(..n)),
                        Some(Err(_)) => peer_ended = true,
                        None => {}
                    }
                }
            }
            3 => {
                let wait = pick_wait(&mut input);
                let n = (usize::from(input.byte()) * 64).min(read.len());
                if let Some(Ok(n)) = within(wait, peer.read(&mut read[..n.max(1)])).await {
                    reached.peer_read += n;
                }
            }
            4 => {
                let _ = peer.shutdown().await;
                peer_ended = true;
            }
            5 => tokio::time::sleep(pick_wait(&mut input)).await,
            6 => {
                let wait = pick_wait(&mut input);
                let n = usize::from(input.byte());
                let payload = input.bytes(n).to_vec();
                if let Some(ws) = &mut ws {
                    let message = match String::from_utf8(payload) {
                        Ok(text) => Message::text(text),
                        Err(e) => Message::binary(e.into_bytes()),
                    };
                    let _ = within(wait, ws.send(message)).await;
                }
            }
            7 => {
                let wait = pick_wait(&mut input);
                if let Some(ws) = &mut ws {
                    match within(wait, ws.recv()).await {
                        Some(Ok(message)) => {
                            assert!(recv_error.is_none(), "a message after recv failed");
                            assert!(message.len() <= max_size, "a message over max_size");
                            reached.messages += 1;
                        }
                        Some(Err(e)) => {
                            let e = e.to_string();
                            assert_eq!(
                                recv_error.get_or_insert_with(|| e.clone()),
                                &e,
                                "recv failed differently"
                            );
                        }
                        None => {}
                    }
                }
            }
            8 => {
                let wait = pick_wait(&mut input);
                if let Some(ws) = &mut ws {
                    let _ = within(wait, ws.ping(None)).await;
                }
            }
            9 => {
                let wait = pick_wait(&mut input);
                let code = CODES[usize::from(input.byte() % 8)];
                if let Some(ws) = &mut ws {
                    let _ = within(wait, ws.close(CloseCode(code), "bye")).await;
                }
            }
            10 => ws = None,
            11 => {
                for _ in 0..=input.byte() % 4 {
                    tokio::task::yield_now().await;
                }
            }
            _ => {
                let wait = pick_wait(&mut input);
                let parts = [input.bytes(3).to_vec(), input.bytes(3).to_vec()];
                if let Some(ws) = &mut ws {
                    let _ = within(wait, ws.send_fragmented(parts)).await;
                }
            }
        }
        if let Some(ws) = &ws {
            let now = ws.state();
            assert!(rank(now) >= rank(state), "state went back from {state:?} to {now:?}");
            state = now;
            reached.code = ws.close_code().map(|code| code.0);
            match (&closure, ws.closure()) {
                (Some(before), now) => assert_eq!(Some(before), now.as_ref(), "the closure changed"),
                (None, now) => closure = now,
            }
        }
    }

    // The application lets go; the peer ends as byte 1 says. The transport must be closed
    // within close_timeout.
    drop(ws);
    if end & 2 != 0 {
        let _ = peer.shutdown().await;
    }
    // A peer that stops reading still holds its end open until the driver is done.
    let mut held = Some(peer);
    let drain = match held.take() {
        Some(mut peer) if end & 1 == 0 => Some(tokio::spawn(async move {
            let mut sink = [0; 4096];
            while let Ok(1..) = peer.read(&mut sink).await {}
        })),
        other => {
            held = other;
            None
        }
    };
    match tokio::time::timeout(close_timeout + SLACK, &mut driver).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the driver's task failed: {e}"),
        Err(_) => panic!("the driver still runs {close_timeout:?} + {SLACK:?} after the application let go"),
    }
    if let Some(drain) = drain {
        // The driver closed the transport: the peer sees its end.
        let done = tokio::time::timeout(SLACK, drain).await;
        assert!(done.is_ok(), "the peer does not see the transport closed");
    }
    drop(held);
    reached
}
