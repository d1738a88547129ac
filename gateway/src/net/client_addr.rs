//! The client's address. The TCP peer is the client unless the peer is one of
//! our own proxies (`TRUSTED_PROXY_CIDRS`); only then is `X-Forwarded-For`
//! read, right to left, skipping our proxies, so a client cannot choose the
//! address it is recorded (and rate-limited) under by sending the header
//! itself.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

#[derive(Debug, thiserror::Error)]
#[error("TRUSTED_PROXY_CIDRS: {0:?} is not a CIDR block or an IP address")]
pub struct BadCidr(pub String);

impl TrustedProxies {
    /// CIDR blocks (`10.0.0.0/8`) or single addresses (`10.0.0.1`).
    pub fn parse(items: &[String]) -> Result<TrustedProxies, BadCidr> {
        items
            .iter()
            .map(|item| {
                let item = item.trim();
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| BadCidr(item.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address for a request that arrived from `peer`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        if hops.is_empty() {
            return headers
                .get("x-real-ip")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_hop)
                .unwrap_or(peer);
        }
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        return ip;
                    }
                }
                // Garbage in the chain: stop at the last address we could vouch for.
                None => return client,
            }
        }
        client
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    None
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_choose_their_address() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("9.9.9.9"), &xff("1.2.3.4")),
            ip("9.9.9.9")
        );
        let some = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        assert_eq!(
            some.client_ip(ip("9.9.9.9"), &xff("1.2.3.4")),
            ip("9.9.9.9")
        );
    }

    #[test]
    fn trusted_proxies_are_skipped_right_to_left() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.168.1.1".into()]).unwrap();
        // The client wrote a fake first entry; the proxies appended the real one.
        assert_eq!(
            t.client_ip(ip("10.1.1.1"), &xff("6.6.6.6, 1.2.3.4, 192.168.1.1")),
            ip("1.2.3.4")
        );
        assert_eq!(
            t.client_ip(ip("10.1.1.1"), &xff("1.2.3.4:555")),
            ip("1.2.3.4")
        );
        assert_eq!(
            t.client_ip(ip("10.1.1.1"), &xff("10.2.2.2")),
            ip("10.2.2.2")
        );
        assert_eq!(
            t.client_ip(ip("10.1.1.1"), &xff("junk, 10.2.2.2")),
            ip("10.2.2.2")
        );
        assert_eq!(
            t.client_ip(ip("10.1.1.1"), &HeaderMap::new()),
            ip("10.1.1.1")
        );
        let mut real = HeaderMap::new();
        real.insert("x-real-ip", HeaderValue::from_static("5.5.5.5"));
        assert_eq!(t.client_ip(ip("10.1.1.1"), &real), ip("5.5.5.5"));
        assert_eq!(
            t.client_ip(ip("::ffff:10.1.1.1"), &xff("1.2.3.4")),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn bad_cidrs_are_named() {
        let e = TrustedProxies::parse(&["10.0.0.0/8".into(), "nope".into()]).unwrap_err();
        assert!(e.to_string().contains("\"nope\""), "{e}");
    }
}
