//! The `metrics` feature: the counters move as documented for one connection, a refused
//! handshake and a dropped one (`cargo test -p ws-tokio --features metrics --test metrics`).
//! One test in this binary: the recorder is process-wide.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ws_tokio::{CloseCode, Message, ServerBuilder, WebSocket};

/// The debugging recorder's snapshots reset what they read: this keeps the running totals
/// (counters, and gauges as the sum of their moves).
#[derive(Default)]
struct Totals(Mutex<HashMap<MetricId, f64>>);

/// A metric's name and labels.
type MetricId = (String, Vec<(String, String)>);

impl Totals {
    /// The value of the metric `name` whose labels include all of `labels`, summed.
    fn get(&self, snapshotter: &Snapshotter, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut totals = self.0.lock().unwrap();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            let labels = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(_) => 0.0,
            };
            *totals.entry((key.name().to_owned(), labels)).or_default() += value;
        }
        let matching = totals.iter().filter(|((n, l), _)| {
            n == name && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        });
        matching.map(|(_, v)| v).sum()
    }
}

#[tokio::test]
async fn counters_move_for_one_connection() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let totals = Totals::default();
    let m = |name: &str, labels: &[(&str, &str)]| totals.get(&snapshotter, name, labels);

    let (server, addr) = common::echo_server(ServerBuilder::new().compression(None)).await;

    let mut ws =
        ws_tokio::ClientBuilder::new().compression(None).connect(&format!("ws://{addr}")).await.unwrap();
    assert_eq!(m("ws_connections_opened_total", &[("role", "client")]), 1.0);
    assert_eq!(m("ws_connections_open", &[("role", "client")]), 1.0);
    ws.send("hello").await.unwrap();
    ws.send(Message::binary(vec![7u8; 300])).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("hello"));
    assert_eq!(ws.recv().await.unwrap().len(), 300);
    assert_eq!(m("ws_connections_open", &[("role", "server")]), 1.0);
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    drop(ws);
    server.shutdown(Duration::from_secs(2)).await;
    // The client's driver ends on its own task.
    for _ in 0..100 {
        if m("ws_connections_closed_total", &[("role", "client")]) == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    for role in ["server", "client"] {
        let r = [("role", role)];
        assert_eq!(m("ws_connections_opened_total", &r), 1.0, "{role}");
        assert_eq!(m("ws_connections_closed_total", &r), 1.0, "{role}");
        assert_eq!(m("ws_connections_open", &r), 0.0, "{role}");
        assert_eq!(m("ws_messages_received_total", &r), 2.0, "{role}");
        assert_eq!(m("ws_messages_sent_total", &r), 2.0, "{role}");
        assert_eq!(m("ws_close_codes_total", &[("role", role), ("code", "1000")]), 1.0, "{role}");
    }
    // Every byte one side wrote after the handshake, the other read: two data frames and a
    // close frame each way (masked from the client: 4 bytes more per frame).
    let (client_out, server_in) = (
        m("ws_bytes_sent_total", &[("role", "client")]),
        m("ws_bytes_received_total", &[("role", "server")]),
    );
    assert_eq!(client_out, server_in);
    assert_eq!(client_out, (2 + 4 + 5) as f64 + (4 + 4 + 300) as f64 + (2 + 4 + 2) as f64);
    let (server_out, client_in) = (
        m("ws_bytes_sent_total", &[("role", "server")]),
        m("ws_bytes_received_total", &[("role", "client")]),
    );
    assert_eq!(server_out, client_in);
    assert_eq!(server_out, (2 + 5) as f64 + (4 + 300) as f64 + (2 + 2) as f64);

    // A refused handshake (plain HTTP, no upgrade) counts by status; a dropped one by reason.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ServerBuilder::new().serve_listener(|_ws: WebSocket| async {}, listener).unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let status = String::from_utf8_lossy(&answer[9..12]).into_owned();
    drop(TcpStream::connect(addr).await.unwrap()); // closes before its request
    for _ in 0..100 {
        if m("ws_handshake_failures_total", &[]) == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.shutdown(Duration::from_secs(1)).await;
    assert_eq!(m("ws_handshake_rejections_total", &[("status", &status)]), 1.0, "{status}");
    assert_eq!(m("ws_handshake_rejections_total", &[]), 1.0);
    assert_eq!(m("ws_handshake_failures_total", &[("reason", "io")]), 1.0);
    assert_eq!(m("ws_connections_opened_total", &[("role", "server")]), 1.0);
}
