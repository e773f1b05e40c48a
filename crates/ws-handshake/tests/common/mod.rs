//! Shared test helpers: a typical browser request and tiny extension factories.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use ws_extensions::{
    ClientExtensionFactory, Extension, ExtensionError, ExtensionParam, Frame, NegotiationError, Rsv,
    ServerExtensionFactory,
};

/// What Chrome sends (headers as captured, key from RFC 6455 §1.3).
pub const CHROME_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: example.com:8000\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/139.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://example.com:8000\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

/// A do-nothing extension.
pub struct Ext {
    pub name: String,
    pub rsv: Rsv,
}

impl Extension for Ext {
    fn name(&self) -> &str {
        &self.name
    }
    fn rsv(&self) -> Rsv {
        self.rsv
    }
    fn encode(&mut self, _: &mut Frame) -> Result<(), ExtensionError> {
        Ok(())
    }
    fn decode(&mut self, _: &mut Frame, _: Option<usize>) -> Result<(), ExtensionError> {
        Ok(())
    }
}

/// Offers `x=1`; accepts any params except `bad`; the server echoes params.
pub struct Factory(pub &'static str, pub Rsv);

impl ClientExtensionFactory for Factory {
    fn name(&self) -> &str {
        self.0
    }
    fn request_params(&self) -> Vec<Vec<ExtensionParam>> {
        vec![vec![ExtensionParam::new("x", "1")], vec![]]
    }
    fn process_response_params(
        &self,
        params: &[ExtensionParam],
        _: &[Box<dyn Extension>],
    ) -> Result<Box<dyn Extension>, NegotiationError> {
        if params.iter().any(|p| p.name == "bad") {
            return Err(NegotiationError::new("bad param"));
        }
        Ok(Box::new(Ext { name: self.0.into(), rsv: self.1 }))
    }
}

impl ServerExtensionFactory for Factory {
    fn name(&self) -> &str {
        self.0
    }
    fn process_request_params(
        &self,
        params: &[ExtensionParam],
        _: &[Box<dyn Extension>],
    ) -> Result<(Vec<ExtensionParam>, Box<dyn Extension>), NegotiationError> {
        if params.iter().any(|p| p.name == "bad") {
            return Err(NegotiationError::new("bad param"));
        }
        Ok((params.to_vec(), Box::new(Ext { name: self.0.into(), rsv: self.1 })))
    }
}

pub fn server_factory(name: &'static str, rsv: Rsv) -> Arc<dyn ServerExtensionFactory> {
    Arc::new(Factory(name, rsv))
}

pub fn client_factory(name: &'static str, rsv: Rsv) -> Arc<dyn ClientExtensionFactory> {
    Arc::new(Factory(name, rsv))
}

/// Replaces (or removes, with `None`) a header line of a request.
pub fn with_header(request: &[u8], name: &str, value: Option<&str>) -> Vec<u8> {
    let text = std::str::from_utf8(request).unwrap();
    let mut out = String::new();
    let mut replaced = false;
    for line in text.split_inclusive("\r\n") {
        if line.to_ascii_lowercase().starts_with(&format!("{}:", name.to_ascii_lowercase())) {
            if let (Some(v), false) = (value, replaced) {
                out.push_str(&format!("{name}: {v}\r\n"));
            }
            replaced = true;
        } else if line == "\r\n" && !replaced {
            if let Some(v) = value {
                out.push_str(&format!("{name}: {v}\r\n"));
            }
            out.push_str(line);
        } else {
            out.push_str(line);
        }
    }
    out.into_bytes()
}
