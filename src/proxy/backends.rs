//! Keep-alive HTTP/1.1 connections to endpoints, dialled through the node network and reused
//! once their last response is read.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::{BoxError, DialFailed, Dialer, ProxyBody, Stream};

/// Idle connections kept per endpoint; more are closed when their response is done.
const MAX_IDLE_PER_ENDPOINT: usize = 64;
/// How long a connection may stay idle and still be taken.
const MAX_IDLE: Duration = crate::http_limits::CLIENT_IDLE;

/// An idle connection to an endpoint, and when it became idle.
type Idle = (SendRequest<ForwardBody>, Instant);

/// What a forwarded request carries: buffered, so it can be sent again to another endpoint.
pub type ForwardBody = Full<Bytes>;

/// Why a request got no answer from an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made: the request was not sent, another endpoint may take it.
    #[error(transparent)]
    Connect(#[from] DialFailed),
    /// A kept-alive connection closed as the request went out, before any answer: the
    /// endpoint may or may not have seen it (it was shutting down, or timed the connection out).
    #[error("the endpoint closed a kept-alive connection: {0}")]
    Closed(#[source] hyper::Error),
    /// The endpoint took the request and failed it.
    #[error("the endpoint failed the request: {0}")]
    Request(#[source] hyper::Error),
}

/// The proxy's connections to endpoints.
pub struct Backends {
    dialer: Arc<dyn Dialer>,
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
}

impl Backends {
    pub fn new(dialer: Arc<dyn Dialer>) -> Arc<Backends> {
        Arc::new(Backends {
            dialer,
            idle: Mutex::default(),
        })
    }

    /// Sends `request` to `endpoint` on an idle connection, or a new one.
    ///
    /// # Errors
    /// `Connect` when no connection could be made (the request is unsent), `Closed` when a
    /// kept-alive connection closed under it, `Request` when the endpoint failed it.
    pub async fn send(
        self: &Arc<Self>,
        endpoint: SocketAddr,
        request: Request<ForwardBody>,
    ) -> Result<Response<ProxyBody>, SendError> {
        if let Some(local) = self.dialer.local_http(endpoint) {
            return Ok(local(request).await);
        }
        let response = self.send_on_connection(endpoint, request).await?;
        Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
    }

    async fn send_on_connection(
        self: &Arc<Self>,
        endpoint: SocketAddr,
        mut request: Request<ForwardBody>,
    ) -> Result<Response<Incoming>, SendError> {
        while let Some(mut sender) = self.take_idle(endpoint) {
            match sender.try_send_request(request).await {
                Ok(response) => {
                    self.recycle(endpoint, sender);
                    return Ok(response);
                }
                // The connection closed while idle: the request was not sent; try another.
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) => request = unsent,
                    None if failed.error().is_incomplete_message() => {
                        return Err(SendError::Closed(failed.into_error()));
                    }
                    None => return Err(SendError::Request(failed.into_error())),
                },
            }
        }
        let stream = self.dialer.dial(endpoint).await?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| DialFailed(format!("{endpoint}: {e}")))?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, %endpoint, "connection to an endpoint ended");
            }
        });
        let response = sender
            .send_request(request)
            .await
            .map_err(SendError::Request)?;
        self.recycle(endpoint, sender);
        Ok(response)
    }

    /// Whether `client` may reach `endpoint` (its pod's NetworkPolicies).
    pub fn admits(&self, client: IpAddr, endpoint: SocketAddr) -> bool {
        self.dialer.admits(client, endpoint)
    }

    /// A new connection to `endpoint`, for a TCP splice.
    ///
    /// # Errors
    /// When none could be made.
    pub async fn connect(&self, endpoint: SocketAddr) -> Result<Box<dyn Stream>, DialFailed> {
        self.dialer.dial(endpoint).await
    }

    fn take_idle(&self, endpoint: SocketAddr) -> Option<SendRequest<ForwardBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let senders = idle.get_mut(&endpoint)?;
        while let Some((sender, since)) = senders.pop() {
            if sender.is_ready() && since.elapsed() < MAX_IDLE {
                return Some(sender);
            }
        }
        None
    }

    /// Puts `sender` back once its response body is read (HTTP/1.1 takes one at a time).
    fn recycle(self: &Arc<Self>, endpoint: SocketAddr, mut sender: SendRequest<ForwardBody>) {
        let backends = self.clone();
        tokio::spawn(async move {
            if sender.ready().await.is_err() {
                return;
            }
            let mut idle = backends.idle.lock().unwrap_or_else(|p| p.into_inner());
            let senders = idle.entry(endpoint).or_default();
            senders.retain(|(_, since)| since.elapsed() < MAX_IDLE);
            if senders.len() < MAX_IDLE_PER_ENDPOINT {
                senders.push((sender, Instant::now()));
            }
        });
    }
}
