//! IPv4 CIDR blocks: the cluster's pod range (`--cluster-cidr`) and the block of it each node
//! gets (`Node.spec.podCIDR`).

use std::fmt;
use std::net::Ipv4Addr;
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
