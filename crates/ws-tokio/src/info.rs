//! What is known of a connection once its opening handshake is done.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use ws_extensions::ExtensionHeaderItem;
use ws_extensions::header::parse_extension_headers;
use ws_proto::Extension;

use crate::router::{Params, RouteMatch};

/// What is known of a connection once its opening handshake is done.
///
/// The handshake request and response are kept as their HTTP heads (a few hundred bytes) and
/// parsed into `http` types the first time they are asked for, which would otherwise cost a
/// few kilobytes per connection for something most applications never look at.
#[derive(Debug)]
pub struct ConnectionInfo {
    pub(crate) id: u64,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) remote_addr: Option<SocketAddr>,
    /// The client's address when a PROXY header or a trusted proxy's header named it.
    pub(crate) client_addr: Option<IpAddr>,
    /// A PROXY protocol header's source and destination; boxed, as most servers have none.
    pub(crate) proxy_addrs: Option<Box<(SocketAddr, SocketAddr)>>,
    request: Head<http::Request<()>>,
    response: Head<http::Response<()>>,
    pub(crate) subprotocol: Option<String>,
    pub(crate) extensions: Vec<String>,
    /// The route the request path matched, when served by a `Router` (boxed: most servers
    /// don't route, and this stays one word for them).
    pub(crate) route: Option<Box<RouteMatch>>,
}

/// An HTTP head as bytes, parsed on first use.
#[derive(Debug, Default)]
struct Head<T> {
    bytes: Bytes,
    /// Boxed: most connections never parse, and the `http` types are large.
    parsed: OnceLock<Option<Box<T>>>,
}

impl<T> Head<T> {
    fn get(&self, parse: impl FnOnce(&Bytes) -> Option<T>) -> Option<&T> {
        if self.bytes.is_empty() {
            return None;
        }
        self.parsed.get_or_init(|| parse(&self.bytes).map(Box::new)).as_deref()
    }
}

/// The head `write` produces, in an allocation of its exact size.
fn head_bytes(write: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut out = Vec::with_capacity(256);
    write(&mut out);
    Bytes::copy_from_slice(&out)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl ConnectionInfo {
    pub(crate) fn new(extensions: &[Box<dyn Extension>]) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            local_addr: None,
            remote_addr: None,
            client_addr: None,
            proxy_addrs: None,
            request: Head::default(),
            response: Head::default(),
            subprotocol: None,
            extensions: extensions.iter().map(|e| e.name().to_owned()).collect(),
            route: None,
        }
    }

    /// Keeps the handshake request and response.
    pub(crate) fn set_handshake(&mut self, request: &http::Request<()>, response: &http::Response<()>) {
        self.request.bytes = head_bytes(|out| ws_handshake::write_request_head(request, out));
        self.response.bytes = head_bytes(|out| ws_handshake::write_response_head(response, out));
    }

    /// A process-unique connection id (for logs).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The local address, for TCP connections.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The peer's address, for TCP connections (after a hyper upgrade: when the HTTP server
    /// passed it on, see [`Upgrade::set_addrs`](crate::Upgrade::set_addrs)). Behind a reverse
    /// proxy, the proxy's: see [`client_addr`](Self::client_addr) for the client's.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The client's address, as far as the server can know it:
    ///
    /// - behind trusted proxies ([`ServerBuilder::trusted_proxies`](crate::ServerBuilder::trusted_proxies)),
    ///   the rightmost untrusted hop of the forwarding header, when the peer is trusted;
    /// - else, with the PROXY protocol ([`ServerBuilder::proxy_protocol`](crate::ServerBuilder::proxy_protocol)),
    ///   the header's source address;
    /// - else the peer's address ([`remote_addr`](Self::remote_addr)); `None` without one
    ///   (Unix sockets).
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// let server = ws_tokio::ServerBuilder::new()
    ///     .trusted_proxies(["127.0.0.1".parse::<std::net::IpAddr>().unwrap()])
    ///     .serve(|ws| async move {
    ///         let info = ws.info();
    ///         tracing::info!(client = ?info.client_addr(), proxy = ?info.remote_addr(), "connected");
    ///     }, "127.0.0.1:8765")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn client_addr(&self) -> Option<IpAddr> {
        self.client_addr.or_else(|| self.remote_addr.map(|a| a.ip()))
    }

    /// The client's source address and port as the PROXY protocol header told them, when the
    /// server reads one and it carried addresses (not for `LOCAL` or `UNKNOWN`).
    pub fn proxy_source(&self) -> Option<SocketAddr> {
        self.proxy_addrs.as_ref().map(|a| a.0)
    }

    /// The address the client connected to, as the PROXY protocol header told it (the
    /// proxy's listening address).
    pub fn proxy_destination(&self) -> Option<SocketAddr> {
        self.proxy_addrs.as_ref().map(|a| a.1)
    }

    /// The opening handshake request (header names in lower case).
    pub fn request(&self) -> Option<&http::Request<()>> {
        self.request.get(ws_handshake::parse_request_head)
    }

    /// The opening handshake response (header names in lower case).
    pub fn response(&self) -> Option<&http::Response<()>> {
        self.response.get(ws_handshake::parse_response_head)
    }

    /// The negotiated subprotocol.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The parameters the request path gave the route it matched, when served by a
    /// [`Router`](crate::Router) (`/rooms/{id}` and `/rooms/42`: `id` is `42`); empty otherwise.
    pub fn path_params(&self) -> &Params {
        self.route.as_ref().map_or(Params::EMPTY, |route| &route.params)
    }

    /// The names of the negotiated extensions, in order.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The negotiated extensions with their parameters, in order, as the server's 101 response
    /// agreed them: e.g. `permessage-deflate` with `server_max_window_bits=12` and
    /// `client_no_context_takeover` (Python's `remote_max_window_bits` and the like are read
    /// from these, by role). Empty when the handshake was done elsewhere (`from_upgraded`).
    pub fn extension_params(&self) -> Vec<ExtensionHeaderItem> {
        let Some(response) = self.response() else { return Vec::new() };
        let values = response.headers().get_all(http::header::SEC_WEBSOCKET_EXTENSIONS);
        // The handshake parsed this header already; it cannot fail here.
        parse_extension_headers(values).unwrap_or_default()
    }
}
