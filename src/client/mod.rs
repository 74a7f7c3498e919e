//! An HTTP client of the Kubernetes REST API, as `kubectl` uses it: JSON bodies, bearer
//! token, `Status` errors, newline-delimited watch streams and streamed logs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), wasmkube::client::ClientError> {
//! use wasmkube::client::{Client, ListParams, PODS};
//! // `https://` with the cluster CA, as `wasmkube up` writes it; `Client::with_ca` takes
//! // them directly.
//! let client = Client::from_kubeconfig("/home/me/.wasmkube/kubeconfig".as_ref())?;
//! let pods = client.list(&PODS.path(Some("default"), None), &ListParams::default()).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{Method, Request, header};
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub use crate::api::kinds::{EVENTS, NAMESPACES, NODES, PODS, Resource};
use crate::tls;

pub mod control_plane;
mod error;
pub mod kubeconfig;
mod params;

pub use error::{ClientError, Status, StatusCause};
pub use params::{
    DeleteParams, ListParams, WatchEvent, WatchEventType, percent_encode, with_query,
};

/// How long a request without a streamed response may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A stream of response body chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send>>;
/// A stream of lines, without their `\n`.
pub type LineStream = Pin<Box<dyn Stream<Item = Result<String, ClientError>> + Send>>;
/// A stream of watch events; an `ERROR` event arrives as `Err(ClientError::Api)`.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, ClientError>> + Send>>;

/// A client of one API server over `https://` (or plain `http://`). Cheap to clone;
/// connections are pooled.
#[derive(Clone)]
pub struct Client {
    base_url: String,
    token: String,
    default_namespace: String,
    http: HttpClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("default_namespace", &self.default_namespace)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `base_url` (`http://host:port`). An empty `token` sends
    /// no `Authorization` header. It trusts no certificate: for an `https://` server use
    /// [`Client::with_ca`].
    pub fn new(base_url: &str, token: &str) -> Client {
        Client::with_tls(base_url, token, tls::client_config_trusting_nothing())
    }

    /// A client of the server at `base_url` (`https://host:port`, or `http://`) that trusts
    /// the CA certificate(s) in `ca_pem`, as kubectl trusts a kubeconfig's
    /// `certificate-authority-data`.
    ///
    /// # Errors
    /// When `ca_pem` holds no valid certificate.
    pub fn with_ca(base_url: &str, token: &str, ca_pem: &str) -> Result<Client, ClientError> {
        Ok(Client::with_tls(
            base_url,
            token,
            tls::client_config(ca_pem)?,
        ))
    }

    pub(crate) fn with_tls(base_url: &str, token: &str, tls: rustls::ClientConfig) -> Client {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Client {
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            default_namespace: "default".to_string(),
            http,
        }
    }

    /// A client for the current context of a kubeconfig file, with its namespace as default.
    ///
    /// # Errors
    /// When the file cannot be read or names no server.
    pub fn from_kubeconfig(path: &Path) -> Result<Client, ClientError> {
        let context = kubeconfig::load(path)?;
        let token = context.token.as_deref().unwrap_or("");
        let client = match &context.certificate_authority {
            Some(ca_pem) => Client::with_ca(&context.server, token, ca_pem)?,
            None => Client::new(&context.server, token),
        };
        Ok(match context.namespace {
            Some(namespace) => client.with_default_namespace(&namespace),
            None => client,
        })
    }

