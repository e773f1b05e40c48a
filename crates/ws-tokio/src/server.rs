//! `serve()`: the server side, with graceful shutdown.

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;
use ws_extensions::ServerExtensionFactory;
use ws_handshake::{
    ProcessRequest, ProcessResponse, Rejection, SelectSubprotocol, ServerAccepted, ServerConfig,
    ServerHandshake,
};
use ws_proto::{CloseCode, Role};

use crate::admission::{Admission, refuse};
use crate::config::{Compression, Config, config_setters, with_timeout};
use crate::driver::{Driver, open, spawn};
use crate::error::{Error, Result};
use crate::forwarded::{ForwardedHeader, ProxySettings};
use crate::info::ConnectionInfo;
use crate::router::{RouteMatch, Routes};
use crate::socket::WebSocket;
use crate::transport::{Listener, Transport};

/// Serves WebSocket connections on `addr` with the default settings (permessage-deflate
/// accepted, 10 s open timeout, keepalive, 1 MiB limit), running `handler` for each.
///
/// The connection is driven alongside the handler, in the same task: pings are answered and
/// keepalive runs whether or not the handler reads. When the handler returns, a connection
/// still open is closed with 1000; when it returns an error or panics, with 1011 (Python
/// `websockets` does the same); what was queued is written out either way.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let server = ws_tokio::serve(
///     |mut ws| async move {
///         while let Ok(message) = ws.recv().await {
///             if ws.send(message).await.is_err() {
///                 break;
///             }
///         }
///     },
///     "127.0.0.1:8765",
/// )
/// .await?;
/// server.shutdown(std::time::Duration::from_secs(5)).await;
/// # Ok(()) }
/// ```
pub async fn serve<H, F>(handler: H, addr: impl ToSocketAddrs) -> io::Result<Server>
where
    H: Fn(WebSocket<Transport>) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
    F::Output: HandlerResult,
{
    ServerBuilder::new().serve(handler, addr).await
}

/// Server settings: handshake policy (subprotocols, origins, hooks, extensions), timeouts and limits.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    handshake: ServerConfig,
    config: Config,
    compression: Option<Compression>,
    process_request_async: Option<AsyncProcessRequest>,
    process_response_async: Option<AsyncProcessResponse>,
    /// The path patterns of a [`Router`](crate::Router) (see `with_router`).
    pub(crate) routes: Option<Arc<Routes>>,
    proxies: ProxySettings,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
    max_connections: Option<usize>,
    max_handshakes_per_ip: Option<usize>,
}

/// The future an asynchronous `process_response` hook returns: `Ok` with the 101 to send
/// (edited or not), or `Err` with a response to send instead of upgrading.
pub type ProcessResponseFuture =
    Pin<Box<dyn Future<Output = std::result::Result<http::Response<()>, http::Response<Bytes>>> + Send>>;

/// An asynchronous `process_response` hook (see [`ServerBuilder::process_response_async`]).
#[derive(Clone)]
struct AsyncProcessResponse(
    Arc<dyn Fn(http::Request<()>, http::Response<()>) -> ProcessResponseFuture + Send + Sync>,
);

impl std::fmt::Debug for AsyncProcessResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AsyncProcessResponse")
    }
}

/// The future an asynchronous `process_request` hook returns.
pub type ProcessRequestFuture = Pin<Box<dyn Future<Output = Option<http::Response<Bytes>>> + Send>>;

/// An asynchronous `process_request` hook (see [`ServerBuilder::process_request_async`]).
#[derive(Clone)]
struct AsyncProcessRequest(Arc<dyn Fn(http::Request<()>) -> ProcessRequestFuture + Send + Sync>);

impl std::fmt::Debug for AsyncProcessRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AsyncProcessRequest")
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            handshake: ServerConfig::default(),
            config: Config::default(),
            compression: Some(Compression::default()),
            process_request_async: None,
            process_response_async: None,
            routes: None,
            proxies: ProxySettings::default(),
            #[cfg(feature = "tls")]
            tls: None,
            max_connections: None,
            max_handshakes_per_ip: None,
        }
    }
}

impl ServerBuilder {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    config_setters!();

    /// `Some(Compression::default())` (default) accepts permessage-deflate with Python
    /// `websockets`' defaults unless an `extension` already handles it; `None` turns it off.
    pub fn compression(mut self, compression: Option<Compression>) -> Self {
        self.compression = compression;
        self
    }

    /// Adds an extension factory (tried in the order added, before the default compression).
    pub fn extension(mut self, factory: Arc<dyn ServerExtensionFactory>) -> Self {
        self.handshake.extensions.push(factory);
        self
    }

