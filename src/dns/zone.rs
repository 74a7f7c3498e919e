//! The cluster's DNS records, as Kubernetes' DNS specification lays them out: built per
//! Service from the Service and its EndpointSlices, looked up by fully qualified name.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// One record's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    /// An alias (ExternalName), fully qualified without the final dot.
    Cname(String),
    Srv {
        port: u16,
        target: String,
    },
}

/// What a name comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The name exists; its records (none of the asked type is NODATA).
    Found(&'a [Data]),
    /// A name in the cluster domain that does not exist.
    NxDomain,
    /// Not ours to answer.
    Outside,
}

/// The records of every Service, and which names each Service owns (to replace them when it
/// changes).
#[derive(Debug)]
pub struct Zone {
    domain: String,
    names: HashMap<String, Vec<Data>>,
    owned: HashMap<(String, String), Vec<String>>,
}

impl Zone {
    /// An empty zone for `domain` (`cluster.local`).
    pub fn new(domain: &str) -> Self {
        Self {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            names: HashMap::new(),
            owned: HashMap::new(),
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The records of `name` (any case, final dot or not).
    pub fn lookup(&self, name: &str) -> Lookup<'_> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(data) = self.names.get(&name) {
            return Lookup::Found(data);
        }
        let inside = name == self.domain || name.ends_with(&format!(".{}", self.domain));
        if inside {
            Lookup::NxDomain
        } else {
            Lookup::Outside
        }
    }

    /// Replaces the records of the Service `namespace/name` with those `service` (none when
    /// it is gone) and its slices call for.
    pub fn set_service(
        &mut self,
        namespace: &str,
        name: &str,
        service: Option<&Service>,
        slices: &[EndpointSlice],
    ) {
        let key = (namespace.to_string(), name.to_string());
        for old in self.owned.remove(&key).into_iter().flatten() {
            self.names.remove(&old);
        }
        let Some(service) = service else { return };
        let base = format!("{name}.{namespace}.svc.{}", self.domain);
        let records = records(&base, service, slices);
        let mut owned = Vec::with_capacity(records.len());
        for (record_name, data) in records {
            if !owned.contains(&record_name) {
                owned.push(record_name.clone());
            }
            self.names.entry(record_name).or_default().push(data);
        }
        self.owned.insert(key, owned);
    }
}

/// A ready endpoint: its address, host label and port numbers by port name.
struct Ready {
    ip: Ipv4Addr,
    host: String,
    ports: Vec<(String, String, u16)>,
}

/// The records of one Service whose name is `base` (`web.default.svc.cluster.local`).
fn records(base: &str, service: &Service, slices: &[EndpointSlice]) -> Vec<(String, Data)> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        let target = spec.external_name.clone().unwrap_or_default();
        return vec![(
            base.into(),
            Data::Cname(target.trim_end_matches('.').into()),
        )];
    }
    let ready = ready_endpoints(slices);
    let mut records = Vec::new();
    match spec.cluster_ip.as_deref().map(str::parse::<Ipv4Addr>) {
        Some(Ok(ip)) => {
            records.push((base.to_string(), Data::A(ip)));
            for port in spec.ports.iter().flatten() {
                let (Some(name), Ok(number)) = (&port.name, u16::try_from(port.port)) else {
                    continue;
                };
                let protocol = port
                    .protocol
                    .as_deref()
                    .unwrap_or("TCP")
                    .to_ascii_lowercase();
                let target = base.to_string();
                let srv = Data::Srv {
                    port: number,
                    target,
                };
                records.push((format!("_{name}._{protocol}.{base}"), srv));
            }
        }
        // Headless: the ready pods themselves.
        _ => {
            for endpoint in &ready {
                let host = format!("{}.{base}", endpoint.host);
                records.push((base.to_string(), Data::A(endpoint.ip)));
                records.push((host.clone(), Data::A(endpoint.ip)));
                for (name, protocol, port) in &endpoint.ports {
                    let srv = Data::Srv {
                        port: *port,
                        target: host.clone(),
                    };
                    records.push((format!("_{name}._{protocol}.{base}"), srv));
                }
            }
        }
    }
    records
}

/// The ready IPv4 endpoints of the slices, once each; named by their `hostname`, else by
/// their address with dashes (`10-244-0-5`), as cluster DNS names them.
fn ready_endpoints(slices: &[EndpointSlice]) -> Vec<Ready> {
    let mut ready: Vec<Ready> = Vec::new();
    for slice in slices.iter().filter(|s| s.address_type == "IPv4") {
        let ports: Vec<(String, String, u16)> = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                let name = p.name.clone().filter(|n| !n.is_empty())?;
                let protocol = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                Some((name, protocol, u16::try_from(p.port?).ok()?))
            })
            .collect();
        for endpoint in slice.endpoints.iter().flatten() {
            let is_ready = endpoint.conditions.as_ref().and_then(|c| c.ready) != Some(false);
            let Some(ip) = endpoint
                .addresses
                .first()
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            if !is_ready || ready.iter().any(|r| r.ip == ip && r.host_is(endpoint)) {
                continue;
            }
            let host = endpoint
                .hostname
                .clone()
                .unwrap_or_else(|| ip.to_string().replace('.', "-"));
            ready.push(Ready {
                ip,
                host,
                ports: ports.clone(),
            });
        }
    }
    ready
}

impl Ready {
    fn host_is(&self, endpoint: &k8s_openapi::api::discovery::v1::Endpoint) -> bool {
        endpoint.hostname.as_deref().is_none_or(|h| h == self.host)
    }
}

#[cfg(test)]
mod tests;