    /// The namespace used when a command names none.
    pub fn with_default_namespace(mut self, namespace: &str) -> Client {
        self.default_namespace = namespace.to_string();
        self
    }

    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// GET one object (or any JSON document).
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, path, None).await
    }

    /// GET a collection.
    pub async fn list(&self, path: &str, params: &ListParams) -> Result<Value, ClientError> {
        self.json(Method::GET, &with_query(path, &params.pairs()), None)
            .await
    }

    /// POST a new object to its collection.
    pub async fn create(&self, path: &str, object: &Value) -> Result<Value, ClientError> {
        self.json(Method::POST, path, Some(("application/json", object)))
            .await
    }

    /// PUT an object (its `metadata.resourceVersion` guards against lost updates).
    pub async fn replace(&self, path: &str, object: &Value) -> Result<Value, ClientError> {
        self.json(Method::PUT, path, Some(("application/json", object)))
            .await
    }

    /// PATCH with a JSON merge patch.
    pub async fn patch(&self, path: &str, patch: &Value) -> Result<Value, ClientError> {
        self.json(
            Method::PATCH,
            path,
            Some(("application/merge-patch+json", patch)),
        )
        .await
    }

    /// Server-side apply: PATCH `object` as `application/apply-patch+yaml` (JSON is YAML) for
    /// `field_manager`, taking fields other managers own when `force`.
    pub async fn server_side_apply(
        &self,
        path: &str,
        object: &Value,
        field_manager: &str,
        force: bool,
    ) -> Result<Value, ClientError> {
        let manager = crate::api::kinds::percent_encode(field_manager);
        let path = format!("{path}?fieldManager={manager}&force={force}");
        let body = Some(("application/apply-patch+yaml", object));
        self.json(Method::PATCH, &path, body).await
    }

    /// DELETE an object (or a collection); returns what the server answered: the object
    /// being deleted gracefully, or a `Status`.
    pub async fn delete(&self, path: &str, params: &DeleteParams) -> Result<Value, ClientError> {
        match params.body() {
            Some(body) => {
                self.json(Method::DELETE, path, Some(("application/json", &body)))
                    .await
            }
            None => self.json(Method::DELETE, path, None).await,
        }
    }

    /// GET a text document, such as a non-following `pods/{name}/log`.
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let bytes = self.send(Method::GET, path, None, Bytes::new()).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// GET a streamed response (`log?follow=true`, `?watch=true`) chunk by chunk.
    pub async fn stream(&self, path: &str) -> Result<ByteStream, ClientError> {
        let url = self.url(path);
        let response = self.request(Method::GET, &url, None, Bytes::new()).await?;
        let status = response.status();
        if !status.is_success() {
            let body = read_body(&url, response.into_body()).await?;
            return Err(ClientError::Api(Box::new(Status::from_response(
                status, &body,
            ))));
        }
        let chunks = BodyDataStream::new(response.into_body()).map(move |chunk| {
            chunk.map_err(|source| ClientError::Body {
                url: url.clone(),
                source,
            })
        });
        Ok(Box::pin(chunks))
    }

    /// GET a streamed response line by line. A last line without `\n` is yielded too.
    pub async fn stream_lines(&self, path: &str) -> Result<LineStream, ClientError> {
        Ok(lines(self.stream(path).await?))
    }

    /// Watches a collection from `resource_version` (None: from now, after the current
    /// state as ADDED events, as the server defines).
    pub async fn watch(
        &self,
        path: &str,
        params: &ListParams,
        resource_version: Option<&str>,
    ) -> Result<WatchStream, ClientError> {
        let mut pairs = params.pairs();
        pairs.push(("watch", "true".to_string()));
        if let Some(version) = resource_version.filter(|v| !v.is_empty()) {
            pairs.push(("resourceVersion", version.to_string()));
        }
        let path = with_query(path, &pairs);
        let url = self.url(&path);
        let events = self
            .stream_lines(&path)
            .await?
            .filter(|line| futures::future::ready(!matches!(line, Ok(l) if l.trim().is_empty())))
            .map(move |line| line.and_then(|line| WatchEvent::parse(&line, &url)));
        Ok(Box::pin(events))
    }

    /// Sends any request; the body of a 2xx answer, else `ClientError::Api`. For callers that
    /// need another content type (YAML, TOML) or raw bytes.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Bytes, ClientError> {
        let url = self.url(path);
        let exchange = async {
            let response = self.request(method, &url, content_type, body).await?;
            let status = response.status();
            let body = read_body(&url, response.into_body()).await?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(ClientError::Api(Box::new(Status::from_response(
                    status, &body,
                ))))
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Timeout {
                    url: url.clone(),
                    after: REQUEST_TIMEOUT,
                })
            })
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, &Value)>,
    ) -> Result<Value, ClientError> {
        let (content_type, bytes) = match body {
            Some((content_type, value)) => (Some(content_type), Bytes::from(value.to_string())),
            None => (None, Bytes::new()),
        };
        let bytes = self.send(method, path, content_type, bytes).await?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
            url: self.url(path),
            source,
        })
    }

    async fn request(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<http::Response<Incoming>, ClientError> {
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(url)
            .header(header::ACCEPT, "application/json, */*")
            .header(
                header::USER_AGENT,
                concat!("wasmkube/", env!("CARGO_PKG_VERSION")),
            );
        if !self.token.is_empty() {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        }
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| invalid(e.to_string()))?;
        self.http.request(request).await.map_err(|source| {
            let server = self
                .base_url
                .split("://")
                .nth(1)
                .unwrap_or(&self.base_url)
                .to_string();
            if source.is_connect() && is_connection_refused(&source) {
                ClientError::ConnectionRefused { server }
            } else {
                ClientError::Connect { server, source }
            }
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

async fn read_body(url: &str, body: Incoming) -> Result<Bytes, ClientError> {
    body.collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|source| ClientError::Body {
            url: url.to_string(),
            source,
        })
}

fn is_connection_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        cause = error.source();
    }
    false
}

/// Splits a chunk stream into lines.
fn lines(chunks: ByteStream) -> LineStream {
    struct State {
        chunks: ByteStream,
        buffer: Vec<u8>,
        done: bool,
    }
    let state = State {
        chunks,
        buffer: Vec::new(),
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(end) = state.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = state.buffer.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..end])
                    .trim_end_matches('\r')
                    .to_string();
                return Some((Ok(text), state));
            }
            if state.done {
                if state.buffer.is_empty() {
                    return None;
                }
                let text = String::from_utf8_lossy(&std::mem::take(&mut state.buffer)).into_owned();
                return Some((Ok(text), state));
            }
            match state.chunks.next().await {
                Some(Ok(chunk)) => state.buffer.extend_from_slice(&chunk),
                Some(Err(error)) => {
                    state.done = true;
                    state.buffer.clear();
                    return Some((Err(error), state));
                }
                None => state.done = true,
            }
        }
    });
    Box::pin(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_are_split_into_lines_across_boundaries() {
        let chunks: Vec<Result<Bytes, ClientError>> = vec![
            Ok(Bytes::from_static(b"one\ntw")),
            Ok(Bytes::from_static(b"o\r\n\nthr")),
            Ok(Bytes::from_static(b"ee")),
        ];
        let lines: Vec<String> = lines(Box::pin(futures::stream::iter(chunks)))
            .map(|l| l.unwrap())
            .collect()
            .await;
        assert_eq!(lines, vec!["one", "two", "", "three"]);
    }
}
