//! Egress outside the cluster, by name: the hosts one pod may reach because it looked up a
//! name it is allowed (an ExternalName Service's host, or one its `wasmkube.io/egress-hosts`
//! annotation names), with the addresses they resolved to on the host.
//!
//! A guest takes every 127/8 address as its own pod's, so a host that resolves to loopback on
//! the node gets a stand-in address from the benchmarking range 198.18.0.0/15 (RFC 2544,
//! never routed) that the pod's routing maps back.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Mutex;

/// The annotation (on a pod or its namespace) naming the outside hosts its pods may reach:
/// comma-separated DNS names, `*.example.org` for any name under `example.org`.
pub const EGRESS_HOSTS_ANNOTATION: &str = "wasmkube.io/egress-hosts";

/// The range's base; stand-ins start one past it, and there are 2^17 - 2 of them.
const STAND_IN_BASE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
const STAND_INS: u32 = (1 << 17) - 2;
/// How many outside addresses one pod keeps allowed; past it the oldest lookups are forgotten
/// (a guest looks a name up again before it connects).
const MAX_HOSTS: usize = 4096;

/// One pod's outside hosts.
#[derive(Debug, Default)]
pub struct OutsideHosts {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Host addresses the pod may connect to.
    allowed: HashSet<Ipv4Addr>,
    /// Stand-in (as the guest sees it) → loopback host address, and back.
    stand_ins: HashMap<Ipv4Addr, Ipv4Addr>,
    by_host: HashMap<Ipv4Addr, Ipv4Addr>,
}

impl OutsideHosts {
    /// Resolves `host` on the node and allows the pod its IPv4 addresses; returns them as the
    /// guest sees them, `None` when the name does not resolve.
    pub fn admit(&self, host: &str) -> Option<Vec<IpAddr>> {
        // The host's resolver (getaddrinfo), as a pod's DNS would forward it.
        let found: Vec<Ipv4Addr> = (host.trim_end_matches('.'), 0)
            .to_socket_addrs()
            .ok()?
            .filter_map(|a| match a.ip() {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(_) => None,
            })
            .collect();
        let seen = self.allow(&found);
        (!seen.is_empty()).then_some(seen)
    }

    /// Allows `hosts`; returns the addresses the guest is given for them.
    pub fn allow(&self, hosts: &[Ipv4Addr]) -> Vec<IpAddr> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.allowed.len() + hosts.len() > MAX_HOSTS {
            state.allowed.clear();
        }
        let mut seen = Vec::new();
        for host in hosts {
            state.allowed.insert(*host);
            if !host.is_loopback() {
                seen.push(IpAddr::V4(*host));
                continue;
            }
            let next = state.by_host.len() as u32 % STAND_INS + 1;
            let stand_in = *state
                .by_host
                .entry(*host)
                .or_insert_with(|| Ipv4Addr::from(u32::from(STAND_IN_BASE) + next));
            state.stand_ins.insert(stand_in, *host);
            seen.push(IpAddr::V4(stand_in));
        }
        seen
    }

    /// Where a guest's connection to `to` goes on the host, if `to` is an allowed outside
    /// address (or a stand-in for one).
    pub fn host_for(&self, to: SocketAddr) -> Option<SocketAddr> {
        let IpAddr::V4(ip) = to.ip() else {
            return None;
        };
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let host = state.stand_ins.get(&ip).copied().unwrap_or(ip);
        state
            .allowed
            .contains(&host)
            .then(|| SocketAddr::from((host, to.port())))
    }

    /// Whether the host address `to` (after [`OutsideHosts::host_for`]) is allowed.
    pub fn allows_host(&self, to: SocketAddr) -> bool {
        let IpAddr::V4(ip) = to.ip() else {
            return false;
        };
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.allowed.contains(&ip)
    }
}

/// Whether `name` is one of the annotation's `patterns` (`example.com`, `*.example.org`).
pub fn names(patterns: &str, name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    patterns
        .split(',')
        .map(|p| p.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .any(|pattern| match pattern.strip_prefix("*.") {
            Some(domain) => name
                .strip_suffix(domain)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            None => name == pattern,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotation_names_hosts_and_whole_domains() {
        let patterns = "example.com, *.example.org ,";
        assert!(names(patterns, "example.com"));
        assert!(names(patterns, "Example.COM."));
        assert!(names(patterns, "api.example.org"));
        assert!(names(patterns, "a.b.example.org"));
        assert!(!names(patterns, "example.org"));
        assert!(!names(patterns, "badexample.org"));
        assert!(!names(patterns, "www.example.com"));
        assert!(!names("", "example.com"));
    }

    #[test]
    fn a_loopback_host_gets_a_stand_in_that_routes_back_to_it_and_nothing_else_is_allowed() {
        let hosts = OutsideHosts::default();
        let public = Ipv4Addr::new(192, 0, 2, 10);
        let seen = hosts.allow(&[Ipv4Addr::LOCALHOST, public]);
        let IpAddr::V4(stand_in) = seen[0] else {
            panic!()
        };
        assert_ne!(stand_in, Ipv4Addr::LOCALHOST);
        assert_eq!(seen[1], IpAddr::V4(public));
        assert_eq!(
            hosts.host_for(SocketAddr::from((stand_in, 8080))),
            Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)))
        );
        assert_eq!(
            hosts.host_for(SocketAddr::from((public, 443))),
            Some(SocketAddr::from((public, 443)))
        );
        assert_eq!(hosts.host_for("192.0.2.11:443".parse().unwrap()), None);
        assert_eq!(hosts.host_for("198.18.0.9:443".parse().unwrap()), None);
        assert_eq!(
            hosts.allow(&[Ipv4Addr::LOCALHOST]),
            vec![IpAddr::V4(stand_in)]
        );
    }
}
