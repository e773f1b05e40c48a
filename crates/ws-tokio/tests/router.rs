//! Routing (`Router`, `ServerBuilder::serve_router`): handlers by path with parameters, 404
//! in the opening handshake for the rest.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ws_tokio::{ClientError, Error, Message, Params, Router, Server, ServerBuilder, WebSocket};

/// Answers each message with what the route saw: its name, then its parameters (from the
/// argument and from `ConnectionInfo`, which must agree).
fn reporter(
    name: &'static str,
) -> impl Fn(WebSocket, Params) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    move |mut ws: WebSocket, params: Params| {
        Box::pin(async move {
            assert_eq!(&params, ws.info().path_params());
            let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            while ws.recv().await.is_ok() {
                let _ = ws.send(format!("{name} {}", params.join(" "))).await;
            }
        })
    }
}

async fn server(builder: ServerBuilder) -> (Server, SocketAddr) {
    let router = Router::new()
        .route("/rooms/{room}", reporter("room"))
        .route("/rooms/{room}/users/{user}", reporter("user"))
        .route("/", reporter("home"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (builder.serve_router_listener(router, listener).unwrap(), addr)
}

async fn ask(addr: SocketAddr, path: &str) -> String {
    let mut ws = ws_tokio::connect(&format!("ws://{addr}{path}")).await.unwrap();
    ws.send("?").await.unwrap();
    let Message::Text(answer) = ws.recv().await.unwrap() else { panic!("not text") };
    answer.as_str().to_owned()
}

#[tokio::test]
async fn routes_with_parameters() {
    let (server, addr) = server(ServerBuilder::new()).await;
    assert_eq!(ask(addr, "/").await, "home ");
    assert_eq!(ask(addr, "/rooms/42").await, "room room=42");
    assert_eq!(ask(addr, "/rooms/42?since=7").await, "room room=42");
    assert_eq!(ask(addr, "/rooms/lobby/users/ana").await, "user room=lobby user=ana");
    // Parameters are percent-decoded.
    assert_eq!(ask(addr, "/rooms/caf%C3%A9%2F2").await, "room room=café/2");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn unknown_paths_get_404_in_the_handshake() {
    let (server, addr) = server(ServerBuilder::new()).await;
    for path in ["/nowhere", "/rooms", "/rooms/42/users", "/rooms/42/extra/segments"] {
        let err = ws_tokio::connect(&format!("ws://{addr}{path}")).await.unwrap_err();
        let Error::Handshake(ClientError::Rejected(response)) = &err else { panic!("{path}: {err:?}") };
        assert_eq!(response.status(), http::StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.body(), &Bytes::from_static(b"Not Found\n"));
    }
    // Nothing was upgraded: no handler ran, no connection is left.
    assert_eq!(server.connections(), 0);

    // A plain HTTP client sees a complete response, not a hang-up.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /missing HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 404 Not Found\r\n"), "{response}");
    assert!(response.to_ascii_lowercase().contains("content-length: 10\r\n"), "{response}");
    server.shutdown(Duration::from_secs(1)).await;
}

/// The async `process_request` hook runs before routing (as Python's `process_request` runs
/// before `route()`'s), so it can refuse even paths that would be 404.
#[tokio::test]
async fn process_request_async_runs_first() {
    let builder = ServerBuilder::new().process_request_async(|request| async move {
        let allowed = request.uri().query() == Some("token=ok");
        let mut response = http::Response::new(Bytes::from_static(b"who are you?\n"));
        *response.status_mut() = http::StatusCode::UNAUTHORIZED;
        (!allowed).then_some(response)
    });
    let (server, addr) = server(builder).await;
    for (path, status) in [("/rooms/1", 401), ("/nowhere", 401), ("/nowhere?token=ok", 404)] {
        let err = ws_tokio::connect(&format!("ws://{addr}{path}")).await.unwrap_err();
        let Error::Handshake(ClientError::Rejected(response)) = &err else { panic!("{path}: {err:?}") };
        assert_eq!(response.status().as_u16(), status, "{path}");
    }
    assert_eq!(ask(addr, "/rooms/1?token=ok").await, "room room=1");
    server.shutdown(Duration::from_secs(1)).await;
}

/// `with_router` composes with any way of serving: here an `Acceptor` on a transport accepted
/// by hand, with the dispatching handler run on what it accepts.
#[tokio::test]
async fn with_router_and_an_acceptor() {
    let router = Router::new().route("/echo/{word}", |mut ws: WebSocket, params: Params| async move {
        let word = params.get("word").unwrap().to_owned();
        ws.send(word).await
    });
    let (builder, dispatch) = ServerBuilder::new().with_router(router);
    let acceptor = builder.build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let ws = acceptor.accept(ws_tokio::Transport::Tcp(stream)).await.unwrap();
        assert_eq!(ws.info().path_params().get("word"), Some("hello"));
        dispatch(ws).await.unwrap();
    });
    let mut ws = ws_tokio::connect(&format!("ws://{addr}/echo/hello")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Message::text("hello"));
    serve.await.unwrap();
}

#[test]
#[should_panic(expected = "invalid route")]
fn conflicting_routes_panic() {
    let handler = |_: WebSocket, _: Params| async {};
    let _ = Router::new().route("/{a}", handler).route("/{b}", handler);
}
