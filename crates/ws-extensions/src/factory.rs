//! The negotiation factories, modelled on Python `websockets`' extension factories.

use std::fmt;

use crate::{Extension, ExtensionParam};

/// Client side of an extension's negotiation. Shared by every connection of a client, hence
/// `&self` and `Send + Sync`.
pub trait ClientExtensionFactory: Send + Sync + 'static {
    /// The extension token this factory offers.
    fn name(&self) -> &str;

    /// The offers, in preference order: each inner list is one offer's parameters. Most
    /// factories return exactly one offer; several offers of one extension let the server pick.
    fn request_params(&self) -> Vec<Vec<ExtensionParam>>;

    /// Checks the parameters the server accepted and builds the extension. `accepted` holds the
    /// extensions already negotiated on this connection, in order, so a factory can refuse to
    /// be combined with another. An error fails the handshake.
    fn process_response_params(
        &self,
        params: &[ExtensionParam],
        accepted: &[Box<dyn Extension>],
    ) -> Result<Box<dyn Extension>, NegotiationError>;

    /// Checks the factory's own settings (window sizes, levels...) before any handshake, so that
    /// a misconfiguration is an error the user sees, not an extension silently left out: the
    /// client refuses to connect, the server to start. The default accepts.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Server side of an extension's negotiation.
pub trait ServerExtensionFactory: Send + Sync + 'static {
    /// The extension token this factory accepts.
    fn name(&self) -> &str;

    /// Accepts one offer: returns the response parameters and the extension. An error declines
    /// this offer (the server then tries the next one); it never fails the handshake.
    fn process_request_params(
        &self,
        params: &[ExtensionParam],
        accepted: &[Box<dyn Extension>],
    ) -> Result<(Vec<ExtensionParam>, Box<dyn Extension>), NegotiationError>;

    /// Checks the factory's own settings (window sizes, levels...) before any handshake, so that
    /// a misconfiguration is an error the user sees, not an extension silently left out: the
    /// client refuses to connect, the server to start. The default accepts.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Why a negotiation step failed: on the server, the offer is declined; on the client, the
/// handshake fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiationError(String);

impl NegotiationError {
    /// An error with this explanation.
    pub fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "extension negotiation failed: {}", self.0)
    }
}

impl std::error::Error for NegotiationError {}

/// An extension factory's settings are invalid (from [`ClientExtensionFactory::validate`] or
/// [`ServerExtensionFactory::validate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    extension: String,
    why: String,
}

impl ConfigError {
    /// `extension`'s settings are invalid: `why`.
    pub fn new(extension: impl Into<String>, why: impl Into<String>) -> Self {
        Self { extension: extension.into(), why: why.into() }
    }

    /// The extension whose settings are invalid.
    pub fn extension(&self) -> &str {
        &self.extension
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} configuration: {}", self.extension, self.why)
    }
}

impl std::error::Error for ConfigError {}
