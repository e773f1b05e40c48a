//! `x-checksum`: a toy WebSocket extension written against `ws-extensions` alone, as a third
//! party would write one.
//!
//! Every data frame carries a 4-byte checksum of its payload, appended by the sender and checked
//! and removed by the receiver; the frame sets RSV2 to say so. Control frames are left alone.
//! The checksum algorithm is negotiated with one parameter, `algorithm=adler32|fnv1a`:
//!
//! ```text
//! client: Sec-WebSocket-Extensions: x-checksum; algorithm=fnv1a
//! server: Sec-WebSocket-Extensions: x-checksum; algorithm=fnv1a
//! ```
//!
//! The client offers its preferred algorithm (or none, leaving the choice to the server); the
//! server accepts it if it supports it, declines the offer otherwise, and names the algorithm in
//! its response; the client fails the handshake if the response names another algorithm.
//!
//! ```
//! use ws_ext_example::{Algorithm, ChecksumClientFactory, ChecksumServerFactory};
//! use ws_extensions::{ClientExtensionFactory, Extension, Frame, OpCode, Rsv, ServerExtensionFactory};
//!
//! let client = ChecksumClientFactory { algorithm: Some(Algorithm::Fnv1a) };
//! let server = ChecksumServerFactory::default();
//!
//! let offer = &client.request_params()[0];
//! let (response, mut server_ext) = server.process_request_params(offer, &[])?;
//! let mut client_ext = client.process_response_params(&response, &[])?;
//!
//! let mut frame = Frame::new(OpCode::Text, "hi", true);
//! client_ext.encode(&mut frame)?;
//! assert_eq!((frame.rsv, frame.payload.len()), (Rsv::RSV2, 6));
//! server_ext.decode(&mut frame, None)?;
//! assert_eq!((frame.rsv, &frame.payload[..]), (Rsv::NONE, &b"hi"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

use ws_extensions::{
    Bytes, ClientExtensionFactory, Extension, ExtensionError, ExtensionParam, Frame, NegotiationError, Rsv,
    ServerExtensionFactory,
};

/// The registered token (the `x-` prefix marks it as private use).
pub const NAME: &str = "x-checksum";
const ALGORITHM: &str = "algorithm";

/// A 32-bit checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Adler-32 (RFC 1950).
    Adler32,
    /// 32-bit FNV-1a.
    Fnv1a,
}

impl Algorithm {
    /// The parameter value naming this algorithm.
    pub fn token(self) -> &'static str {
        match self {
            Self::Adler32 => "adler32",
            Self::Fnv1a => "fnv1a",
        }
    }

    fn from_token(token: &str) -> Option<Self> {
        [Self::Adler32, Self::Fnv1a].into_iter().find(|a| a.token() == token)
    }

    /// The checksum of `data`.
    pub fn checksum(self, data: &[u8]) -> u32 {
        match self {
            Self::Adler32 => {
                let (mut a, mut b) = (1u32, 0u32);
                for chunk in data.chunks(5552) {
                    for &byte in chunk {
                        a += u32::from(byte);
                        b += a;
                    }
                    a %= 65521;
                    b %= 65521;
                }
                (b << 16) | a
            }
            Self::Fnv1a => {
                data.iter().fold(0x811c_9dc5u32, |h, &byte| (h ^ u32::from(byte)).wrapping_mul(0x0100_0193))
            }
        }
    }
}

/// Reads the parameters of an offer or a response: at most one `algorithm`, nothing else.
fn parse(params: &[ExtensionParam]) -> Result<Option<Algorithm>, NegotiationError> {
    let mut algorithm = None;
    for param in params {
        if param.name != ALGORITHM {
            return Err(NegotiationError::new(format!("unknown parameter {}", param.name)));
        }
        if algorithm.is_some() {
            return Err(NegotiationError::new("duplicate parameter algorithm"));
        }
        let value = param.value.as_deref().unwrap_or_default();
        let parsed = Algorithm::from_token(value)
            .ok_or_else(|| NegotiationError::new(format!("unsupported algorithm {value:?}")))?;
        algorithm = Some(parsed);
    }
    Ok(algorithm)
}

