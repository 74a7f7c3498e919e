//! The node's HTTPS endpoint, the kubelet's port: tunnel `CONNECT`s from other nodes and the
//! API server's reads of container logs (`/containerLogs/{namespace}/{pod}/{container}`, as the
//! kubelet serves them). TLS with the cluster CA, and every client must present a certificate
//! the control plane issued — only nodes and the API server have one.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::routing::PodTable;
use super::tunnel::serve_connect;
use crate::api::logs::LogOptions;
use crate::api::routes::{parse_query, percent_decode};
use crate::api::server::{self, Body};
use crate::api::{ApiError, ApiResult};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The pods' logs a node serves, by namespace and name.
pub trait NodeLogs: Send + Sync {
    /// Streams the log of `container` of pod `namespace/name`, as the API's `pods/log` would.
    ///
    /// # Errors
    /// `NotFound` for a pod the node does not run, `BadRequest` for a container that has
    /// not started.
    fn open<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        container: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, ApiResult<mpsc::Receiver<Bytes>>>;
}

/// What the listener serves.
pub struct Endpoint {
    pub tls: TlsAcceptor,
    pub table: Arc<PodTable>,
    pub logs: Arc<dyn NodeLogs>,
}

/// Serves `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, endpoint: Arc<Endpoint>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                crate::http_limits::after_failed_accept("node endpoint", &error).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (endpoint, shutdown) = (endpoint.clone(), shutdown.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = connection(stream, peer, endpoint) => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

async fn connection(stream: tokio::net::TcpStream, peer: SocketAddr, endpoint: Arc<Endpoint>) {
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, endpoint.tls.accept(stream)).await;
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "node listener: TLS handshake refused");
            return;
        }
        Err(_) => return,
    };
    let service = service_fn(move |request| {
        let endpoint = endpoint.clone();
        async move { Ok::<_, Infallible>(route(request, &endpoint).await) }
    });
    let served = crate::http_limits::http1_and_2()
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await;
    if let Err(error) = served {
        tracing::debug!(%peer, %error, "node listener connection ended");
    }
}

async fn route(request: Request<Incoming>, endpoint: &Endpoint) -> Response<Body> {
    if request.method() == Method::CONNECT {
        return serve_connect(request, endpoint.table.clone()).await;
    }
    let path = request.uri().path().to_string();
    if request.method() != Method::GET {
        return server::error(&ApiError::MethodNotAllowed);
    }
    if path == "/healthz" {
        return server::text(StatusCode::OK, "ok");
    }
    let Some(target) = path.strip_prefix("/containerLogs/") else {
        return server::error(&ApiError::NotFoundPath(format!("no such path {path}")));
    };
    let parts: Vec<String> = target.split('/').map(percent_decode).collect();
    let [namespace, pod, container] = parts.as_slice() else {
        return server::error(&ApiError::NotFoundPath(format!("no such path {path}")));
    };
    let query = parse_query(request.uri().query().unwrap_or(""));
    let opened = match LogOptions::from_query(pod, &query) {
        Ok(options) => {
            endpoint
                .logs
                .open(namespace, pod, container, &options)
                .await
        }
        Err(error) => Err(error),
    };
    match opened {
        Ok(chunks) => server::stream("text/plain", chunks),
        Err(error) => server::error(&error),
    }
}
