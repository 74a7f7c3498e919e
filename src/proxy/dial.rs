//! How the proxy reaches an endpoint: pod IPs through the node network, any other address (a
//! native server a selectorless Service's EndpointSlice names, say `127.0.0.1:8000`) straight
//! from the host, as kube-proxy reaches whatever address an endpoint holds.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::{DialFailed, Dialer, Dialing, Stream};

/// How long a connect to a host address may take before another endpoint is tried (an
/// address that drops SYNs would otherwise hold a request for the kernel's two minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether an address is a pod IP (in the cluster's pod range, or a known node's block).
pub type IsPodIp = Box<dyn Fn(Ipv4Addr) -> bool + Send + Sync>;

/// Pod IPs to `pods`, the rest to the host's network.
pub struct PodsOrHost {
    pub is_pod_ip: IsPodIp,
    pub pods: Arc<dyn Dialer>,
}

impl PodsOrHost {
    fn is_pod(&self, to: SocketAddr) -> bool {
        matches!(to.ip(), IpAddr::V4(ip) if (self.is_pod_ip)(ip))
    }
}

impl Dialer for PodsOrHost {
    fn admits(&self, client: IpAddr, endpoint: SocketAddr) -> bool {
        !self.is_pod(endpoint) || self.pods.admits(client, endpoint)
    }

    fn local_http(&self, endpoint: SocketAddr) -> Option<super::LocalHttp> {
        self.pods
            .local_http(endpoint)
            .filter(|_| self.is_pod(endpoint))
    }

    fn dial(&self, to: SocketAddr) -> Dialing<'_> {
        if self.is_pod(to) {
            return self.pods.dial(to);
        }
        Box::pin(async move {
            let connecting = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to));
            let stream = match connecting.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return Err(DialFailed(format!("{to}: {error}"))),
                Err(_) => {
                    return Err(DialFailed(format!(
                        "{to}: no answer in {CONNECT_TIMEOUT:?}"
                    )));
                }
            };
            let _ = stream.set_nodelay(true);
            Ok(Box::new(stream) as Box<dyn Stream>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands for the node network (a real one needs a running node; the integration tests
    /// use it): refuses every address, saying it was asked.
    struct NodeNetwork;

    impl Dialer for NodeNetwork {
        fn dial(&self, to: SocketAddr) -> Dialing<'_> {
            Box::pin(async move { Err(DialFailed(format!("node network asked for {to}"))) })
        }
    }

    fn dialer() -> PodsOrHost {
        let pod_network: crate::cidr::Ipv4Block = "10.244.0.0/16".parse().unwrap();
        PodsOrHost {
            is_pod_ip: Box::new(move |ip| pod_network.contains(ip)),
            pods: Arc::new(NodeNetwork),
        }
    }

    #[tokio::test]
    async fn pod_ips_go_through_the_node_network_and_host_addresses_straight() {
        let native = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = native.local_addr().unwrap();
        let stream = dialer().dial(address).await;
        assert!(stream.is_ok(), "a host address is dialled");
        native.accept().await.unwrap();
        let pod = "10.244.1.7:8080".parse().unwrap();
        let Err(DialFailed(why)) = dialer().dial(pod).await else {
            panic!("the node network refuses");
        };
        assert_eq!(why, "node network asked for 10.244.1.7:8080");
    }
}
