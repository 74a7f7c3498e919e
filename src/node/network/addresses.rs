//! Pod addresses on a node: pod IPs from the node's block, and the loopback address on the
//! host that stands for each.
//!
//! Linux routes all of 127.0.0.0/8 to `lo`, so every pod gets a loopback address of its own:
//! 127 followed by the low 24 bits of its pod IP (10.244.3.7 → 127.244.3.7). The blocks of a
//! cluster are disjoint and the cluster range is at most a /8, so two pods never share a
//! loopback address, even when several nodes run on one host — and a node can tell which pod
//! IP any loopback peer stands for without a table. 127.0.x.x stays the host's (the API
//! server, the resolver at 127.0.0.53, the load balancer pool 127.0.100.0/24): the control
//! plane hands out no block that maps there (`crate::cidr::is_usable_node_block`).

use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::cidr::Ipv4Block;

/// The loopback address standing for `pod_ip` on its node's host.
pub fn loopback_of(pod_ip: Ipv4Addr) -> Ipv4Addr {
    let [_, b, c, d] = pod_ip.octets();
    Ipv4Addr::new(127, b, c, d)
}

/// The pod IP a loopback address stands for, in a cluster whose addresses start with
/// `first_octet`; `None` for anything but a pod's (or a node gateway's) loopback address.
pub fn pod_ip_of(loopback: Ipv4Addr, first_octet: u8) -> Option<Ipv4Addr> {
    let [a, b, c, d] = loopback.octets();
    (a == 127 && b != 0).then(|| Ipv4Addr::new(first_octet, b, c, d))
}

/// Whether `ip` is a loopback address the cluster's pods and nodes use (not the host's own
/// 127.0.x.x).
pub fn is_cluster_loopback(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 127 && b != 0
}

/// The pod IPs of one node's block: which are taken, and which comes next.
///
/// Addresses are handed out in turn round the block, as the host-local IPAM plugin does, so a
/// freed address is the last to be reused: connections of a deleted pod that linger in the
/// kernel (TIME_WAIT) never meet a new pod at the same address.
#[derive(Debug)]
pub struct PodIps {
    block: Ipv4Block,
    taken: HashSet<Ipv4Addr>,
    /// Index of the address tried first next time.
    next: u64,
}

/// Addresses of a block that no pod gets: the network address, the gateway (the node's own
/// address in the block, which its probes and tunnel connect from), the broadcast address.
const FIRST_POD_INDEX: u64 = 2;

impl PodIps {
    pub fn new(block: Ipv4Block) -> PodIps {
        PodIps {
            block,
            taken: HashSet::new(),
            next: FIRST_POD_INDEX,
        }
    }

    pub fn block(&self) -> Ipv4Block {
        self.block
    }

    /// The node's own address in its block (`.1`).
    pub fn gateway(&self) -> Ipv4Addr {
        self.block.nth(1).unwrap_or(self.block.base())
    }

    /// Takes `wanted` when it is a free pod address of the block (a pod keeps its IP across a
    /// restart of the node), else the next free one; `None` when the block is full.
    pub fn claim(&mut self, wanted: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
        if let Some(ip) = wanted.filter(|ip| self.is_pod_address(*ip))
            && self.taken.insert(ip)
        {
            return Some(ip);
        }
        let usable = self.block.size().saturating_sub(FIRST_POD_INDEX + 1);
        for _ in 0..usable {
            let index = self.next;
            self.next = if index + 2 >= self.block.size() {
                FIRST_POD_INDEX
            } else {
                index + 1
            };
            let ip = self.block.nth(index)?;
            if self.taken.insert(ip) {
                return Some(ip);
            }
        }
        None
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.taken.remove(&ip);
    }

    fn is_pod_address(&self, ip: Ipv4Addr) -> bool {
        self.block
            .index_of(ip)
            .is_some_and(|i| i >= FIRST_POD_INDEX && i + 1 < self.block.size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(text: &str) -> PodIps {
        PodIps::new(text.parse().unwrap())
    }

    #[test]
    fn a_pod_ip_and_its_loopback_address_map_both_ways() {
        let pod = Ipv4Addr::new(10, 244, 3, 7);
        assert_eq!(loopback_of(pod), Ipv4Addr::new(127, 244, 3, 7));
        assert_eq!(pod_ip_of(loopback_of(pod), 10), Some(pod));
        assert_eq!(pod_ip_of(Ipv4Addr::LOCALHOST, 10), None);
        assert!(!is_cluster_loopback(Ipv4Addr::new(127, 0, 0, 53)));
        assert!(is_cluster_loopback(Ipv4Addr::new(127, 244, 0, 1)));
    }

    #[test]
    fn addresses_go_round_the_block_skipping_network_gateway_and_broadcast() {
        let mut ips = ips("10.244.1.0/29");
        assert_eq!(ips.gateway(), Ipv4Addr::new(10, 244, 1, 1));
        let first: Vec<_> = (0..5).map(|_| ips.claim(None).unwrap()).collect();
        let last_octets: Vec<u8> = first.iter().map(|ip| ip.octets()[3]).collect();
        assert_eq!(last_octets, [2, 3, 4, 5, 6]);
        assert_eq!(ips.claim(None), None, "the block is full");
        ips.release(first[1]);
        ips.release(first[3]);
        assert_eq!(ips.claim(None), Some(first[1]));
        assert_eq!(ips.claim(None), Some(first[3]));
    }

    #[test]
    fn a_freed_address_is_the_last_to_come_back() {
        let mut ips = ips("10.244.1.0/24");
        let a = ips.claim(None).unwrap();
        ips.release(a);
        let b = ips.claim(None).unwrap();
        assert_ne!(a, b, "the next address, not the one just freed");
    }

    #[test]
    fn a_pod_keeps_its_address_when_it_is_free_and_ours() {
        let mut ips = ips("10.244.1.0/24");
        let kept = Ipv4Addr::new(10, 244, 1, 77);
        assert_eq!(ips.claim(Some(kept)), Some(kept));
        let taken = ips.claim(Some(kept)).unwrap();
        assert_ne!(taken, kept, "taken already: another address");
        let foreign = ips.claim(Some(Ipv4Addr::new(10, 244, 2, 5))).unwrap();
        assert!(ips.block().contains(foreign));
        let gateway = ips.claim(Some(Ipv4Addr::new(10, 244, 1, 1))).unwrap();
        assert_ne!(gateway.octets()[3], 1, "the gateway is never a pod's");
    }
}
