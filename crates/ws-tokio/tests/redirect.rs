//! `connect` follows redirects during the opening handshake: servers whose `process_request`
//! hook answers 3xx with a `Location`. (The wss -> ws refusal is unit-tested in
//! `src/redirect.rs`: it needs no server.)
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ws_tokio::http::{Request, Response, header};
use ws_tokio::{Bytes, ClientBuilder, ClientError, Error, Message, Server, ServerBuilder};

fn redirect(status: u16, location: &str) -> Response<Bytes> {
    Response::builder().status(status).header(header::LOCATION, location).body(Bytes::new()).unwrap()
}

/// An echo server whose handler replies first with the request path and whether an
/// `Authorization` header came, and whose hook may answer instead of upgrading.
async fn server<F>(hook: F) -> (Server, SocketAddr)
where
    F: Fn(&Request<()>) -> Option<Response<Bytes>> + Send + Sync + 'static,
{
    let server = ServerBuilder::new()
        .process_request(Arc::new(hook))
        .serve(
            |mut ws| async move {
                let request = ws.info().request().unwrap();
                let summary = format!(
                    "{} auth={}",
                    request.uri(),
                    request.headers().contains_key(header::AUTHORIZATION)
                );
                let _ = ws.send(summary).await;
                while let Ok(message) = ws.recv().await {
                    let _ = ws.send(message).await;
                }
            },
            "127.0.0.1:0",
        )
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    (server, addr)
}

async fn first_message(builder: ClientBuilder, uri: &str) -> Result<String, Error> {
    let mut ws = builder.connect(uri).await?;
    let Message::Text(first) = ws.recv().await? else { panic!("binary") };
    ws.send("echo").await?;
    assert_eq!(ws.recv().await?, Message::text("echo"));
    Ok(first.as_str().to_owned())
}

#[tokio::test]
async fn follows_redirects_to_another_server_and_relative_ones() {
    let (_b, b) = server(|_| None).await;
    let target = format!("ws://{b}/elsewhere?x=1");
    let (_a, a) = server(move |request| match request.uri().path() {
        "/moved" => Some(redirect(301, "../final")),
        "/away" => Some(redirect(307, &target)),
        _ => None,
    })
    .await;
    // Relative: resolved against ws://a/moved.
    let first = first_message(ClientBuilder::new(), &format!("ws://{a}/moved")).await.unwrap();
    assert_eq!(first, "/final auth=false");
    // Absolute, to another server (a new connection).
    let first = first_message(ClientBuilder::new(), &format!("ws://{a}/away")).await.unwrap();
    assert_eq!(first, "/elsewhere?x=1 auth=false");
}

#[tokio::test]
async fn credentials_stay_with_their_origin() {
    let (_b, b) = server(|_| None).await;
    let target = format!("ws://{b}/other");
    let (_a, a) = server(move |request| match request.uri().path() {
        "/same" => Some(redirect(302, "/landing")),
        "/cross" => Some(redirect(302, &target)),
        _ => None,
    })
    .await;
    let builder = || {
        ClientBuilder::new().header(header::AUTHORIZATION, header::HeaderValue::from_static("Bearer t0ken"))
    };
    assert_eq!(first_message(builder(), &format!("ws://{a}/same")).await.unwrap(), "/landing auth=true");
    assert_eq!(first_message(builder(), &format!("ws://{a}/cross")).await.unwrap(), "/other auth=false");
}

#[tokio::test]
async fn a_redirect_loop_is_reported_with_the_last_uri() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let (_a, a) = server(move |request| {
        counter.fetch_add(1, Ordering::SeqCst);
        let next = if request.uri().path() == "/ping" { "/pong" } else { "/ping" };
        Some(redirect(302, next))
    })
    .await;

    let e = ClientBuilder::new().connect(&format!("ws://{a}/ping")).await.err().unwrap();
    assert!(matches!(&e, Error::TooManyRedirects { limit: 10, .. }), "{e:?}");
    assert_eq!(hits.swap(0, Ordering::SeqCst), 11, "the first request and 10 redirects followed");
    let message = e.to_string();
    assert!(message.contains(&format!("more than 10 redirects, the last to ws://{a}/pong")), "{message}");

    let e = ClientBuilder::new().max_redirects(3).connect(&format!("ws://{a}/ping")).await.err().unwrap();
    assert!(matches!(&e, Error::TooManyRedirects { limit: 3, uri } if uri.ends_with("/ping")), "{e:?}");
    assert_eq!(hits.swap(0, Ordering::SeqCst), 4);

    // 0: not followed, the 302 comes back whole.
    let e = ClientBuilder::new().max_redirects(0).connect(&format!("ws://{a}/ping")).await.err().unwrap();
    match e {
        Error::Handshake(ClientError::Rejected(response)) => {
            assert_eq!(response.status(), 302);
            assert_eq!(response.headers()[header::LOCATION], "/pong");
        }
        e => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn unusable_redirects() {
    let (_a, a) = server(|request| match request.uri().path() {
        "/http" => Some(redirect(302, "http://example.com/")),
        "/no-location" => Some(Response::builder().status(302).body(Bytes::new()).unwrap()),
        _ => Some(redirect(304, "/x")),
    })
    .await;
    let e = ClientBuilder::new().connect(&format!("ws://{a}/http")).await.err().unwrap();
    assert!(matches!(&e, Error::InvalidUri(why) if why.contains("http://example.com/")), "{e:?}");
    for path in ["/no-location", "/not-modified"] {
        let e = ClientBuilder::new().connect(&format!("ws://{a}{path}")).await.err().unwrap();
        assert!(matches!(e, Error::Handshake(ClientError::Rejected(_))), "{e:?}");
    }
}
