//! The client's address behind reverse proxies: the `X-Forwarded-For` or `Forwarded`
//! (RFC 7239) header, believed only when the connection comes from a trusted proxy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::HeaderMap;
use ipnet::IpNet;

/// Which header a server reads the client's address from, behind trusted proxies (see
/// [`ServerBuilder::trusted_proxies`](crate::ServerBuilder::trusted_proxies)).
///
/// One header only, the one your proxy sets: a client can send the other one itself, and a
/// proxy that does not know it passes it through unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for="[2001:db8::1]:4711"` (RFC 7239): the `for` parameters.
    Forwarded,
}

/// What a server knows of the proxies in front of it: whether connections start with a PROXY
/// protocol header, and which peers may tell the client's address in a header.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProxySettings {
    pub(crate) proxy_protocol: bool,
    pub(crate) trusted: Arc<[IpNet]>,
    pub(crate) header: ForwardedHeader,
}

impl ProxySettings {
    pub(crate) fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: `peer` (the PROXY header's source, or the TCP peer) unless it is
    /// a trusted proxy, then the header's hops from the right, past the trusted ones. `None`
    /// when nothing applies (no trusted proxies, or no IP peer): the TCP peer then stands.
    pub(crate) fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        let peer = peer?;
        if self.trusted.is_empty() || !self.is_trusted(peer) {
            return None;
        }
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        // Hops from the right (the nearest proxy's report first), across repeated headers.
        let hops = headers.get_all(name).iter().rev().flat_map(|value| {
            // A header that is not text yields one hop that parses as no address.
            value.to_str().unwrap_or("?").rsplit(',')
        });
        let mut client = peer;
        for hop in hops {
            let address = match self.header {
                ForwardedHeader::XForwardedFor => parse_node(hop),
                ForwardedHeader::Forwarded => forwarded_for(hop).and_then(parse_node),
            };
            // An unknown or obfuscated hop ends the walk: the last proxy that named it is
            // the nearest known address.
            let Some(address) = address else { break };
            client = address;
            if !self.is_trusted(address) {
                break;
            }
        }
        Some(client)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, from dual-stack sockets) as IPv4, so that
/// IPv4 networks match them.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The `for` parameter of one `Forwarded` element (`for=192.0.2.60;proto=http;by=203.0.113.43`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then(|| value.trim())
    })
}

/// A node as proxies write it: `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::17]:4711`,
/// `2001:db8::17`, quoted or not. `unknown` and obfuscated names (`_hidden`) are no address.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    let node = node.strip_prefix('"').and_then(|n| n.strip_suffix('"')).unwrap_or(node);
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, _port) = rest.split_once(']')?;
        return ip.parse().ok().map(canonical);
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    node.parse::<SocketAddr>().ok().map(|a| canonical(a.ip()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings(trusted: &[&str], header: ForwardedHeader) -> ProxySettings {
        let trusted = trusted.iter().map(|t| t.parse().unwrap()).collect();
        ProxySettings { proxy_protocol: false, trusted, header }
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn x_forwarded_for_walks_past_trusted_hops() {
        let s = settings(&["127.0.0.1/32", "10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["1.1.1.1, 2.2.2.2, 10.1.2.3"]);
        // 10.1.2.3 is a trusted hop; 2.2.2.2 is the rightmost untrusted: the client.
        assert_eq!(s.client_ip(&h, ip("127.0.0.1")), ip("2.2.2.2"));
        // Repeated headers read as one list, in order.
        let h = headers("x-forwarded-for", &["1.1.1.1", "2.2.2.2, 10.0.0.9"]);
        assert_eq!(s.client_ip(&h, ip("10.0.0.1")), ip("2.2.2.2"));
        // Every hop trusted: the leftmost.
        let h = headers("x-forwarded-for", &["10.0.0.5, 10.0.0.6"]);
        assert_eq!(s.client_ip(&h, ip("127.0.0.1")), ip("10.0.0.5"));
        // No header: the trusted peer itself.
        assert_eq!(s.client_ip(&HeaderMap::new(), ip("127.0.0.1")), ip("127.0.0.1"));
    }

    #[test]
    fn untrusted_peer_is_not_believed() {
        let s = settings(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["1.1.1.1"]);
        assert_eq!(s.client_ip(&h, ip("127.0.0.1")), None);
        assert_eq!(settings(&[], ForwardedHeader::XForwardedFor).client_ip(&h, ip("10.0.0.1")), None);
        assert_eq!(s.client_ip(&h, None), None);
    }

    #[test]
    fn unknown_hop_stops_at_the_proxy_that_named_it() {
        let s = settings(&["127.0.0.1/32", "10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["1.1.1.1, unknown, 10.0.0.2"]);
        assert_eq!(s.client_ip(&h, ip("127.0.0.1")), ip("10.0.0.2"));
        let h = headers("x-forwarded-for", &[""]);
        assert_eq!(s.client_ip(&h, ip("127.0.0.1")), ip("127.0.0.1"));
    }

    #[test]
    fn forwarded_header_forms() {
        let s = settings(&["127.0.0.0/8", "::1/128"], ForwardedHeader::Forwarded);
        let h = headers(
            "forwarded",
            &[r#"for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https, For="127.0.0.2:80""#],
        );
        assert_eq!(s.client_ip(&h, ip("::1")), ip("2001:db8:cafe::17"));
        let h = headers("forwarded", &["proto=http;for=192.0.2.60;by=203.0.113.43"]);
        assert_eq!(s.client_ip(&h, ip("::ffff:127.0.0.1")), ip("192.0.2.60"));
        // X-Forwarded-For is not read when Forwarded is the configured header.
        let h = headers("x-forwarded-for", &["1.1.1.1"]);
        assert_eq!(s.client_ip(&h, ip("127.0.0.1")), ip("127.0.0.1"));
    }

    #[test]
    fn nodes() {
        assert_eq!(parse_node(" 192.0.2.43:47011"), ip("192.0.2.43"));
        assert_eq!(parse_node("\"[::1]:80\""), ip("::1"));
        assert_eq!(parse_node("2001:db8::1"), ip("2001:db8::1"));
        assert_eq!(parse_node("::ffff:10.0.0.1"), ip("10.0.0.1"));
        assert_eq!(parse_node("_hidden"), None);
        assert_eq!(parse_node("[::1"), None);
        assert_eq!(parse_node("\""), None);
    }
}
