//! `ws_load::hold` against a real ws-tokio server on loopback: connections come from the source
//! addresses asked for, echo through permessage-deflate, survive keepalive by answering pings,
//! and a connection the server drops is counted as lost.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ws_load::Options;
use ws_load::hold::{HoldOptions, run_hold};
use ws_tokio::{Server, ServerBuilder};

/// An echo server that records each peer's IP; with `close_after_echo` its handler returns (the
/// server closing with 1000) after the first echo.
async fn server(close_after_echo: bool, seen: Arc<Mutex<BTreeMap<IpAddr, usize>>>) -> Server {
    ServerBuilder::new()
        // Pings well within the hold: a connection that did not answer would be closed.
        .ping_interval(Some(Duration::from_millis(50)))
        .ping_timeout(Some(Duration::from_millis(100)))
        .serve(
            move |mut ws| {
                let seen = seen.clone();
                async move {
                    if let Some(peer) = ws.info().remote_addr() {
                        *seen.lock().expect("lock").entry(peer.ip()).or_default() += 1;
                    }
                    // Otherwise held connections stay open, pinged, until the client goes.
                    while let Ok(message) = ws.recv().await {
                        if ws.send(message).await.is_err() || close_after_echo {
                            return;
                        }
                    }
                }
            },
            "127.0.0.1:0",
        )
        .await
        .expect("bind")
}

fn hold(server: &Server, conns: usize, deflate: bool) -> (Options, HoldOptions) {
    let o = Options {
        addr: server.local_addr().expect("addr").to_string(),
        size: 1024,
        deflate,
        ..Options::default()
    };
    let sources = ["127.0.0.2", "127.0.0.3"].iter().map(|s| s.parse().expect("ip")).collect();
    (o, HoldOptions { conns, sources, concurrency: 8, echo: true })
}

#[test]
fn held_connections_echo_answer_pings_and_come_from_the_sources() {
    ws_load::block_on(async {
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let server = server(false, seen.clone()).await;
        let (o, h) = hold(&server, 20, true);
        let (mut opened, mut echoed) = (None, None);
        let held = run_hold(
            &o,
            &h,
            |x| opened = Some(x.clone()),
            |x| echoed = Some(x.clone()),
            std::future::ready(()),
            tokio::time::sleep(Duration::from_millis(600)),
        )
        .await
        .expect("hold");
        let (opened, echoed) = (opened.expect("opened"), echoed.expect("echoed"));
        assert_eq!((opened.conns, opened.failed), (20, 0), "{opened:?}");
        assert_eq!((echoed.echoed, echoed.lost), (20, 0), "{echoed:?}");
        assert_eq!((held.held, held.lost), (20, 0), "{held:?}");
        // 600 ms at one ping per 50 ms: several rounds, each one answered.
        assert!(held.pongs >= 40, "{held:?}");
        let seen = seen.lock().expect("lock").clone();
        let two: Vec<(IpAddr, usize)> = seen.into_iter().collect();
        assert_eq!(two, vec![("127.0.0.2".parse().expect("ip"), 10), ("127.0.0.3".parse().expect("ip"), 10)]);
        server.shutdown(Duration::from_secs(1)).await;
    })
    .expect("runtime");
}

#[test]
fn connections_the_server_closes_are_counted_as_lost() {
    ws_load::block_on(async {
        // The handler returns after its one echo: the server closes with 1000.
        let server = server(true, Arc::default()).await;
        let (o, h) = hold(&server, 6, false);
        let held = run_hold(
            &o,
            &h,
            |_| {},
            |_| {},
            std::future::ready(()),
            tokio::time::sleep(Duration::from_millis(300)),
        )
        .await
        .expect("hold");
        assert_eq!((held.held, held.lost), (0, 6), "{held:?}");
        assert!(held.first_error.is_some_and(|e| e.contains("close")));
        server.shutdown(Duration::from_secs(1)).await;
    })
    .expect("runtime");
}

#[test]
fn connections_waiting_for_an_echo_slot_still_answer_pings() {
    ws_load::block_on(async {
        // Each echo takes 300 ms and one connection echoes at a time (concurrency 1): the last
        // of 4 waits about 900 ms for its turn, many times the 150 ms the server's keepalive
        // allows a ping. Those waiting must keep reading (issue 22).
        let server = ServerBuilder::new()
            .ping_interval(Some(Duration::from_millis(50)))
            .ping_timeout(Some(Duration::from_millis(100)))
            .serve(
                |mut ws| async move {
                    while let Ok(message) = ws.recv().await {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        if ws.send(message).await.is_err() {
                            return;
                        }
                    }
                },
                "127.0.0.1:0",
            )
            .await
            .expect("bind");
        let (o, mut h) = hold(&server, 4, true);
        h.concurrency = 1;
        let mut echoed = None;
        let held = run_hold(
            &o,
            &h,
            |_| {},
            |x| echoed = Some(x.clone()),
            std::future::ready(()),
            tokio::time::sleep(Duration::from_millis(200)),
        )
        .await
        .expect("hold");
        let echoed = echoed.expect("echoed");
        assert_eq!((echoed.echoed, echoed.lost), (4, 0), "{echoed:?}");
        assert_eq!((held.held, held.lost), (4, 0), "{held:?}");
        server.shutdown(Duration::from_secs(1)).await;
    })
    .expect("runtime");
}
