//! A pod's idle HTTP/1.1 connections of its guests' outgoing `wasi:http` requests, kept per
//! route and taken again, as a client library's pool keeps them: a call to another pod then
//! costs no connect (and through the tunnel no stream opened per call). Kept per route, not
//! per address asked for, so each request to a Service is still balanced on its own, and
//! NetworkPolicies are still asked per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;
use wasmtime_wasi_http::WasiBody;

use crate::node::network::routing::Route;

/// Idle connections kept per route; more are closed when their response is done.
const MAX_IDLE_PER_ROUTE: usize = 8;

/// How long a connection may stay idle and still be taken.
const MAX_IDLE: Duration = crate::http_limits::CLIENT_IDLE;

struct Idle {
    sender: SendRequest<WasiBody>,
    since: Instant,
}

/// The pool of one pod.
#[derive(Default)]
pub struct KeptAlive {
    idle: Mutex<HashMap<Route, Vec<Idle>>>,
}

impl KeptAlive {
    /// An idle connection along `route`, ready for a request.
    pub fn take(&self, route: &Route) -> Option<SendRequest<WasiBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let kept = idle.get_mut(route)?;
        while let Some(connection) = kept.pop() {
            if connection.sender.is_ready() && connection.since.elapsed() < MAX_IDLE {
                return Some(connection.sender);
            }
        }
        None
    }

    /// Keeps `sender` along `route` once hyper has its response off the wire (HTTP/1.1
    /// carries one at a time); a connection the server closes, or whose response the guest
    /// drops half read, is not kept.
    pub fn keep_when_done(self: &Arc<Self>, route: Route, mut sender: SendRequest<WasiBody>) {
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            if sender.ready().await.is_err() {
                return;
            }
            let Some(pool) = pool.upgrade() else { return };
            let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|_, kept| {
                kept.retain(|c| c.since.elapsed() < MAX_IDLE);
                !kept.is_empty()
            });
            let kept = idle.entry(route).or_default();
            if kept.len() < MAX_IDLE_PER_ROUTE {
                let since = Instant::now();
                kept.push(Idle { sender, since });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    use super::*;

    /// A keep-alive HTTP/1.1 server on loopback answering "hi"; its address and how many
    /// connections it took.
    async fn server() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (address, accepted) = (
            listener.local_addr().unwrap(),
            Arc::new(AtomicUsize::new(0)),
        );
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = service_fn(|_| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("hi"))))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), answer),
                );
            }
        });
        (address, accepted)
    }

    fn get() -> http::Request<WasiBody> {
        let body = Empty::new().map_err(|never| match never {}).boxed_unsync();
        http::Request::get("/").body(body).unwrap()
    }

    async fn connect(address: SocketAddr) -> SendRequest<WasiBody> {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender
    }

    /// Waits for the pool's background task to keep (or not) the connection.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn a_connection_is_taken_again_once_its_answer_is_in_and_only_along_its_route() {
        let (address, accepted) = server().await;
        let (route, other) = (Route::Local(address), Route::Outside(address));
        let pool = Arc::new(KeptAlive::default());
        let mut sender = connect(address).await;
        let response = sender.send_request(get()).await.unwrap();
        pool.keep_when_done(route.clone(), sender);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hi");
        settle().await;
        assert!(pool.take(&other).is_none(), "another route has none");
        let mut again = pool.take(&route).expect("kept once read");
        let response = again.send_request(get()).await.unwrap();
        response.into_body().collect().await.unwrap();
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for both"
        );
        assert!(pool.take(&route).is_none(), "taken, not shared");
    }
}
