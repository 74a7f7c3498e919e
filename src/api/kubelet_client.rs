//! The API server's client of node endpoints (kube-apiserver's kubelet client): `pods/log` of a
//! pod on a node in another process is read from that node's endpoint, found through its Node
//! object (`status.addresses` InternalIP and `status.daemonEndpoints.kubeletEndpoint.Port`),
//! over TLS with the cluster CA and the API server's own client certificate.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use super::error::{ApiError, ApiResult};
use super::logs::LogOptions;
use crate::tls::{Identity, TlsError, identity_client_config};

/// Longest wait for a node to accept a connection and answer a request's head.
const NODE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest error body read from a node.
const MAX_ERROR_BYTES: usize = 64 * 1024;
/// Chunks of a log in flight between the node and the API's client.
const LOG_CHUNKS: usize = 64;

/// Reaches nodes' endpoints as the API server.
pub struct KubeletClient {
    tls: TlsConnector,
}

impl KubeletClient {
    /// A client presenting `identity` (the API server's client certificate).
    ///
    /// # Errors
    /// When the identity's PEM does not parse.
    pub fn new(identity: &Identity) -> Result<KubeletClient, TlsError> {
        let mut config = identity_client_config(identity)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient {
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Streams the log of `container` of `pod` from `node`'s endpoint.
    ///
    /// # Errors
    /// What the node answered (`BadRequest` for a container that has not started), or
    /// `Unavailable` when the node cannot be reached.
    pub async fn container_logs(
        &self,
        node: &Value,
        pod: &Value,
        container: &str,
        options: &LogOptions,
    ) -> ApiResult<mpsc::Receiver<Bytes>> {
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        let endpoint = endpoint(node).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "node {name:?} publishes no endpoint (InternalIP and kubelet port) to read logs from"
            ))
        })?;
        let path = format!(
            "/containerLogs/{}/{}/{container}?{}",
            pod["metadata"]["namespace"].as_str().unwrap_or("default"),
            pod["metadata"]["name"].as_str().unwrap_or_default(),
            options.to_query()
        );
        let unreachable = |why: String| ApiError::Unavailable(format!("node {name:?}: {why}"));
        let response = tokio::time::timeout(NODE_TIMEOUT, self.get(endpoint, &path))
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(unreachable)?;
        if response.status() != StatusCode::OK {
            return Err(node_error(response).await);
        }
        let (chunks, receiver) = mpsc::channel(LOG_CHUNKS);
        let mut body = response.into_body();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if chunks.send(data).await.is_err() {
                    return;
                }
            }
        });
        Ok(receiver)
    }

    async fn get(
        &self,
        endpoint: SocketAddr,
        path: &str,
    ) -> Result<http::Response<hyper::body::Incoming>, String> {
        let tcp = TcpStream::connect(endpoint)
            .await
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::IpAddress(endpoint.ip().into());
        let stream = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let request = Request::get(path)
            .header(header::HOST, endpoint.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Where a Node says its endpoint is: its InternalIP and kubelet port.
pub fn endpoint(node: &Value) -> Option<SocketAddr> {
    let status = &node["status"];
    let port = status["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64()?;
    let port = u16::try_from(port).ok().filter(|p| *p != 0)?;
    let ip: IpAddr = status["addresses"]
        .as_array()?
        .iter()
        .find(|a| a["type"] == "InternalIP")?["address"]
        .as_str()?
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port))
}

/// The error a node answered with: its Status message, under the Status code's meaning.
async fn node_error(response: http::Response<hyper::body::Incoming>) -> ApiError {
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_ERROR_BYTES)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|s| s["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    match status {
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => ApiError::BadRequest(message),
        _ => ApiError::Unavailable(format!("the node answered {status}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nodes_endpoint_is_its_internal_ip_and_kubelet_port() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}});
        assert_eq!(endpoint(&node), Some("10.0.0.5:10250".parse().unwrap()));
        for broken in [
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}}),
            json!({"status": {"addresses": [], "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}),
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 70000}}}}),
        ] {
            assert_eq!(endpoint(&broken), None, "{broken}");
        }
    }
}
