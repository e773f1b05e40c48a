//! An axum app with a plain HTTP route and WebSocket routes, driven by our own client and by
//! Python `websockets` (the interop venv of `cargo xtask interop`).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ws_axum::WebSocketUpgrade;
use ws_tokio::http::{self, HeaderValue, StatusCode};
use ws_tokio::{Bytes, ClientBuilder, ClientError, CloseCode, Error, Message, ServerBuilder};

/// Tells the client what the server side saw, then echoes.
async fn echo(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move {
        let info = socket.info();
        let report = format!(
            "ext={} proto={} remote={} path={}",
            info.extensions().join(","),
            info.subprotocol().unwrap_or("-"),
            info.remote_addr().map_or("-".to_owned(), |a| a.to_string()),
            info.request().map_or("-".to_owned(), |r| r.uri().to_string()),
        );
        if socket.send(report).await.is_err() {
            return;
        }
        while let Ok(message) = socket.recv().await {
            if socket.send(message).await.is_err() {
                break;
            }
        }
    })
}

async fn fail(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|_socket| async { Err::<(), _>("the handler failed") })
}

async fn panic(ws: WebSocketUpgrade) -> Response {
    // An `assert!` rather than `panic!`: the future's output must stay `()`.
    ws.on_upgrade(|socket| async move { assert_eq!(socket.info().id(), 0, "a handler panicking on purpose") })
}

async fn done(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|_socket| async {})
}

/// The app under test, served on a free port with connect info; returns its address.
async fn start() -> SocketAddr {
    let deny: ws_tokio::ProcessRequest = Arc::new(|request: &http::Request<()>| {
        (request.uri().query() == Some("deny"))
            .then(|| http::Response::builder().status(401).body(Bytes::from("no\n")).unwrap())
    });
    let acceptor = ServerBuilder::new()
        .subprotocols(["chat"])
        .origins(["http://good.example"], true)
        .process_request(deny)
        .process_response_async(|_request, mut response| async move {
            response.headers_mut().insert("x-hook", HeaderValue::from_static("ran"));
            Ok(response)
        })
        .build()
        .unwrap();
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ws", get(echo))
        .route("/fail", get(fail))
        .route("/panic", get(panic))
        .route("/done", get(done))
        .layer(Extension(acceptor));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    addr
}

/// A plain HTTP/1.1 request on a fresh connection; the whole response as text.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn plain_http_routes_still_work() {
    let addr = start().await;
    let health = http_get(addr, "/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("\r\n\r\nok"), "{health}");
    // A GET on the WebSocket route without the upgrade headers: the handshake's 426.
    let plain = http_get(addr, "/ws").await;
    assert!(plain.starts_with("HTTP/1.1 426"), "{plain}");
}

#[tokio::test]
async fn our_client_with_compression_and_subprotocol() {
    let addr = start().await;
    let mut ws = ClientBuilder::new()
        .subprotocols(["chat"])
        .origin("http://good.example")
        .connect(&format!("ws://{addr}/ws?x=1"))
        .await
        .unwrap();
    assert_eq!(ws.info().extensions(), ["permessage-deflate"]);
    assert_eq!(ws.info().subprotocol(), Some("chat"));
    let response = ws.info().response().unwrap();
    assert_eq!(response.headers()["x-hook"], "ran", "the process_response_async hook ran");

    let local = ws.info().local_addr().unwrap();
    let report = ws.recv().await.unwrap();
    assert_eq!(
        report,
        Message::text(format!("ext=permessage-deflate proto=chat remote={local} path=/ws?x=1"))
    );

    let big = "compressible ".repeat(20_000);
    ws.send(big.as_str()).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text(big));
    ws.send(Bytes::from_static(b"\x00\x01\x02")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::binary(Bytes::from_static(b"\x00\x01\x02")));
    ws.close(CloseCode::NORMAL, "bye").await.unwrap();
    let closure = ws.closure().unwrap();
    assert_eq!(closure.received.flatten().unwrap().code, CloseCode::NORMAL);
}

fn rejected_status(result: Result<ws_tokio::WebSocket, Error>) -> StatusCode {
    match result {
        Err(Error::Handshake(ClientError::Rejected(response))) => response.status(),
        other => panic!("expected a refused handshake, got {other:?}"),
    }
}

#[tokio::test]
async fn refusals_get_their_http_response() {
    let addr = start().await;
    let evil = ClientBuilder::new().origin("http://evil.example").connect(&format!("ws://{addr}/ws")).await;
    assert_eq!(rejected_status(evil), StatusCode::FORBIDDEN);
    let denied = ClientBuilder::new().connect(&format!("ws://{addr}/ws?deny")).await;
    assert_eq!(rejected_status(denied), StatusCode::UNAUTHORIZED);
    // Without compression, nothing is negotiated; without an offered subprotocol, none.
    let ws = ClientBuilder::new().compression(None).connect(&format!("ws://{addr}/ws")).await.unwrap();
    assert!(ws.info().extensions().is_empty());
    assert_eq!(ws.info().subprotocol(), None);
}

/// How the server closed the connection, as the client saw it.
async fn server_close_code(addr: SocketAddr, path: &str) -> CloseCode {
    let mut ws = ClientBuilder::new().connect(&format!("ws://{addr}{path}")).await.unwrap();
    match ws.recv().await {
        Err(Error::Closed(closed)) => closed.code,
        other => panic!("expected the server to close, got {other:?}"),
    }
}

#[tokio::test]
async fn handler_outcome_sets_the_close_code() {
    let addr = start().await;
    assert_eq!(server_close_code(addr, "/done").await, CloseCode::NORMAL);
    assert_eq!(server_close_code(addr, "/fail").await, CloseCode::INTERNAL_ERROR);
    assert_eq!(server_close_code(addr, "/panic").await, CloseCode::INTERNAL_ERROR);
    // The server still serves after a handler panicked.
    assert!(http_get(addr, "/health").await.starts_with("HTTP/1.1 200"));
}

/// The interop venv's Python (`cargo xtask interop` creates it), if there is one.
fn interop_python() -> Option<PathBuf> {
    let home = match std::env::var_os("WS_INTEROP_HOME") {
        Some(home) => PathBuf::from(home),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/ws-interop"),
    };
    Some(home.join("venv/bin/python")).filter(|p| p.exists())
}

#[tokio::test]
async fn python_websockets_client_with_compression() {
    let Some(python) = interop_python() else {
        if std::env::var_os("CI").is_some_and(|v| v == "true") {
            // `cargo xtask ci` installs the peers before `cargo test --workspace`.
            panic!("CI=true but the interop venv is missing: run `bash tests-interop/setup.sh` first");
        }
        eprintln!(
            "WARNING: SKIPPED python_websockets_client_with_compression: no interop venv \
             (run `bash tests-interop/setup.sh` once, or set WS_INTEROP_HOME)"
        );
        return;
    };
    let addr = start().await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests-interop/python/axum_client.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(format!("ws://{addr}/ws"))
        .current_dir(&root)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), output).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python client failed ({}):\n{stdout}\n{stderr}", output.status);
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.contains("\"ok\": true"), "{summary}");
    assert!(summary.contains("permessage-deflate"), "{summary}");
}
