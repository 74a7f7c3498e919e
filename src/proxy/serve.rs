//! One listener of the proxy (a load balancer address or a node port): HTTP/1.1 with
//! keep-alive (or h2c) to clients, each request sent to the next ready endpoint of the
//! Service, another one when a connect fails (or, for an idempotent request, when a
//! kept-alive connection closes under it), and a 503 that says why when none is left;
//! connections that do not speak HTTP go to `tcp`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderName};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::ProxyBody;
use super::backends::{Backends, ForwardBody, SendError};
use super::table::{Front, InFlight, Pick, ServiceTable};
use super::tcp::{Carry, carry_of, splice};
use super::upgrade;

/// The largest request body the proxy takes (nginx's `client_max_body_size` is 1 MiB): it is
/// held in memory so a request whose connect failed can go to another endpoint.
pub const MAX_REQUEST_BODY: usize = 8 << 20;

/// Headers of one hop, not forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// What a listener serves: which front of which Service.
#[derive(Clone)]
pub struct Upstream {
    pub front: Front,
    /// `namespace/name`, for answers and logs.
    pub service: String,
    pub table: Arc<ServiceTable>,
    pub backends: Arc<Backends>,
}

/// The endpoints a request or connection has been sent to in vain, or may not go to.
#[derive(Debug, Default)]
pub struct Tried {
    pub endpoints: Vec<SocketAddr>,
    /// How many of them NetworkPolicies refuse the client.
    pub refused: usize,
}

impl Upstream {
    /// The next endpoint for a request or connection from `client`, past those `tried`;
    /// endpoints whose pods' NetworkPolicies refuse the client are skipped (and counted).
    pub fn pick(&self, client: IpAddr, tried: &mut Tried) -> (Pick, InFlight) {
        loop {
            let (pick, in_flight) = self
                .table
                .pick_carried(self.front, client, &tried.endpoints);
            match pick {
                Pick::Endpoint(endpoint) if !self.backends.admits(client, endpoint) => {
                    tried.endpoints.push(endpoint);
                    tried.refused += 1;
                }
                _ => return (pick, in_flight),
            }
        }
    }
}

/// Takes connections on `listener` until `stop`, then lets open ones finish their request.
pub async fn serve(listener: TcpListener, upstream: Upstream, stop: CancellationToken) {
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    crate::http_limits::after_failed_accept(&upstream.service, &error).await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let (upstream, stop) = (upstream.clone(), stop.clone());
        tokio::spawn(async move {
            match carry_of(&stream, &upstream).await {
                Carry::Tcp => splice(stream, client, &upstream, &stop).await,
                Carry::Http => serve_http(stream, client, upstream, stop).await,
            }
        });
    }
}

/// Serves HTTP/1.1 (or HTTP/2 without TLS, `h2c`) on the connection from `client`.
async fn serve_http(
    stream: TcpStream,
    client: SocketAddr,
    upstream: Upstream,
    stop: CancellationToken,
) {
    let service = service_fn(|request| {
        let upstream = upstream.clone();
        async move { Ok::<_, hyper::Error>(forward(&upstream, client, request).await) }
    });
    let builder = crate::http_limits::http1_and_2();
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Sends `request` from `client` to an endpoint of the upstream, trying the next one while
/// connects fail.
async fn forward(
    upstream: &Upstream,
    client: SocketAddr,
    mut request: Request<Incoming>,
) -> Response<ProxyBody> {
    let upgrade = upgrade::requested(request.headers());
    let client_side = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {MAX_REQUEST_BODY} bytes"),
            );
        }
        Err(error) => {
            return answer(
                StatusCode::BAD_REQUEST,
                format!("reading the request: {error}"),
            );
        }
    };
    for name in &HOP_BY_HOP {
        parts.headers.remove(name);
    }
    if let Some(upgrade) = upgrade {
        upgrade::ask_again(&mut parts.headers, upgrade);
    }
    parts.headers.append(
        HeaderName::from_static("x-forwarded-for"),
        client
            .ip()
            .to_string()
            .parse()
            .expect("an IP is a header value"),
    );
    parts.version = http::Version::HTTP_11;
    let mut tried = Tried::default();
    loop {
        let (pick, in_flight) = upstream.pick(client.ip(), &mut tried);
        let endpoint = match pick {
            Pick::Endpoint(endpoint) => endpoint,
            Pick::NotAService => return unavailable(upstream, "is gone".into()),
            Pick::NoEndpoint if tried.endpoints.is_empty() => {
                return unavailable(upstream, "has no ready endpoint".into());
            }
            Pick::NoEndpoint if tried.refused == tried.endpoints.len() => {
                let message = format!(
                    "service {}: the network policies of its pods refuse {}",
                    upstream.service,
                    client.ip()
                );
                return answer(StatusCode::FORBIDDEN, message);
            }
            Pick::NoEndpoint => {
                let tried = &tried.endpoints;
                return unavailable(upstream, format!("could not reach its endpoints {tried:?}"));
            }
        };
        let request = Request::from_parts(parts.clone(), ForwardBody::new(body.clone()));
        match upstream.backends.send(endpoint, request).await {
            // The request counts against its endpoint until its answer is sent on.
            Ok(mut response) => {
                if response.status() == StatusCode::SWITCHING_PROTOCOLS
                    && let Some(client_side) = client_side
                {
                    upgrade::splice(client_side, hyper::upgrade::on(&mut response));
                }
                return response.map(|body| counted(body, in_flight));
            }
            Err(error) if may_retry(&error, &parts.method) => {
                tracing::debug!(%error, %endpoint, service = upstream.service, "trying another endpoint");
                tried.endpoints.push(endpoint);
            }
            Err(error) => {
                return answer(
                    StatusCode::BAD_GATEWAY,
                    format!("{}: {error}", upstream.service),
                );
            }
        }
    }
}

/// Whether a request that failed so may go to another endpoint: one never sent, or (as
/// nginx's `proxy_next_upstream error`) one that may be sent twice.
fn may_retry(error: &SendError, method: &http::Method) -> bool {
    match error {
        SendError::Connect(_) => true,
        SendError::Closed(_) => method.is_idempotent(),
        SendError::Request(_) => false,
    }
}

/// `body`, holding `in_flight` until it is dropped (read to its end, or abandoned).
fn counted(body: ProxyBody, in_flight: InFlight) -> ProxyBody {
    body.map_frame(move |frame| {
        let _held = &in_flight;
        frame
    })
    .boxed_unsync()
}

fn unavailable(upstream: &Upstream, why: String) -> Response<ProxyBody> {
    let message = format!("service {} {why}", upstream.service);
    answer(StatusCode::SERVICE_UNAVAILABLE, message)
}

/// An answer of the proxy itself: `status` with `message` as its plain-text body.
fn answer(status: StatusCode, message: String) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(format!("{message}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