    /// Supported subprotocols, most preferred first.
    pub fn subprotocols<I: IntoIterator<Item = T>, T: Into<String>>(mut self, protocols: I) -> Self {
        self.handshake.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Refuses clients that offer none of the subprotocols.
    pub fn require_subprotocol(mut self, required: bool) -> Self {
        self.handshake.require_subprotocol = required;
        self
    }

    /// Replaces the default subprotocol choice.
    pub fn select_subprotocol(mut self, select: SelectSubprotocol) -> Self {
        self.handshake.select_subprotocol = Some(select);
        self
    }

    /// Accepts only these `Origin`s (the defence against cross-site WebSocket hijacking);
    /// `allow_missing` also accepts clients that send none (non-browser clients).
    pub fn origins<I: IntoIterator<Item = T>, T: Into<String>>(
        mut self,
        origins: I,
        allow_missing: bool,
    ) -> Self {
        self.handshake.origins = Some(origins.into_iter().map(Into::into).collect());
        self.handshake.allow_missing_origin = allow_missing;
        self
    }

    /// A hook that may answer an HTTP response instead of upgrading (health checks,
    /// authentication; see `ws_handshake::basic_auth`).
    pub fn process_request(mut self, hook: ProcessRequest) -> Self {
        self.handshake.process_request = Some(hook);
        self
    }

    /// An asynchronous hook on the request (Python allows coroutines): it gets a copy of the
    /// request and may answer an HTTP response instead of upgrading, after awaiting what it
    /// needs (a token lookup, a database). It runs before the synchronous `process_request`,
    /// within `open_timeout`; its response is completed like theirs (`Content-Length`,
    /// `Connection: close`, `Server`, `Date`). Shared state goes in what the closure captures.
    pub fn process_request_async<H, F>(mut self, hook: H) -> Self
    where
        H: Fn(http::Request<()>) -> F + Send + Sync + 'static,
        F: Future<Output = Option<http::Response<Bytes>>> + Send + 'static,
    {
        self.process_request_async =
            Some(AsyncProcessRequest(Arc::new(move |request| Box::pin(hook(request)))));
        self
    }

    /// A hook that may edit the 101 response, or replace it.
    pub fn process_response(mut self, hook: ProcessResponse) -> Self {
        self.handshake.process_response = Some(hook);
        self
    }

    /// An asynchronous hook on the 101 response (Python allows coroutines): it gets a copy of
    /// the request and the 101, and returns the 101 to send (edited, e.g. a cookie set after a
    /// lookup) or `Err` with a response that refuses the upgrade instead (completed like a
    /// `process_request` response). It runs after the synchronous `process_response`, within
    /// `open_timeout`.
    pub fn process_response_async<H, F>(mut self, hook: H) -> Self
    where
        H: Fn(http::Request<()>, http::Response<()>) -> F + Send + Sync + 'static,
        F: Future<Output = std::result::Result<http::Response<()>, http::Response<Bytes>>> + Send + 'static,
    {
        self.process_response_async =
            Some(AsyncProcessResponse(Arc::new(move |request, response| Box::pin(hook(request, response)))));
        self
    }

    /// Sets the `Server` header (`None` removes it).
    pub fn server_header(mut self, value: Option<http::HeaderValue>) -> Self {
        self.handshake.server_header = value;
        self
    }

    /// Reads a PROXY protocol header (HAProxy's, version 1 or 2, whichever comes) at the start
    /// of every connection, before TLS and the HTTP request, within `open_timeout`: its source
    /// address becomes the connection's [`client_addr`](ConnectionInfo::client_addr) (also
    /// [`proxy_source`](ConnectionInfo::proxy_source)). A connection without a valid header
    /// is dropped, with a warning in the log. Off by default.
    ///
    /// Turn it on only where every connection comes through the proxy (HAProxy's
    /// `send-proxy`/`send-proxy-v2`, nginx's `proxy_protocol on`, AWS NLB): anyone who reaches
    /// the port directly can claim any address with it.
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// let server = ws_tokio::ServerBuilder::new()
    ///     .proxy_protocol(true)
    ///     .serve(|ws| async move {
    ///         println!("client {:?} via {:?}", ws.info().client_addr(), ws.info().remote_addr());
    ///     }, "127.0.0.1:8765")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn proxy_protocol(mut self, on: bool) -> Self {
        self.proxies.proxy_protocol = on;
        self
    }

