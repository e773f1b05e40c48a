//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a proxy sends before the
//! client's bytes, naming the client's address. Parsed with the `ppp` crate; this module reads
//! it off the transport, within bounds.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use ppp::{HeaderResult, v1, v2};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest version 1 header, CRLF included (the specification's bound).
const V1_MAX: usize = 107;
/// A version 2 header: the 16-byte fixed part, then at most `u16::MAX` bytes of addresses and
/// TLVs, as its length field says.
const V2_FIXED: usize = 16;
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The addresses a PROXY header carries: `None` for `LOCAL` (the proxy's own health checks),
/// `UNKNOWN` and non-IP families, where the transport's own addresses stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProxyAddrs {
    pub(crate) source: SocketAddr,
    pub(crate) destination: SocketAddr,
}

/// Why a connection's PROXY header was refused.
#[derive(Debug)]
pub(crate) struct ProxyHeaderError(String);

impl fmt::Display for ProxyHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid PROXY protocol header: {}", self.0)
    }
}

impl std::error::Error for ProxyHeaderError {}

fn invalid(detail: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, ProxyHeaderError(detail.to_string()))
}

/// The most bytes a header can take, from what has arrived of it.
fn bound(buf: &[u8]) -> usize {
    if buf.len() >= V2_FIXED && buf.starts_with(V2_SIGNATURE) {
        V2_FIXED + usize::from(u16::from_be_bytes([buf[14], buf[15]]))
    } else if buf.len() < V2_FIXED && V2_SIGNATURE.starts_with(&buf[..buf.len().min(12)]) {
        V2_FIXED
    } else {
        V1_MAX
    }
}

/// The shortest version 1 header, `PROXY UNKNOWN\r\n`.
const V1_MIN: usize = 15;
const V1_PREFIX: &[u8] = b"PROXY ";

