//! The relay itself, between two plain TCP sockets: each fault does what it says.
#![allow(clippy::unwrap_used)]

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use ws_faults::{Fault, Faults, Relay};

const HEAD: &[u8] = b"HEAD\r\n\r\n";

/// A client and the server's end of its connection through a relay with `faults`, the HTTP
/// heads exchanged (byte counts start behind them).
async fn pair(faults: Faults) -> (Relay, TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay = Relay::start(listener.local_addr().unwrap(), faults).await.unwrap();
    let mut client = TcpStream::connect(relay.addr()).await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    client.write_all(HEAD).await.unwrap();
    server.write_all(HEAD).await.unwrap();
    let mut head = [0; HEAD.len()];
    server.read_exact(&mut head).await.unwrap();
    client.read_exact(&mut head).await.unwrap();
    (relay, client, server)
}

fn up(fault: Fault) -> Faults {
    Faults { client_to_server: fault, ..Faults::default() }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// Reads until `n` bytes came or the peer closed; returns them and how many reads it took.
async fn read_n(stream: &mut TcpStream, n: usize) -> (Vec<u8>, usize) {
    let mut got = Vec::new();
    let mut reads = 0;
    let mut buf = vec![0; 65536];
    while got.len() < n {
        let k = stream.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        reads += 1;
        got.extend_from_slice(&buf[..k]);
    }
    (got, reads)
}

#[tokio::test]
async fn delay_keeps_order_and_adds_latency() {
    let fault = Fault::Delay { base: Duration::from_millis(30), jitter: Duration::from_millis(30) };
    let (relay, mut client, mut server) = pair(up(fault)).await;
    let sent = data(200_000);
    let t = Instant::now();
    let writer = async {
        for piece in sent.chunks(1000) {
            client.write_all(piece).await.unwrap();
        }
    };
    let ((), (got, _)) = tokio::join!(writer, read_n(&mut server, sent.len()));
    assert!(got == sent, "reordered or lost");
    assert!(t.elapsed() >= Duration::from_millis(30));
    relay.shutdown().await;
}

#[tokio::test]
async fn byte_segments_arrive_one_at_a_time() {
    let (relay, mut client, mut server) = pair(up(Fault::ByteSegments)).await;
    let sent = data(2000);
    client.write_all(&sent).await.unwrap();
    let (got, reads) = read_n(&mut server, sent.len()).await;
    assert!(got == sent);
    // The reader may lag behind and find several bytes at once; most reads find one.
    println!("{} bytes in {reads} reads", sent.len());
    assert!(reads > sent.len() / 2, "{} bytes in only {reads} reads", sent.len());
    relay.shutdown().await;
}

#[tokio::test]
async fn stall_holds_then_delivers_everything() {
    let fault = Fault::Stall { after: 1000, duration: Duration::from_millis(500) };
    let (relay, mut client, mut server) = pair(up(fault)).await;
    let sent = data(5000);
    client.write_all(&sent).await.unwrap();
    let (first, _) = read_n(&mut server, 1000).await;
    assert_eq!(first, sent[..1000]);
    let t = Instant::now();
    // The other direction stalls too.
    server.write_all(b"x").await.unwrap();
    let mut one = [0];
    client.read_exact(&mut one).await.unwrap();
    let (rest, _) = read_n(&mut server, 4000).await;
    assert!(t.elapsed() >= Duration::from_millis(400), "stalled only {:?}", t.elapsed());
    assert!(rest == sent[1000..]);
    relay.shutdown().await;
}

#[tokio::test]
async fn reset_resets_both_peers() {
    let (relay, mut client, mut server) = pair(up(Fault::Reset { after: 10 })).await;
    client.write_all(&data(100)).await.unwrap();
    let mut buf = [0; 100];
    let mut got = 0;
    let server_error = loop {
        match server.read(&mut buf).await {
            Ok(0) => panic!("a FIN, not a reset"),
            Ok(n) => got += n,
            Err(e) => break e,
        }
    };
    assert_eq!(got, 10);
    assert_eq!(server_error.kind(), ErrorKind::ConnectionReset);
    assert_eq!(client.read(&mut buf).await.unwrap_err().kind(), ErrorKind::ConnectionReset);
    relay.shutdown().await;
}

#[tokio::test]
async fn half_close_is_one_way() {
    let (relay, mut client, mut server) = pair(up(Fault::HalfClose { after: 10 })).await;
    client.write_all(&data(100)).await.unwrap();
    let (got, _) = read_n(&mut server, 100).await;
    assert_eq!(got, data(10), "end of file after 10 bytes");
    // The other way still works.
    server.write_all(b"still here").await.unwrap();
    let mut buf = [0; 10];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"still here");
    relay.shutdown().await;
}

#[tokio::test]
async fn vanish_forwards_nothing_and_closes_nothing() {
    let (relay, mut client, mut server) = pair(up(Fault::Vanish { after: 10 })).await;
    client.write_all(&data(100)).await.unwrap();
    let mut buf = [0; 100];
    let n = server.read(&mut buf).await.unwrap();
    assert_eq!(n, 10);
    server.write_all(b"lost").await.unwrap();
    // Neither data nor an end, either way, even after the client hung up.
    drop(client);
    let quiet = tokio::time::timeout(Duration::from_millis(300), server.read(&mut buf)).await;
    assert!(quiet.is_err(), "the server's end saw {quiet:?}");
    relay.shutdown().await;
    // The relay's sockets close with it.
    assert!(matches!(server.read(&mut buf).await, Ok(0) | Err(_)));
}
