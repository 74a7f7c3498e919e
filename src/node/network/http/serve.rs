//! The node serving an HTTP container: a listener per `containerPort` on the pod's loopback
//! address, HTTP/1.1 with keep-alive or h2c (prior knowledge) on each connection, and each
//! request handed to a handler that makes an instance for it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmtime_wasi_http::WasiBody;

/// Connections one container serves at once (as `wasmtime serve`); more wait in the backlog.
const MAX_CONNECTIONS: usize = 1000;
const BACKLOG: u32 = 1024;

/// Listens on each of `addresses` (the pod's loopback address at each container port).
///
/// # Errors
/// The address that could not be bound and why (a sibling container holds the port).
pub fn bind(addresses: &[SocketAddr]) -> Result<Vec<TcpListener>, String> {
    addresses
        .iter()
        .map(|address| {
            let listen = || {
                let socket = TcpSocket::new_v4()?;
                socket.set_reuseaddr(true)?;
                socket.bind(*address)?;
                socket.listen(BACKLOG)
            };
            listen().map_err(|e| format!("cannot listen on port {}: {e}", address.port()))
        })
        .collect()
}

/// Serves every connection on `listeners` until `stop`, each request answered by `handle`;
/// open connections are cut when it fires.
pub async fn serve<H, F>(listeners: Vec<TcpListener>, handle: H, stop: CancellationToken)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<WasiBody>> + Send + 'static,
{
    let connections = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    for listener in listeners {
        let (handle, stop, slots, tracker) = (
            handle.clone(),
            stop.clone(),
            slots.clone(),
            connections.clone(),
        );
        connections.spawn(accept_loop(listener, handle, stop, slots, tracker));
    }
    stop.cancelled().await;
    connections.close();
    connections.wait().await;
}

async fn accept_loop<H, F>(
    listener: TcpListener,
    handle: H,
    stop: CancellationToken,
    slots: Arc<Semaphore>,
    connections: TaskTracker,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<WasiBody>> + Send + 'static,
{
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit,
            () = stop.cancelled() => return,
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (handle, stop) = (handle.clone(), stop.clone());
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let answer = handle(request);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = stop.cancelled() => {}
            }
            drop(permit);
        });
    }
}
