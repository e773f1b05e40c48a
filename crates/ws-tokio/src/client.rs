//! `connect()`: the client side.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use http::{HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_extensions::ClientExtensionFactory;
use ws_handshake::{ClientConfig, ClientError, ClientHandshake, Target};
use ws_proto::Role;

use crate::config::{Compression, Config, config_setters, with_timeout};
use crate::driver::{Driver, open, spawn};
use crate::error::{Error, Result};
use crate::info::ConnectionInfo;
use crate::proxy::{self, ProxySetting};
use crate::redirect::{self, DEFAULT_MAX_REDIRECTS};
use crate::socket::WebSocket;
use crate::transport::Transport;

/// Connects to a `ws://` or `wss://` URI with the default settings: permessage-deflate
/// offered, 10 s open timeout, keepalive pings every 20 s, 1 MiB message limit, through the
/// proxy the environment names (`https_proxy`, `http_proxy`... see [`ClientBuilder::proxy`]),
/// following up to 10 redirects (see [`ClientBuilder::max_redirects`]). `wss://` trusts the
/// platform's root certificates, or those of `SSL_CERT_FILE` / `SSL_CERT_DIR` when either is
/// set (as curl and Python do); see [`ClientBuilder::tls_config`] for others. The connection's [`Driver`] runs
/// on a spawned task (as Python's connection runs on its event loop): pings are answered and
/// keepalive runs whether or not the application reads.
///
/// ```no_run
/// # async fn demo() -> Result<(), ws_tokio::Error> {
/// let mut ws = ws_tokio::connect("ws://127.0.0.1:8765/chat").await?;
/// ws.send("hello").await?;
/// # Ok(()) }
/// ```
pub async fn connect(uri: &str) -> Result<WebSocket> {
    ClientBuilder::new().connect(uri).await
}

