//! The node serving an HTTP container: a listener per `containerPort` on the pod's loopback
//! address, HTTP/1.1 with keep-alive or h2c (prior knowledge) on each connection, and each
//! request handed to a handler that makes an instance for it; drained when its pod terminates.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmtime_wasi_http::{Error, WasiBody};

use super::local::{self, LocalHttpServers};

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

/// How a pod's HTTP containers wind down when it terminates: once [`Drain::start`] they take
/// no new connection, and each open one closes after the request it is answering.
#[derive(Clone, Default)]
pub struct Drain {
    begun: CancellationToken,
    /// One token per HTTP container still serving.
    serving: TaskTracker,
}

impl Drain {
    pub fn start(&self) {
        self.begun.cancel();
        self.serving.close();
    }

    /// Once every HTTP container of the pod has answered its last request.
    pub async fn finished(&self) {
        self.serving.wait().await;
    }
}

/// How serving ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// The pod drained: every connection closed after its last answer.
    Drained,
    /// `stop` fired: open connections were cut.
    Stopped,
}

/// Serves every connection on `listeners` (bound at `addresses`) until `stop` (which cuts
/// open connections) or until the pod's `drain` has closed them, each request answered by
/// `handle`; meanwhile `local` hands the node's proxy the same handler.
pub async fn serve<H, F>(
    listeners: Vec<TcpListener>,
    addresses: &[SocketAddr],
    handle: H,
    stop: CancellationToken,
    drain: &Drain,
    local: &Arc<LocalHttpServers>,
) -> Served
where
    H: Fn(Request<WasiBody>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<WasiBody>> + Send + 'static,
{
    let _serving = drain.serving.token();
    let connections = TaskTracker::new();
    let in_process: local::Handle = {
        let (handle, connections) = (handle.clone(), connections.clone());
        Arc::new(move |request| Box::pin(connections.track_future(handle(request))))
    };
    let registered = local.serve(addresses, in_process);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    for listener in listeners {
        let ends = Ends {
            stop: stop.clone(),
            drain: drain.begun.clone(),
        };
        let (handle, slots, tracker) = (handle.clone(), slots.clone(), connections.clone());
        connections.spawn(accept_loop(listener, handle, ends, slots, tracker));
    }
    let drained = async {
        drain.begun.cancelled().await;
        // No new request in process either, as no new connection.
        drop(registered);
        connections.close();
        connections.wait().await;
    };
    let served = tokio::select! {
        () = stop.cancelled() => Served::Stopped,
        () = drained => Served::Drained,
    };
    connections.close();
    connections.wait().await;
    served
}

/// What ends a container's serving: `stop` at once, `drain` after the requests in flight.
#[derive(Clone)]
struct Ends {
    stop: CancellationToken,
    drain: CancellationToken,
}

impl Ends {
    /// Fires on either end: no new connection is taken after it.
    async fn either(&self) {
        tokio::select! {
            () = self.stop.cancelled() => {}
            () = self.drain.cancelled() => {}
        }
    }
}

async fn accept_loop<H, F>(
    listener: TcpListener,
    handle: H,
    ends: Ends,
    slots: Arc<Semaphore>,
    connections: TaskTracker,
) where
    H: Fn(Request<WasiBody>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<WasiBody>> + Send + 'static,
{
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit,
            () = ends.either() => return,
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = ends.either() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                crate::http_limits::after_failed_accept("HTTP container", &error).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (handle, ends) = (handle.clone(), ends.clone());
        connections.spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let request = request.map(|body| body.map_err(Error::from).boxed_unsync());
                let answer = handle(request);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            let builder = crate::http_limits::http1_and_2();
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = ends.stop.cancelled() => {}
                () = ends.drain.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        _ = connection => {}
                        () = ends.stop.cancelled() => {}
                    }
                }
            }
            drop(permit);
        });
    }
}
