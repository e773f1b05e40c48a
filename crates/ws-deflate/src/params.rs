//! The four RFC 7692 §7.1 parameters: parsing (strict) and formatting.

use ws_extensions::{ExtensionParam, NegotiationError};

pub(crate) const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
pub(crate) const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
pub(crate) const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
pub(crate) const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// How `client_max_window_bits` appeared in a parameter list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowParam {
    /// Not present.
    Absent,
    /// Present without a value (only valid in an offer).
    Bare,
    /// Present with a valid value, 8–15.
    Value(u8),
}

/// The parameters of one offer or response, after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_no_context_takeover: bool,
    pub(crate) server_max_window_bits: Option<u8>,
    pub(crate) client_max_window_bits: WindowParam,
}

/// Whether the parameters come from an offer (client to server) or a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Offer,
    Response,
}

/// Parses a window-bits value: `8` to `15`, decimal, no sign, no leading zero (RFC 7692 §7.1.2).
fn window_bits(name: &str, value: &str) -> Result<u8, NegotiationError> {
    let valid = matches!(value.as_bytes(), [b'8' | b'9'] | [b'1', b'0'..=b'5']);
    match value.parse::<u8>() {
        Ok(bits) if valid => Ok(bits),
        _ => Err(NegotiationError::new(format!("invalid value for {name}: {value:?}"))),
    }
}

fn flag(param: &ExtensionParam, seen: &mut bool) -> Result<(), NegotiationError> {
    if *seen {
        return Err(NegotiationError::new(format!("duplicate parameter {}", param.name)));
    }
    if let Some(value) = &param.value {
        return Err(NegotiationError::new(format!("{} takes no value, got {value:?}", param.name)));
    }
    *seen = true;
    Ok(())
}

/// Parses and validates a permessage-deflate parameter list. Unknown, duplicate and invalid
/// parameters are errors; a bare `client_max_window_bits` is accepted only in an offer.
pub(crate) fn parse(params: &[ExtensionParam], side: Side) -> Result<Params, NegotiationError> {
    let mut out = Params {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: None,
        client_max_window_bits: WindowParam::Absent,
    };
    for param in params {
        match param.name.as_str() {
            SERVER_NO_CONTEXT_TAKEOVER => flag(param, &mut out.server_no_context_takeover)?,
            CLIENT_NO_CONTEXT_TAKEOVER => flag(param, &mut out.client_no_context_takeover)?,
            SERVER_MAX_WINDOW_BITS => {
                if out.server_max_window_bits.is_some() {
                    return Err(NegotiationError::new("duplicate parameter server_max_window_bits"));
                }
                let Some(value) = &param.value else {
                    return Err(NegotiationError::new("server_max_window_bits requires a value"));
                };
                out.server_max_window_bits = Some(window_bits(SERVER_MAX_WINDOW_BITS, value)?);
            }
            CLIENT_MAX_WINDOW_BITS => {
                if out.client_max_window_bits != WindowParam::Absent {
                    return Err(NegotiationError::new("duplicate parameter client_max_window_bits"));
                }
                out.client_max_window_bits = match (&param.value, side) {
                    (Some(value), _) => WindowParam::Value(window_bits(CLIENT_MAX_WINDOW_BITS, value)?),
                    (None, Side::Offer) => WindowParam::Bare,
                    (None, Side::Response) => {
                        return Err(NegotiationError::new(
                            "client_max_window_bits requires a value in a response",
                        ));
                    }
                };
            }
            other => return Err(NegotiationError::new(format!("unknown parameter {other}"))),
        }
    }
    Ok(out)
}

/// Formats parameters in the canonical order used by offers and responses.
pub(crate) fn format(params: &Params) -> Vec<ExtensionParam> {
    let mut out = Vec::with_capacity(4);
    if params.server_no_context_takeover {
        out.push(ExtensionParam::flag(SERVER_NO_CONTEXT_TAKEOVER));
    }
    if params.client_no_context_takeover {
        out.push(ExtensionParam::flag(CLIENT_NO_CONTEXT_TAKEOVER));
    }
    if let Some(bits) = params.server_max_window_bits {
        out.push(ExtensionParam::new(SERVER_MAX_WINDOW_BITS, bits.to_string()));
    }
    match params.client_max_window_bits {
        WindowParam::Absent => {}
        WindowParam::Bare => out.push(ExtensionParam::flag(CLIENT_MAX_WINDOW_BITS)),
        WindowParam::Value(bits) => out.push(ExtensionParam::new(CLIENT_MAX_WINDOW_BITS, bits.to_string())),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_values() {
        for ok in 8..=15u8 {
            assert_eq!(window_bits("x", &ok.to_string()), Ok(ok));
        }
        for bad in ["7", "16", "0", "08", "015", "+9", "-9", "", " 9", "9 ", "1O", "99999999999"] {
            assert!(window_bits("x", bad).is_err(), "{bad:?} accepted");
        }
    }
}
