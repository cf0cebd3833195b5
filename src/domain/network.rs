//! Client addresses behind reverse proxies: which proxies are trusted, and
//! which address in `X-Forwarded-For` is the client's.

use std::net::IpAddr;

/// A block of addresses, such as `10.0.0.0/8` or `2001:db8::/32` (a bare
/// address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not an address or a block such as 10.0.0.0/8");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u8) {
            match ip {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ((net, width), (addr, addr_width)) = (bits(self.net), bits(ip));
        if width != addr_width {
            return false;
        }
        let shift = u32::from(width - self.prefix);
        // A /0 block holds every address of its family.
        shift >= u32::from(width) || (net >> shift) == (addr >> shift)
    }
}

/// The client's address: the connection's peer, unless the peer is a
/// trusted proxy; then the right-most address in `forwarded_for` that is not
/// a trusted proxy (a client can put anything on the left of the list, but
/// each trusted proxy appends what it saw).
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for entry in forwarded_for
        .unwrap_or_default()
        .rsplit(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        // A malformed entry ends what can be believed: the hop before it stands.
        let Ok(ip) = entry.parse::<IpAddr>() else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_contain() {
        let b = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(b.contains(ip("10.1.200.3")));
        assert!(!b.contains(ip("10.2.0.1")));
        assert!(!b.contains(ip("::ffff:10.1.0.1")), "families do not mix");
        let one = Cidr::parse("192.0.2.7").unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "example.com",
            "10.0.0.0/x",
            "10.0.0.1/",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = [Cidr::parse("10.0.0.0/8").unwrap()];
        let xff = Some("203.0.113.9, 198.51.100.7");
        // Not from a proxy: the header is anyone's to write.
        assert_eq!(client_address(ip("198.51.100.50"), xff, &proxies), ip("198.51.100.50"));
        assert_eq!(client_address(ip("10.0.0.2"), xff, &[]), ip("10.0.0.2"));
        // From a proxy: the right-most address that is not a proxy.
        assert_eq!(client_address(ip("10.0.0.2"), xff, &proxies), ip("198.51.100.7"));
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("203.0.113.9, 198.51.100.7, 10.3.3.3"), &proxies),
            ip("198.51.100.7")
        );
        // Nothing forwarded, or only proxies: the left-most address seen.
        assert_eq!(client_address(ip("10.0.0.2"), None, &proxies), ip("10.0.0.2"));
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("10.9.9.9, 10.8.8.8"), &proxies),
            ip("10.9.9.9")
        );
        // A malformed entry ends the list: what a trusted proxy saw last stands.
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("198.51.100.7, garbage, 10.8.8.8"), &proxies),
            ip("10.8.8.8")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("garbage"), &proxies),
            ip("10.0.0.2")
        );
    }
}
