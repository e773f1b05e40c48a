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