    /// Proxies (addresses, or networks in CIDR notation) whose forwarding header is believed:
    /// when the peer (or the PROXY header's source) is one of them, the client's address
    /// ([`ConnectionInfo::client_addr`]) is read from `X-Forwarded-For` (or the header set with
    /// [`forwarded_header`](Self::forwarded_header)): its hops from the right, past the trusted
    /// ones; the first untrusted one is the client. From any other peer the header is ignored.
    /// Empty (the default): never believed.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use ws_tokio::IpNet;
    /// let builder = ws_tokio::ServerBuilder::new().trusted_proxies([
    ///     "127.0.0.1/32".parse::<IpNet>()?,
    ///     "10.0.0.0/8".parse()?,
    ///     IpNet::from("::1".parse::<std::net::IpAddr>()?),
    /// ]);
    /// # Ok(()) }
    /// ```
    pub fn trusted_proxies<I: IntoIterator<Item = T>, T: Into<ipnet::IpNet>>(mut self, proxies: I) -> Self {
        self.proxies.trusted = proxies.into_iter().map(Into::into).collect();
        self
    }

    /// The header that trusted proxies name the client in: `X-Forwarded-For` (default) or
    /// `Forwarded` (RFC 7239). Only this one is read: clients can send the other themselves.
    pub fn forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.proxies.header = header;
        self
    }

    /// Serves TLS (`wss://`) with this rustls configuration: every TCP connection gets the TLS
    /// handshake first, within `open_timeout`, in its own task (a slow client never holds up
    /// the accept loop); graceful shutdown and the connection count work as over plain TCP.
    /// Unix socket connections are served as they are. Set the configuration's
    /// `alpn_protocols` to `http/1.1` if clients might otherwise pick HTTP/2 ([`tls_pem`](Self::tls_pem) does).
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use ws_tokio::rustls;
    ///
    /// # async fn demo(
    /// #     chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// #     key: rustls::pki_types::PrivateKeyDer<'static>,
    /// # ) -> Result<(), Box<dyn std::error::Error>> {
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let mut config = rustls::ServerConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_no_client_auth()
    ///     .with_single_cert(chain, key)?;
    /// config.alpn_protocols = vec![b"http/1.1".to_vec()];
    /// let server = ws_tokio::ServerBuilder::new()
    ///     .tls(Arc::new(config))
    ///     .serve(|_ws| async {}, "0.0.0.0:8443")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Serves TLS with the certificate chain (PEM, leaf first) and private key (PEM: PKCS#8,
    /// PKCS#1 or SEC1) in these files, e.g. Let's Encrypt's `fullchain.pem` and `privkey.pem`:
    /// no client authentication, ALPN `http/1.1`, rustls' safe defaults otherwise (see
    /// [`tls`](Self::tls)). Fails, naming the file, when one cannot be read, holds no
    /// certificate or key, or the key does not match.
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// let server = ws_tokio::ServerBuilder::new()
    ///     .tls_pem("fullchain.pem", "privkey.pem")?
    ///     .serve(|_ws| async {}, "0.0.0.0:8443")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_pem(
        self,
        cert_chain: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> io::Result<Self> {
        let config = crate::tls::server_config_from_pem(cert_chain.as_ref(), key.as_ref())?;
        Ok(self.tls(config))
    }

    /// At most this many connections at once, handshakes in progress included (what
    /// [`Server::connections`] counts); `None` (the default, as in Python `websockets`): no
    /// limit but the process's file descriptors. A connection beyond it is answered
    /// `503 Service Unavailable` at once, without reading its request, and closed: clients
    /// learn at once and retry later (Python's and this crate's reconnecting clients retry
    /// 503), rather than waiting in the listen queue until their own timeout. With TLS the
    /// connection is closed without an answer (one would cost a TLS handshake). Applies to the
    /// servers this builder runs (`serve*`), not to an [`Acceptor`] fed by another accept loop.
    pub fn max_connections(mut self, max: Option<usize>) -> Self {
        self.max_connections = max;
        self
    }

    /// At most this many handshakes in progress (accepted, not yet answered) from one peer
    /// address; beyond it, `503` as for [`max_connections`](Self::max_connections). Bounds what
    /// one address can hold with slow handshakes (slowloris) before `open_timeout` drops them.
    /// `None` (the default): no limit. Not applied to peers in
    /// [`trusted_proxies`](Self::trusted_proxies), nor with the PROXY protocol: behind a proxy
    /// every client shares its address. Leave it off behind a load balancer you have not
    /// listed there.
    pub fn max_handshakes_per_ip(mut self, max: Option<usize>) -> Self {
        self.max_handshakes_per_ip = max;
        self
    }

    /// The handshake configuration this builder produces.
    fn handshake_config(&self) -> ServerConfig {
        let mut config = self.handshake.clone();
        let has_deflate = config.extensions.iter().any(|f| f.name() == "permessage-deflate");
        if let (Some(compression), false) = (self.compression, has_deflate) {
            let factory = ws_deflate::ServerPerMessageDeflateFactory {
                memory: compression.memory(),
                ..Default::default()
            };
            config.extensions.push(Arc::new(factory));
        }
        config
    }

    /// Freezes the settings into an [`Acceptor`] for transports you accept yourself.
    /// Fails when an extension factory's settings are invalid (`InvalidInput`, with the
    /// extension's [`ConfigError`](ws_handshake::ConfigError) inside).
    pub fn build(&self) -> io::Result<Acceptor> {
        let config = self.handshake_config();
        config.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Acceptor {
            handshake: Arc::new(config),
            config: self.config.clone(),
            process_request_async: self.process_request_async.clone(),
            process_response_async: self.process_response_async.clone(),
            routes: self.routes.clone(),
            proxies: self.proxies.clone(),
            #[cfg(feature = "tls")]
            tls: self.tls.clone(),
        })
    }

    /// Listens on `addr` and serves each connection with `handler`. Fails when the address
    /// cannot be bound or an extension factory's settings are invalid.
    pub async fn serve<H, F>(self, handler: H, addr: impl ToSocketAddrs) -> io::Result<Server>
    where
        H: Fn(WebSocket<Transport>) -> F + Send + Sync + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerResult,
    {
        let listener = TcpListener::bind(addr).await?;
        self.serve_listener(handler, listener)
    }

    /// Listens on a Unix socket at `path` and serves each connection with `handler`.
    #[cfg(unix)]
    pub fn serve_unix<H, F>(self, handler: H, path: impl AsRef<std::path::Path>) -> io::Result<Server>
    where
        H: Fn(WebSocket<Transport>) -> F + Send + Sync + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerResult,
    {
        let listener = tokio::net::UnixListener::bind(path)?;
        self.serve_listener(handler, listener)
    }

    /// Serves connections from a bound listener (a `TcpListener`, a `UnixListener`, or a
    /// [`Listener`]). Fails when an extension factory's settings are invalid.
    pub fn serve_listener<H, F>(self, handler: H, listener: impl Into<Listener>) -> io::Result<Server>
    where
        H: Fn(WebSocket<Transport>) -> F + Send + Sync + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerResult,
    {
        let acceptor = self.build()?;
        let admission =
            Admission::new(self.max_connections, self.max_handshakes_per_ip, self.proxies.clone());
        let listener = listener.into();
        let local_addr = listener.local_addr();
        let shutdown = ShutdownSignal::default();
        let tracker = TaskTracker::new();
        let handler = Arc::new(handler);
        let accept_loop = {
            let (shutdown, tracker) = (shutdown.clone(), tracker.clone());
            async move {
                loop {
                    let stream = tokio::select! {
                        () = shutdown.token().cancelled() => break,
                        accepted = listener.accept() => match accepted {
                            Ok(accepted) => accepted,
                            Err(e) => {
                                // Out of file descriptors and the like: back off, keep serving.
                                tracing::warn!(error = %e, "accept failed");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        },
                    };
                    let slot = match admission.admit(stream.peer_addr(), tracker.len()) {
                        Ok(slot) => slot,
                        Err(refusal) => {
                            let answer = acceptor.speaks_http_first(&stream);
                            refuse(stream, refusal, &acceptor.handshake, answer);
                            continue;
                        }
                    };
                    let (acceptor, handler, shutdown) = (acceptor.clone(), handler.clone(), shutdown.clone());
                    let span = tracing::debug_span!("ws_connection", peer = ?stream.peer_addr());
                    // The handshake future is boxed (freed once it is done): the task then stays
                    // the size of the handler's future. `with_timeout` boxes the handshake's own
                    // state too, but the timeout around it still costs about 490 bytes inline.
                    let connection = async move {
                        stream.set_nodelay();
                        let opened = Box::pin(acceptor.accept_transport(stream, Some(shutdown))).await;
                        drop(slot);
                        match opened {
                            Ok((ws, driver)) => serve_connection(ws, driver, &*handler).await,
                            Err(e) => {
                                crate::metrics::handshake_failed(&e);
                                tracing::debug!(error = %e, "opening handshake failed");
                            }
                        }
                    };
                    tracker.spawn(tracing::Instrument::instrument(connection, span));
                }
            }
        };
        let accept_task = tokio::spawn(accept_loop);
        Ok(Server { local_addr, shutdown, tracker, accept_task })
    }
}

