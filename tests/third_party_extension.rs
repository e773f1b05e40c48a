//! A third-party extension (examples-ext/ws-ext-example, written only against ws-extensions)
//! negotiated end to end through the full stack, chained with permessage-deflate.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use ws::{ClientBuilder, CloseCode, Message, ServerBuilder, WebSocket};
use ws_ext_example::{Algorithm, ChecksumClientFactory, ChecksumServerFactory};

#[tokio::test]
async fn checksum_extension_chained_with_deflate() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ServerBuilder::new()
        .extension(Arc::new(ChecksumServerFactory::default()))
        .serve_listener(
            |mut ws: WebSocket| async move {
                assert_eq!(ws.info().extensions(), ["x-checksum", "permessage-deflate"]);
                while let Ok(message) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            },
            listener,
        )
        .unwrap();

    let mut ws = ClientBuilder::new()
        .extension(Arc::new(ChecksumClientFactory { algorithm: Some(Algorithm::Fnv1a) }))
        .connect(&format!("ws://{addr}/"))
        .await
        .unwrap();
    // Offered first, so negotiated first: encode checksum, then compress; decode in reverse.
    assert_eq!(ws.info().extensions(), ["x-checksum", "permessage-deflate"]);
    let header =
        ws.info().response().unwrap().headers()["sec-websocket-extensions"].to_str().unwrap().to_owned();
    assert!(header.starts_with("x-checksum; algorithm=fnv1a, permessage-deflate"), "{header}");

    for size in [0usize, 1, 1000, 100_000] {
        let text = "checksummed and compressed ".repeat(size / 27 + 1);
        ws.send(text.as_str()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text(text));
    }
    ws.send_fragmented([vec![1u8; 10], vec![2u8; 20_000]]).await.unwrap();
    let mut expected = vec![1u8; 10];
    expected.extend(vec![2u8; 20_000]);
    assert_eq!(ws.recv().await.unwrap(), Message::binary(expected));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn declined_offer_leaves_only_deflate() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The server supports only adler32: the client's fnv1a offer is declined, not fatal.
    let factory = ChecksumServerFactory { algorithms: vec![Algorithm::Adler32] };
    let server = ServerBuilder::new()
        .extension(Arc::new(factory))
        .serve_listener(
            |mut ws: WebSocket| async move {
                while let Ok(message) = ws.recv().await {
                    let _ = ws.send(message).await;
                }
            },
            listener,
        )
        .unwrap();
    let mut ws = ClientBuilder::new()
        .extension(Arc::new(ChecksumClientFactory { algorithm: Some(Algorithm::Fnv1a) }))
        .connect(&format!("ws://{addr}/"))
        .await
        .unwrap();
    assert_eq!(ws.info().extensions(), ["permessage-deflate"]);
    ws.send("still fine").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("still fine"));
    server.shutdown(Duration::from_secs(1)).await;
}