/// Refuses to stack twice, or to share RSV2 with an extension negotiated before this one.
fn check_accepted(accepted: &[Box<dyn Extension>]) -> Result<(), NegotiationError> {
    match accepted.iter().find(|ext| ext.name() == NAME || ext.rsv().intersects(Rsv::RSV2)) {
        Some(ext) => Err(NegotiationError::new(format!("RSV2 is already used by {}", ext.name()))),
        None => Ok(()),
    }
}

/// The negotiated extension for one connection.
#[derive(Debug, Clone)]
pub struct Checksum {
    algorithm: Algorithm,
}

impl Checksum {
    /// The extension, with the negotiated algorithm.
    pub fn new(algorithm: Algorithm) -> Self {
        Self { algorithm }
    }
}

impl Extension for Checksum {
    fn name(&self) -> &str {
        NAME
    }

    fn rsv(&self) -> Rsv {
        Rsv::RSV2
    }

    fn encode(&mut self, frame: &mut Frame) -> Result<(), ExtensionError> {
        if frame.opcode.is_control() {
            return Ok(());
        }
        let sum = self.algorithm.checksum(&frame.payload);
        let mut payload = Vec::with_capacity(frame.payload.len() + 4);
        payload.extend_from_slice(&frame.payload);
        payload.extend_from_slice(&sum.to_be_bytes());
        frame.payload = Bytes::from(payload);
        frame.rsv.set(Rsv::RSV2, true);
        Ok(())
    }

    fn decode(&mut self, frame: &mut Frame, max_size: Option<usize>) -> Result<(), ExtensionError> {
        if frame.opcode.is_control() {
            return Ok(());
        }
        if !frame.rsv.contains(Rsv::RSV2) {
            return Err(ExtensionError::Protocol("data frame without RSV2".into()));
        }
        let Some(split) = frame.payload.len().checked_sub(4) else {
            return Err(ExtensionError::InvalidData("frame shorter than its checksum".into()));
        };
        // Decoding only shrinks the payload, so the size limit is the connection's to enforce;
        // an extension that expands data must honour `max_size` itself.
        let _ = max_size;
        let (data, trailer) = frame.payload.split_at(split);
        let expected = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        if self.algorithm.checksum(data) != expected {
            return Err(ExtensionError::InvalidData("checksum mismatch".into()));
        }
        frame.payload.truncate(split);
        frame.rsv.set(Rsv::RSV2, false);
        Ok(())
    }
}

/// Client side: offers an algorithm (or lets the server choose) and checks the answer.
#[derive(Debug, Clone, Default)]
pub struct ChecksumClientFactory {
    /// The algorithm to offer; `None` lets the server choose.
    pub algorithm: Option<Algorithm>,
}

impl ClientExtensionFactory for ChecksumClientFactory {
    fn name(&self) -> &str {
        NAME
    }

    fn request_params(&self) -> Vec<Vec<ExtensionParam>> {
        let params = self.algorithm.map(|a| ExtensionParam::new(ALGORITHM, a.token())).into_iter().collect();
        vec![params]
    }

    fn process_response_params(
        &self,
        params: &[ExtensionParam],
        accepted: &[Box<dyn Extension>],
    ) -> Result<Box<dyn Extension>, NegotiationError> {
        check_accepted(accepted)?;
        let Some(chosen) = parse(params)? else {
            return Err(NegotiationError::new("the response must name an algorithm"));
        };
        if self.algorithm.is_some_and(|offered| offered != chosen) {
            return Err(NegotiationError::new(format!("the server chose {}, not offered", chosen.token())));
        }
        Ok(Box::new(Checksum::new(chosen)))
    }
}

/// Server side: accepts offers naming a supported algorithm, or none (then picks its first).
#[derive(Debug, Clone)]
pub struct ChecksumServerFactory {
    /// Supported algorithms, preferred first. Empty declines every offer.
    pub algorithms: Vec<Algorithm>,
}

impl Default for ChecksumServerFactory {
    fn default() -> Self {
        Self { algorithms: vec![Algorithm::Adler32, Algorithm::Fnv1a] }
    }
}