/// Runs server handshakes on transports accepted elsewhere (Unix sockets, TLS), and decides on
/// requests another HTTP server parsed and upgrades itself (hyper, axum:
/// [`accept_request`](Self::accept_request)).
#[derive(Debug, Clone)]
pub struct Acceptor {
    handshake: Arc<ServerConfig>,
    config: Config,
    process_request_async: Option<AsyncProcessRequest>,
    process_response_async: Option<AsyncProcessResponse>,
    routes: Option<Arc<Routes>>,
    proxies: ProxySettings,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Acceptor {
    /// Reads the opening handshake from `stream` and answers it, within `open_timeout`, then
    /// runs the connection's driver on a spawned task. A refused handshake gets its HTTP error
    /// response and [`Error::Rejected`].
    pub async fn accept<S>(&self, stream: S) -> Result<WebSocket<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (ws, driver) = self.accept_with_driver(stream).await?;
        spawn(driver);
        Ok(ws)
    }

    /// Like [`accept`](Self::accept), but hands the [`Driver`] to the caller, who polls it (the
    /// connection does nothing until then), e.g. alongside the handler in the same task.
    pub async fn accept_with_driver<S>(&self, stream: S) -> Result<(WebSocket<S>, Driver<S>)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let open = async {
            let mut stream = stream;
            let proxied = self.read_proxy_header(&mut stream).await?;
            self.handshake(stream, (None, None), proxied, None).await
        };
        with_timeout(self.config.open_timeout, open).await
    }

    /// Serves a TCP connection accepted elsewhere as the server would: TLS first if the
    /// builder has a TLS configuration ([`ServerBuilder::tls`]), then the opening handshake,
    /// all within `open_timeout`; the connection's driver then runs on a spawned task.
    ///
    /// ```no_run
    /// # async fn demo(listener: tokio::net::TcpListener) -> Result<(), Box<dyn std::error::Error>> {
    /// let acceptor = ws_tokio::ServerBuilder::new().tls_pem("fullchain.pem", "privkey.pem")?.build()?;
    /// let (tcp, _) = listener.accept().await?;
    /// let mut ws = acceptor.accept_tcp(tcp).await?;
    /// ws.send("hello over TLS").await?;
    /// # Ok(()) }
    /// ```
    pub async fn accept_tcp(&self, stream: tokio::net::TcpStream) -> Result<WebSocket<Transport>> {
        let stream = Transport::Tcp(stream);
        stream.set_nodelay();
        let (ws, driver) = self.accept_transport(stream, None).await?;
        spawn(driver);
        Ok(ws)
    }

    /// A connection the server accepted: TLS if configured, then the handshake, within
    /// `open_timeout`.
    async fn accept_transport(
        &self,
        stream: Transport,
        shutdown: Option<ShutdownSignal>,
    ) -> Result<(WebSocket<Transport>, Driver<Transport>)> {
        let addrs = (stream.local_addr(), stream.peer_addr());
        let open = async {
            let mut stream = stream;
            // The PROXY header comes first, in the clear, before any TLS.
            let proxied = self.read_proxy_header(&mut stream).await?;
            let stream = self.secure(stream).await?;
            self.handshake(stream, addrs, proxied, shutdown).await
        };
        with_timeout(self.config.open_timeout, open).await
    }

    /// Whether an HTTP response written at once reaches the client: not on a connection that
    /// starts with TLS.
    fn speaks_http_first(&self, stream: &Transport) -> bool {
        #[cfg(feature = "tls")]
        if let (Transport::Tcp(_), Some(_)) = (stream, &self.tls) {
            return false;
        }
        let _ = stream;
        true
    }

    /// The TLS handshake on a TCP connection, when the server has a TLS configuration.
    async fn secure(&self, stream: Transport) -> Result<Transport> {
        #[cfg(feature = "tls")]
        if let (Transport::Tcp(_), Some(config)) = (&stream, &self.tls) {
            let Transport::Tcp(tcp) = stream else { unreachable!("a TCP stream") };
            return Ok(Transport::Tls(Box::new(crate::tls::server_handshake(tcp, config).await?)));
        }
        Ok(stream)
    }

    async fn handshake<S>(
        &self,
        mut stream: S,
        (local_addr, remote_addr): (Option<SocketAddr>, Option<SocketAddr>),
        proxied: Option<(SocketAddr, SocketAddr)>,
        shutdown: Option<ShutdownSignal>,
    ) -> Result<(WebSocket<S>, Driver<S>)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut handshake = ServerHandshake::new(self.handshake.clone());
        let mut buf = BytesMut::with_capacity(2048);
        let mut route = None;
        let outcome = loop {
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            let received = handshake.receive_at(&buf, Some(SystemTime::now()));
            buf.clear();
            match received {
                Ok(None) => continue,
                Ok(Some(request)) => {
                    // Routing runs between the async hook and the checks (in `decide`), as
                    // Python routes after `process_request`: no route, no upgrade.
                    let accept = |r: &http::Request<()>| {
                        if let Some(routes) = &self.routes {
                            route = routes.lookup(r.uri().path());
                            if route.is_none() {
                                return Err(self
                                    .handshake
                                    .respond(Routes::not_found(), Some(SystemTime::now())));
                            }
                        }
                        handshake.accept(r, Some(SystemTime::now()))
                    };
                    break self.decide(request, accept).await;
                }
                Err(rejection) => break Err(rejection),
            }
        };
        let mut out = Vec::with_capacity(256);
        let (request, accepted) = match outcome {
            Ok(ok) => ok,
            Err(rejection) => {
                crate::metrics::handshake_rejected(rejection.status());
                rejection.write_response(&mut out);
                stream.write_all(&out).await?;
                let _ = stream.shutdown().await;
                return Err(Error::Rejected(Box::new(rejection)));
            }
        };
        accepted.write_response(&mut out);
        stream.write_all(&out).await?;
        stream.flush().await?;
        let upgrade = Upgrade {
            request,
            accepted,
            config: self.config.clone(),
            addrs: (local_addr, remote_addr),
            proxies: self.proxies.clone(),
            proxied,
            route,
        };
        Ok(upgrade.open_with(stream, shutdown.map(Shutdown::new)))
    }

    /// With the PROXY protocol on: reads the header (and nothing after it) and returns its
    /// addresses; a connection without a valid one fails.
    async fn read_proxy_header<S>(&self, stream: &mut S) -> Result<Option<(SocketAddr, SocketAddr)>>
    where
        S: AsyncRead + Unpin,
    {
        if !self.proxies.proxy_protocol {
            return Ok(None);
        }
        match crate::proxy_protocol::read_proxy_header(stream).await {
            Ok(addrs) => Ok(addrs.map(|a| (a.source, a.destination))),
            Err(e) => {
                tracing::warn!(error = %e, "connection dropped: no valid PROXY protocol header");
                Err(Error::Io(e))
            }
        }
    }

    /// Decides on a request another HTTP server parsed and will upgrade (hyper, axum): runs
    /// the hooks (asynchronous ones first, as [`ServerBuilder`] documents), checks the request
    /// and its `Origin`, and negotiates the subprotocol and the extensions. On success, send
    /// [`Upgrade::response`] (a 101) and call [`Upgrade::open`] on the upgraded connection;
    /// otherwise send the [`Rejection`]'s response. `open_timeout` is not applied here: the
    /// other server's own timeouts govern the request.
    pub async fn accept_request(
        &self,
        request: http::Request<()>,
    ) -> std::result::Result<Upgrade, Rejection> {
        let (request, accepted) =
            self.decide(request, |r| self.handshake.accept(r, Some(SystemTime::now()))).await?;
        let proxies = self.proxies.clone();
        Ok(Upgrade {
            request,
            accepted,
            config: self.config.clone(),
            addrs: (None, None),
            proxies,
            proxied: None,
            route: None,
        })
    }

    /// The decision on a parsed request, shared by both paths: the asynchronous
    /// `process_request` hook, then `accept` (the synchronous hooks and the checks), then the
    /// asynchronous `process_response` hook.
    async fn decide(
        &self,
        request: http::Request<()>,
        accept: impl FnOnce(&http::Request<()>) -> std::result::Result<ServerAccepted, Rejection>,
    ) -> std::result::Result<(http::Request<()>, ServerAccepted), Rejection> {
        if let Some(AsyncProcessRequest(hook)) = &self.process_request_async {
            if let Some(response) = hook(copy_request(&request)).await {
                return Err(self.handshake.respond(response, Some(SystemTime::now())));
            }
        }
        let mut accepted = accept(&request)?;
        if let Some(AsyncProcessResponse(hook)) = &self.process_response_async {
            let response = std::mem::take(&mut accepted.response);
            match hook(copy_request(&request), response).await {
                Ok(response) => accepted.response = response,
                Err(response) => return Err(self.handshake.respond(response, Some(SystemTime::now()))),
            }
        }
        Ok((request, accepted))
    }
}

