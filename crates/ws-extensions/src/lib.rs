//! The public WebSocket extension API.
//!
//! A third-party extension depends on this crate alone: it re-exports the frame types an
//! [`Extension`] transforms. Negotiation follows Python `websockets`: a
//! [`ClientExtensionFactory`] makes offers and checks the server's answer, a
//! [`ServerExtensionFactory`] accepts or declines each offer.
#![forbid(unsafe_code)]

mod factory;
pub mod guide;
pub mod header;
mod negotiate;
mod params;

pub use factory::{ClientExtensionFactory, ConfigError, NegotiationError, ServerExtensionFactory};
pub use negotiate::{negotiate_client, negotiate_server};
pub use params::{ExtensionHeaderItem, ExtensionParam};
pub use ws_proto::{Bytes, CloseCode, Extension, ExtensionError, Frame, OpCode, Rsv};
