//! A guest's outgoing `wasi:http` requests: wasmtime-wasi-http hands every request to
//! [`PodHttpHooks::send_request`], which resolves and routes the authority as the pod's sockets
//! would (`localhost:P` is the pod, a pod IP is that pod, here or through the tunnel) and
//! speaks HTTP/1.1 over the connection, kept alive for the pod's next request along the same
//! route. Nothing outside the pod network is dialled.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::node::network::{DialError, PodNet};

/// Longest wait for a connection or a response head when the guest sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

type IoDriver = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Sent = Result<(http::Response<WasiBody>, IoDriver), Error>;

/// The `wasi:http` hooks of one guest: its pod's network, or none (every request refused).
pub struct PodHttpHooks {
    net: Option<PodNet>,
}

impl PodHttpHooks {
    pub fn new(net: Option<PodNet>) -> PodHttpHooks {
        PodHttpHooks { net }
    }
}

impl WasiHttpHooks for PodHttpHooks {
    /// Requests inside the cluster are plain HTTP unless the guest says otherwise.
    fn default_scheme(&mut self) -> Option<http::uri::Scheme> {
        Some(http::uri::Scheme::HTTP)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let net = self.net.clone();
        Box::new(send(net, request, options))
    }
}

async fn send(
    net: Option<PodNet>,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Sent {
    let net = net.ok_or(Error::HttpRequestDenied)?;
    // TLS between pods is not part of the pod network yet; an https request goes nowhere.
    if request.uri().scheme() != Some(&http::uri::Scheme::HTTP) {
        return Err(Error::HttpRequestDenied);
    }
    let authority = request
        .uri()
        .authority()
        .ok_or(Error::HttpRequestUriInvalid)?
        .clone();
    let ip = net
        .resolve(authority.host())
        .and_then(|addresses| addresses.into_iter().next())
        .ok_or(Error::DnsError {
            rcode: Some("NXDOMAIN".into()),
            info_code: None,
        })?;
    let to = SocketAddr::new(ip, authority.port_u16().unwrap_or(80));
    let origin_form = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    *request.uri_mut() = origin_form;
    let (connect, first_byte) = timeouts(options);
    // Routed (and checked against policies) per request; a connection along the same route
    // is taken again when one is idle.
    let route = net.route(to);
    let pool = net.kept_alive.clone();
    while let Some(mut sender) = pool.take(&route) {
        let sent = tokio::time::timeout(first_byte, sender.try_send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?;
        match sent {
            Ok(response) => {
                pool.keep_when_done(route, sender);
                return Ok(answered(response));
            }
            // The connection closed while idle and the request was not sent: the next one.
            Err(mut failed) => match failed.take_message() {
                Some(unsent) => request = unsent,
                None => return Err(Error::from(failed.into_error())),
            },
        }
    }
    let stream = tokio::time::timeout(connect, net.dial_along(route.clone(), to))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(http_error)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(Error::from)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "an outgoing connection of a guest ended");
        }
    });
    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(Error::from)?;
    pool.keep_when_done(route, sender);
    Ok(answered(response))
}

/// What the guest gets of `response`. Its connection is driven by a task of its own (it
/// outlives the request when it is kept alive), so there is nothing more to drive.
fn answered(
    response: http::Response<hyper::body::Incoming>,
) -> (http::Response<WasiBody>, IoDriver) {
    let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
    let io: IoDriver = Box::new(async { Ok(()) });
    (response, io)
}

/// The connect and first-byte timeouts the guest asked for, within the node's default.
fn timeouts(options: Option<RequestOptions>) -> (Duration, Duration) {
    let options = options.unwrap_or_default();
    let bounded =
        |asked: Option<Duration>| asked.map_or(DEFAULT_TIMEOUT, |d| d.min(DEFAULT_TIMEOUT));
    (
        bounded(options.connect_timeout),
        bounded(options.first_byte_timeout),
    )
}

/// The `wasi:http` error a guest gets for a connection the pod network did not make.
fn http_error(error: DialError) -> Error {
    match error {
        DialError::Denied(_) => Error::HttpRequestDenied,
        DialError::Refused(_) => Error::ConnectionRefused,
        DialError::Unreachable { .. } => Error::DestinationUnavailable,
        DialError::Io { source, .. } => Error::Connect(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_timeouts_are_kept_within_the_nodes_default() {
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_secs(3600)),
            first_byte_timeout: Some(Duration::from_millis(5)),
            between_bytes_timeout: None,
        };
        assert_eq!(
            timeouts(Some(asked)),
            (DEFAULT_TIMEOUT, Duration::from_millis(5))
        );
        assert_eq!(timeouts(None), (DEFAULT_TIMEOUT, DEFAULT_TIMEOUT));
    }
}