/// An upgrade [`Acceptor::accept_request`] agreed to: the 101 response for the HTTP server to
/// send, then [`open`](Self::open) on the connection it hands over.
///
/// ```no_run
/// # async fn demo(
/// #     acceptor: ws_tokio::Acceptor,
/// #     request: ws_tokio::http::Request<()>,
/// #     io: tokio::io::DuplexStream,
/// # ) {
/// match acceptor.accept_request(request).await {
///     Ok(upgrade) => {
///         // Send `upgrade.response()` through your HTTP server; once it hands over the
///         // connection (`io`):
///         let (ws, driver) = upgrade.open(io);
///         driver.serve(ws, |mut ws| async move { while ws.recv().await.is_ok() {} }).await;
///     }
///     Err(rejection) => { /* send `rejection.into_response()` instead */ }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Upgrade {
    request: http::Request<()>,
    accepted: ServerAccepted,
    config: Config,
    addrs: (Option<SocketAddr>, Option<SocketAddr>),
    /// Trusted proxies' forwarding headers apply here too (the PROXY protocol cannot: the
    /// HTTP server read the connection's first bytes).
    proxies: ProxySettings,
    /// The PROXY protocol header's source and destination, when `serve` read one.
    proxied: Option<(SocketAddr, SocketAddr)>,
    /// The matched route, when `serve` routes.
    route: Option<RouteMatch>,
}

