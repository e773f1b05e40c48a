//! WebSocket on tokio: [`connect`] and [`serve`], with the behaviour of Python `websockets`.
//!
//! The full stack: `ws-proto` (frames, messages, closing handshake), `ws-handshake` (HTTP/1.1
//! upgrade), `ws-extensions` and `ws-deflate` (permessage-deflate, on by default).
//!
//! Every connection is run by its [`Driver`], whether or not the application reads: pings are
//! answered, keepalive pings are sent and checked, close frames are answered and the closing
//! timeout runs. `serve` polls it beside the handler in the connection's task; `connect` spawns
//! it; the `*_with_driver` constructors hand it over. Received messages wait in a queue of
//! `max_queue` ([`Options::max_queue`]); beyond it the connection stops reading from the peer.
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
#![forbid(unsafe_code)]

mod client;
mod driver;
mod error;
mod info;
mod options;
mod pump;
mod reading;
mod server;
mod socket;
mod split;

pub use client::{ClientBuilder, connect};
pub use driver::Driver;
pub use error::{ConnectionClosed, Error, Result, Timeout};
/// The `http` crate, whose types the handshake hooks and headers use.
pub use http;
pub use info::ConnectionInfo;
pub use options::{Compression, Options};
pub use server::{Acceptor, HandlerResult, ProcessRequestFuture, Server, ServerBuilder, serve};
pub use socket::{PongWaiter, Recv, SendMessage, WebSocket};
pub use split::{ReadHalf, WriteHalf};
pub use ws_deflate::{ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory};
pub use ws_extensions::{
    ClientExtensionFactory, ConfigError, ExtensionHeaderItem, ExtensionParam, ServerExtensionFactory,
};
pub use ws_proto::{Bytes, Cause, CloseCode, Closure, Message, Role, State, Utf8Bytes};
