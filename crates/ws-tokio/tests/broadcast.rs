//! Broadcast: rooms, compress-once, and connections that do not keep up.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tokio::net::TcpListener;
use ws_tokio::{
    BroadcastConfig, Broadcaster, ClientBuilder, CloseCode, Compression, Error, Memory, Message,
    PreparedMessage, ServerBuilder, WebSocket, WhenFull,
};

/// A server whose handlers join `hub` and the room named by the request path, and pass what
/// their client sends to the rest of that room.
async fn hub_server(builder: ServerBuilder, hub: Broadcaster) -> (ws_tokio::Server, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = builder
        .serve_listener(
            move |mut ws: WebSocket| {
                let hub = hub.clone();
                async move {
                    let member = hub.join(&ws);
                    let room = ws.info().request().unwrap().uri().path().trim_start_matches('/').to_owned();
                    member.join_room(&room);
                    while let Ok(message) = ws.recv().await {
                        hub.room(&room).broadcast_except(message, &member);
                    }
                }
            },
            listener,
        )
        .unwrap();
    (server, format!("ws://{addr}"))
}

/// Waits until `n` connections have joined.
async fn members(hub: &Broadcaster, n: usize) {
    for _ in 0..500 {
        if hub.len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("{} members, expected {n}", hub.len());
}

#[tokio::test]
async fn rooms_reach_their_members_but_not_the_sender() {
    let hub = Broadcaster::default();
    let (server, base) = hub_server(ServerBuilder::new(), hub.clone()).await;
    let mut alice = ws_tokio::connect(&format!("{base}/a")).await.unwrap();
    let mut bob = ws_tokio::connect(&format!("{base}/a")).await.unwrap();
    let mut carol = ws_tokio::connect(&format!("{base}/b")).await.unwrap();
    members(&hub, 3).await;
    assert_eq!(hub.room("a").len(), 2);
    assert_eq!(hub.room("b").len(), 1);

    alice.send("alice: hi").await.unwrap();
    assert_eq!(bob.recv().await.unwrap(), Message::text("alice: hi"));
    let delivery = hub.broadcast("to everyone");
    assert_eq!((delivery.delivered, delivery.dropped, delivery.closed), (3, 0, 0));
    for ws in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(ws.recv().await.unwrap(), Message::text("to everyone"));
    }
    // Alice never got her own message, and carol's room did not hear it.
    assert_eq!(hub.totals().delivered, 1 + 3);

    // Leaving: a closed connection's member is dropped with its handler.
    bob.close(CloseCode::NORMAL, "").await.unwrap();
    members(&hub, 2).await;
    assert_eq!(hub.room("a").len(), 1);
    carol.close(CloseCode::NORMAL, "").await.unwrap();
    members(&hub, 1).await;
    assert!(!hub.rooms().contains(&"b".to_owned()));
    server.shutdown(Duration::from_secs(1)).await;
}

/// Connections that compress without context takeover share one compressed form; with
/// context takeover each compresses its own, and every client reads the message intact.
#[tokio::test]
async fn compressed_once_for_connections_without_context_takeover() {
    let text: String = (0..200).map(|i| format!("{{\"tick\":{i},\"price\":101.25}}")).collect();
    for (compression, forms) in
        [(Compression::Deflate(Memory::Shared), 1), (Compression::Deflate(Memory::Dedicated), 0)]
    {
        let hub = Broadcaster::default();
        let (server, base) =
            hub_server(ServerBuilder::new().compression(Some(compression)), hub.clone()).await;
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(ClientBuilder::new().connect(&format!("{base}/r")).await.unwrap());
        }
        members(&hub, 4).await;
        let message = PreparedMessage::new(Message::text(text.clone()));
        assert_eq!(hub.room("r").broadcast_prepared(&message, None).delivered, 4);
        assert_eq!(message.encoded_forms(), forms, "{compression:?}");
        for ws in &mut clients {
            assert!(ws.info().extensions().iter().any(|e| e == "permessage-deflate"));
            assert_eq!(ws.recv().await.unwrap(), Message::text(text.clone()));
        }
        server.shutdown(Duration::from_secs(1)).await;
    }
}

