//! The negotiation factories (RFC 7692 §7.1).

use ws_extensions::{
    ClientExtensionFactory, Extension, ExtensionParam, NegotiationError, Rsv, ServerExtensionFactory,
};

use crate::config::{ConfigError, check_level, check_mem_level, check_window_bits, config_error};
use crate::extension::{Memory, NAME, PerMessageDeflate, PerMessageDeflateConfig};
use crate::params::{self, Params, Side, WindowParam};
use crate::{DEFAULT_LEVEL, DEFAULT_MEM_LEVEL};

/// Refuses to stack a second permessage-deflate, or to share RSV1 with another extension.
fn check_accepted(accepted: &[Box<dyn Extension>]) -> Result<(), NegotiationError> {
    if accepted.iter().any(|ext| ext.name() == NAME) {
        return Err(NegotiationError::new("permessage-deflate is already negotiated"));
    }
    if let Some(ext) = accepted.iter().find(|ext| ext.rsv().intersects(Rsv::RSV1)) {
        return Err(NegotiationError::new(format!("RSV1 is already used by {}", ext.name())));
    }
    Ok(())
}

fn invalid(err: ConfigError) -> NegotiationError {
    NegotiationError::new(err.to_string())
}

fn build(config: PerMessageDeflateConfig) -> Result<Box<dyn Extension>, NegotiationError> {
    Ok(Box::new(PerMessageDeflate::new(config).map_err(invalid)?))
}

/// The client side of permessage-deflate: makes one offer and checks the server's answer.
///
/// A plain struct: set the fields you need and take the rest from [`Default`], which follows
/// Python `websockets` (offer a bare `client_max_window_bits`, compress with memLevel 5).
///
/// ```
/// use ws_deflate::ClientPerMessageDeflateFactory;
/// use ws_extensions::{ClientExtensionFactory, ExtensionParam};
///
/// let factory = ClientPerMessageDeflateFactory {
///     server_max_window_bits: Some(11),
///     client_max_window_bits: Some(11),
///     mem_level: 4,
///     ..Default::default()
/// };
/// factory.validate()?;
/// assert_eq!(
///     factory.request_params(),
///     vec![vec![
///         ExtensionParam::new("server_max_window_bits", "11"),
///         ExtensionParam::new("client_max_window_bits", "11"),
///     ]]
/// );
///
/// // The server accepted with a smaller window of its own: fine.
/// let response = [
///     ExtensionParam::new("server_max_window_bits", "10"),
///     ExtensionParam::new("client_max_window_bits", "11"),
/// ];
/// let extension = factory.process_response_params(&response, &[])?;
/// assert_eq!(extension.name(), "permessage-deflate");
///
/// // A server window larger than the offer fails the handshake.
/// let response = [ExtensionParam::new("server_max_window_bits", "12")];
/// assert!(factory.process_response_params(&response, &[]).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPerMessageDeflateFactory {
    /// Ask the server to reset its compressor after each message; a response without
    /// `server_no_context_takeover` then fails the handshake.
    pub server_no_context_takeover: bool,
    /// Reset our compressor after each message (and tell the server so).
    pub client_no_context_takeover: bool,
    /// Ask the server to compress with at most this window (8–15); a response without it, or
    /// with a larger value, fails the handshake.
    pub server_max_window_bits: Option<u8>,
    /// Compress with at most this window (8–15) and offer it. The server may lower it.
    pub client_max_window_bits: Option<u8>,
    /// When `client_max_window_bits` is `None`: offer it without a value (the server may then
    /// choose our window) if `true`, leave it out if `false`.
    pub offer_client_max_window_bits: bool,
    /// zlib compression level, 0–9.
    pub level: u8,
    /// zlib memLevel, 1–9: compressor memory, see the crate docs.
    pub mem_level: u8,
    /// Single-frame messages shorter than this are sent uncompressed; `None` decides from
    /// context takeover, see [`PerMessageDeflateConfig::compression_threshold`].
    pub compression_threshold: Option<usize>,
    /// [`Memory::Shared`] borrows the thread's zlib streams one message at a time instead of
    /// keeping two per connection. It offers `server_no_context_takeover` and
    /// `client_no_context_takeover` whatever the two fields above say.
    pub memory: Memory,
}

impl Default for ClientPerMessageDeflateFactory {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
            offer_client_max_window_bits: true,
            level: DEFAULT_LEVEL,
            mem_level: DEFAULT_MEM_LEVEL,
            compression_threshold: None,
            memory: Memory::Dedicated,
        }
    }
}