/// Reads a PROXY header (either version) from `stream`, and not a byte more: what follows it
/// (a TLS handshake, or the HTTP request) stays in the transport for whoever reads next. A
/// version 2 header takes two reads; a version 1 line, read a byte at a time past its shortest
/// form, a few dozen (once per connection). Fails with `InvalidData` on anything but a valid
/// header.
pub(crate) async fn read_proxy_header<S>(stream: &mut S) -> io::Result<Option<ProxyAddrs>>
where
    S: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(V1_MAX);
    loop {
        let bound = bound(&buf);
        if bound == V1_MAX && !buf.is_empty() {
            let start = &buf[..buf.len().min(V1_PREFIX.len())];
            if !V1_PREFIX.starts_with(start) {
                return Err(invalid("neither version 1 nor version 2"));
            }
        }
        // Only a whole candidate is parsed (a version 1 line through its LF, a version 2
        // header to its length): `ppp` takes some prefixes of a valid line for invalid ones.
        let whole = match bound {
            V1_MAX => buf.ends_with(b"\n"),
            bound => buf.len() == bound && buf.len() >= V2_FIXED,
        };
        if whole {
            return match HeaderResult::parse(&buf) {
                HeaderResult::V1(Ok(header)) if header.header.len() == buf.len() => {
                    Ok(v1_addrs(&header.addresses))
                }
                HeaderResult::V2(Ok(header)) if header.len() == buf.len() => Ok(v2_addrs(&header)),
                HeaderResult::V1(Err(e)) => Err(invalid(e)),
                HeaderResult::V2(Err(e)) => Err(invalid(e)),
                _ => Err(invalid("malformed")),
            };
        }
        if buf.len() >= bound {
            return Err(invalid("too long"));
        }
        // As much as the header surely still has, no more.
        let need = match bound {
            _ if buf.is_empty() => 1,
            V1_MAX if buf.len() < V1_MIN => V1_MIN - buf.len(),
            V1_MAX => 1,
            bound => bound - buf.len(),
        };
        buf.reserve(need);
        if (&mut *stream).take(need as u64).read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

fn v1_addrs(addresses: &v1::Addresses) -> Option<ProxyAddrs> {
    match addresses {
        v1::Addresses::Tcp4(a) => Some(ProxyAddrs {
            source: (a.source_address, a.source_port).into(),
            destination: (a.destination_address, a.destination_port).into(),
        }),
        v1::Addresses::Tcp6(a) => Some(ProxyAddrs {
            source: (a.source_address, a.source_port).into(),
            destination: (a.destination_address, a.destination_port).into(),
        }),
        v1::Addresses::Unknown => None,
    }
}

fn v2_addrs(header: &v2::Header<'_>) -> Option<ProxyAddrs> {
    if header.command == v2::Command::Local {
        return None;
    }
    match &header.addresses {
        v2::Addresses::IPv4(a) => Some(ProxyAddrs {
            source: (a.source_address, a.source_port).into(),
            destination: (a.destination_address, a.destination_port).into(),
        }),
        v2::Addresses::IPv6(a) => Some(ProxyAddrs {
            source: (a.source_address, a.source_port).into(),
            destination: (a.destination_address, a.destination_port).into(),
        }),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The header read from `input`, and what is left of the input (never read).
    async fn read(input: &[u8]) -> (io::Result<Option<ProxyAddrs>>, BytesMut) {
        let mut stream = input;
        let result = read_proxy_header(&mut stream).await;
        (result, BytesMut::from(stream))
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.extend([command, family]);
        out.extend((body.len() as u16).to_be_bytes());
        out.extend(body);
        out
    }

    #[tokio::test]
    async fn v1_with_leftover() {
        let (r, rest) = read(b"PROXY TCP4 192.0.2.1 198.51.100.2 5678 443\r\nGET / HTTP/1.1\r\n").await;
        let addrs = r.unwrap().unwrap();
        assert_eq!(addrs.source, "192.0.2.1:5678".parse().unwrap());
        assert_eq!(addrs.destination, "198.51.100.2:443".parse().unwrap());
        assert_eq!(&rest[..], b"GET / HTTP/1.1\r\n");
        let (r, _) = read(b"PROXY TCP6 2001:db8::1 ::1 5678 443\r\n").await;
        assert_eq!(r.unwrap().unwrap().source, "[2001:db8::1]:5678".parse().unwrap());
        let (r, rest) = read(b"PROXY UNKNOWN\r\nx").await;
        assert_eq!(r.unwrap(), None);
        assert_eq!(&rest[..], b"x");
    }

    #[tokio::test]
    async fn v2_forms() {
        let body = [192, 0, 2, 1, 198, 51, 100, 2, 0x16, 0x2e, 0x01, 0xbb];
        let mut input = v2(0x21, 0x11, &body);
        input.extend(b"GET");
        let (r, rest) = read(&input).await;
        assert_eq!(r.unwrap().unwrap().source, "192.0.2.1:5678".parse().unwrap());
        assert_eq!(&rest[..], b"GET");
        // TLVs after the addresses are skipped with the header.
        let mut body_tlv = body.to_vec();
        body_tlv.extend([0x05, 0x00, 0x02, 0xaa, 0xbb]);
        let (r, rest) = read(&v2(0x21, 0x11, &body_tlv)).await;
        assert!(r.unwrap().is_some());
        assert!(rest.is_empty());
        // LOCAL: the proxy's own connection, no client address.
        let (r, _) = read(&v2(0x20, 0x00, &[])).await;
        assert_eq!(r.unwrap(), None);
    }

    #[tokio::test]
    async fn bad_headers_are_refused() {
        for input in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 999.2.3.4 5.6.7.8 1 2\r\n",
            &[b'P'; 300][..],
            b"PROXY TCP4\r\nGET / HTTP/1.1\r\n",
            b"PROXY\r\n",
        ] {
            let err = read(input).await.0.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{input:?}");
        }
        // A v1 header without its CRLF: refused at 107 bytes, not read on.
        let mut long = b"PROXY TCP4 ".to_vec();
        long.resize(4096, b'1');
        assert_eq!(read(&long).await.0.unwrap_err().kind(), io::ErrorKind::InvalidData);
        // Version 2 with a bad version nibble or family.
        assert!(read(&v2(0x31, 0x11, &[0; 12])).await.0.is_err());
        assert!(read(&v2(0x21, 0x41, &[0; 12])).await.0.is_err());
        // Addresses shorter than the family needs.
        assert!(read(&v2(0x21, 0x11, &[0; 4])).await.0.is_err());
        // Cut short: end of file, not a hang.
        let cut = &v2(0x21, 0x11, &[0; 12])[..20];
        assert_eq!(read(cut).await.0.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn bounds() {
        assert_eq!(bound(b""), V2_FIXED);
        assert_eq!(bound(b"\r\n\r\n"), V2_FIXED);
        assert_eq!(bound(b"PROXY"), V1_MAX);
        assert_eq!(bound(&v2(0x21, 0x11, &[0; 12])), V2_FIXED + 12);
    }

    #[tokio::test]
    async fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep: every prefix of valid headers with one byte flipped.
        let mut valid = vec![b"PROXY TCP4 192.0.2.1 198.51.100.2 5678 443\r\n".to_vec()];
        valid.push(v2(0x21, 0x11, &[192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 2, 1, 0, 1, 9]));
        valid.push(v2(0x21, 0x21, &[1; 36]));
        for header in valid {
            for at in 0..header.len() {
                for flip in [0x01, 0x10, 0x80, 0xff] {
                    let mut input = header.clone();
                    input[at] ^= flip;
                    let _ = read(&input).await;
                    let _ = read(&input[..at]).await;
                }
            }
        }
    }
}