impl ServerExtensionFactory for ChecksumServerFactory {
    fn name(&self) -> &str {
        NAME
    }

    fn process_request_params(
        &self,
        params: &[ExtensionParam],
        accepted: &[Box<dyn Extension>],
    ) -> Result<(Vec<ExtensionParam>, Box<dyn Extension>), NegotiationError> {
        check_accepted(accepted)?;
        let chosen = match parse(params)? {
            Some(offered) if self.algorithms.contains(&offered) => offered,
            Some(offered) => {
                return Err(NegotiationError::new(format!("{} is not supported", offered.token())));
            }
            None => *self.algorithms.first().ok_or_else(|| NegotiationError::new("no algorithm enabled"))?,
        };
        let response = vec![ExtensionParam::new(ALGORITHM, chosen.token())];
        Ok((response, Box::new(Checksum::new(chosen))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ws_extensions::OpCode;

    fn negotiate(
        client: &ChecksumClientFactory,
        server: &ChecksumServerFactory,
    ) -> (Box<dyn Extension>, Box<dyn Extension>) {
        let (response, server_ext) =
            server.process_request_params(&client.request_params()[0], &[]).expect("server");
        let client_ext = client.process_response_params(&response, &[]).expect("client");
        (client_ext, server_ext)
    }

    #[test]
    fn known_checksums() {
        assert_eq!(Algorithm::Adler32.checksum(b"Wikipedia"), 0x11e6_0398);
        assert_eq!(Algorithm::Fnv1a.checksum(b""), 0x811c_9dc5);
        assert_eq!(Algorithm::Fnv1a.checksum(b"a"), 0xe40c_292c);
    }

    #[test]
    fn round_trip_and_control_frames() {
        let (mut client, mut server) =
            negotiate(&ChecksumClientFactory::default(), &ChecksumServerFactory::default());
        for payload in ["", "hello", "a longer message, fragmented or not"] {
            let mut frame = Frame::new(OpCode::Binary, payload, true);
            client.encode(&mut frame).expect("encode");
            assert_eq!(frame.rsv, Rsv::RSV2);
            server.decode(&mut frame, None).expect("decode");
            assert_eq!(&frame.payload[..], payload.as_bytes());
        }
        let ping = Frame::new(OpCode::Ping, "p", true);
        let mut frame = ping.clone();
        client.encode(&mut frame).expect("ping");
        assert_eq!(frame, ping);
    }

    #[test]
    fn corruption_and_missing_rsv2_are_errors() {
        let (mut client, mut server) =
            negotiate(&ChecksumClientFactory::default(), &ChecksumServerFactory::default());
        let mut frame = Frame::new(OpCode::Text, "hello", true);
        client.encode(&mut frame).expect("encode");
        let mut corrupt = frame.payload.to_vec();
        corrupt[0] ^= 1;
        frame.payload = Bytes::from(corrupt);
        assert!(matches!(server.decode(&mut frame, None), Err(ExtensionError::InvalidData(_))));
        let mut plain = Frame::new(OpCode::Text, "hello", true);
        assert!(matches!(server.decode(&mut plain, None), Err(ExtensionError::Protocol(_))));
    }

    #[test]
    fn negotiation() {
        let fnv_only = ChecksumServerFactory { algorithms: vec![Algorithm::Fnv1a] };
        let adler = ChecksumClientFactory { algorithm: Some(Algorithm::Adler32) };
        // The server declines an algorithm it does not support...
        assert!(fnv_only.process_request_params(&adler.request_params()[0], &[]).is_err());
        // ...and picks its own when the client leaves the choice open.
        let (response, _) = fnv_only.process_request_params(&[], &[]).expect("open offer");
        assert_eq!(response, [ExtensionParam::new("algorithm", "fnv1a")]);
        // The client refuses an algorithm it did not offer, or unknown parameters.
        assert!(adler.process_response_params(&response, &[]).is_err());
        assert!(adler.process_response_params(&[ExtensionParam::flag("x")], &[]).is_err());
        // Nobody stacks it twice.
        let (_, first) = fnv_only.process_request_params(&[], &[]).expect("first");
        assert!(fnv_only.process_request_params(&[], &[first]).is_err());
    }
}
