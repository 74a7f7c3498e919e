//! The address space of Services: the CIDR their cluster IPs come from (`--service-cidr`) and
//! the range of their node ports (`--service-node-port-range`).

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// Why a `--service-cidr` or `--service-node-port-range` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetworkError {
    #[error("{0:?} is not an IPv4 CIDR such as 10.96.0.0/12")]
    NotACidr(String),
    #[error("{0:?} leaves no address for services: the prefix must be /8 to /30")]
    PrefixOutOfRange(String),
    #[error("{0:?} is not a port range such as 30000-32767")]
    NotAPortRange(String),
}

/// An IPv4 network: its first address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

impl Ipv4Cidr {
    /// How many addresses services may take: all but the network and broadcast addresses.
    pub fn usable(&self) -> u32 {
        (1u32 << (32 - self.prefix)) - 2
    }

    /// The `index`-th usable address (0 is the first after the network address).
    pub fn nth(&self, index: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1 + index)
    }

    /// Where `ip` falls among the usable addresses, if it does.
    pub fn index_of(&self, ip: Ipv4Addr) -> Option<u32> {
        let offset = u32::from(ip).checked_sub(self.network + 1)?;
        (offset < self.usable()).then_some(offset)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<Self, NetworkError> {
        let not_a_cidr = || NetworkError::NotACidr(text.into());
        let (address, prefix) = text.split_once('/').ok_or_else(not_a_cidr)?;
        let address: Ipv4Addr = address.parse().map_err(|_| not_a_cidr())?;
        let prefix: u8 = prefix.parse().map_err(|_| not_a_cidr())?;
        if !(8..=30).contains(&prefix) {
            return Err(NetworkError::PrefixOutOfRange(text.into()));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Self {
            network: u32::from(address) & mask,
            prefix,
        })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

/// Where Services' addresses and node ports come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceNetwork {
    pub cidr: Ipv4Cidr,
    pub node_ports: RangeInclusive<u16>,
}

impl Default for ServiceNetwork {
    /// Kubernetes' defaults: 10.96.0.0/12 and 30000-32767.
    fn default() -> Self {
        Self {
            cidr: "10.96.0.0/12".parse().expect("a valid CIDR"),
            node_ports: 30000..=32767,
        }
    }
}

impl ServiceNetwork {
    /// The cluster IP of the `kubernetes` Service: the range's first address.
    pub fn api_server_ip(&self) -> Ipv4Addr {
        self.cidr.nth(0)
    }
}

/// Parses `30000-32767` (a single port is a range of one).
///
/// # Errors
/// `NotAPortRange` for anything else, or a range whose start is past its end.
pub fn parse_port_range(text: &str) -> Result<RangeInclusive<u16>, NetworkError> {
    let refuse = || NetworkError::NotAPortRange(text.into());
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let first: u16 = first.trim().parse().map_err(|_| refuse())?;
    let last: u16 = last.trim().parse().map_err(|_| refuse())?;
    if first == 0 || first > last {
        return Err(refuse());
    }
    Ok(first..=last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_range_starts_at_ten_ninety_six_zero_one() {
        let network = ServiceNetwork::default();
        assert_eq!(network.api_server_ip(), Ipv4Addr::new(10, 96, 0, 1));
        assert_eq!(network.cidr.usable(), (1 << 20) - 2);
        assert_eq!(network.cidr.to_string(), "10.96.0.0/12");
    }

    #[test]
    fn addresses_outside_the_usable_range_have_no_index() {
        let cidr: Ipv4Cidr = "10.0.0.0/30".parse().unwrap();
        assert_eq!(cidr.index_of(Ipv4Addr::new(10, 0, 0, 0)), None);
        assert_eq!(cidr.index_of(Ipv4Addr::new(10, 0, 0, 1)), Some(0));
        assert_eq!(cidr.index_of(Ipv4Addr::new(10, 0, 0, 2)), Some(1));
        assert_eq!(cidr.index_of(Ipv4Addr::new(10, 0, 0, 3)), None);
    }

    #[test]
    fn bad_cidrs_and_port_ranges_are_refused() {
        assert!(matches!(
            "10.96.0.0".parse::<Ipv4Cidr>(),
            Err(NetworkError::NotACidr(_))
        ));
        assert!(matches!(
            "fd00::/108".parse::<Ipv4Cidr>(),
            Err(NetworkError::NotACidr(_))
        ));
        assert!(matches!(
            "10.0.0.0/31".parse::<Ipv4Cidr>(),
            Err(NetworkError::PrefixOutOfRange(_))
        ));
        assert_eq!(parse_port_range("30000-32767"), Ok(30000..=32767));
        assert!(parse_port_range("32767-30000").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("a-b").is_err());
    }
}