impl ClientPerMessageDeflateFactory {
    /// Checks every value is in range. An invalid factory makes no offer and fails
    /// [`process_response_params`](ClientExtensionFactory::process_response_params).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_window_bits("server_max_window_bits", self.server_max_window_bits)?;
        check_window_bits("client_max_window_bits", self.client_max_window_bits)?;
        check_level(self.level)?;
        check_mem_level(self.mem_level)
    }

    fn offer(&self) -> Params {
        let shared = self.memory == Memory::Shared;
        Params {
            server_no_context_takeover: self.server_no_context_takeover || shared,
            client_no_context_takeover: self.client_no_context_takeover || shared,
            server_max_window_bits: self.server_max_window_bits,
            client_max_window_bits: match (self.client_max_window_bits, self.offer_client_max_window_bits) {
                (Some(bits), _) => WindowParam::Value(bits),
                (None, true) => WindowParam::Bare,
                (None, false) => WindowParam::Absent,
            },
        }
    }
}

impl ClientExtensionFactory for ClientPerMessageDeflateFactory {
    fn name(&self) -> &str {
        NAME
    }

    fn validate(&self) -> Result<(), ConfigError> {
        Self::validate(self)
    }

    fn request_params(&self) -> Vec<Vec<ExtensionParam>> {
        if self.validate().is_err() {
            return Vec::new();
        }
        vec![params::format(&self.offer())]
    }

    fn process_response_params(
        &self,
        params: &[ExtensionParam],
        accepted: &[Box<dyn Extension>],
    ) -> Result<Box<dyn Extension>, NegotiationError> {
        self.validate().map_err(invalid)?;
        check_accepted(accepted)?;
        let response = params::parse(params, Side::Response)?;
        let offer = self.offer();

        // §7.1.1.1: a server that accepts server_no_context_takeover echoes it.
        if offer.server_no_context_takeover && !response.server_no_context_takeover {
            return Err(NegotiationError::new("server_no_context_takeover was not accepted"));
        }
        // §7.1.2.1: the server may choose its window, at most the one we asked for.
        if let Some(limit) = offer.server_max_window_bits {
            match response.server_max_window_bits {
                None => return Err(NegotiationError::new("server_max_window_bits was not accepted")),
                Some(bits) if bits > limit => {
                    return Err(NegotiationError::new(format!(
                        "server_max_window_bits={bits} exceeds the offered {limit}"
                    )));
                }
                Some(_) => {}
            }
        }
        // §7.1.2.2: the server may set our window only if we offered the parameter.
        let local_max_window_bits = match (offer.client_max_window_bits, response.client_max_window_bits) {
            (WindowParam::Absent, WindowParam::Absent) => 15,
            (WindowParam::Absent, _) => {
                return Err(NegotiationError::new("client_max_window_bits was not offered"));
            }
            (WindowParam::Bare, WindowParam::Value(bits)) => bits,
            (WindowParam::Value(limit), WindowParam::Value(bits)) if bits > limit => {
                return Err(NegotiationError::new(format!(
                    "client_max_window_bits={bits} exceeds the offered {limit}"
                )));
            }
            (WindowParam::Value(_), WindowParam::Value(bits)) => bits,
            (WindowParam::Value(limit), _) => limit,
            (WindowParam::Bare, _) => 15,
        };
        build(PerMessageDeflateConfig {
            local_no_context_takeover: response.client_no_context_takeover
                || offer.client_no_context_takeover,
            remote_no_context_takeover: response.server_no_context_takeover,
            local_max_window_bits,
            remote_max_window_bits: response.server_max_window_bits.unwrap_or(15),
            level: self.level,
            mem_level: self.mem_level,
            compression_threshold: self.compression_threshold,
            memory: self.memory,
        })
    }
}

