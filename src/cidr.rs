//! IPv4 CIDR blocks: the cluster's pod range (`--cluster-cidr`) and the block of it each node
//! gets (`Node.spec.podCIDR`); and CIDRs of either family as users write them (a
//! NetworkPolicy's `ipBlock`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// A block of IPv4 addresses: `base/prefix`, the base with no host bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Block {
    base: Ipv4Addr,
    prefix: u8,
}

/// Why a text is not an IPv4 block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {text:?}: {reason}")]
pub struct CidrError {
    text: String,
    reason: &'static str,
}

impl Ipv4Block {
    /// The block of `prefix` bits around `ip` (host bits cleared).
    ///
    /// # Errors
    /// When `prefix` is longer than 32 bits.
    pub fn new(ip: Ipv4Addr, prefix: u8) -> Result<Ipv4Block, CidrError> {
        if prefix > 32 {
            return Err(CidrError {
                text: format!("{ip}/{prefix}"),
                reason: "the prefix length must be at most 32",
            });
        }
        let base = Ipv4Addr::from(u32::from(ip) & mask(prefix));
        Ok(Ipv4Block { base, prefix })
    }

    pub fn base(&self) -> Ipv4Addr {
        self.base
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// How many addresses the block holds.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.base)
    }

    /// Whether `other` lies wholly inside this block.
    pub fn covers(&self, other: &Ipv4Block) -> bool {
        other.prefix >= self.prefix && self.contains(other.base)
    }

    /// Address number `index` of the block (0 is the base); `None` past its end.
    pub fn nth(&self, index: u64) -> Option<Ipv4Addr> {
        (index < self.size()).then(|| Ipv4Addr::from(u32::from(self.base) + index as u32))
    }

    /// Where `ip` lies in the block, if it does.
    pub fn index_of(&self, ip: Ipv4Addr) -> Option<u64> {
        self.contains(ip)
            .then(|| u64::from(u32::from(ip) - u32::from(self.base)))
    }

    /// Sub-block number `index` of `prefix` bits; `None` when `prefix` is shorter than this
    /// block's or `index` is past the last one.
    pub fn subnet(&self, prefix: u8, index: u64) -> Option<Ipv4Block> {
        if prefix < self.prefix || prefix > 32 {
            return None;
        }
        let count = 1u64 << (prefix - self.prefix);
        let step = 1u64 << (32 - u32::from(prefix));
        let base = self
            .nth(index.checked_mul(step)?)
            .filter(|_| index < count)?;
        Some(Ipv4Block { base, prefix })
    }

    /// How many sub-blocks of `prefix` bits the block holds (0 when `prefix` is shorter).
    pub fn subnets(&self, prefix: u8) -> u64 {
        if prefix < self.prefix || prefix > 32 {
            return 0;
        }
        1u64 << (prefix - self.prefix)
    }
}

/// Whether a node may be given `block`: a pod's loopback address on its host is 127 followed by
/// the low 24 bits of its pod IP, and 127.0.x.x is the host's own (the API server at
/// 127.0.0.1, the resolver at 127.0.0.53, the load balancer pool), so no block maps there.
pub fn is_usable_node_block(block: &Ipv4Block) -> bool {
    block.prefix() >= 8 && block.base().octets()[1] != 0
}

/// A CIDR as a user writes it (`ipBlock.cidr`): either family, host bits allowed, as Go's
/// `ParseCIDR` reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpCidr {
    ip: IpAddr,
    prefix: u8,
}

impl IpCidr {
    /// `ip/prefix`, `None` when it is not one.
    pub fn parse(text: &str) -> Option<IpCidr> {
        let (ip, prefix) = text.split_once('/')?;
        let ip: IpAddr = ip.parse().ok()?;
        let digits =
            !prefix.is_empty() && prefix.len() <= 3 && prefix.bytes().all(|b| b.is_ascii_digit());
        let prefix: u8 = prefix.parse().ok().filter(|_| digits)?;
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(IpCidr { ip, prefix })
    }

    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the range (never across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.ip, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                (u32::from(net) ^ u32::from(ip)) & mask(self.prefix) == 0
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                (u128::from(net) ^ u128::from(ip)) & mask == 0
            }
            _ => false,
        }
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

