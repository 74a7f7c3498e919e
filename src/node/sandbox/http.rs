//! An HTTP container: the node listens on its ports and makes an instance of the component for
//! each request (from its `InstancePre`, with the pooling allocator), in a store of its own that
//! draws on the container's memory and CPU with the requests running beside it.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use super::{ContainerRun, Exit, InstanceState, exit_of_error, oom_if_limited};
use crate::node::limits::{BusyClock, ContainerShare};
use crate::node::logs::Stream;
use crate::node::network::http::serve;
use crate::node::runtime::Runtime;

impl Runtime {
    /// Serves `proxy` on the container's ports until `cancel`, or until its pod has drained
    /// (then it ends as a server that exits cleanly on SIGTERM: code 0).
    pub(super) async fn serve(
        &self,
        proxy: &ProxyPre<InstanceState>,
        run: ContainerRun,
        share: Arc<ContainerShare>,
        cancel: CancellationToken,
    ) -> Exit {
        let Some(network) = &run.network else {
            return Exit::start_failed(
                "an HTTP component is served in its pod's network, and this container has none"
                    .into(),
            );
        };
        if run.ports.is_empty() {
            return Exit::start_failed(
                "an HTTP component is served on its containerPorts, and this container declares none"
                    .into(),
            );
        }
        let addresses: Vec<SocketAddr> = run
            .ports
            .iter()
            .map(|port| network.address.on_host(*port))
            .collect();
        let listeners = match serve::bind(&addresses) {
            Ok(listeners) => listeners,
            Err(message) => return Exit::start_failed(message),
        };
        let (drain, local) = (network.drain.clone(), network.node().local_http.clone());
        let handler = Handler {
            runtime: self.clone(),
            proxy: proxy.clone(),
            run: Arc::new(run),
            share,
            stop: cancel.clone(),
        };
        let handle = move |request| handler.clone().answer(request);
        match serve::serve(listeners, &addresses, handle, cancel, &drain, &local).await {
            serve::Served::Drained => Exit::code(0),
            serve::Served::Stopped => Exit::killed(),
        }
    }
}

/// What every request of one HTTP container needs to get an instance.
#[derive(Clone)]
struct Handler {
    runtime: Runtime,
    proxy: ProxyPre<InstanceState>,
    run: Arc<ContainerRun>,
    share: Arc<ContainerShare>,
    /// Stops the instances still running when the container stops.
    stop: CancellationToken,
}

impl Handler {
    /// The component's answer to `request`; a 500 saying why (and a line in the container's
    /// log) when the instance fails before answering.
    async fn answer(self, request: Request<WasiBody>) -> Response<WasiBody> {
        match self.instance_answer(request).await {
            Ok(response) => response,
            Err(message) => {
                let line = format!("request failed: {message}\n");
                self.run.log.write(Stream::Stderr, line.as_bytes());
                failure(message)
            }
        }
    }

    async fn instance_answer(
        &self,
        mut request: Request<WasiBody>,
    ) -> Result<Response<WasiBody>, String> {
        // An HTTP/1.0 request may name no host; wasi:http needs an authority: it is this pod.
        if request.uri().authority().is_none() && !request.headers().contains_key(HOST) {
            request
                .headers_mut()
                .insert(HOST, HeaderValue::from_static("localhost"));
        }
        let clock = BusyClock::new();
        let mut store = self.runtime.new_store(&self.run, &self.share, &clock)?;
        let (answered, answer) = oneshot::channel();
        let http = &mut store.data_mut().http();
        let incoming = http
            .new_incoming_request(Scheme::Http, request)
            .map_err(|e| format!("{e:#}"))?;
        let outparam = http
            .new_response_outparam(answered)
            .map_err(|e| format!("{e:#}"))?;
        let (proxy, stop) = (self.proxy.clone(), self.stop.clone());
        // The instance runs on in its own task while hyper streams the body it writes.
        let instance = self.runtime.spawn_guest(clock.meter(async move {
            let outcome = {
                let run = async {
                    let proxy = proxy.instantiate_async(&mut store).await?;
                    let handler = proxy.wasi_http_incoming_handler();
                    handler.call_handle(&mut store, incoming, outparam).await
                };
                tokio::select! {
                    outcome = run => outcome,
                    () = stop.cancelled() => Ok(()),
                }
            };
            outcome.map_err(|error| {
                let max_handles = store.data().table.max_capacity();
                let exit = oom_if_limited(exit_of_error(&error, max_handles), store.data());
                exit.message
                    .unwrap_or_else(|| format!("exit code {}", exit.code))
            })
        }));
        match answer.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(format!("the component answered with error {code:?}")),
            Err(_) => match instance.await {
                Ok(Err(message)) => Err(message),
                _ => Err("the component returned without setting a response".into()),
            },
        }
    }
}

fn failure(message: String) -> Response<WasiBody> {
    let body = Full::new(Bytes::from(message))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
