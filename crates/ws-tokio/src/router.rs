//! Routing: one server, a handler per request path, 404 for the rest (Python `websockets`'
//! `route()`). Paths are matched by `matchit`, axum's router.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::{TcpListener, ToSocketAddrs};

use crate::server::{HandlerResult, Server, ServerBuilder};
use crate::socket::WebSocket;
use crate::transport::{Listener, Transport};

/// The parameters a route's pattern captured from the request path, percent-decoded: for
/// `/rooms/{id}` and `/rooms/caf%C3%A9`, `id` is `café`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(Box<str>, String)>);

impl Params {
    /// The value of the parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| &**key == name).map(|(_, value)| value.as_str())
    }

    /// The parameters in the order of the pattern, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(key, value)| (&**key, value.as_str()))
    }

    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (a route without parameters, or no routing).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) const EMPTY: &'static Self = &Self(Vec::new());
}

/// Which route a connection's request path matched (kept in its `ConnectionInfo`).
#[derive(Debug)]
pub(crate) struct RouteMatch {
    index: usize,
    pub(crate) params: Params,
}

/// The path patterns alone, for the handshake: it answers 404 when none matches.
#[derive(Debug)]
pub(crate) struct Routes(matchit::Router<usize>);

impl Routes {
    /// The route `path` (the request target without its query) matches, with its parameters.
    pub(crate) fn lookup(&self, path: &str) -> Option<RouteMatch> {
        let found = self.0.at(path).ok()?;
        let params = found.params.iter().map(|(key, value)| (key.into(), decode(value).into_owned()));
        Some(RouteMatch { index: *found.value, params: Params(params.collect()) })
    }

    /// The response to a path no route matches (the body is Python's).
    pub(crate) fn not_found() -> http::Response<Bytes> {
        let mut response = http::Response::new(Bytes::from_static(b"Not Found\n"));
        *response.status_mut() = http::StatusCode::NOT_FOUND;
        let text = http::HeaderValue::from_static("text/plain; charset=utf-8");
        response.headers_mut().insert(http::header::CONTENT_TYPE, text);
        response
    }
}

/// Percent-decodes a parameter; bytes that are not UTF-8 become U+FFFD (as werkzeug does).
fn decode(value: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(value).decode_utf8_lossy()
}

/// What a route's handler returns, boxed: the error it ended with, if any.
type RouteFuture = Pin<Box<dyn Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>> + Send>>;
type RouteHandler = Box<dyn Fn(WebSocket<Transport>, Params) -> RouteFuture + Send + Sync>;

/// Handlers by request path, for [`ServerBuilder::serve_router`] (Python `websockets`'
/// `route()` with a werkzeug `Map`).
///
/// Patterns are `matchit`'s: `/rooms/{id}` captures one segment, `/files/{*path}` the rest of
/// the path; a static segment wins over a parameter. The query string plays no part. A request
/// whose path matches no route is answered `404 Not Found` during the opening handshake,
/// before any upgrade. Each handler receives the connection and the [`Params`] its pattern
/// captured (also at [`ConnectionInfo::path_params`](crate::ConnectionInfo::path_params)).
///
/// ```no_run
/// use ws_tokio::{Message, Params, Router, ServerBuilder, WebSocket};
///
/// async fn room(mut ws: WebSocket, params: Params) {
///     let id = params.get("id").unwrap_or_default().to_owned();
///     while let Ok(Message::Text(text)) = ws.recv().await {
///         let _ = ws.send(format!("room {id}: {}", text.as_str())).await;
///     }
/// }
///
/// # async fn demo() -> std::io::Result<()> {
/// let router = Router::new()
///     .route("/rooms/{id}", room)
///     .route("/", |ws: WebSocket, _| async move { drop(ws) });
/// let server = ServerBuilder::new().serve_router(router, "127.0.0.1:8765").await?;
/// # server.shutdown(std::time::Duration::from_secs(1)).await;
/// # Ok(()) }
/// ```
///
/// Differences from Python: no host matching (`server_name`) and no redirects (werkzeug's
/// `strict_slashes` sends `/rooms/` to `/rooms`); a `process_request_async` hook runs before
/// the routing, as Python's `process_request` does, but the synchronous `process_request`
/// runs after it (an unknown path gets 404 before that hook is asked).
#[derive(Default)]
pub struct Router {
    routes: matchit::Router<usize>,
    handlers: Vec<RouteHandler>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router").field("routes", &self.handlers.len()).finish_non_exhaustive()
    }
}

impl Router {
    /// No routes: every path gets 404.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves connections whose path matches `pattern` with `handler`. Like `serve`'s
    /// handlers, it returns `()` or a `Result` whose error closes the connection with 1011.
    ///
    /// # Panics
    ///
    /// When `pattern` is invalid or conflicts with a route already added (`/{a}` and `/{b}`),
    /// as axum does: a routing table is written once, at startup.
    pub fn route<H, F>(mut self, pattern: &str, handler: H) -> Self
    where
        H: Fn(WebSocket<Transport>, Params) -> F + Send + Sync + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerResult,
    {
        if let Err(e) = self.routes.insert(pattern, self.handlers.len()) {
            panic!("invalid route {pattern:?}: {e}");
        }
        self.handlers.push(Box::new(move |ws, params| {
            let run = handler(ws, params);
            Box::pin(async move { run.await.into_error().map_or(Ok(()), Err) })
        }));
        self
    }
}

impl ServerBuilder {
    /// Installs `router`'s patterns in the handshake (unknown paths get 404) and returns the
    /// handler that dispatches connections to its routes, to pass to any `serve*` method or
    /// to run on what an [`Acceptor`](crate::Acceptor) from this builder accepts.
    /// [`serve_router`](Self::serve_router) does both. `Acceptor::accept_request` (requests
    /// that hyper or axum parsed) does not route: there the HTTP server's router decides.
    pub fn with_router(
        mut self,
        router: Router,
    ) -> (Self, impl Fn(WebSocket<Transport>) -> RouteFuture + Send + Sync + 'static) {
        self.routes = Some(Arc::new(Routes(router.routes)));
        let handlers = router.handlers;
        let dispatch = move |ws: WebSocket<Transport>| {
            let Some((index, params)) = ws.info().route.as_ref().map(|r| (r.index, r.params.clone())) else {
                // Accepted by an Acceptor built without the router: nothing to dispatch on.
                let error = "connection accepted without routing reached a router";
                return Box::pin(std::future::ready(Err(error.into()))) as RouteFuture;
            };
            handlers[index](ws, params)
        };
        (self, dispatch)
    }

    /// Listens on `addr` and serves each connection with the route its path matches; other
    /// paths are answered 404 in the opening handshake (Python `websockets`' `route()`).
    pub async fn serve_router(self, router: Router, addr: impl ToSocketAddrs) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_router_listener(router, listener)
    }

    /// [`serve_router`](Self::serve_router) on a bound listener (TCP or Unix).
    pub fn serve_router_listener(self, router: Router, listener: impl Into<Listener>) -> io::Result<Server> {
        let (builder, dispatch) = self.with_router(router);
        builder.serve_listener(dispatch, listener)
    }
}

/// Serves `router` on `addr` with the default settings: Python `websockets`' `route()`.
/// See [`Router`].
pub async fn route(router: Router, addr: impl ToSocketAddrs) -> io::Result<Server> {
    ServerBuilder::new().serve_router(router, addr).await
}