impl fmt::Display for Ipv4Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Ipv4Block {
    type Err = CidrError;

    /// Parses `a.b.c.d/n`; host bits must be clear, as Kubernetes requires of its CIDRs.
    fn from_str(text: &str) -> Result<Ipv4Block, CidrError> {
        let error = |reason| CidrError {
            text: text.to_string(),
            reason,
        };
        let (ip, prefix) = text
            .split_once('/')
            .ok_or_else(|| error("expected an IPv4 address, '/' and a prefix length"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| error("not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| error("the prefix length is not a number"))?;
        let block = Ipv4Block::new(ip, prefix).map_err(|e| error(e.reason))?;
        if block.base != ip {
            return Err(error("host bits are set"));
        }
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_cidr_is_either_family_and_may_have_host_bits() {
        let cidr = IpCidr::parse("172.17.1.9/16").unwrap();
        assert!(cidr.contains("172.17.200.1".parse().unwrap()));
        assert!(!cidr.contains("172.18.0.1".parse().unwrap()));
        assert!(!cidr.contains("::1".parse().unwrap()));
        assert!(
            IpCidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        let v6 = IpCidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "::/129",
            "x/8",
            "10.0.0/8",
        ] {
            assert_eq!(IpCidr::parse(bad), None, "{bad}");
        }
    }

    fn block(text: &str) -> Ipv4Block {
        text.parse().unwrap()
    }

    #[test]
    fn a_block_knows_its_addresses_and_sub_blocks() {
        let cluster = block("10.244.0.0/16");
        assert_eq!(cluster.size(), 65536);
        assert!(cluster.contains(Ipv4Addr::new(10, 244, 255, 1)));
        assert!(!cluster.contains(Ipv4Addr::new(10, 245, 0, 1)));
        assert_eq!(cluster.subnets(24), 256);
        assert_eq!(cluster.subnet(24, 3), Some(block("10.244.3.0/24")));
        assert_eq!(cluster.subnet(24, 256), None);
        assert_eq!(cluster.subnet(8, 0), None);
        let node = block("10.244.3.0/24");
        assert!(cluster.covers(&node));
        assert!(!node.covers(&cluster));
        assert_eq!(node.nth(7), Some(Ipv4Addr::new(10, 244, 3, 7)));
        assert_eq!(node.nth(256), None);
        assert_eq!(node.index_of(Ipv4Addr::new(10, 244, 3, 9)), Some(9));
        assert_eq!(node.to_string(), "10.244.3.0/24");
    }

    #[test]
    fn malformed_blocks_are_refused_saying_why() {
        for (text, reason) in [
            ("10.244.0.0", "expected an IPv4 address"),
            ("10.244.0.1/16", "host bits are set"),
            ("10.244.0.0/33", "at most 32"),
            ("fd00::/8", "not an IPv4 address"),
            ("10.0.0.0/x", "not a number"),
        ] {
            let error = text.parse::<Ipv4Block>().unwrap_err().to_string();
            assert!(error.contains(reason), "{text}: {error}");
        }
        assert_eq!(block("0.0.0.0/0").size(), 1 << 32);
    }

    #[test]
    fn no_node_block_maps_onto_the_hosts_loopback_addresses() {
        assert!(is_usable_node_block(&block("10.244.0.0/24")));
        assert!(is_usable_node_block(&block("10.16.0.0/12")));
        assert!(!is_usable_node_block(&block("10.0.3.0/24")));
        assert!(!is_usable_node_block(&block("10.0.0.0/8")));
    }
}
