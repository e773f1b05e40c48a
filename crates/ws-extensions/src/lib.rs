//! The public WebSocket extension API.
//!
//! A third-party extension depends on this crate alone: it re-exports the frame types an
//! [`Extension`] transforms. Negotiation follows Python `websockets`: a
//! [`ClientExtensionFactory`] makes offers and checks the server's answer, a
//! [`ServerExtensionFactory`] accepts or declines each offer.
//!
//! Depend on it to write an extension (the [`guide`] walks through one), or to parse and write
//! `Sec-WebSocket-Extensions` headers ([`header`]). Applications do not need it directly:
//! `ws-tokio` re-exports the factory traits for its `extension(...)` settings.
//!
//! ```
//! use ws_extensions::ExtensionParam;
//! use ws_extensions::header::{parse_extensions, serialize_extensions};
//!
//! let items = parse_extensions("permessage-deflate; client_max_window_bits, x-checksum; algorithm=fnv1a")?;
//! assert_eq!(items[0].params, [ExtensionParam::flag("client_max_window_bits")]);
//! assert_eq!(items[1].params, [ExtensionParam::new("algorithm", "fnv1a")]);
//! assert_eq!(
//!     serialize_extensions(&items),
//!     "permessage-deflate; client_max_window_bits, x-checksum; algorithm=fnv1a"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
