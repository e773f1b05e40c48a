//! The plain hyper example (examples/hyper_server.rs, included here) against our client.
#![allow(clippy::unwrap_used)]

#[path = "../examples/hyper_server.rs"]
mod example;

use tokio::net::TcpListener;
use ws_tokio::{
    Bytes, ClientBuilder, ClientError, CloseCode, Error, Message, ServerBuilder, http::StatusCode,
};

#[tokio::test]
async fn hyper_upgrade_with_compression_and_origin_check() {
    let acceptor = ServerBuilder::new().origins(["http://good.example"], true).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(example::serve(listener, acceptor));

    let mut ws = ClientBuilder::new().connect(&format!("ws://{addr}/ws")).await.unwrap();
    assert_eq!(ws.info().extensions(), ["permessage-deflate"]);
    let big = Bytes::from("hyper ".repeat(50_000));
    ws.send(big.clone()).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::binary(big));
    ws.close(CloseCode::NORMAL, "").await.unwrap();

    let evil = ClientBuilder::new().origin("http://evil.example").connect(&format!("ws://{addr}/ws")).await;
    match evil {
        Err(Error::Handshake(ClientError::Rejected(response))) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
        other => panic!("expected 403, got {other:?}"),
    }
}
