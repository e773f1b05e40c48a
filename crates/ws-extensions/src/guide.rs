//! # Writing an extension
//!
//! This guide walks through a WebSocket extension from the negotiation to the frames, and lists
//! the rules an extension must follow to behave well next to others. It needs nothing but this
//! crate: a third-party extension depends on `ws-extensions` alone. Two complete extensions serve
//! as references: `ws-deflate` (permessage-deflate, RFC 7692) and the toy `x-checksum` in
//! `examples-ext/ws-ext-example`.
//!
//! ## The three pieces
//!
//! An extension (RFC 6455 §9) is agreed on during the opening handshake, through the
//! `Sec-WebSocket-Extensions` header, and then transforms frames for the rest of the
//! connection. You write three types:
//!
//! - a [`ClientExtensionFactory`], shared by every connection of a client: it says what to
//!   offer ([`request_params`](ClientExtensionFactory::request_params)) and checks what the
//!   server accepted ([`process_response_params`](ClientExtensionFactory::process_response_params));
//! - a [`ServerExtensionFactory`], shared by every connection of a server: it accepts or
//!   declines each offer ([`process_request_params`](ServerExtensionFactory::process_request_params));
//! - an [`Extension`], one per connection, built by either factory once negotiation succeeds:
//!   it [`encode`](Extension::encode)s outgoing frames and [`decode`](Extension::decode)s
//!   incoming ones.
//!
//! Factories take `&self` and must be `Send + Sync`: keep configuration in them, and all
//! per-connection state (buffers, compression contexts, message state) in the extension.
//!
//! ## Negotiation
//!
//! 1. The client sends every offer of every factory, in order. An offer is a list of
//!    [`ExtensionParam`]s; a factory may return several offers of its extension, most
//!    preferred first, and the server then picks the first it can accept.
//! 2. The server walks the offers in the client's order. For each, it tries its factories of
//!    that name; the first to return `Ok` wins, and its response parameters go back to the
//!    client. **Returning an error declines the offer, it never fails the handshake**: the
//!    server simply moves on to the next offer. Once an extension is accepted, its later offers
//!    (fallbacks) are skipped.
//! 3. The client checks each accepted extension with its factory. **Here an error fails the
//!    handshake**: the server answered something the client did not allow.
//!
//! [`negotiate_server`](crate::negotiate_server) and [`negotiate_client`](crate::negotiate_client)
//! run these steps; the handshake layer calls them, you only write the factories.
//!
//! Rules for factories:
//!
//! - Parse strictly. Refuse unknown parameters, duplicated parameters, values where a flag is
//!   expected, and malformed values. A lenient server may accept something the client meant
//!   differently; a lenient client may run with parameters the server never agreed to.
//! - On the server, answer only what the offer allows; on the client, accept only what the offer
//!   allowed. The response may narrow an offer (a smaller window, say), never widen it.
//! - Look at `accepted`, the extensions already negotiated on this connection, in order. Refuse
//!   to be negotiated twice, and refuse if an accepted extension already uses one of your RSV
//!   bits. If your extension cannot work after another one (it must see uncompressed data, for
//!   instance), this is where you say so.
//! - Validate your own configuration early: give factories a `validate()` method and make an
//!   invalid factory decline everything rather than panic in the middle of a handshake.
//!
//! ## Frames
//!
//! The connection runs outgoing data through the extensions in negotiated order, and incoming
//! data in reverse order, frame by frame, before reassembling messages. Rules for extensions:
//!
//! - **RSV bits.** [`rsv`](Extension::rsv) declares the bits you own. Set them on the frames you
//!   transform when encoding, check and clear them when decoding. Never touch another
//!   extension's bits. A frame with a bit that no extension owns is rejected by the connection.
//! - **Control frames** (close, ping, pong) go through the chain too, and may arrive between two
//!   fragments of a message. Leave them alone unless your extension defines something for them.
//! - **Fragments** of one message arrive in order, the first with opcode text or binary, the
//!   others [`Continuation`](crate::OpCode::Continuation). An extension that works per message
//!   (like permessage-deflate) keeps the message state between calls.
//! - **Size limits.** `decode` receives `max_size`, how much the message may still grow by. An
//!   extension whose output can be larger than its input must stop as soon as it would exceed
//!   it and return [`ExtensionError::TooBig`], without allocating the excess first: this is the
//!   defence against decompression bombs.
//! - **Errors** end the connection with the close code of the variant:
//!   [`Protocol`](ExtensionError::Protocol) (1002) when the peer broke the extension's rules,
//!   [`InvalidData`](ExtensionError::InvalidData) (1007) when the payload cannot be decoded,
//!   [`TooBig`](ExtensionError::TooBig) (1009), [`Internal`](ExtensionError::Internal) (1011) for
//!   your own failures. Messages in errors may be shown to the peer's logs: keep secrets out.
//! - **Payloads** are [`Bytes`]: replacing `frame.payload` is cheap, and slicing it (`truncate`,
//!   `slice`) copies nothing. For transforms that produce new data, reuse a per-connection
//!   buffer (`BytesMut::split().freeze()`) rather than allocating per frame.
//! - **The application's hints.** [`Frame::no_compress`] asks not to compress a message (it holds
//!   a secret). Compressing extensions must honour it; others ignore it.
//!
//! ## A complete example
//!
//! `x-invert` flips every bit of data payloads and marks the frames with RSV3. It takes one
//! optional parameter, `text_only`, to leave binary messages alone.
//!
//! ```
//! use std::sync::Arc;
//!
//! use ws_extensions::header::parse_extensions;
//! use ws_extensions::{
//!     Bytes, ClientExtensionFactory, Extension, ExtensionError, ExtensionParam, Frame, NegotiationError,
//!     OpCode, Rsv, ServerExtensionFactory, negotiate_client, negotiate_server,
//! };
//!
//! /// The per-connection extension.
//! struct Invert {
//!     text_only: bool,
//!     /// Whether the current outgoing / incoming message is transformed (for continuations).
//!     sending: bool,
//!     receiving: bool,
//! }
//!
//! fn invert(payload: &Bytes) -> Bytes {
//!     payload.iter().map(|b| !b).collect::<Vec<u8>>().into()
//! }
//!
//! impl Extension for Invert {
//!     fn name(&self) -> &str {
//!         "x-invert"
//!     }
//!
//!     fn rsv(&self) -> Rsv {
//!         Rsv::RSV3
//!     }
//!
//!     fn encode(&mut self, frame: &mut Frame) -> Result<(), ExtensionError> {
//!         match frame.opcode {
//!             op if op.is_control() => return Ok(()),
//!             OpCode::Continuation => {}
//!             op => self.sending = !self.text_only || op == OpCode::Text,
//!         }
//!         if self.sending {
//!             frame.payload = invert(&frame.payload);
//!             frame.rsv.set(Rsv::RSV3, true);
//!         }
//!         Ok(())
//!     }
//!
//!     fn decode(&mut self, frame: &mut Frame, _max_size: Option<usize>) -> Result<(), ExtensionError> {
//!         let marked = frame.rsv.contains(Rsv::RSV3);
//!         match frame.opcode {
//!             op if op.is_control() && marked => {
//!                 return Err(ExtensionError::Protocol("RSV3 on a control frame".into()));
//!             }
//!             op if op.is_control() => return Ok(()),
//!             OpCode::Continuation if marked != self.receiving => {
//!                 return Err(ExtensionError::Protocol("RSV3 changed within a message".into()));
//!             }
//!             OpCode::Continuation => {}
//!             _ => self.receiving = marked,
//!         }
//!         if marked {
//!             // Same size out as in: `max_size` needs no check here.
//!             frame.payload = invert(&frame.payload);
//!             frame.rsv.set(Rsv::RSV3, false);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! /// Strict parameter parsing, shared by both sides: `text_only` at most once, no value.
//! fn parse(params: &[ExtensionParam]) -> Result<bool, NegotiationError> {
//!     match params {
//!         [] => Ok(false),
//!         [p] if p.name == "text_only" && p.value.is_none() => Ok(true),
//!         _ => Err(NegotiationError::new("invalid x-invert parameters")),
//!     }
//! }
//!
//! fn check_accepted(accepted: &[Box<dyn Extension>]) -> Result<(), NegotiationError> {
//!     if accepted.iter().any(|e| e.name() == "x-invert" || e.rsv().intersects(Rsv::RSV3)) {
//!         return Err(NegotiationError::new("RSV3 is taken"));
//!     }
//!     Ok(())
//! }
//!
//! fn build(text_only: bool) -> Box<dyn Extension> {
//!     Box::new(Invert { text_only, sending: false, receiving: false })
//! }
//!
//! struct ClientFactory {
//!     text_only: bool,
//! }
//!
//! impl ClientExtensionFactory for ClientFactory {
//!     fn name(&self) -> &str {
//!         "x-invert"
//!     }
//!
//!     fn request_params(&self) -> Vec<Vec<ExtensionParam>> {
//!         match self.text_only {
//!             // Prefer text_only, but fall back to inverting everything.
//!             true => vec![vec![ExtensionParam::flag("text_only")], vec![]],
//!             false => vec![vec![]],
//!         }
//!     }
//!
//!     fn process_response_params(
//!         &self,
//!         params: &[ExtensionParam],
//!         accepted: &[Box<dyn Extension>],
//!     ) -> Result<Box<dyn Extension>, NegotiationError> {
//!         check_accepted(accepted)?;
//!         let text_only = parse(params)?;
//!         if text_only && !self.text_only {
//!             return Err(NegotiationError::new("text_only was not offered"));
//!         }
//!         Ok(build(text_only))
//!     }
//! }
//!
//! /// A server that does not support `text_only`: it declines such offers.
//! struct ServerFactory;
//!
//! impl ServerExtensionFactory for ServerFactory {
//!     fn name(&self) -> &str {
//!         "x-invert"
//!     }
//!
//!     fn process_request_params(
//!         &self,
//!         params: &[ExtensionParam],
//!         accepted: &[Box<dyn Extension>],
//!     ) -> Result<(Vec<ExtensionParam>, Box<dyn Extension>), NegotiationError> {
//!         check_accepted(accepted)?;
//!         if parse(params)? {
//!             return Err(NegotiationError::new("text_only is not supported"));
//!         }
//!         Ok((vec![], build(false)))
//!     }
//! }
//!
//! // The handshake, as the handshake layer runs it.
//! let client: Vec<Arc<dyn ClientExtensionFactory>> = vec![Arc::new(ClientFactory { text_only: true })];
//! let server: Vec<Arc<dyn ServerExtensionFactory>> = vec![Arc::new(ServerFactory)];
//! let offers = parse_extensions("x-invert; text_only, x-invert")?;
//! let (response, mut server_side) = negotiate_server(&server, &offers);
//! assert_eq!(response.len(), 1); // the fallback offer was accepted
//! let mut client_side = negotiate_client(&client, &response)?;
//!
//! // Frames, through the chains.
//! let mut frame = Frame::new(OpCode::Binary, vec![0x00, 0x0f], true);
//! client_side[0].encode(&mut frame)?;
//! assert_eq!((frame.rsv, &frame.payload[..]), (Rsv::RSV3, &[0xff, 0xf0][..]));
//! server_side[0].decode(&mut frame, None)?;
//! assert_eq!((frame.rsv, &frame.payload[..]), (Rsv::NONE, &[0x00, 0x0f][..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Testing an extension
//!
//! Test the factories without a connection: feed parameter lists to
//! `process_request_params` and `process_response_params` and check the answers, including
//! every way an offer or a response can be malformed, duplicated, or out of range, and the
//! `accepted` checks. Then test the extension on frames directly: a client-built and a
//! server-built extension talking to each other, fragmented messages, control frames in the
//! middle of a message, RSV bits where they must not be, corrupt payloads and size limits.
//! Only then run it through a full connection.

#[allow(unused_imports)] // for the intra-doc links above
use crate::{
    Bytes, ClientExtensionFactory, Extension, ExtensionError, ExtensionParam, Frame, ServerExtensionFactory,
};
