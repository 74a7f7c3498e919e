//! The node tunnel, our network plugin: a connection to a pod of another node is an HTTP/2
//! `CONNECT` stream to that node's listener (TLS with the cluster CA, both ends presenting
//! certificates the control plane issued), spliced there to the pod's loopback address.
//!
//! One TLS connection per peer node carries every stream, so opening a tunnel costs a round
//! trip, not a handshake.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::DialError;
use super::addresses::{is_cluster_loopback, loopback_of};
use super::routing::{NodeEndpoint, PodTable};

/// A tunnelled byte stream to a pod of another node.
pub type TunnelStream = TokioIo<Upgraded>;

/// The header naming the pod a tunnelled connection comes from, so its peer sees that pod's
/// IP (Kubernetes' pod network has no NAT).
pub const SOURCE_HEADER: &str = "wasmkube-source-pod-ip";

/// Longest wait for a peer node's TLS connection or for its answer to a `CONNECT`.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 flow-control windows: large enough that one stream fills a fast link.
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 16 << 20;
/// The largest DATA frame a peer may send this node: a 64 KiB answer in one frame, not four.
const MAX_FRAME: u32 = 256 << 10;
/// What a splice between a tunnel and a socket reads at a time (tokio's default is 8 KiB):
/// fewer, larger DATA frames and system calls per body.
pub const SPLICE_BUFFER: usize = 64 << 10;

/// Opens tunnels to other nodes, keeping one HTTP/2 connection per node.
pub struct TunnelClient {
    tls: Option<TlsConnector>,
    connections: Mutex<HashMap<SocketAddr, http2::SendRequest<Empty<Bytes>>>>,
}

impl TunnelClient {
    /// A client presenting the node's certificate (`tls`: its rustls client configuration);
    /// without one no tunnel can be opened.
    pub fn new(tls: Option<rustls::ClientConfig>) -> TunnelClient {
        let tls = tls.map(|mut config| {
            config.alpn_protocols = vec![b"h2".to_vec()];
            TlsConnector::from(Arc::new(config))
        });
        TunnelClient {
            tls,
            connections: Mutex::new(HashMap::new()),
        }
    }

    /// A stream to `target` (a pod IP and port) on `node`, for the pod at `source`.
    ///
    /// # Errors
    /// `Refused` when nothing listens there (or no such pod), `Unreachable` when the node
    /// cannot be reached or does not answer in time.
    pub async fn open(
        &self,
        node: &NodeEndpoint,
        target: SocketAddr,
        source: Ipv4Addr,
    ) -> Result<TunnelStream, DialError> {
        let unreachable = |reason: String| DialError::Unreachable { target, reason };
        let mut sender = self.sender(node).await.map_err(unreachable)?;
        let request = Request::builder()
            .method(Method::CONNECT)
            .uri(target.to_string())
            .header(SOURCE_HEADER, source.to_string())
            .body(Empty::new())
            .map_err(|e| unreachable(e.to_string()))?;
        let response = tokio::time::timeout(OPEN_TIMEOUT, sender.send_request(request))
            .await
            .map_err(|_| unreachable(format!("node {} did not answer", node.name)))?
            .map_err(|e| unreachable(format!("node {}: {e}", node.name)))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::FORBIDDEN => return Err(DialError::Denied(target)),
            StatusCode::BAD_GATEWAY | StatusCode::NOT_FOUND => {
                return Err(DialError::Refused(target));
            }
            status => return Err(unreachable(format!("node {} answered {status}", node.name))),
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(TokioIo::new(upgraded))
    }

