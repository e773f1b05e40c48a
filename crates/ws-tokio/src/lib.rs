//! WebSocket on tokio: [`connect`] and [`serve`], with the behaviour of Python `websockets`.
//!
//! This is the crate applications depend on: clients and servers with keepalive, timeouts,
//! limits, permessage-deflate, TLS, proxies, reconnection, routing and broadcast. Take
//! `ws-axum` to serve WebSocket routes from an axum app, `ws-redis` to share rooms between
//! servers, and the Sans-I/O crates below this one when you bring your own I/O. The
//! repository's `docs/` has the guides (getting started, how-to guides, topics).
//!
//! The full stack: `ws-proto` (frames, messages, closing handshake), `ws-handshake` (HTTP/1.1
//! upgrade), `ws-extensions` and `ws-deflate` (permessage-deflate, on by default).
//!
//! Every connection is run by its [`Driver`], whether or not the application reads: pings are
//! answered, keepalive pings are sent and checked, close frames are answered and the closing
//! timeout runs. `serve` polls it beside the handler in the connection's task; `connect` spawns
//! it; the `*_with_driver` constructors hand it over. Received messages wait in a queue of
//! `max_queue` ([`Config::max_queue`]); beyond it the connection stops reading from the peer.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // An echo server...
//! let server = ws_tokio::serve(
//!     |mut ws| async move {
//!         while let Ok(message) = ws.recv().await {
//!             let _ = ws.send(message).await;
//!         }
//!     },
//!     "127.0.0.1:8765",
//! )
//! .await?;
//!
//! // ...and a client.
//! let mut ws = ws_tokio::connect("ws://127.0.0.1:8765").await?;
//! ws.send("Hello world!").await?;
//! assert_eq!(ws.recv().await?, ws_tokio::Message::text("Hello world!"));
//! ws.close(ws_tokio::CloseCode::NORMAL, "").await?;
//! server.shutdown(std::time::Duration::from_secs(1)).await;
//! # Ok(()) }
//! ```
//!
//! [`ClientBuilder::reconnecting`] is a [`Reconnect`] stream of connections that retries with
//! backoff (Python's `async for websocket in connect(uri)`); a [`Router`] dispatches `serve`
//! connections on their path, 404 for the rest (Python's `route()`).
//!
//! # Vocabulary
//!
//! One name per idea, the same in every `ws-*` crate (and Python `websockets`' where it has one):
//!
//! | name | means | where |
//! |---|---|---|
//! | `Config` | the settings of one layer: a connection's ([`Config`], `ws_proto::Config`), a handshake's (`ServerConfig`, `ClientConfig`), an extension's (`PerMessageDeflateConfig`) | every crate |
//! | `max_size` | the largest message, after decompression (1009 beyond it) | [`Config::max_size`], `ws_proto::Config::max_size` |
//! | `max_frame_size` | the largest frame, as on the wire; by default derived from `max_size` | both `Config`s |
//! | `max_queue`, `write_limit` | received messages waiting for the application; the write buffer's [`WriteLimit`] | [`Config`] |
//! | `Server…` / `Client…` | the two sides of one thing: `ServerConfig`/`ClientConfig`, `ServerHandshake`/`ClientHandshake`, `ServerAccepted`/`ClientAccepted`, the extension factories | `ws-handshake`, `ws-extensions`, `ws-deflate` |
//! | [`Memory`] | where permessage-deflate keeps its zlib streams: `Dedicated` (per connection, context takeover) or `Shared` (per thread, the memory-lean mode) | `ws-deflate`, [`Compression::Deflate`] |
//! | [`Closure`], [`Cause`] | how a connection ended: both close frames, and what ended it otherwise | `ws-proto`, [`WebSocket::closure`] |
//! | `Driver` | the future that runs a connection, whether or not the application reads | [`Driver`] |
#![forbid(unsafe_code)]

mod admission;
mod broadcast;
mod client;
mod config;
mod driver;
mod error;
mod forwarded;
mod info;
pub mod metrics;
mod proxy;
mod proxy_protocol;
mod pump;
mod reading;
mod reconnect;
mod redirect;
mod router;
mod server;
mod socket;
mod split;
#[cfg(feature = "tls")]
mod tls;
mod transport;

pub use broadcast::{BroadcastConfig, Broadcaster, Delivery, Joinable, Member, Room, WhenFull};
pub use client::{ClientBuilder, connect};
pub use config::{Compression, Config, WriteLimit};
pub use driver::Driver;
pub use error::{ConnectionClosed, Error, Result, Timeout};
pub use forwarded::ForwardedHeader;
/// The `http` crate, whose types the handshake hooks and headers use.
pub use http;
pub use info::ConnectionInfo;
/// A network in CIDR notation, for [`ServerBuilder::trusted_proxies`] (from the `ipnet` crate).
pub use ipnet::IpNet;
pub use proxy::ProxyError;
pub use reconnect::{Backoff, Reconnect, is_transient};
pub use router::{Params, Router, route};
/// The `rustls` crate (the `tls` feature), whose configurations [`ClientBuilder::tls_config`]
/// and [`ServerBuilder::tls`] take.
#[cfg(feature = "tls")]
pub use rustls;
pub use server::{
    Acceptor, HandlerResult, ProcessRequestFuture, ProcessResponseFuture, Server, ServerBuilder, Upgrade,
    serve,
};
pub use socket::{PongWaiter, Recv, SendMessage, WebSocket};
pub use split::{ReadHalf, WriteHalf};
/// The `tokio-rustls` crate (the `tls` feature), whose stream [`Transport::Tls`] holds.
#[cfg(feature = "tls")]
pub use tokio_rustls;
pub use transport::{Listener, Transport};
pub use ws_deflate::Memory;
pub use ws_deflate::{ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory};
pub use ws_extensions::{
    ClientExtensionFactory, ConfigError, ExtensionHeaderItem, ExtensionParam, ServerExtensionFactory,
};
pub use ws_handshake::{ClientError, ProcessRequest, ProcessResponse, Rejection, SelectSubprotocol};
pub use ws_proto::{
    Bytes, BytesMut, Cause, CloseCode, Closure, Extension, Message, PreparedMessage, ProtocolError, Role,
    SendError, State, Utf8Bytes,
};
