//! Range checks shared by the factories and the extension.

/// A configuration value is out of range: window bits outside 8–15, memLevel outside 1–9, level
/// outside 0–9, or `require_client_max_window_bits` without `client_max_window_bits`.
///
/// ```
/// use ws_deflate::ServerPerMessageDeflateFactory;
///
/// let factory = ServerPerMessageDeflateFactory { mem_level: 10, ..Default::default() };
/// assert!(factory.validate().is_err());
/// ```
pub use ws_extensions::ConfigError;

/// A permessage-deflate setting out of range.
pub(crate) fn config_error(why: impl Into<String>) -> ConfigError {
    ConfigError::new("permessage-deflate", why)
}

pub(crate) fn check_window_bits(name: &str, bits: Option<u8>) -> Result<(), ConfigError> {
    match bits {
        Some(bits) if !(8..=15).contains(&bits) => {
            Err(config_error(format!("{name} must be between 8 and 15, got {bits}")))
        }
        _ => Ok(()),
    }
}

pub(crate) fn check_level(level: u8) -> Result<(), ConfigError> {
    if level > 9 {
        return Err(config_error(format!("level must be between 0 and 9, got {level}")));
    }
    Ok(())
}

pub(crate) fn check_mem_level(mem_level: u8) -> Result<(), ConfigError> {
    if !(1..=9).contains(&mem_level) {
        return Err(config_error(format!("mem_level must be between 1 and 9, got {mem_level}")));
    }
    Ok(())
}