    /// The HTTP/2 connection to `node`, made when there is none or it closed.
    async fn sender(
        &self,
        node: &NodeEndpoint,
    ) -> Result<http2::SendRequest<Empty<Bytes>>, String> {
        let existing = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node.address)
            .filter(|sender| !sender.is_closed())
            .cloned();
        if let Some(mut sender) = existing {
            sender.ready().await.map_err(|e| e.to_string())?;
            return Ok(sender);
        }
        let tls = self
            .tls
            .as_ref()
            .ok_or("this node has no certificate to open tunnels with")?;
        let connect = async {
            let tcp = TcpStream::connect(node.address)
                .await
                .map_err(|e| e.to_string())?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::IpAddress(node.address.ip().into());
            let stream = tls.connect(name, tcp).await.map_err(|e| e.to_string())?;
            http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(STREAM_WINDOW)
                .initial_connection_window_size(CONNECTION_WINDOW)
                .max_frame_size(MAX_FRAME)
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())
        };
        let (sender, connection) = tokio::time::timeout(OPEN_TIMEOUT, connect)
            .await
            .map_err(|_| format!("connecting to node {} timed out", node.name))??;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "tunnel connection ended");
            }
        });
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.address, sender.clone());
        Ok(sender)
    }
}

type Body = BoxBody<Bytes, Infallible>;

/// Serves a `CONNECT` a peer node (or the API server) sent: connects to the local pod it names
/// and splices the stream to it once the answer is out.
pub async fn serve_connect<B>(mut request: Request<B>, table: Arc<PodTable>) -> Response<Body> {
    let target = request
        .uri()
        .authority()
        .and_then(|a| a.as_str().parse::<SocketAddr>().ok());
    let Some(target) = target else {
        return status(StatusCode::BAD_REQUEST);
    };
    let pod = match target.ip() {
        IpAddr::V4(ip) => table.local(ip),
        IpAddr::V6(_) => None,
    };
    let Some(pod) = pod else {
        return status(StatusCode::NOT_FOUND);
    };
    let source = request
        .headers()
        .get(SOURCE_HEADER)
        .and_then(|v| v.to_str().ok()?.parse::<Ipv4Addr>().ok());
    let from = source_loopback(&table, source);
    let connected = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((from, 0)))?;
        socket.connect(pod.on_host(target.port())).await
    };
    let Ok(mut stream) = connected.await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let _ = stream.set_nodelay(true);
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let mut tunnel = TokioIo::new(upgraded);
            let (up, down) = (SPLICE_BUFFER, SPLICE_BUFFER);
            let _ =
                tokio::io::copy_bidirectional_with_sizes(&mut tunnel, &mut stream, up, down).await;
        }
    });
    status(StatusCode::OK)
}

/// The address a tunnelled connection reaches its pod from: the loopback address of the pod
/// on the other node that opened it, so the pod sees that pod's IP as its peer; the node's own
/// when the source is missing or claims to be one of this node's pods.
fn source_loopback(table: &PodTable, source: Option<Ipv4Addr>) -> Ipv4Addr {
    let own_block = table.block();
    let node = table
        .gateway()
        .map(loopback_of)
        .unwrap_or(Ipv4Addr::LOCALHOST);
    source
        .filter(|ip| !own_block.is_some_and(|b| b.contains(*ip)))
        .map(loopback_of)
        .filter(|ip| is_cluster_loopback(*ip))
        .unwrap_or(node)
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Empty::new().boxed());
    *response.status_mut() = code;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tunnel_comes_from_the_source_pods_address_unless_it_claims_a_local_one() {
        let table = PodTable::default();
        table.assign_block("10.244.1.0/24".parse().unwrap());
        let remote = Ipv4Addr::new(10, 244, 2, 7);
        assert_eq!(
            source_loopback(&table, Some(remote)),
            Ipv4Addr::new(127, 244, 2, 7)
        );
        let node = Ipv4Addr::new(127, 244, 1, 1);
        assert_eq!(source_loopback(&table, None), node);
        assert_eq!(
            source_loopback(&table, Some(Ipv4Addr::new(10, 244, 1, 9))),
            node
        );
        assert_eq!(
            source_loopback(&table, Some(Ipv4Addr::new(10, 0, 0, 1))),
            node,
            "an address mapping onto the host's 127.0.x.x is not used"
        );
    }
}
