//! The HTTP front of the API: accept loop, authentication, body limits and responses.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::Api;
use super::error::{ApiError, ApiResult};
use super::write::Written;
use super::{field_validation, protobuf, routes};

mod connection;
pub mod limits;

/// Largest request body accepted, as the Kubernetes API server limits it.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// How much of an oversized body is read and dropped before the connection is cut.
const DRAIN_LIMIT_BYTES: usize = 64 * 1024 * 1024;
/// Connections served at once; more wait in the listen backlog until one closes.
const MAX_CONNECTIONS: usize = 4096;

pub type Body = BoxBody<Bytes, Infallible>;

/// What every request handler shares.
pub struct Context {
    pub api: Arc<Api>,
    /// Bearer tokens accepted: the admin's and the nodes' join token.
    pub tokens: Vec<String>,
    /// The cluster CA, served unauthenticated at `/cacerts` for joining nodes to check
    /// against the hash in their token.
    pub ca_pem: String,
    pub address: SocketAddr,
    /// Every connection is TLS (DESIGN §8); see `crate::tls`.
    pub tls: TlsAcceptor,
    pub shutdown: CancellationToken,
    /// The caps on requests being served.
    pub in_flight: limits::InFlight,
    /// The images clients import and joined nodes fetch (`/v1-wasmkube/images`).
    pub images: crate::images::ImageStore,
    /// Signs nodes' identities (`/v1-wasmkube/node-identity`); `None`: this server issues none.
    pub issuer: Option<Arc<crate::tls::Issuer>>,
}

/// Serves the API over TLS on `listener` until `shutdown` fires; open connections then finish
/// their current request (watches end).
pub async fn serve(listener: TcpListener, context: Arc<Context>) {
    let connections = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = context.shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                crate::http_limits::after_failed_accept("API server", &error).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let context = context.clone();
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        // The handshake runs in the connection's task so a slow or broken client cannot
        // stall the accept loop.
        connections.spawn(async move {
            connection::serve(stream, peer, context).await;
            drop(permit);
        });
    }
    connections.close();
}

async fn handle(request: Request<Incoming>, context: &Context) -> Response<Body> {
    let path = request.uri().path().to_string();
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return text(StatusCode::OK, "ok");
    }
    if path == "/cacerts" {
        let mut response = Response::new(Full::new(Bytes::from(context.ca_pem.clone())).boxed());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/x-pem-file"),
        );
        return response;
    }
    if !authorized(&request, &context.tokens) {
        return error(&ApiError::Unauthorized);
    }
    if path == NODE_IDENTITY_PATH {
        return node_identity(&request, context);
    }
    let _slot = match context.in_flight.admit(request.method()) {
        Ok(slot) => slot,
        Err(refused) => {
            let mut response = error(&refused);
            let retry = HeaderValue::from_static("1");
            response.headers_mut().insert(header::RETRY_AFTER, retry);
            return response;
        }
    };
    let span = tracing::debug_span!("request", method = %request.method(), path = %path);
    let routed = AssertUnwindSafe(routes::route(request, context)).catch_unwind();
    match routed.instrument(span).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => error(&e),
        // kube-apiserver's panic recovery: the client gets a 500, the server goes on.
        Err(panic) => {
            let message = crate::panics::message(&*panic);
            tracing::error!(%path, panic = %message, "request handler panicked");
            error(&ApiError::Internal(format!(
                "the server panicked handling the request: {message}"
            )))
        }
    }
}

/// Where a joining node gets its identity, k3s-style (`/v1-k3s/serving-kubelet.crt`): a
/// certificate of the cluster CA for its name and address, and its key.
pub const NODE_IDENTITY_PATH: &str = "/v1-wasmkube/node-identity";