/// A client that never reads does not hold the broadcaster up or grow the server's memory:
/// past `max_buffered` it is skipped (counted), or closed with the chosen code.
#[tokio::test]
async fn slow_clients_are_skipped_or_closed() {
    let payload = vec![b'x'; 100 * 1024];
    for when_full in [WhenFull::Skip, WhenFull::Close(CloseCode::TRY_AGAIN_LATER)] {
        let config = BroadcastConfig::default().with_max_buffered(Some(64 * 1024)).with_when_full(when_full);
        let hub = Broadcaster::new(config);
        let (server, base) =
            hub_server(ServerBuilder::new().compression(None).max_size(Some(1 << 20)), hub.clone()).await;
        let mut sleeper = ClientBuilder::new().compression(None).connect(&format!("{base}/r")).await.unwrap();
        members(&hub, 1).await;
        let mut total = ws_tokio::Delivery::default();
        for _ in 0..200 {
            total += hub.broadcast(payload.clone());
        }
        assert!(total.delivered >= 1, "{total:?}");
        assert_eq!(total.delivered + total.dropped + total.closed, 200);
        match when_full {
            WhenFull::Skip => {
                assert!(total.dropped > 0 && total.closed == 0, "{total:?}");
                // Far fewer than 200 messages were queued: what waits is bounded in bytes.
                assert!(total.delivered < 100, "{total:?}");
            }
            _ => {
                assert!(total.closed > 0 && total.dropped == 0, "{total:?}");
                // The client reads what was queued before, then the close.
                let err = loop {
                    match sleeper.recv().await {
                        Ok(_) => continue,
                        Err(e) => break e,
                    }
                };
                assert!(matches!(&err, Error::Closed(c) if c.code == CloseCode::TRY_AGAIN_LATER), "{err:?}");
            }
        }
        server.shutdown(Duration::from_secs(1)).await;
    }
}

/// `watch_rooms` is marked when a room gains its first member or loses its last one (by
/// `leave_room` or by the member being dropped), not when a room merely changes size.
#[tokio::test]
async fn watch_rooms_follows_the_set_of_rooms() {
    let hub = Broadcaster::default();
    let mut rooms = hub.watch_rooms();
    let (server, base) = hub_server(ServerBuilder::new(), Broadcaster::default()).await;
    let alice = ws_tokio::connect(&format!("{base}/x")).await.unwrap();
    let bob = ws_tokio::connect(&format!("{base}/x")).await.unwrap();
    let (alice_member, bob_member) = (hub.join(&alice), hub.join(&bob));
    assert!(!rooms.has_changed().unwrap());

    alice_member.join_room("lobby");
    assert!(rooms.has_changed().unwrap(), "first member");
    rooms.mark_unchanged();
    bob_member.join_room("lobby");
    alice_member.leave_room("lobby");
    assert!(!rooms.has_changed().unwrap(), "the room had other members");
    drop(bob_member);
    assert!(rooms.has_changed().unwrap(), "last member dropped");
    assert!(hub.rooms().is_empty());
    server.shutdown(Duration::from_secs(1)).await;
}

/// Broadcasts made in one go (the broadcasting task does not yield between them) are queued
/// and written together once it yields, in order; a connection whose queued but not yet written
/// broadcasts pass `max_buffered` has them written rather than counted as full.
#[tokio::test]
async fn a_burst_of_broadcasts_is_written_together_and_in_order() {
    let hub = Broadcaster::default();
    let (server, base) = hub_server(ServerBuilder::new(), hub.clone()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(ws_tokio::connect(&format!("{base}/r")).await.unwrap());
    }
    members(&hub, 3).await;
    // 48 KiB in all: more than the default `max_buffered` (32 KiB) before the first write.
    let messages: Vec<String> = (0..48).map(|i| format!("{i:04}{}", "x".repeat(1020))).collect();
    for message in &messages {
        let delivery = hub.broadcast(message.as_str());
        assert_eq!((delivery.delivered, delivery.dropped, delivery.closed), (3, 0, 0));
    }
    for ws in &mut clients {
        for message in &messages {
            assert_eq!(ws.recv().await.unwrap(), Message::text(message.as_str()));
        }
    }
    // Without a runtime (a plain thread), each broadcast writes before it returns.
    let hub2 = hub.clone();
    std::thread::spawn(move || assert_eq!(hub2.broadcast("from a thread").delivered, 3)).join().unwrap();
    for ws in &mut clients {
        assert_eq!(ws.recv().await.unwrap(), Message::text("from a thread"));
    }
    server.shutdown(Duration::from_secs(1)).await;
}

/// The broadcaster's write task lives as long as the broadcaster: dropping the last clone
/// ends it.
#[tokio::test]
async fn the_write_task_ends_with_the_broadcaster() {
    let acceptor = ServerBuilder::new().build().unwrap();
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let (server, client) = tokio::join!(
        acceptor.accept(server_io),
        ClientBuilder::new().connect_with("ws://in-memory/", client_io)
    );
    let (server, mut client) = (server.unwrap(), client.unwrap());
    let metrics = tokio::runtime::Handle::current().metrics();
    let hub: Broadcaster<tokio::io::DuplexStream> = Broadcaster::default();
    let member = hub.join(&server);
    let before = metrics.num_alive_tasks();
    assert_eq!(hub.broadcast("one").delivered, 1);
    assert_eq!(client.recv().await.unwrap(), Message::text("one"));
    assert_eq!(metrics.num_alive_tasks(), before + 1, "the write task runs");
    drop(member);
    drop(hub);
    for _ in 0..100 {
        if metrics.num_alive_tasks() == before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the write task outlived its broadcaster");
}
