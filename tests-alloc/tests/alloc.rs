//! "No per-frame allocation": after warm-up, a connection receiving a steady stream of small
//! masked frames through a reused read buffer, and sending frames drained from `transmit`,
//! allocates (next to) nothing per frame.
//!
//! One `#[test]` runs every scenario in turn: the counters are process-wide, so no other test
//! thread may allocate meanwhile.

use ws_alloc_tests::{Counting, Snapshot};
use ws_proto::{Buf, Bytes, BytesMut, Config, Connection, Event, Message, Role, Utf8Bytes};

#[global_allocator]
static ALLOC: Counting = Counting;

const WARM_UP: usize = 1_000;
const FRAMES: usize = 10_000;
/// Bytes handed to `receive` at a time, as a socket read would.
const READ_CHUNK: usize = 4096;

/// What the client sends, in rotation: small binary and text messages of varied sizes, and a
/// ping now and then (answered by the server's automatic pong).
struct Payloads {
    binary: Vec<Bytes>,
    text: Vec<Utf8Bytes>,
}

impl Payloads {
    fn new() -> Self {
        let binary = [0usize, 1, 7, 64, 125, 126, 300, 1000]
            .iter()
            .map(|&n| Bytes::from((0..n).map(|i| i as u8).collect::<Vec<u8>>()))
            .collect();
        let text = ["", "hello", "κόσμε ✓ 𝄞", &"a medium sized text message ".repeat(8)]
            .iter()
            .map(|t| Utf8Bytes::from(*t))
            .collect();
        Self { binary, text }
    }

    fn send(&self, conn: &mut Connection, i: usize) {
        // Clones of `Bytes` share the payload: no allocation here either.
        match i % 13 {
            12 => conn.send_ping(Bytes::from_static(b"beat")),
            k if k % 3 == 0 => conn.send(Message::Text(self.text[k % self.text.len()].clone())),
            k => conn.send_binary(self.binary[k % self.binary.len()].clone()),
        }
        .expect("an open connection sends");
    }
}

/// Moves everything `conn` wants to write into `sink` (cleared first), chunk by chunk.
fn drain(conn: &mut Connection, sink: &mut Vec<u8>) {
    sink.clear();
    let out = conn.transmit();
    while out.has_remaining() {
        let chunk = out.chunk();
        sink.extend_from_slice(chunk);
        let n = chunk.len();
        out.advance(n);
    }
}

/// Feeds `wire` to `conn` in `READ_CHUNK` pieces through the reused `buf`, dropping every event
/// at once and writing out what `conn` queues (its pongs) after every read, as a socket loop
/// does; returns how many messages and pings arrived.
///
/// Writing after every read matters: a pending pong holds its ping's payload, a slice of the
/// read buffer, and while any slice of it lives the next read cannot reuse the buffer's storage.
fn receive_all(conn: &mut Connection, buf: &mut BytesMut, wire: &[u8], sink: &mut Vec<u8>) -> usize {
    let mut events = 0;
    for chunk in wire.chunks(READ_CHUNK) {
        buf.extend_from_slice(chunk);
        conn.receive(buf).expect("valid frames");
        while let Some(event) = conn.next_event() {
            assert!(matches!(event, Event::Message(_) | Event::Ping(_)), "{event:?}");
            events += 1;
        }
        drain(conn, sink);
    }
    events
}

fn per_frame(what: &str, used: Snapshot, frames: usize) -> f64 {
    let rate = used.allocations as f64 / frames as f64;
    println!(
        "{what}: {} allocations ({} bytes) for {frames} frames = {rate:.5} per frame",
        used.allocations, used.bytes
    );
    rate
}

/// A server receiving client frames: the wire is prepared up front, then fed in read-sized
/// chunks through one buffer, as a socket loop would.
fn server_receiving() -> f64 {
    let payloads = Payloads::new();
    let mut client = Connection::new(Role::Client, Config::default()).with_mask_seed([1; 32]);
    let mut server = Connection::new(Role::Server, Config::default());
    let mut wire = Vec::new();
    let mut sink = Vec::new();
    for i in 0..WARM_UP + FRAMES {
        payloads.send(&mut client, i);
        drain(&mut client, &mut sink);
        wire.extend_from_slice(&sink);
    }
    // Where the warm-up frames end on the wire.
    let mut warm_up_len = 0;
    {
        let mut c = Connection::new(Role::Client, Config::default()).with_mask_seed([1; 32]);
        for i in 0..WARM_UP {
            payloads.send(&mut c, i);
            drain(&mut c, &mut sink);
            warm_up_len += sink.len();
        }
    }

    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut pongs = Vec::with_capacity(READ_CHUNK);
    assert_eq!(receive_all(&mut server, &mut buf, &wire[..warm_up_len], &mut pongs), WARM_UP);
    let before = Snapshot::now();
    let received = receive_all(&mut server, &mut buf, &wire[warm_up_len..], &mut pongs);
    let used = before.since();
    assert_eq!(received, FRAMES);
    per_frame("server receiving", used, FRAMES)
}

/// A client queueing frames (masking each with a fresh key) and draining `transmit`.
fn client_sending() -> f64 {
    let payloads = Payloads::new();
    let mut client = Connection::new(Role::Client, Config::default()).with_mask_seed([2; 32]);
    let mut sink = Vec::with_capacity(64 << 10);
    for i in 0..WARM_UP {
        payloads.send(&mut client, i);
        drain(&mut client, &mut sink);
    }
    let before = Snapshot::now();
    for i in 0..FRAMES {
        payloads.send(&mut client, i);
        if i % 8 == 7 {
            // Several frames queued per write, as under load.
            drain(&mut client, &mut sink);
        }
    }
    drain(&mut client, &mut sink);
    per_frame("client sending", before.since(), FRAMES)
}

/// A client and a server exchanging frames both ways through reused buffers: an echo loop.
fn echo_loop() -> f64 {
    let payloads = Payloads::new();
    let mut client = Connection::new(Role::Client, Config::default()).with_mask_seed([3; 32]);
    let mut server = Connection::new(Role::Server, Config::default());
    let (mut to_server, mut to_client) =
        (BytesMut::with_capacity(READ_CHUNK), BytesMut::with_capacity(READ_CHUNK));
    let mut sink = Vec::with_capacity(64 << 10);
    let mut round = |i: usize, client: &mut Connection, server: &mut Connection| {
        payloads.send(client, i);
        drain(client, &mut sink);
        to_server.extend_from_slice(&sink);
        server.receive(&mut to_server).expect("valid client frames");
        while let Some(event) = server.next_event() {
            if let Event::Message(message) = event {
                server.send(message).expect("echo");
            }
        }
        drain(server, &mut sink);
        to_client.extend_from_slice(&sink);
        client.receive(&mut to_client).expect("valid server frames");
        while client.next_event().is_some() {}
    };
    for i in 0..WARM_UP {
        round(i, &mut client, &mut server);
    }
    let before = Snapshot::now();
    for i in 0..FRAMES {
        round(i, &mut client, &mut server);
    }
    // Each round carries one frame each way (plus a pong every 13 rounds).
    per_frame("echo loop (frames each way)", before.since(), FRAMES)
}

#[test]
fn no_allocation_per_frame_after_warm_up() {
    let rates = [server_receiving(), client_sending(), echo_loop()];
    for rate in rates {
        assert!(rate < 0.01, "allocations per frame: {rates:?}");
    }
}
