//! Network ranges of trusted-network rules: parsing (`10.0.0.0/24`, `10.2.2.0-10.2.2.254`,
//! IPv6 alike), display, and the sortable keys the store indexes them by.
//!
//! IPv4 and IPv6 are separate families: an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is
//! treated as the IPv4 address it carries, and `::/0` does not cover IPv4.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

use crate::{Result, invalid};

/// Address family of a range, as stored (4 or 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// 4 or 6.
    pub fn number(self) -> i64 {
        match self {
            Family::V4 => 4,
            Family::V6 => 6,
        }
    }
}

/// An inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    first: IpAddr,
    last: IpAddr,
}

/// Parses an address as PAM_RHOST or an administrator gives it: brackets and an IPv6 zone
/// (`fe80::1%eth0`) are dropped, IPv4-mapped IPv6 becomes IPv4.
pub fn parse_address(text: &str) -> Result<IpAddr> {
    let t = text.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(t);
    let t = t.split_once('%').map_or(t, |(a, _)| a);
    IpAddr::from_str(t).map(|a| a.to_canonical()).map_err(|_| {
        invalid!("invalid IP address {text:?}: expected an IPv4 address such as 192.0.2.7 or an IPv6 address such as 2001:db8::7")
    })
}

fn family(a: IpAddr) -> Family {
    if a.is_ipv4() { Family::V4 } else { Family::V6 }
}

/// The address as a 128-bit number (IPv4 in the low 32 bits).
pub fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The 16-byte big-endian key of an address: byte order equals numeric order, so SQLite's
/// blob comparison orders addresses correctly.
pub fn addr_key(a: IpAddr) -> [u8; 16] {
    addr_bits(a.to_canonical()).to_be_bytes()
}

fn from_bits(f: Family, bits: u128) -> IpAddr {
    match f {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(bits).unwrap_or(u32::MAX))),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

impl IpRange {
    /// A range from its ends; they must be of one family and in order.
    pub fn new(first: IpAddr, last: IpAddr) -> Result<IpRange> {
        let (first, last) = (first.to_canonical(), last.to_canonical());
        if family(first) != family(last) {
            return Err(invalid!(
                "invalid range {first}-{last}: both ends must be IPv4 or both IPv6"
            ));
        }
        if addr_bits(first) > addr_bits(last) {
            return Err(invalid!(
                "invalid range {first}-{last}: the first address is above the last; write it as {last}-{first}"
            ));
        }
        Ok(IpRange { first, last })
    }

    /// Parses CIDR notation (`10.0.0.0/24`, `2001:db8::/32`); a bare address is a single host.
    /// Host bits set below the prefix (`10.0.0.5/24`) are an error naming the network meant.
    pub fn parse_cidr(text: &str) -> Result<IpRange> {
        let t = text.trim();
        let form = "expected CIDR notation such as 10.0.0.0/24 or 2001:db8::/32";
        if !t.contains('/') {
            let a = parse_address(t).map_err(|_| invalid!("invalid CIDR {text:?}: {form}"))?;
            return IpRange::new(a, a);
        }
        let net = IpNet::from_str(t).map_err(|_| invalid!("invalid CIDR {text:?}: {form}"))?;
        if net.addr() != net.network() {
            return Err(invalid!(
                "invalid CIDR {text:?}: host bits are set below the /{} prefix; did you mean {}/{}?",
                net.prefix_len(),
                net.network(),
                net.prefix_len()
            ));
        }
        IpRange::new(net.network(), net.broadcast())
    }

    /// Parses `FIRST-LAST` (`10.2.2.0-10.2.2.254`, `2001:db8::1-2001:db8::ff`).
    pub fn parse_range(text: &str) -> Result<IpRange> {
        let form = "expected FIRST-LAST such as 10.2.2.0-10.2.2.254";
        let (a, b) = text
            .trim()
            .split_once('-')
            .ok_or_else(|| invalid!("invalid range {text:?}: {form}"))?;
        let first = parse_address(a)
            .map_err(|_| invalid!("invalid range {text:?}: {a:?} is not an IP address; {form}"))?;
        let last = parse_address(b)
            .map_err(|_| invalid!("invalid range {text:?}: {b:?} is not an IP address; {form}"))?;
        IpRange::new(first, last)
    }

    /// Parses either form: `A-B` as a range, anything else as CIDR.
    pub fn parse_any(text: &str) -> Result<IpRange> {
        if text.contains('-') {
            IpRange::parse_range(text)
        } else {
            IpRange::parse_cidr(text)
        }
    }

    /// The first address.
    pub fn first(&self) -> IpAddr {
        self.first
    }

    /// The last address.
    pub fn last(&self) -> IpAddr {
        self.last
    }

