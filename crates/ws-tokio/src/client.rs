//! `connect()`: the client side.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use http::{HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_extensions::ClientExtensionFactory;
use ws_handshake::{ClientConfig, ClientHandshake};
use ws_proto::Role;

use crate::config::{Compression, Config, config_setters, with_timeout};
use crate::driver::{Driver, open, spawn};
use crate::error::{Error, Result};
use crate::info::ConnectionInfo;
use crate::socket::WebSocket;
use crate::transport::Transport;

/// Connects to a `ws://` URI with the default settings: permessage-deflate offered, 10 s open
/// timeout, keepalive pings every 20 s, 1 MiB message limit. The connection's [`Driver`] runs
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
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            handshake: ClientConfig::default(),
            config: Config::default(),
            compression: Some(Compression::default()),
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

    /// Opens a TCP connection to the URI's host, runs the opening handshake over it, and
    /// spawns the connection's [`Driver`].
    pub async fn connect(self, uri: &str) -> Result<WebSocket> {
        let config = Arc::new(self.handshake_config());
        let handshake = ClientHandshake::new(uri, config).map_err(Error::Handshake)?;
        let target = handshake.target().clone();
        if target.secure {
            return Err(Error::InvalidUri(
                "wss:// needs TLS: open the TLS stream yourself and use ClientBuilder::connect_with".into(),
            ));
        }
        let open = async {
            let stream = Transport::Tcp(open_tcp(&target.host, target.port).await?);
            stream.set_nodelay();
            let addrs = (stream.local_addr(), stream.peer_addr());
            self.run_handshake(stream, handshake, addrs).await
        };
        let (ws, driver) = with_timeout(self.config.open_timeout, open).await?;
        spawn(driver);
        Ok(ws)
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
async fn open_tcp(host: &str, port: u16) -> Result<TcpStream> {
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
