//! Range checks shared by the factories and the extension.

use std::fmt;

/// A configuration value is out of range: window bits outside 8–15, memLevel outside 1–9, level
/// outside 0–9, or `require_client_max_window_bits` without `client_max_window_bits`.
///
/// ```
/// use ws_deflate::ServerPerMessageDeflateFactory;
///
/// let factory = ServerPerMessageDeflateFactory { mem_level: 10, ..Default::default() };
/// assert!(factory.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    pub(crate) fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid permessage-deflate configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn check_window_bits(name: &str, bits: Option<u8>) -> Result<(), ConfigError> {
    match bits {
        Some(bits) if !(8..=15).contains(&bits) => {
            Err(ConfigError::new(format!("{name} must be between 8 and 15, got {bits}")))
        }
        _ => Ok(()),
    }
}

pub(crate) fn check_level(level: u8) -> Result<(), ConfigError> {
    if level > 9 {
        return Err(ConfigError::new(format!("level must be between 0 and 9, got {level}")));
    }
    Ok(())
}

pub(crate) fn check_mem_level(mem_level: u8) -> Result<(), ConfigError> {
    if !(1..=9).contains(&mem_level) {
        return Err(ConfigError::new(format!("mem_level must be between 1 and 9, got {mem_level}")));
    }
    Ok(())
}