/// The server side of permessage-deflate: accepts an offer, adjusting it to its own limits, or
/// declines it (the next offer is then tried).
///
/// A plain struct: set the fields you need and take the rest from [`Default`], which follows
/// Python `websockets`' `serve()`: answer with `server_max_window_bits=12` and
/// `client_max_window_bits=12` (when the client allows it), memLevel 5, and accept clients that
/// did not offer `client_max_window_bits`.
///
/// ```
/// use ws_deflate::ServerPerMessageDeflateFactory;
/// use ws_extensions::{ExtensionParam, ServerExtensionFactory};
///
/// let factory = ServerPerMessageDeflateFactory::default();
/// let offer = [ExtensionParam::flag("client_max_window_bits")];
/// let (response, extension) = factory.process_request_params(&offer, &[])?;
/// assert_eq!(
///     response,
///     [
///         ExtensionParam::new("server_max_window_bits", "12"),
///         ExtensionParam::new("client_max_window_bits", "12"),
///     ]
/// );
/// assert_eq!(extension.name(), "permessage-deflate");
///
/// // An unknown parameter declines the offer.
/// let offer = [ExtensionParam::flag("x-unknown")];
/// assert!(factory.process_request_params(&offer, &[]).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPerMessageDeflateFactory {
    /// Reset our compressor after each message, even if the client did not ask.
    pub server_no_context_takeover: bool,
    /// Require the client to reset its compressor after each message.
    pub client_no_context_takeover: bool,
    /// Compress with at most this window (8–15), whatever the client offers; `None` accepts the
    /// client's value, or 15.
    pub server_max_window_bits: Option<u8>,
    /// Limit the client's window to this (8–15) when its offer allows it; `None` accepts the
    /// client's value.
    pub client_max_window_bits: Option<u8>,
    /// Decline offers without `client_max_window_bits` (the client's window would be 15).
    /// Needs `client_max_window_bits`.
    pub require_client_max_window_bits: bool,
    /// zlib compression level, 0–9.
    pub level: u8,
    /// zlib memLevel, 1–9: compressor memory, see the crate docs.
    pub mem_level: u8,
    /// Single-frame messages shorter than this are sent uncompressed; `None` decides from
    /// context takeover, see [`PerMessageDeflateConfig::compression_threshold`].
    pub compression_threshold: Option<usize>,
    /// [`Memory::Shared`] borrows the thread's zlib streams one message at a time instead of
    /// keeping two per connection. It answers with `server_no_context_takeover` and
    /// `client_no_context_takeover` whatever the client offered, as RFC 7692 §7.1.1 allows.
    pub memory: Memory,
}

impl Default for ServerPerMessageDeflateFactory {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: Some(12),
            client_max_window_bits: Some(12),
            require_client_max_window_bits: false,
            level: DEFAULT_LEVEL,
            mem_level: DEFAULT_MEM_LEVEL,
            compression_threshold: None,
            memory: Memory::Dedicated,
        }
    }
}

impl ServerPerMessageDeflateFactory {
    /// Checks every value is in range. An invalid factory declines every offer.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_window_bits("server_max_window_bits", self.server_max_window_bits)?;
        check_window_bits("client_max_window_bits", self.client_max_window_bits)?;
        check_level(self.level)?;
        check_mem_level(self.mem_level)?;
        if self.require_client_max_window_bits && self.client_max_window_bits.is_none() {
            return Err(config_error("require_client_max_window_bits needs client_max_window_bits"));
        }
        Ok(())
    }
}

impl ServerExtensionFactory for ServerPerMessageDeflateFactory {
    fn name(&self) -> &str {
        NAME
    }

    fn validate(&self) -> Result<(), ConfigError> {
        Self::validate(self)
    }

    fn process_request_params(
        &self,
        params: &[ExtensionParam],
        accepted: &[Box<dyn Extension>],
    ) -> Result<(Vec<ExtensionParam>, Box<dyn Extension>), NegotiationError> {
        self.validate().map_err(invalid)?;
        check_accepted(accepted)?;
        let offer = params::parse(params, Side::Offer)?;

        // §7.1.2.1: at most what the client asked for, and at most our own limit.
        let server_max_window_bits = match (offer.server_max_window_bits, self.server_max_window_bits) {
            (Some(asked), Some(limit)) => Some(asked.min(limit)),
            (asked, limit) => asked.or(limit),
        };
        // §7.1.2.2: only if offered; a bare offer lets us pick, a value caps our pick.
        let client_max_window_bits = match (offer.client_max_window_bits, self.client_max_window_bits) {
            (WindowParam::Absent, _) if self.require_client_max_window_bits => {
                return Err(NegotiationError::new("client_max_window_bits is required"));
            }
            (WindowParam::Absent, _) | (WindowParam::Bare, None) => WindowParam::Absent,
            (WindowParam::Bare, Some(limit)) => WindowParam::Value(limit),
            (WindowParam::Value(offered), limit) => {
                WindowParam::Value(limit.map_or(offered, |l| l.min(offered)))
            }
        };
        // §7.1.1.1 and §7.1.1.2: the server may add either flag to its response on its own.
        let shared = self.memory == Memory::Shared;
        let response = Params {
            server_no_context_takeover: offer.server_no_context_takeover
                || self.server_no_context_takeover
                || shared,
            client_no_context_takeover: offer.client_no_context_takeover
                || self.client_no_context_takeover
                || shared,
            server_max_window_bits,
            client_max_window_bits,
        };
        let extension = build(PerMessageDeflateConfig {
            local_no_context_takeover: response.server_no_context_takeover,
            remote_no_context_takeover: response.client_no_context_takeover,
            local_max_window_bits: server_max_window_bits.unwrap_or(15),
            remote_max_window_bits: match client_max_window_bits {
                WindowParam::Value(bits) => bits,
                WindowParam::Absent | WindowParam::Bare => 15,
            },
            level: self.level,
            mem_level: self.mem_level,
            compression_threshold: self.compression_threshold,
            memory: self.memory,
        })?;
        Ok((params::format(&response), extension))
    }
}