/// Client settings: handshake headers, extensions, timeouts and limits.
///
/// ```no_run
/// use std::sync::Arc;
/// use ws_tokio::ClientPerMessageDeflateFactory; // re-exported: ws-tokio is the one dependency
///
/// # async fn demo() -> Result<(), ws_tokio::Error> {
/// // Python: connect(uri, extensions=[ClientPerMessageDeflateFactory(server_max_window_bits=11,
/// //          client_max_window_bits=11, compress_settings={'memLevel': 4})])
/// let ws = ws_tokio::ClientBuilder::new()
///     .extension(Arc::new(ClientPerMessageDeflateFactory {
///         server_max_window_bits: Some(11),
///         client_max_window_bits: Some(11),
///         mem_level: 4,
///         ..Default::default()
///     }))
///     .max_size(Some(4 << 20))
///     .connect("ws://127.0.0.1:8765")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    handshake: ClientConfig,
    config: Config,
    compression: Option<Compression>,
    proxy: ProxySetting,
    max_redirects: usize,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            handshake: ClientConfig::default(),
            config: Config::default(),
            compression: Some(Compression::default()),
            proxy: ProxySetting::Env,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ClientBuilder {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    config_setters!();

    /// `Some(Compression::default())` (default) offers permessage-deflate unless an `extension`
    /// already does; `None` turns compression off.
    pub fn compression(mut self, compression: Option<Compression>) -> Self {
        self.compression = compression;
        self
    }

    /// Adds an extension factory (offered in the order added, before the default compression).
    pub fn extension(mut self, factory: Arc<dyn ClientExtensionFactory>) -> Self {
        self.handshake.extensions.push(factory);
        self
    }

    /// Offers these subprotocols, most preferred first.
    pub fn subprotocols<I: IntoIterator<Item = T>, T: Into<String>>(mut self, protocols: I) -> Self {
        self.handshake.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Sends this `Origin`.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.handshake.origin = Some(origin.into());
        self
    }

    /// Adds a request header (values with CR or LF are refused when connecting).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.handshake.headers.append(name, value);
        self
    }

    /// Sets the `User-Agent` (`None` removes it).
    pub fn user_agent(mut self, agent: Option<String>) -> Self {
        self.handshake.user_agent = agent;
        self
    }

    /// The proxy to connect through, as Python's `proxy=` argument: by default the one the
    /// environment names for the URI; `Some(url)` this one; `None` none.
    ///
    /// - `http://[user:password@]host[:port]` (port 80 by default): an HTTP proxy, asked with
    ///   `CONNECT` (Basic `Proxy-Authorization` from the credentials);
    /// - `socks5h://[user:password@]host[:port]` (port 1080): SOCKS5, the proxy resolves the
    ///   host name; `socks5://`: SOCKS5, the host name is resolved here (as in Python and curl).
    ///
    /// From the environment (read when connecting, names in any case, lower case winning):
    /// `wss://` uses `wss_proxy`, `socks_proxy` or `https_proxy`; `ws://` uses `ws_proxy`,
    /// `socks_proxy`, `https_proxy` or `http_proxy`; then `all_proxy`. `no_proxy` lists host
    /// suffixes (`.example.com`, `example.com:8080`) or `*` to connect to directly.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), ws_tokio::Error> {
    /// let ws = ws_tokio::ClientBuilder::new()
    ///     .proxy(Some("http://user:secret@proxy.internal:3128"))
    ///     .connect("ws://example.com/chat")
    ///     .await?;
    /// // Ignore https_proxy and friends:
    /// let direct = ws_tokio::ClientBuilder::new().proxy(None).connect("ws://127.0.0.1:8765").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Failures are [`Error::Proxy`] (see [`ProxyError`](crate::ProxyError)); the URL is
    /// checked when connecting. Only [`connect`](Self::connect) uses a proxy.
    pub fn proxy(mut self, proxy: Option<&str>) -> Self {
        self.proxy = proxy.map_or(ProxySetting::Off, |url| ProxySetting::Url(url.to_owned()));
        self
    }

    /// How many redirects (300, 301, 302, 303, 307, 308 with a `Location`) the opening
    /// handshake follows, each on a new connection (10 by default, as in Python); past it,
    /// [`Error::TooManyRedirects`]. `0` follows none: the response comes back as
    /// [`Error::Handshake`]`(`[`ClientError::Rejected`]`)`. A redirect from `wss://` to `ws://`
    /// is refused ([`Error::InsecureRedirect`]); one to another host, port or scheme drops the
    /// `Authorization`, `Cookie` and `Proxy-Authorization` headers. Only
    /// [`connect`](Self::connect) follows redirects (the others have one transport).
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// The TLS configuration for `wss://` URIs, instead of the default one (the platform's
    /// roots, or `SSL_CERT_FILE` / `SSL_CERT_DIR`): to trust your own CA, present a client
    /// certificate, or pin TLS versions. It is used as given: set its `alpn_protocols` to
    /// `http/1.1` if the server also speaks HTTP/2 (the default configuration does).
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use ws_tokio::rustls;
    ///
    /// # async fn demo(ca_pem: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    /// use rustls::pki_types::{CertificateDer, pem::PemObject};
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.add(CertificateDer::from_pem_slice(ca_pem)?)?;
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let ws = ws_tokio::ClientBuilder::new()
    ///     .tls_config(Arc::new(config))
    ///     .connect("wss://localhost:8765")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    fn handshake_config(&self) -> ClientConfig {
        let mut config = self.handshake.clone();
        let has_deflate = config.extensions.iter().any(|f| f.name() == "permessage-deflate");
        if let (Some(compression), false) = (self.compression, has_deflate) {
            let factory = ws_deflate::ClientPerMessageDeflateFactory {
                memory: compression.memory(),
                ..Default::default()
            };
            config.extensions.push(Arc::new(factory));
        }
        config
    }

    /// Opens a TCP connection to the URI's host (directly or through the [`proxy`](Self::proxy)),
    /// with TLS for `wss://`, runs the opening handshake over it, following
    /// [redirects](Self::max_redirects), and spawns the connection's [`Driver`]. `open_timeout`
    /// covers all of it, TLS included.
    pub async fn connect(self, uri: &str) -> Result<WebSocket> {
        let (ws, driver) = with_timeout(self.config.open_timeout, self.follow_redirects(uri)).await?;
        spawn(driver);
        Ok(ws)
    }

    /// Python's connect loop: a redirect closes the connection and opens a new one, maybe to
    /// another host.
    async fn follow_redirects(mut self, uri: &str) -> Result<(WebSocket, Driver)> {
        let mut uri = uri.to_owned();
        let mut followed = 0;
        loop {
            let response = match self.connect_once(&uri).await {
                Err(Error::Handshake(ClientError::Rejected(response))) if self.max_redirects > 0 => response,
                other => return other,
            };
            let next = match redirect::next_uri(&uri, &response) {
                Some(next) => next?,
                None => return Err(Error::Handshake(ClientError::Rejected(response))),
            };
            if followed == self.max_redirects {
                return Err(Error::TooManyRedirects { uri: next, limit: self.max_redirects });
            }
            followed += 1;
            if redirect::cross_origin(&uri, &next) {
                // As Python: credentials meant for one origin are not sent to another.
                for name in
                    [http::header::AUTHORIZATION, http::header::COOKIE, http::header::PROXY_AUTHORIZATION]
                {
                    self.handshake.headers.remove(name);
                }
            }
            tracing::debug!(status = %response.status(), from = %uri, to = %next, "following redirect");
            uri = next;
        }
    }

    /// One attempt: open TCP (direct or via proxy), then TLS for `wss://`, then the WebSocket
    /// handshake.
    async fn connect_once(&self, uri: &str) -> Result<(WebSocket, Driver)> {
        let config = Arc::new(self.handshake_config());
        let handshake = ClientHandshake::new(uri, config).map_err(Error::Handshake)?;
        let target = handshake.target().clone();
        #[cfg(not(feature = "tls"))]
        if target.secure {
            return Err(Error::InvalidUri(
                "wss:// needs ws-tokio's `tls` feature (or open the TLS stream yourself and use \
                 ClientBuilder::connect_with)"
                    .into(),
            ));
        }
        let user_agent = self.handshake.user_agent.as_deref();
        let tcp = proxy::open(&self.proxy, &target.host, target.port, target.secure, user_agent).await?;
        let _ = tcp.set_nodelay(true);
        let stream = self.secure(tcp, &target).await?;
        let addrs = (stream.local_addr(), stream.peer_addr());
        self.run_handshake(stream, handshake, addrs).await
    }

    /// The step between opening the connection and the WebSocket handshake: a `wss://` target
    /// gets TLS on `tcp` (a direct connection, or a tunnel through a proxy), checked against
    /// the URI's host name; a `ws://` target is used as is.
    async fn secure(&self, tcp: TcpStream, target: &Target) -> Result<Transport> {
        #[cfg(feature = "tls")]
        if target.secure {
            let stream = crate::tls::client_handshake(tcp, &target.host, self.tls.as_ref()).await?;
            return Ok(Transport::Tls(Box::new(stream)));
        }
        let _ = target;
        Ok(Transport::Tcp(tcp))
    }

    /// Connects to the Unix socket at `path` and runs the opening handshake for `uri` over it
    /// (its host goes in the `Host` header), then spawns the connection's [`Driver`].
    #[cfg(unix)]
    pub async fn connect_unix(self, path: impl AsRef<std::path::Path>, uri: &str) -> Result<WebSocket> {
        let config = Arc::new(self.handshake_config());
        let handshake = ClientHandshake::new(uri, config).map_err(Error::Handshake)?;
        let open = async {
            let stream = Transport::Unix(tokio::net::UnixStream::connect(path).await?);
            self.run_handshake(stream, handshake, (None, None)).await
        };
        let (ws, driver) = with_timeout(self.config.open_timeout, open).await?;
        spawn(driver);
        Ok(ws)
    }

    /// Runs the opening handshake over a transport you opened (TLS, Unix socket, proxy tunnel)
    /// and spawns the connection's [`Driver`].
    pub async fn connect_with<S>(self, uri: &str, stream: S) -> Result<WebSocket<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (ws, driver) = self.connect_with_driver(uri, stream).await?;
        spawn(driver);
        Ok(ws)
    }

    /// Like [`connect_with`](Self::connect_with), but hands the [`Driver`] to the caller, who
    /// polls it (the connection does nothing until then): for transports that are not `Send`,
    /// or to run the driver in a task of one's own.
    pub async fn connect_with_driver<S>(self, uri: &str, stream: S) -> Result<(WebSocket<S>, Driver<S>)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let config = Arc::new(self.handshake_config());
        let handshake = ClientHandshake::new(uri, config).map_err(Error::Handshake)?;
        with_timeout(self.config.open_timeout, self.run_handshake(stream, handshake, (None, None))).await
    }

    async fn run_handshake<S>(
        &self,
        mut stream: S,
        mut handshake: ClientHandshake,
        (local_addr, remote_addr): (Option<SocketAddr>, Option<SocketAddr>),
    ) -> Result<(WebSocket<S>, Driver<S>)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut request = Vec::with_capacity(512);
        handshake.write_request(&mut request);
        stream.write_all(&request).await?;
        stream.flush().await?;
        let mut buf = BytesMut::with_capacity(4096);
        let accepted = loop {
            buf.clear();
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(Error::Handshake(handshake.receive_eof()));
            }
            if let Some(accepted) = handshake.receive(&buf).map_err(Error::Handshake)? {
                break accepted;
            }
        };
        let mut info = ConnectionInfo::new(&accepted.extensions);
        info.local_addr = local_addr;
        info.remote_addr = remote_addr;
        info.set_handshake(handshake.request(), &accepted.response);
        info.subprotocol = accepted.subprotocol;
        let leftover = BytesMut::from(&accepted.leftover[..]);
        Ok(open(stream, Role::Client, accepted.extensions, leftover, &self.config, info, None))
    }
}

/// Resolves `host` and connects to its addresses in turn; the error names what failed.
pub(crate) async fn open_tcp(host: &str, port: u16) -> Result<TcpStream> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| Error::Resolve { host: host.to_owned(), source })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(source) => last = Some(Error::Connect { addr, source }),
        }
    }
    Err(last.unwrap_or_else(|| Error::Resolve {
        host: host.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
    }))
}
