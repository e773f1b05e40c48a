//! A plain hyper 1.x server (no axum) that upgrades `/ws` to a WebSocket echo with
//! `ws_tokio::Acceptor::accept_request`, and answers `/health` itself.
//!
//! `cargo run -p ws-axum --example hyper_server [ADDR]` (default 127.0.0.1:3000).

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ws_tokio::Acceptor;

async fn handle(
    mut request: Request<Incoming>,
    acceptor: Acceptor,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() == "/health" {
        return Ok(Response::new(Full::new(Bytes::from("ok"))));
    }
    if request.uri().path() != "/ws" {
        let mut response = Response::new(Full::new(Bytes::from("not found\n")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    }
    // hyper hands the connection over through this future, once the 101 is sent.
    let on_upgrade = hyper::upgrade::on(&mut request);
    let mut head = Request::new(());
    *head.method_mut() = request.method().clone();
    *head.uri_mut() = request.uri().clone();
    *head.version_mut() = request.version();
    *head.headers_mut() = request.headers().clone();
    let mut upgrade = match acceptor.accept_request(head).await {
        Ok(upgrade) => upgrade,
        // A refusal (not an upgrade, a refused origin, a hook's answer) is an HTTP response.
        Err(rejection) => return Ok(rejection.into_response().map(Full::new)),
    };
    upgrade.set_addrs(None, Some(peer));
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = upgrade.response().status();
    *response.headers_mut() = upgrade.response().headers().clone();
    tokio::spawn(async move {
        let io = match on_upgrade.await {
            Ok(upgraded) => TokioIo::new(upgraded),
            Err(e) => return eprintln!("upgrade failed: {e}"),
        };
        let (ws, driver) = upgrade.open(io);
        // The handler and the connection in this task; closes with 1000 when it returns.
        driver
            .serve(ws, |mut ws| async move {
                while let Ok(message) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            })
            .await;
    });
    Ok(response)
}

/// Serves HTTP/1.1 on `listener`, upgrading `/ws` with `acceptor`'s settings.
pub(crate) async fn serve(listener: tokio::net::TcpListener, acceptor: Acceptor) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, acceptor.clone(), peer));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            // `with_upgrades`: the connection can be handed over after a 101.
            if let Err(e) = connection.with_upgrades().await {
                eprintln!("connection error: {e}");
            }
        });
    }
}

#[allow(dead_code)] // tests/hyper.rs includes this file for `serve`
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let acceptor = ws_tokio::ServerBuilder::new().build()?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    serve(listener, acceptor).await?;
    Ok(())
}