impl Upgrade {
    /// The 101 response to send (with `Sec-WebSocket-Accept`, the subprotocol and the
    /// extensions), as the hooks left it.
    pub fn response(&self) -> &http::Response<()> {
        &self.accepted.response
    }

    /// The 101 response, to edit before it is sent (what [`ConnectionInfo::response`] will
    /// report too).
    pub fn response_mut(&mut self) -> &mut http::Response<()> {
        &mut self.accepted.response
    }

    /// The chosen subprotocol.
    pub fn subprotocol(&self) -> Option<&str> {
        self.accepted.subprotocol.as_deref()
    }

    /// The names of the negotiated extensions, in order.
    pub fn extensions(&self) -> Vec<&str> {
        self.accepted.extensions.iter().map(|e| e.name()).collect()
    }

    /// The request the upgrade was decided on.
    pub fn request(&self) -> &http::Request<()> {
        &self.request
    }

    /// Sets the addresses [`ConnectionInfo`] reports (the other server knows them; the
    /// upgraded connection may not).
    pub fn set_addrs(&mut self, local: Option<SocketAddr>, remote: Option<SocketAddr>) {
        self.addrs = (local, remote);
    }

    /// Opens the connection over `io`, the connection the HTTP server handed over after
    /// sending the 101. Its [`Driver`] must be polled: spawn it, or run it beside a handler
    /// with [`Driver::serve`].
    pub fn open<S: AsyncRead + AsyncWrite + Unpin>(self, io: S) -> (WebSocket<S>, Driver<S>) {
        self.open_with(io, None)
    }

