//! Who is calling: the address that per-client limits (sign-in, sign-up) count by.
//!
//! Behind a load balancer every request comes from the balancer, so its `X-Forwarded-For` must
//! be read; but anyone can send that header, so it is read only from proxies the operator
//! listed, and only the part those proxies wrote.

use axum::http::{HeaderMap, header::HeaderName};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The proxies whose `X-Forwarded-For` is believed (configuration `trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Addresses (`10.0.0.7`, `::1`) or networks (`10.0.0.0/8`); the error names the bad one.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is neither an IP address nor a CIDR network"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client: the TCP peer, unless the peer is a trusted proxy; then, walking
    /// `X-Forwarded-For` from the right (each proxy appends the address it saw), the first
    /// address that is not a trusted proxy. Whatever lies further left came from the client and
    /// is not believed; an entry that does not parse stops the walk at the last proxy seen.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(address) = parse_hop(hop) else {
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`203.0.113.7:4711`,
/// `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|address| address.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>())
            .expect("valid proxies")
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                X_FORWARDED_FOR,
                HeaderValue::from_str(value).expect("header"),
            );
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let client = TrustedProxies::default().client(ip("198.51.100.1"), &forwarded(&["1.2.3.4"]));
        assert_eq!(client, ip("198.51.100.1"));
    }

    #[test]
    fn an_untrusted_peer_cannot_pick_its_address() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let client = trusted.client(ip("198.51.100.1"), &forwarded(&["1.2.3.4"]));
        assert_eq!(client, ip("198.51.100.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_client_is_the_first_untrusted_hop_from_the_right() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.9"]);
        // The client claimed 1.2.3.4; the edge proxy saw 203.0.113.7; an inner proxy saw the edge.
        let headers = forwarded(&["1.2.3.4, 203.0.113.7", "192.0.2.9"]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &headers), ip("203.0.113.7"));
    }

    #[test]
    fn ports_and_mapped_addresses_are_understood() {
        let trusted = proxies(&["::1"]);
        assert_eq!(
            trusted.client(ip("::1"), &forwarded(&["[2001:db8::5]:4711"])),
            ip("2001:db8::5")
        );
        assert_eq!(
            trusted.client(ip("::1"), &forwarded(&["::ffff:203.0.113.7"])),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn garbage_stops_at_the_last_proxy() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = forwarded(&["not-an-address, 10.0.0.5"]);
        assert_eq!(trusted.client(ip("10.0.0.1"), &headers), ip("10.0.0.5"));
        assert_eq!(
            trusted.client(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1"),
            "no header: the proxy itself"
        );
    }

    #[test]
    fn bad_entries_are_named() {
        let error = TrustedProxies::parse(&["10.0.0.0/8".to_owned(), "example.com".to_owned()])
            .expect_err("a host name is no address");
        assert!(error.contains("example.com"), "{error}");
    }
}
