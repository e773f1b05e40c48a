//! The `ws` WebSocket stack inside an [axum] 0.8 (or plain hyper 1.x) server.
//!
//! [`WebSocketUpgrade`] is an extractor in the style of axum's own: the route answers the
//! opening handshake, and the handler gets a [`ws_tokio::WebSocket`] ([`WebSocket`] here) with
//! everything `ws_tokio::serve` gives: permessage-deflate, keepalive, limits, the hooks, and
//! the same closing rules (1000 when the handler returns, 1011 when it fails or panics).
//!
//! The settings are a [`ws_tokio::Acceptor`], built with a [`ws_tokio::ServerBuilder`] like
//! for `serve`, and handed to the routes with axum's [`Extension`](axum::Extension) layer.
//! Without one, the defaults apply (permessage-deflate accepted, any subprotocol refused, any
//! origin allowed).
//!
//! ```no_run
//! use axum::{Extension, Router, response::Response, routing::get};
//! use ws_axum::WebSocketUpgrade;
//!
//! async fn echo(ws: WebSocketUpgrade) -> Response {
//!     ws.on_upgrade(|mut socket| async move {
//!         while let Ok(message) = socket.recv().await {
//!             if socket.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let acceptor = ws_tokio::ServerBuilder::new()
//!     .subprotocols(["chat"])
//!     .origins(["https://example.com"], true)
//!     .build()?;
//! let app = Router::new()
//!     .route("/health", get(|| async { "ok" }))
//!     .route("/ws", get(echo))
//!     .layer(Extension(acceptor));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // With connect info, `socket.info().remote_addr()` is the peer's address.
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! Only HTTP/1.1 upgrades are supported (not RFC 8441 WebSockets over HTTP/2). The
//! connection is not part of a `ws_tokio::Server`: axum's graceful shutdown does not close it.
//! For hyper without axum, see [`ws_tokio::Acceptor::accept_request`] and this crate's
//! `hyper_server` example.
#![forbid(unsafe_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use ws_tokio::{Acceptor, HandlerResult, Upgrade};

/// The connection hyper hands over after the 101, as tokio IO.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// A WebSocket connection accepted by [`WebSocketUpgrade`].
pub type WebSocket = ws_tokio::WebSocket<Upgraded>;

/// Extracts a WebSocket opening handshake and answers it: [`on_upgrade`](Self::on_upgrade)
/// returns the 101 and runs the handler on the connection.
///
/// Extracting runs the whole server-side decision of [`ws_tokio::Acceptor`] (the request's
/// [`Acceptor`] from an [`Extension`](axum::Extension) layer, or the defaults): the
/// `process_request` hooks, the request checks, `Origin`, subprotocol and extension
/// negotiation, the `process_response` hooks. A refusal becomes the route's response (426 for
/// a request that is not an upgrade, 403 for a refused origin, a hook's own response...).
#[derive(Debug)]
pub struct WebSocketUpgrade {
    upgrade: Upgrade,
    on_upgrade: OnUpgrade,
}

impl WebSocketUpgrade {
    /// The subprotocol chosen for the connection.
    pub fn subprotocol(&self) -> Option<&str> {
        self.upgrade.subprotocol()
    }

    /// The 101 response that will be sent, e.g. to add a header (it went through the
    /// `process_response` hooks already).
    pub fn response_mut(&mut self) -> &mut http::Response<()> {
        self.upgrade.response_mut()
    }

    /// Answers the handshake with its 101 and, once hyper hands the connection over, runs
    /// `handler` on it in a new task, driving the connection alongside (as `ws_tokio::serve`
    /// does): when the handler returns, a connection still open is closed with 1000; with 1011
    /// when it returns an error or panics.
    pub fn on_upgrade<H, F>(self, handler: H) -> Response
    where
        H: FnOnce(WebSocket) -> F + Send + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerResult,
    {
        let Self { upgrade, on_upgrade } = self;
        let response = copy_response(upgrade.response());
        tokio::spawn(async move {
            let io = match on_upgrade.await {
                Ok(upgraded) => TokioIo::new(upgraded),
                Err(e) => {
                    tracing::debug!(error = %e, "WebSocket upgrade failed");
                    return;
                }
            };
            let (ws, driver) = upgrade.open(io);
            driver.serve(ws, handler).await;
        });
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let acceptor = match parts.extensions.get::<Acceptor>() {
            Some(acceptor) => acceptor.clone(),
            None => default_acceptor().clone(),
        };
        let mut request = http::Request::new(());
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.version_mut() = parts.version;
        *request.headers_mut() = parts.headers.clone();
        let mut upgrade = match acceptor.accept_request(request).await {
            Ok(upgrade) => upgrade,
            Err(rejection) => return Err(rejection.into_response().map(Body::from)),
        };
        // Only after the checks: a plain GET to the route gets the handshake's 426, not this.
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            let text = "this connection cannot be upgraded (HTTP/1.1 only)\n";
            return Err((StatusCode::UPGRADE_REQUIRED, text).into_response());
        };
        let remote = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr);
        upgrade.set_addrs(None, remote);
        Ok(Self { upgrade, on_upgrade })
    }
}

/// The settings used when no [`Acceptor`] was given: `ServerBuilder`'s defaults.
fn default_acceptor() -> &'static Acceptor {
    static DEFAULT: OnceLock<Acceptor> = OnceLock::new();
    DEFAULT.get_or_init(|| {
        // The defaults are valid settings; `build` only fails on a custom extension's.
        ws_tokio::ServerBuilder::new().build().expect("the default server settings are valid")
    })
}

/// The 101 as an axum response (the handshake keeps its own copy for `info().response()`).
fn copy_response(response: &http::Response<()>) -> Response {
    let mut copy = Response::new(Body::empty());
    *copy.status_mut() = response.status();
    *copy.headers_mut() = response.headers().clone();
    copy
}