    /// Opens the connection, keeping what the handshake established in its info; a served
    /// connection also closes with 1001 when its server shuts down.
    fn open_with<S: AsyncRead + AsyncWrite + Unpin>(
        self,
        io: S,
        shutdown: Option<Shutdown>,
    ) -> (WebSocket<S>, Driver<S>) {
        let Self { request, accepted, config, addrs: (local_addr, remote_addr), proxies, proxied, route } =
            self;
        let mut info = ConnectionInfo::new(&accepted.extensions);
        info.local_addr = local_addr;
        info.remote_addr = remote_addr;
        // The client's address: the PROXY header's source, or the peer, unless a trusted
        // proxy's forwarding header names another.
        let peer = proxied.map(|(source, _)| source).or(remote_addr).map(|a| a.ip());
        info.client_addr = proxies.client_ip(request.headers(), peer).or(peer);
        info.proxy_addrs = proxied.map(Box::new);
        info.set_handshake(&request, &accepted.response);
        info.subprotocol = accepted.subprotocol;
        info.route = route.map(Box::new);
        let leftover = BytesMut::from(&accepted.leftover[..]);
        open(io, Role::Server, accepted.extensions, leftover, &config, info, shutdown)
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    local_addr: Option<SocketAddr>,
    shutdown: ShutdownSignal,
    tracker: TaskTracker,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// How many connections are being served.
    pub fn connections(&self) -> usize {
        self.tracker.len()
    }

    /// Graceful shutdown: stops accepting, closes every open connection with 1001 (going away)
    /// and waits up to `timeout` for their handlers to finish.
    pub async fn shutdown(self, timeout: Duration) {
        self.shutdown.fire();
        let _ = self.accept_task.await;
        self.tracker.close();
        if tokio::time::timeout(timeout, self.tracker.wait()).await.is_err() {
            tracing::warn!(remaining = self.tracker.len(), "shutdown timed out");
        }
    }

    /// Serves until the process ends (or the accept loop stops).
    pub async fn serve_forever(self) {
        let _ = self.accept_task.await;
    }
}

/// What a handler returns: `()`, or a `Result` whose error closes the connection with 1011
/// (and is logged) instead of 1000.
pub trait HandlerResult {
    /// The error the handler ended with, if any.
    fn into_error(self) -> Option<Box<dyn std::error::Error + Send + Sync>>;
}

impl HandlerResult for () {
    fn into_error(self) -> Option<Box<dyn std::error::Error + Send + Sync>> {
        None
    }
}

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> HandlerResult for std::result::Result<(), E> {
    fn into_error(self) -> Option<Box<dyn std::error::Error + Send + Sync>> {
        self.err().map(Into::into)
    }
}

/// Runs a handler and its connection's driver in one task: the driver first (it reads what
/// arrived and writes what is queued), then the handler, and again while the handler asks for
/// it. When the handler ends, an open connection closes (1000, or 1011 after an error or a
/// panic) and the driver runs until the transport is closed.
pub(crate) async fn serve_connection<S, H, F>(ws: WebSocket<S>, driver: Driver<S>, handler: H)
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: FnOnce(WebSocket<S>) -> F,
    F: Future,
    F::Output: HandlerResult,
{
    let id = ws.id();
    // This task closes the connection itself, with the code the handler's outcome calls for.
    let _held = driver.handle();
    let round = driver.lock().share_task();
    let mut handler = pin!(handler(ws));
    let mut running = true;
    poll_fn(|cx| {
        // Whoever woke the task, the handler gets a turn first (waiting in `recv`, it drives
        // the connection itself); then the driver's rounds, while either side asks for one.
        let mut handler_due = true;
        loop {
            if running && handler_due {
                let unwinding = CloseOnPanic(&driver);
                let polled = handler.as_mut().poll(cx);
                std::mem::forget(unwinding);
                if let Poll::Ready(result) = polled {
                    running = false;
                    let code = match result.into_error() {
                        None => CloseCode::NORMAL,
                        Some(e) => {
                            tracing::warn!(id, error = %e, "handler failed");
                            CloseCode::INTERNAL_ERROR
                        }
                    };
                    tracing::debug!(id, %code, "handler done");
                    driver.lock().close_after_handler(code);
                }
            }
            if round.settled() {
                // Driven to the end since the last round (by `recv`, or by that round itself),
                // and nothing asked for more: the task can sleep.
                return Poll::Pending;
            }
            let driven = driver.lock().poll_drive(cx);
            if driven.is_ready() && !running {
                return Poll::Ready(());
            }
            handler_due = round.take_app_due();
        }
    })
    .await;
}

/// Closes the connection with 1011 when the handler panics (dropped while unwinding; the
/// panic goes on to the runtime, and the transport is closed when the task is dropped).
struct CloseOnPanic<'a, S>(&'a Driver<S>);

