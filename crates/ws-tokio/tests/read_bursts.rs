//! A pipelining peer's bursts are read whole: one read per burst once the read room has grown,
//! rather than every burst cut in two (twice the reads, and twice the writes for an echo).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use ws_proto::{Buf, BytesMut, Config, Connection, Role};
use ws_tokio::WebSocket;

/// A transport that counts the reads that returned data.
struct CountingReads {
    io: DuplexStream,
    reads: Arc<AtomicUsize>,
}

impl AsyncRead for CountingReads {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.reads.fetch_add(1, Ordering::SeqCst);
        }
        polled
    }
}

impl AsyncWrite for CountingReads {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn bursts_larger_than_the_first_read_room_are_read_whole() {
    const MESSAGES: usize = 16;
    const SIZE: usize = 1024;
    const BURSTS: usize = 40;
    // 16 KiB and more per burst: over the first read's room (16 KiB).
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let reads = Arc::new(AtomicUsize::new(0));
    let (server, driver) = WebSocket::from_upgraded(
        CountingReads { io: server_io, reads: reads.clone() },
        Role::Server,
        Vec::new(),
        BytesMut::new(),
        ws_tokio::Config::default(),
    );
    tokio::spawn(driver);
    tokio::spawn(async move {
        let mut ws = server;
        while let Ok(message) = ws.recv().await {
            if ws.send(message).await.is_err() {
                break;
            }
        }
    });

    let mut client = Connection::new(Role::Client, Config::default()).with_mask_seed([7; 32]);
    let (mut rx, mut tx) = tokio::io::split(client_io);
    let echo_len = MESSAGES * (SIZE + 4);
    let mut echo = vec![0u8; echo_len];
    for burst in 0..BURSTS {
        for i in 0..MESSAGES {
            client.send_binary(vec![(burst + i) as u8; SIZE]).unwrap();
        }
        let out = client.transmit();
        let wire = out.copy_to_bytes(out.remaining());
        assert!(wire.len() > 16 * 1024);
        tx.write_all(&wire).await.unwrap();
        // Like a pipelining client: the next burst once this one is echoed.
        rx.read_exact(&mut echo).await.unwrap();
        assert_eq!(echo[4], burst as u8, "burst {burst}: the first echo's payload");
    }
    let reads = reads.load(Ordering::SeqCst);
    // The first burst is cut (its read fills the first room, which then grows); every later one
    // is read at once.
    assert!(reads <= BURSTS + 2, "{reads} reads for {BURSTS} bursts");
}