/// `POST /v1-wasmkube/node-identity?node=NAME&address=IP`, for holders of a token.
fn node_identity<B>(request: &Request<B>, context: &Context) -> Response<Body> {
    if request.method() != Method::POST {
        return error(&ApiError::MethodNotAllowed);
    }
    let Some(issuer) = &context.issuer else {
        return error(&ApiError::NotFoundPath(
            "this server issues no node identities".into(),
        ));
    };
    let query = routes::parse_query(request.uri().query().unwrap_or(""));
    let node = routes::param(&query, "node").unwrap_or_default();
    if let Some(problem) = super::kinds::meta::dns_subdomain_error(node) {
        return error(&ApiError::BadRequest(format!(
            "node: invalid value {node:?}: {problem}"
        )));
    }
    let address = routes::param(&query, "address").unwrap_or_default();
    let Ok(address) = address.parse::<std::net::IpAddr>() else {
        return error(&ApiError::BadRequest(format!(
            "address: invalid value {address:?}: must be an IP address"
        )));
    };
    match issuer.node_identity(node, &[address]) {
        Ok(identity) => json(
            StatusCode::OK,
            &serde_json::json!({"caCert": identity.ca_pem, "cert": identity.cert_pem, "key": identity.key_pem}),
        ),
        Err(problem) => error(&ApiError::Internal(problem.to_string())),
    }
}

fn authorized<B>(request: &Request<B>, tokens: &[String]) -> bool {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| {
            tokens
                .iter()
                .any(|token| constant_time_eq(given.trim().as_bytes(), token.as_bytes()))
        })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads the body (refusing more than `MAX_BODY_BYTES`) and decodes JSON, YAML, TOML or
/// Kubernetes protobuf.
pub async fn read_object(request: Request<Incoming>) -> ApiResult<Value> {
    Ok(read_checked(request).await?.0)
}

/// As [`read_object`], with the fields a JSON body repeats (`duplicate field "path"`).
pub async fn read_checked(request: Request<Incoming>) -> ApiResult<(Value, Vec<String>)> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let bytes = read_limited(request.into_body(), MAX_BODY_BYTES).await?;
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media == protobuf::MEDIA_TYPE {
        // client-go's typed clients (`kubectl create namespace`, `run`, `drain`) send protobuf.
        return Ok((protobuf::decode(&bytes)?, Vec::new()));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::BadRequest("the request body is not UTF-8".into()))?;
    match media {
        // Apply patches are YAML (or JSON, which is YAML).
        "application/yaml"
        | "application/x-yaml"
        | "text/yaml"
        | "application/apply-patch+yaml" => serde_yaml::from_str(text)
            .map(|v| (v, Vec::new()))
            .map_err(|e| ApiError::BadRequest(format!("invalid YAML: {e}"))),
        "application/toml" => toml::from_str(text)
            .map(|v| (v, Vec::new()))
            .map_err(|e| ApiError::BadRequest(format!("invalid TOML: {e}"))),
        _ => field_validation::parse_json(text)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}"))),
    }
}

/// Reads a body of at most `limit` bytes (`MAX_BODY_BYTES` for objects). A larger one is read
/// on (and dropped) up to `DRAIN_LIMIT_BYTES` so the client, still sending, gets the 413
/// instead of a broken pipe.
pub async fn read_limited(mut body: Incoming, limit: usize) -> ApiResult<Bytes> {
    let mut collected = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::BadRequest(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > DRAIN_LIMIT_BYTES.max(limit) {
            break;
        }
        if seen <= limit {
            collected.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(ApiError::TooLarge { limit });
    }
    Ok(Bytes::from(collected))
}

pub fn json(status: StatusCode, value: &Value) -> Response<Body> {
    // `to_vec` writes to the buffer directly; `to_string` goes through `fmt` and is slower.
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `body` as it is, of `content_type`.
pub fn binary(content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The object of a write, with a `Warning` header per warning (kubectl prints them).
pub fn written(status: StatusCode, written: &Written) -> Response<Body> {
    let mut response = json(status, &written.object);
    for warning in &written.warnings {
        let quoted = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *response.status_mut() = status;
    response
}

pub fn error(error: &ApiError) -> Response<Body> {
    if error.code() >= 500 {
        tracing::error!(%error, "request failed");
    }
    json(
        StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &error.to_status(),
    )
}

/// A streaming response fed by `chunks` (watch events, followed logs).
pub fn stream(content_type: &'static str, mut chunks: mpsc::Receiver<Bytes>) -> Response<Body> {
    let frames = futures::stream::poll_fn(move |cx| {
        chunks.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Whether `method` may carry an object body.
pub fn has_body(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}