impl<S> Drop for CloseOnPanic<'_, S> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("handler panicked");
            self.0.lock().close_after_handler(CloseCode::INTERNAL_ERROR);
        }
    }
}

/// A server's shutdown signal, shared by all its connections: a cancellation token, and a flag
/// set just before it is cancelled. The token's own checks take a lock shared by every
/// connection; the flag is read without one.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShutdownSignal {
    token: CancellationToken,
    fired: Arc<AtomicBool>,
}

impl ShutdownSignal {
    /// Tells every connection (and the accept loop) to stop.
    pub(crate) fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        self.token.cancel();
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// A connection's wait for its server's shutdown.
pub(crate) struct Shutdown {
    signal: ShutdownSignal,
    wait: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The waker the wait is registered with: the wait is polled again only when the signal
    /// fired or the waker changed, not on every round of the driver.
    registered: Option<Waker>,
}

impl Shutdown {
    pub(crate) fn new(signal: ShutdownSignal) -> Self {
        let wait = Box::pin(signal.token.clone().cancelled_owned());
        Self { signal, wait, registered: None }
    }

    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let registered = self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if registered && !self.signal.fired.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        self.registered = Some(cx.waker().clone());
        self.wait.as_mut().poll(cx)
    }

    /// The driver's waker changed: register the new one at the next poll.
    pub(crate) fn forget_waker(&mut self) {
        self.registered = None;
    }
}

/// A copy of a request head for a hook that keeps it across awaits.
fn copy_request(request: &http::Request<()>) -> http::Request<()> {
    let mut copy = http::Request::new(());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}