    /// The family of both ends.
    pub fn family(&self) -> Family {
        family(self.first)
    }

    /// True when the address (after IPv4-mapped canonicalisation) lies in the range.
    pub fn contains(&self, a: IpAddr) -> bool {
        let a = a.to_canonical();
        family(a) == self.family()
            && (addr_bits(self.first)..=addr_bits(self.last)).contains(&addr_bits(a))
    }

    /// Number of addresses minus one: the narrowness the store orders rules by.
    pub fn span(&self) -> u128 {
        addr_bits(self.last) - addr_bits(self.first)
    }

    /// The prefix length if the range is exactly one CIDR block.
    pub fn prefix_len(&self) -> Option<u8> {
        let size = self.span().checked_add(1);
        let width: u32 = if self.family() == Family::V4 { 32 } else { 128 };
        match size {
            None => (addr_bits(self.first) == 0).then_some(0),
            Some(n) if n.is_power_of_two() && addr_bits(self.first).is_multiple_of(n) => {
                let host_bits = n.trailing_zeros();
                (host_bits <= width).then(|| u8::try_from(width - host_bits).unwrap_or(0))
            }
            Some(_) => None,
        }
    }

    /// Rebuilds a range from stored keys.
    pub fn from_keys(fam: i64, first: &[u8], last: &[u8]) -> Option<IpRange> {
        let f = if fam == 4 { Family::V4 } else { Family::V6 };
        let bits = |k: &[u8]| <[u8; 16]>::try_from(k).ok().map(u128::from_be_bytes);
        Some(IpRange {
            first: from_bits(f, bits(first)?),
            last: from_bits(f, bits(last)?),
        })
    }
}

impl fmt::Display for IpRange {
    /// CIDR when the range is one block (`10.0.0.0/24`), `FIRST-LAST` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix_len() {
            Some(p) => write!(f, "{}/{}", self.first, p),
            None => write!(f, "{}-{}", self.first, self.last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        parse_address(s).unwrap()
    }

    #[test]
    fn cidr_and_range_forms() {
        let r = IpRange::parse_cidr("10.0.0.0/24").unwrap();
        assert_eq!(r.to_string(), "10.0.0.0/24");
        assert!(r.contains(ip("10.0.0.255")) && !r.contains(ip("10.0.1.0")));
        let r = IpRange::parse_range("10.2.2.0-10.2.2.254").unwrap();
        assert_eq!(r.to_string(), "10.2.2.0-10.2.2.254");
        assert_eq!(r.span(), 254);
        assert_eq!(
            IpRange::parse_range("10.0.0.0-10.0.0.255")
                .unwrap()
                .to_string(),
            "10.0.0.0/24"
        );
        assert_eq!(
            IpRange::parse_cidr("10.2.2.120").unwrap().to_string(),
            "10.2.2.120/32"
        );
        assert_eq!(
            IpRange::parse_cidr("0.0.0.0/0").unwrap().to_string(),
            "0.0.0.0/0"
        );
        assert_eq!(IpRange::parse_cidr("::/0").unwrap().to_string(), "::/0");
        assert_eq!(
            IpRange::parse_cidr("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
    }

    #[test]
    fn families_do_not_mix() {
        let all6 = IpRange::parse_cidr("::/0").unwrap();
        assert!(!all6.contains(ip("10.0.0.1")));
        assert!(all6.contains(ip("2001:db8::1")));
        let v4 = IpRange::parse_cidr("10.0.0.0/8").unwrap();
        assert!(v4.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(IpRange::parse_range("10.0.0.1-::1").is_err());
    }

    #[test]
    fn bad_forms_explain() {
        let e = IpRange::parse_cidr("10.0.0.5/24").unwrap_err().to_string();
        assert!(e.contains("did you mean 10.0.0.0/24"), "{e}");
        let e = IpRange::parse_range("10.2.2.254-10.2.2.0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("above the last"), "{e}");
        for bad in ["10.0.0.0/33", "300.1.1.1/8", "10.0.0/24", "abc", "::/129"] {
            assert!(IpRange::parse_cidr(bad).is_err(), "{bad}");
        }
        assert!(IpRange::parse_range("10.0.0.1").is_err());
        assert!(IpRange::parse_range("10.0.0.1-x").is_err());
    }

    #[test]
    fn keys_round_trip() {
        let r = IpRange::parse_cidr("2001:db8::/64").unwrap();
        let back = IpRange::from_keys(6, &addr_key(r.first()), &addr_key(r.last())).unwrap();
        assert_eq!(r, back);
        assert!(addr_key(ip("10.0.0.2")) < addr_key(ip("10.0.0.10")));
        assert_eq!(parse_address("[fe80::1%eth0]").unwrap(), ip("fe80::1"));
    }
}
