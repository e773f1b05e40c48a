//! `idle_release`: a quiet connection frees its spare memory, a busy one never does.
//!
//! Observed through an extension that counts the `release_memory` calls it gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use ws_extensions::{
    ClientExtensionFactory, Extension, ExtensionError, ExtensionParam, Frame, NegotiationError, Rsv,
    ServerExtensionFactory,
};
use ws_tokio::{ClientBuilder, Message, ServerBuilder, WebSocket};

const NAME: &str = "x-count-releases";

/// Passes frames through and counts `release_memory` calls.
struct Counting(Arc<AtomicUsize>);

impl Extension for Counting {
    fn name(&self) -> &str {
        NAME
    }

    fn rsv(&self) -> Rsv {
        Rsv::NONE
    }

    fn encode(&mut self, _: &mut Frame) -> Result<(), ExtensionError> {
        Ok(())
    }

    fn decode(&mut self, _: &mut Frame, _: Option<usize>) -> Result<(), ExtensionError> {
        Ok(())
    }

    fn release_memory(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Factory(Arc<AtomicUsize>);

impl ServerExtensionFactory for Factory {
    fn name(&self) -> &str {
        NAME
    }

    fn process_request_params(
        &self,
        _: &[ExtensionParam],
        _: &[Box<dyn Extension>],
    ) -> Result<(Vec<ExtensionParam>, Box<dyn Extension>), NegotiationError> {
        Ok((Vec::new(), Box::new(Counting(self.0.clone()))))
    }
}

impl ClientExtensionFactory for Factory {
    fn name(&self) -> &str {
        NAME
    }

    fn request_params(&self) -> Vec<Vec<ExtensionParam>> {
        vec![Vec::new()]
    }

    fn process_response_params(
        &self,
        _: &[ExtensionParam],
        _: &[Box<dyn Extension>],
    ) -> Result<Box<dyn Extension>, NegotiationError> {
        Ok(Box::new(Counting(self.0.clone())))
    }
}

#[tokio::test]
async fn quiet_connections_release_memory_and_busy_ones_do_not() {
    let idle = Duration::from_millis(150);
    let server_releases = Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = ServerBuilder::new()
        .compression(None)
        .extension(Arc::new(Factory(server_releases.clone())))
        .idle_release(Some(idle))
        .serve_listener(
            |mut ws: WebSocket| async move {
                while let Ok(message) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            },
            listener,
        )
        .unwrap();
    let client_releases = Arc::new(AtomicUsize::new(0));
    let mut ws = ClientBuilder::new()
        .compression(None)
        .extension(Arc::new(Factory(client_releases.clone())))
        .idle_release(None)
        .connect(&format!("ws://{addr}/"))
        .await
        .unwrap();
    assert_eq!(ws.info().extensions(), [NAME]);

    // Busy: a message every third of the idle period, for several periods.
    for i in 0..15 {
        ws.send(format!("busy {i}")).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Message::text(format!("busy {i}")));
        tokio::time::sleep(idle / 3).await;
    }
    assert_eq!(server_releases.load(Ordering::SeqCst), 0, "released while busy");

    // Quiet for a few periods: released once (nothing happened since, so not again).
    tokio::time::sleep(idle * 4).await;
    assert_eq!(server_releases.load(Ordering::SeqCst), 1);

    // Still works afterwards, and goes quiet again.
    ws.send("after").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("after"));
    tokio::time::sleep(idle * 4).await;
    assert_eq!(server_releases.load(Ordering::SeqCst), 2);
    // The client disabled it (and its side is not reading meanwhile anyway).
    assert_eq!(client_releases.load(Ordering::SeqCst), 0);
}
